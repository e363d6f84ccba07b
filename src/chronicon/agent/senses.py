"""Other senses of a keyword: "the instructor trains new staff" is no train.

Rule keywords name things (nouns); some are also verbs (a rule lists them in `also_verbs`:
"train", "rail"), and a description that uses the verb is not about the thing. Without a
tagger, a small pattern check decides from the words around the mention:
- a noun reading wins when a determiner, possessive or number comes right before ("the trains
  arrive", "her train", "two trains"), or the word is part of a longer keyword phrase;
- otherwise it is a verb when an infinitive marker, modal, subject pronoun or frequency adverb
  comes right before ("to train", "they train", "often trains"), when a person or group does
  it ("the instructor trains", "the team trains", "athletes train"), or when an object
  follows ("trains new staff", "trains them", "trains a puppy", "trains for a marathon").
Measured on the labelled corpora it removes every verb use there and no noun use; it is a
heuristic (documented, not a parser): "freight trains the crews love" would read as a verb.
"""

from __future__ import annotations

from .words import Token

_DETERMINERS = {"a", "an", "the", "this", "that", "these", "those", "each", "every", "another",
                "its", "my", "your", "our", "their", "his", "her", "some", "any", "no", "many",
                "several", "both", "one", "two", "three", "four", "five", "first", "last",
                "next", "whose", "which", "what", "of", "by", "on", "in", "at", "from", "into",
                "onto", "than", "and", "or"}
_VERB_BEFORE = {"to", "will", "would", "can", "could", "should", "must", "may", "might",
                "shall", "i", "we", "you", "they", "he", "she", "who", "also", "often",
                "usually", "regularly", "always", "still", "then", "rarely", "sometimes",
                "does", "do", "did", "doesn't", "don't", "didn't"}
# People and groups who train, teach or coach: "<agent> trains" is the verb.
_AGENTS = {"team", "teams", "coach", "coaches", "instructor", "instructors", "trainer",
           "trainers", "teacher", "teachers", "athlete", "athletes", "player", "players",
           "squad", "soldier", "soldiers", "recruit", "recruits", "staff", "class", "man",
           "woman", "men", "women", "boy", "girl", "boys", "girls", "people", "students",
           "student", "runner", "runners", "company", "manager", "mentor", "sergeant",
           "club", "academy", "school", "owner", "handler", "technician", "nurse", "doctor"}
# What starts an object or an adverbial after a verb; nouns are left out ("rail staff" is
# staff of the railway).
_OBJECT_START = {"them", "him", "her", "us", "me", "himself", "herself", "themselves",
                 "new", "young", "junior", "a", "an", "the", "his", "their", "its", "our",
                 "your", "my", "hard", "daily", "for", "every", "each", "twice", "regularly"}


def _word(tokens: list[Token], i: int) -> str | None:
    if 0 <= i < len(tokens) and tokens[i].is_word:
        return tokens[i].text
    return None


def is_verb_use(tokens: list[Token], first: int, last: int) -> bool:
    """Whether the one-word mention at `tokens[first..last]` reads as a verb (see the module
    docstring); phrases of several words are always the thing they name."""
    if first != last:
        return False
    before, after = _word(tokens, first - 1), _word(tokens, last + 1)
    if before in _DETERMINERS:
        return False
    if before in _VERB_BEFORE or before in _AGENTS:
        return True
    return after in _OBJECT_START

"""Words of a description: tokens, clause boundaries, negated spans, and whole-word term matching.

Keywords match whole words only, case-insensitively, with simple plural and possessive forms
("train" matches "trains" and "train's", "railway" matches "railways", "query" matches "queries")
and never inside another word ("trainer", "handrail", "feedback" do not match "train", "rail",
"db"). A term ending in `*` is an explicit prefix ("postgres*" matches "PostgreSQL"). A term of
several words ("Deutsche Bahn", "light rail") matches the same words in sequence; a hyphen
separates words, so "S-Bahn" is the two words "s bahn" on both sides.

A mention inside a negated span does not count. Spans are found with a small, documented
heuristic (a NegEx-style cue and scope), not a parser:
- forward: a cue ("no", "not", "without", "never", "none", "nor", "neither", "n't") negates the
  words after it up to the end of its clause or the next auxiliary ("no train is visible",
  "without any trains", "there are no databases", "contains no code or database tools", but
  not the train in "no people are near the train"); "without" reaches 4 words at most;
- backward: "not"/"n't"/"never" followed by an existence predicate ("visible", "seen", "appear",
  ..., but not "appear to") or a copula followed by "absent"/"missing" negates the clause before
  it ("the train is not visible", "a locomotive is absent").
A clause ends at punctuation, at a contrast or relative word ("but", "while", "that", ...) and at
"and"/"or" when a new subject follows ("no cars, and a train arrives").
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

_TOKEN = re.compile(r"[^\W_]+(?:['’][^\W_]+)*|[.,;:!?()\[\]\"“”—–]")
_PUNCTUATION = set(".,;:!?()[]\"“”—–")

_CUES = {"no", "not", "without", "never", "none", "nor", "neither", "cannot"}
# "no one saw the train": the cue negates a pronoun, not what follows it.
_NOT_CUES_BEFORE = {"one", "only", "just", "doubt", "longer", "matter", "sooner", "less"}
_SCOPE_ENDS = {"but", "however", "although", "though", "yet", "while", "whereas", "instead",
               "except", "unlike", "that", "which", "who", "whom", "whose", "where", "when",
               "because", "since", "until", "after", "before", "then"}
_NEW_SUBJECT = {"a", "an", "the", "there", "it", "he", "she", "they", "we", "i", "you", "this",
                "these", "those", "its", "his", "her", "their", "our", "someone", "people"}
_EXISTENCE = {"visible", "seen", "shown", "present", "appear", "appears", "appeared", "featured",
              "included", "pictured", "depicted", "there", "see", "show", "shows", "exist",
              "exists", "involved", "mentioned"}
_COPULAS = {"is", "are", "was", "were", "be", "been", "remains", "remain", "seems", "stays"}
_ABSENT = {"absent", "missing", "gone", "nowhere"}
# A forward scope covers the negated noun phrase; an auxiliary starts the predicate ("no train
# is visible", "no people are near the train": the train is there).
_AUXILIARIES = {"is", "are", "was", "were", "has", "have", "had", "can", "could", "will",
                "would", "may", "might", "should", "must", "seems", "seem", "remains", "remain"}
_NOT_EXISTENCE_AFTER = {"to", "as", "like"}  # "does not appear to be moving" is no absence
_MAX_SCOPE = 8  # words after a forward cue; longer scopes mostly over-reach
_MAX_SCOPE_WITHOUT = 4  # "a man without a ticket boards a train": the train is there


@dataclass(frozen=True)
class Token:
    """A word (lower-cased, possessive stripped) or a punctuation mark, with its source span."""

    text: str
    start: int
    end: int
    is_word: bool


def _normal(word: str) -> str:
    word = word.lower().replace("’", "'")
    if word.endswith("'s"):
        word = word[:-2]
    return word


def tokenize(text: str) -> list[Token]:
    tokens = []
    for m in _TOKEN.finditer(text):
        raw = m.group(0)
        is_word = raw not in _PUNCTUATION
        tokens.append(Token(_normal(raw) if is_word else raw, m.start(), m.end(), is_word))
    return tokens


def _is_cue(tokens: list[Token], i: int) -> bool:
    word = tokens[i].text
    if not tokens[i].is_word:
        return False
    if word.endswith("n't"):
        return True
    if word not in _CUES:
        return False
    nxt = tokens[i + 1].text if i + 1 < len(tokens) else ""
    return nxt not in _NOT_CUES_BEFORE


def _ends_scope(tokens: list[Token], i: int) -> bool:
    tok = tokens[i]
    if not tok.is_word:
        return tok.text not in "\"“”"
    if tok.text in _SCOPE_ENDS:
        return True
    if tok.text in ("and", "or") and i + 1 < len(tokens):
        return tokens[i + 1].text in _NEW_SUBJECT
    return False


def _clause_start(tokens: list[Token], i: int) -> int:
    j = i
    while j > 0 and not _ends_scope(tokens, j - 1):
        j -= 1
    return j


def _negates_backward(tokens: list[Token], i: int) -> bool:
    """"the train is not visible", "trains don't appear in the clip": the subject is absent."""
    cue = tokens[i].text
    if cue not in ("not", "never") and not cue.endswith("n't"):
        return False
    for k in range(i + 1, min(i + 3, len(tokens))):
        if tokens[k].text in _EXISTENCE:
            after = tokens[k + 1].text if k + 1 < len(tokens) else ""
            return after not in _NOT_EXISTENCE_AFTER
    return False


def negated_mask(tokens: list[Token]) -> list[bool]:
    """For each token, whether it lies inside a negated span (see the module docstring)."""
    mask = [False] * len(tokens)
    for i, tok in enumerate(tokens):
        if not _is_cue(tokens, i):
            continue
        if _negates_backward(tokens, i):
            for j in range(_clause_start(tokens, i), i):
                mask[j] = True
        limit = i + (_MAX_SCOPE_WITHOUT if tok.text == "without" else _MAX_SCOPE)
        j = i + 1
        while (j < len(tokens) and j <= limit and not _ends_scope(tokens, j)
               and not (j > i + 1 and tokens[j].text in _AUXILIARIES)):
            mask[j] = True
            j += 1
    for i, tok in enumerate(tokens):
        # "the locomotive is absent": copula + absence word negates the clause before it.
        if tok.text in _ABSENT and i > 0 and tokens[i - 1].text in _COPULAS:
            for j in range(_clause_start(tokens, i), i):
                mask[j] = True
    return mask


@lru_cache(maxsize=4096)
def word_forms(word: str) -> frozenset[str]:
    """The word and its simple plurals: train→trains, bus→buses, query→queries, railway→railways."""
    forms = {word, word + "s"}
    if word.endswith(("s", "x", "z", "ch", "sh")):
        forms.add(word + "es")
    if word.endswith("y") and len(word) > 1 and word[-2] not in "aeiou":
        forms.add(word[:-1] + "ies")
    return frozenset(forms)


@dataclass(frozen=True)
class Term:
    """A keyword or phrase, already split into words; `prefix` when written with a trailing `*`."""

    source: str
    words: tuple[str, ...]
    prefix: bool = False

    @classmethod
    def parse(cls, source: str) -> Term:
        text = source.strip()
        prefix = text.endswith("*")
        words = tuple(t.text for t in tokenize(text.rstrip("*")) if t.is_word)
        return cls(source=text, words=words, prefix=prefix)

    def _word_matches(self, pattern: str, token: str, last: bool) -> bool:
        if last and self.prefix:
            return token.startswith(pattern)
        return token in word_forms(pattern) if last else token == pattern

    def find(self, tokens: list[Token]) -> list[tuple[int, int]]:
        """Every (first, last) token index where the term occurs as whole words."""
        hits = []
        n = len(self.words)
        for i in range(len(tokens) - n + 1):
            window = tokens[i:i + n]
            if all(t.is_word for t in window) and all(
                    self._word_matches(w, t.text, k == n - 1)
                    for k, (w, t) in enumerate(zip(self.words, window, strict=True))):
                hits.append((i, i + n - 1))
        return hits


@dataclass(frozen=True)
class Mention:
    """One occurrence of a term in the text (characters `start:end`, tokens `first..last`), and
    whether negation cancels it."""

    term: str
    start: int
    end: int
    negated: bool
    first: int = 0
    last: int = 0


def find_mentions(terms: list[Term], tokens: list[Token], mask: list[bool],
                  excluded: list[tuple[int, int]] = ()) -> list[Mention]:
    """Mentions of `terms`; those overlapping an `excluded` character span are left out."""
    mentions = []
    for term in terms:
        for first, last in term.find(tokens):
            start, end = tokens[first].start, tokens[last].end
            if any(s < end and start < e for s, e in excluded):
                continue
            mentions.append(Mention(term.source, start, end,
                                    negated=any(mask[first:last + 1]), first=first, last=last))
    return mentions


def text_without_negated(text: str, tokens: list[Token], mask: list[bool]) -> str:
    """The text with negated spans cut out, for matchers that cannot see negation (embeddings)."""
    pieces, cursor = [], 0
    for tok, negated in zip(tokens, mask, strict=True):
        if negated:
            pieces.append(text[cursor:tok.start])
            cursor = tok.end
    pieces.append(text[cursor:])
    return re.sub(r"\s+", " ", "".join(pieces)).strip()


# Words that turn a sentence to a new, contrasting statement: "no bus, but a tram arrives".
_CONTRAST = {"but", "however", "although", "though", "yet", "whereas", "instead", "except",
             "unlike", "while", "only"}


def sentence_ids(tokens: list[Token]) -> list[int]:
    """For each token, the number of its sentence (or semicolon clause). A dot between digits
    or letters with no space ("3.5", "node.js") ends nothing."""
    ids, current = [], 0
    for i, tok in enumerate(tokens):
        ids.append(current)
        if tok.text in ".!?;" and not _inside_word(tokens, i):
            current += 1
    return ids


def region_ids(tokens: list[Token]) -> list[int]:
    """For each token, the number of its region: a sentence, further split at contrast words.
    A negated mention of a rule's thing cancels the rule's other evidence in its region ("no
    train at the platform and the rails are empty")."""
    ids, current = [], 0
    for i, tok in enumerate(tokens):
        if tok.is_word and tok.text in _CONTRAST and i > 0:
            current += 1
        ids.append(current)
        if tok.text in ".!?;" and not _inside_word(tokens, i):
            current += 1
    return ids


def _inside_word(tokens: list[Token], i: int) -> bool:
    return (0 < i < len(tokens) - 1 and tokens[i - 1].end == tokens[i].start
            and tokens[i].end == tokens[i + 1].start)


_SENTENCE_END = re.compile(r"(?<=[.!?;])\s+")


def sentences(text: str) -> list[str]:
    """Sentences and semicolon clauses, stripped, empty ones dropped."""
    return [s.strip() for s in _SENTENCE_END.split(text) if len(s.strip()) > 2]

"""The verb check for keywords that are also verbs: words around the mention decide."""

from __future__ import annotations

import pytest

from chronicon.agent.senses import is_verb_use
from chronicon.agent.words import tokenize


def verb_reading(text: str, word: str) -> bool:
    tokens = tokenize(text)
    i = next(k for k, t in enumerate(tokens) if t.text == word)
    return is_verb_use(tokens, i, i)


@pytest.mark.parametrize("text", [
    "The instructor trains new staff.", "They train every morning.", "She wants to train.",
    "The team trains on grass.", "A sergeant trains them hard.", "He trains for a marathon.",
])
def test_verb_readings(text: str) -> None:
    word = "trains" if "trains" in text else "train"
    assert verb_reading(text, word)


@pytest.mark.parametrize("text", [
    "The trains arrive.", "Two trains pass.", "Her train leaves at six.", "A freight train.",
    "Trains pass the station.", "Passengers board a train the size of a house.",
    "Buses and trains stop here.", "Commuters on trains read.",
])
def test_noun_readings(text: str) -> None:
    word = "trains" if "trains" in text.lower() else "train"
    assert not verb_reading(text, word)

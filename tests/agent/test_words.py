"""Whole-word term matching, inflections and negated spans (no model needed)."""

from __future__ import annotations

import pytest

from chronicon.agent.words import (
    Term,
    find_mentions,
    negated_mask,
    sentences,
    text_without_negated,
    tokenize,
    word_forms,
)


def mentions(term: str, text: str) -> list[tuple[str, bool]]:
    tokens = tokenize(text)
    found = find_mentions([Term.parse(term)], tokens, negated_mask(tokens))
    return [(text[m.start:m.end], m.negated) for m in found]


@pytest.mark.parametrize(("term", "text", "found"), [
    ("train", "A TRAIN arrives.", "TRAIN"),
    ("train", "Two trains pass.", "trains"),
    ("train", "The train's doors open.", "train's"),
    ("railway", "Old railways cross the valley.", "railways"),
    ("query", "Slow queries pile up.", "queries"),
    ("bus", "Two buses wait.", "buses"),
    ("Deutsche Bahn", "a deutsche   bahn logo", "deutsche   bahn"),
    ("bahn", "An S-Bahn arrives.", "Bahn"),
    ("light rail", "A light-rail vehicle.", "light-rail"),
    ("postgres*", "A PostgreSQL diagram.", "PostgreSQL"),
    ("db", "The DB admin.", "DB"),
])
def test_terms_match_whole_words_with_plurals(term: str, text: str, found: str) -> None:
    assert mentions(term, text) == [(found, False)]


@pytest.mark.parametrize(("term", "text"), [
    ("train", "A personal trainer counts repetitions."),
    ("train", "A football team is training."),
    ("train", "Restraint is shown."),
    ("rail", "He grips the handrail."),
    ("rail", "The guardrail is covered in snow."),
    ("db", "Students fill in a feedback survey."),
    ("db", "The dbx tool."),
    ("sql", "A mysql console."),  # sql is part of another word here
    ("metro", "A metronome ticks."),
    ("postgres", "A PostgreSQL diagram."),  # without * no prefix matching
    ("Deutsche Bahn", "Deutsche Post and a Bahn"),
])
def test_terms_never_match_inside_other_words(term: str, text: str) -> None:
    assert mentions(term, text) == []


@pytest.mark.parametrize("text", [
    "No train is visible.",
    "The platform, without any trains, is empty.",
    "There are no trains today.",
    "There isn't a train in sight.",
    "The clip shows neither a bus nor a train.",
    "The train is not visible in this clip.",
    "A train is absent from the scene.",
    "We never see a train.",
    "It contains no code or train footage.",
])
def test_negated_mentions_are_marked(text: str) -> None:
    assert [neg for _, neg in mentions("train", text)] == [True]


@pytest.mark.parametrize("text", [
    "A man boards a train without a ticket.",
    "There is no bus, but a train arrives.",
    "No one notices the train.",
    "Nobody boards the train.",
    "The train does not stop at this station.",
    "There is no doubt: a train is coming.",
    "No cars are here, and a train passes.",
    "Not only a bus but also a train appears.",
    "No people are visible near the train.",
    "A man without a ticket boards the waiting train.",
    "The train does not appear to be moving.",
])
def test_negation_does_not_overreach(text: str) -> None:
    assert [neg for _, neg in mentions("train", text)] == [False]


def test_word_forms() -> None:
    assert word_forms("train") >= {"train", "trains"}
    assert "railways" in word_forms("railway")
    assert "queries" in word_forms("query")
    assert "trainer" not in word_forms("train")


def test_negated_spans_are_cut_for_embeddings() -> None:
    text = "No train arrives; the platform stays empty."
    tokens = tokenize(text)
    kept = text_without_negated(text, tokens, negated_mask(tokens))
    assert "train" not in kept and "platform stays empty" in kept
    assert sentences("One. Two words here; three! ") == ["One.", "Two words here;", "three!"]

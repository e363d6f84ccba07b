"""decide() with the default rules: the traps, negation, meaning, the score and the corpus."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from chronicon.agent.backtest import backtest, read_corpus
from chronicon.agent.decide import decide, evaluate
from chronicon.agent.rules import RuleSet, parse_rules
from chronicon.errors import BadInput, ModelUnavailable

CORPUS = Path("/work/shared/data/agent_dev_corpus.jsonl")
CORPUS_2 = Path("/work/shared/data/agent_dev_corpus_2.jsonl")
# Hard cases written for issue 10 before the matching was changed (other senses, look-alikes,
# negated statements, paraphrases without keywords); not used to choose rule content.
HARD_CASES = Path(__file__).parent / "data" / "hard_cases.jsonl"


@pytest.mark.parametrize("text", [
    "A personal trainer counts repetitions while a client lifts weights.",
    "An old man grips the handrail on the stairs.",
    "Students fill in a feedback survey on tablets.",
    "The meter shows 85 dB of noise next to the road.",
    "The speaker reaches 70dB in the hall.",
    "A football team is training on a muddy field.",
    "A taxi waits outside a hotel entrance.",
    "A bus stops at a bus stop and people get on.",
    "A librarian sorts books on shelves.",
])
def test_traps_decide_none(text: str, default_rules: RuleSet) -> None:
    decision = decide(text, default_rules)
    assert decision.label == "none", decision.reason
    assert decision.score == 0.0 and decision.matches == []


@pytest.mark.parametrize("text", [
    "No train is visible in this clip.",
    "The platform stays empty, without any trains.",
    "There are no databases in this tutorial; it is about knitting.",
    "No train arrives; the platform remains empty for the whole clip.",
    "The scene contains no locomotive; a horse pulls a cart.",
])
def test_negated_mentions_decide_none(text: str, default_rules: RuleSet) -> None:
    decision = decide(text, default_rules)
    assert decision.label == "none", decision.reason
    assert "negated" in decision.reason


@pytest.mark.parametrize(("text", "label"), [
    ("A train and a railway bridge.", "train"),
    ("The DB logo on a red regional train.", "train"),
    ("An S-Bahn arrives.", "train"),
    ("A diesel engine pulls tank cars.", "train"),
    ("A steam engine puffs smoke as it leaves the station with its coaches.", "train"),
    ("Someone runs SELECT name FROM users in a terminal.", "database"),
    ("A query console exporting a result set.", "database"),
    ("A PostgreSQL replication diagram.", "database"),
    ("The admin restores last night's backup of the Oracle instance.", "database"),
])
def test_positive_descriptions(text: str, label: str, default_rules: RuleSet) -> None:
    decision = decide(text, default_rules)
    assert decision.label == label, decision.reason
    assert 0.5 <= decision.score <= 1.0


def test_reason_lists_the_terms_and_more_evidence_scores_higher(default_rules: RuleSet) -> None:
    keyword_rules = parse_rules("rules:\n  - {name: train, keywords: [train, railway]}\n")
    one = decide("A train.", keyword_rules)
    two = decide("A train on the railway.", keyword_rules)
    assert (one.label, one.score, one.reason) == ("train", 0.75, "Matched: train")
    assert (two.score, two.reason) == (0.938, "Matched: train, railway")  # 1 - 0.25 * 0.25
    meaning = decide("A diesel engine pulls tank cars.", default_rules)
    assert meaning.reason.startswith('Matched: meaning "')
    assert meaning.matches[0].similarity > 0.45


def test_an_ambiguous_weak_keyword_needs_support(default_rules: RuleSet) -> None:
    on_a_train = decide("The DB logo on a red regional train.", default_rules)
    assert on_a_train.labels == ["train"] and on_a_train.reason == "Matched: train, db"
    weak_only = parse_rules("rules:\n  - {name: t, keywords: [train], weak_keywords: [db]}\n")
    assert decide("DB", weak_only).label == "none"  # 0.4 < threshold 0.5
    assert decide("DB train", weak_only).score == 0.85  # 1 - 0.25 * 0.6


def test_several_labels_fire_strongest_first(default_rules: RuleSet) -> None:
    decision = decide("Commuters on a train scroll through a SQL tutorial on their phones.",
                      default_rules)
    assert set(decision.labels) == {"train", "database"}
    assert decision.label == decision.matches[0].label
    assert decision.matches[0].score >= decision.matches[1].score
    assert "also:" in decision.reason


def test_regex_and_exclude_spans() -> None:
    rules = parse_rules("rules:\n  - name: loud\n    regex: ['\\d+ ?dB']\n"
                        "    exclude: ['0 ?dB']\n")
    assert decide("The meter shows 85 dB.", rules).reason == 'Matched: "85 dB"'
    assert decide("The meter shows 0 dB.", rules).label == "none"


def test_threshold_decides_whether_a_rule_fires() -> None:
    strict = parse_rules("rules:\n  - {name: t, keywords: [train], threshold: 0.9}\n")
    assert decide("A train.", strict).label == "none"
    assert decide("A train, a train's train.", strict).label == "none"  # one term counts once


def test_empty_text_decides_none(default_rules: RuleSet) -> None:
    assert decide("", default_rules).label == "none"


@pytest.mark.parametrize("corpus", [CORPUS, CORPUS_2, HARD_CASES], ids=lambda p: p.stem)
def test_default_rules_on_the_labelled_corpora(corpus: Path, default_rules: RuleSet) -> None:
    if not corpus.exists():
        pytest.skip(f"{corpus} is not on this machine")
    report = backtest(default_rules, read_corpus(corpus))
    scores = report.to_dict()
    assert scores["train"]["f1"] >= 0.95 and scores["database"]["f1"] >= 0.95, report.details()


@pytest.mark.parametrize("text", [
    "There is no train at the platform and the rails are empty.",
    "No tram runs today; the tracks in the street are covered with snow.",
    "The video shows an empty station at night. No trains arrive.",
])
def test_negation_reaches_related_words_and_meaning(text: str, default_rules: RuleSet) -> None:
    decision = decide(text, default_rules)
    assert decision.label == "none", decision.reason


def test_a_contrast_word_starts_a_new_statement(default_rules: RuleSet) -> None:
    decision = decide("There are no trains today, but a tram arrives.", default_rules)
    assert decision.label == "train" and decision.matches[0].terms == ["tram"]


@pytest.mark.parametrize("text", [
    "A truck carries shipping containers along the highway.",
    "A container ship is loaded by large cranes at the port.",
    "Workers load crates onto a conveyor belt in a factory.",
])
def test_look_alikes_are_closer_to_counter_examples(text: str, default_rules: RuleSet) -> None:
    decision = decide(text, default_rules)
    assert decision.label == "none", decision.reason
    train = next(m for m in evaluate(text, default_rules) if m.rule == "train")
    # Close to an example, closer to a look-alike.
    assert train.similarity > 0.5 and train.margin < 0


def test_meaning_is_a_margin_not_an_absolute_cosine() -> None:
    rules = parse_rules("rules:\n  - name: train\n    examples: [a freight train hauling "
                        "containers]\n    counter_examples: [a truck carries containers on a "
                        "road]\n")
    truck = evaluate("A lorry with containers drives on the motorway.", rules)[0]
    assert truck.margin is not None and truck.margin < 0 and not truck.fired
    wagons = evaluate("A long freight train with containers crosses a bridge.", rules)[0]
    assert wagons.margin > 0.1 and wagons.fired


@pytest.mark.parametrize("text", [
    "The instructor trains new staff in a classroom with a whiteboard.",
    "A coach explains the drills while the team trains on a muddy pitch.",
    "She wants to train her dog to fetch.",
    "A woman in a long wedding dress walks down the aisle; the train of her dress trails behind.",
    "He lost his train of thought.",
])
def test_other_senses_of_a_keyword_are_no_train(text: str, default_rules: RuleSet) -> None:
    decision = decide(text, default_rules)
    assert decision.label == "none", decision.reason


def test_verb_uses_are_reported_and_nouns_still_count(default_rules: RuleSet) -> None:
    verb = next(m for m in evaluate("The instructor trains new staff.", default_rules)
                if m.rule == "train")
    assert verb.other_senses == ["trains"] and verb.terms == []
    assert decide("Passengers step off the trains onto the platform.", default_rules).label \
        == "train"
    assert decide("A train of freight wagons crosses the bridge.", default_rules).label \
        == "train"


def test_backtest_counts_and_lists_misclassified() -> None:
    rules = parse_rules("rules:\n  - {name: train, keywords: [train]}\n")
    report = backtest(rules, [
        {"analysis": "A train.", "labels": ["train"]},
        {"analysis": "A locomotive.", "labels": ["train"]},
        {"analysis": "A train poster.", "labels": []},
        {"analysis": "A cat.", "labels": []},
    ])
    train = report.labels["train"]
    assert (train.true_positives, train.false_positives, train.false_negatives) == (1, 1, 1)
    assert report.to_dict()["train"] == {"precision": 0.5, "recall": 0.5, "f1": 0.5}
    assert [m.line for m in report.misclassified] == [2, 3]


@pytest.mark.parametrize(("content", "message"), [
    ("not json\n", ":1: not JSON"),
    ('{"analysis": 3}\n', ':1: expected {"analysis"'),
    ('{"analysis": "x", "labels": "train"}\n', ":1: expected"),
    ("\n\n", "holds no descriptions"),
])
def test_read_corpus_errors(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "c.jsonl"
    path.write_text(content)
    with pytest.raises(BadInput, match=message.replace("{", r"\{")):
        read_corpus(path)


def test_missing_embedding_model_is_a_clear_error(tmp_path: Path) -> None:
    rules = parse_rules(f"model: {tmp_path / 'no-model'}\n"
                        "rules:\n  - {name: t, examples: [a locomotive pulls wagons]}\n")
    with pytest.raises(ModelUnavailable, match="cannot load the embedding model"):
        decide("A train.", rules)


def test_decide_is_thread_safe(default_rules: RuleSet) -> None:
    texts = ["A diesel engine pulls tank cars.", "A query console exporting a result set.",
             "A ferry crosses a harbor.", "No train is visible."] * 4
    expected = [decide(t, default_rules).to_dict() for t in texts]
    with ThreadPoolExecutor(max_workers=4) as pool:
        got = list(pool.map(lambda t: decide(t, default_rules).to_dict(), texts))
    assert got == expected

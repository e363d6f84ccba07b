"""Rules files: parsing, defaults, and errors that name the rule and the field."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from chronicon.agent.rules import load_rules, parse_duration, parse_rules
from chronicon.errors import EXIT_BAD_INPUT, RulesError

GOOD = """
rules:
  - name: trains
    label: train
    keywords: [train, "light rail"]
    regex: ['\\bICE ?\\d+']
    examples: ["a locomotive pulls wagons"]
    counter_examples: ["a bus at a stop"]
    threshold: 0.6
    actions: [email, webhook]
    cooldown: 5m
  - name: db
    keywords: [database]
"""


def test_parse_rules_reads_every_field() -> None:
    rules = parse_rules(GOOD, source="mine.yaml")
    first, second = rules.rules
    assert (first.name, first.label, first.threshold, first.cooldown) == ("trains", "train",
                                                                         0.6, 300.0)
    assert first.actions == ["email", "webhook"]
    assert [t.words for t in first.terms] == [("train",), ("light", "rail")]
    assert first.patterns[0].search("an ice 123 passes")  # regexes are case-insensitive
    assert (second.label, second.actions, second.cooldown) == ("db", ["log"], 0.0)
    assert rules.labels == ["train", "db"]


def test_to_yaml_round_trips() -> None:
    rules = parse_rules(GOOD)
    again = parse_rules(rules.to_yaml())
    assert again.to_dict() == rules.to_dict()


def test_default_rules_keep_the_long_standing_keywords() -> None:
    rules = load_rules(None)
    train, database = rules.get("train"), rules.get("database")
    assert {"train", "rail", "railway", "metro", "locomotive", "db", "Deutsche", "Bahn"} <= set(
        train.keywords + train.weak_keywords)
    assert {"database", "db", "sql", "postgres", "mysql", "mongodb"} <= set(
        database.keywords + database.weak_keywords)
    assert "db" in train.weak_keywords and "db" in database.weak_keywords  # ambiguous
    assert train.examples and database.examples
    assert train.actions == ["email"] and database.actions == ["email"]


@pytest.mark.parametrize(("text", "expected"), [
    ("rules: [", "invalid YAML at line 1"),
    ("- just\n- a list of strings\n", "rule #1: Input should be a valid dictionary"),
    ("42", "expected a mapping with a 'rules' list"),
    ("rules: []", "no rules"),
    ("rules:\n  - name: t\n    keywords: [a]\n    threshold: 2\n",
     "rule 't' (#1), field 'threshold': Input should be less than or equal to 1"),
    ("rules:\n  - name: t\n    threshold: 0.5\n",
     "rule 't' (#1): a rule needs at least one of keywords, weak_keywords, regex, examples"),
    ("rules:\n  - name: t\n    keywords: [a]\n    regex: ['(unclosed']\n",
     "rule 't' (#1), field 'regex': invalid regular expression '(unclosed'"),
    ("rules:\n  - name: t\n    keywords: [a]\n    actions: [sms]\n",
     "rule 't' (#1), field 'actions': unknown action 'sms': use one of email, webhook, log"),
    ("rules:\n  - name: t\n    keywords: [a]\n    cooldown: soon\n",
     "rule 't' (#1), field 'cooldown': expected a duration"),
    ("rules:\n  - name: t\n    keywords: [a]\n    colour: red\n",
     "rule 't' (#1), field 'colour': Extra inputs are not permitted"),
    ("rules:\n  - name: t\n    keywords: ['  ']\n", "field 'keywords': entries must not be blank"),
    ("rules:\n  - keywords: [a]\n", "rule #1, field 'name': Field required"),
    ("rules:\n  - {name: t, keywords: ['!?']}\n", "keyword '!?' holds no word to match"),
    ("rules:\n  - {name: t, keywords: [a]}\n  - {name: t, keywords: [b]}\n",
     "duplicate rule name 't'"),
    ("rules:\n  - {name: t, keywords: [a], counter_examples: [b]}\n",
     "counter_examples need examples"),
    ("rules:\n  - {name: t, examples: [a], min_similarity: 0.7, full_similarity: 0.6}\n",
     "full_similarity must be above min_similarity"),
])
def test_rules_errors_name_the_rule_and_field(text: str, expected: str) -> None:
    with pytest.raises(RulesError) as caught:
        parse_rules(text, source="bad.yaml")
    assert str(caught.value).startswith("bad.yaml: ")
    assert expected in str(caught.value)
    assert caught.value.exit_code == EXIT_BAD_INPUT


def test_load_rules_from_file_and_reload_on_change(tmp_path: Path) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text("rules:\n  - {name: a, keywords: [x]}\n")
    assert load_rules(path).rules[0].name == "a"
    path.write_text("rules:\n  - {name: b, keywords: [x]}\n")
    os.utime(path, (1, 1))  # a different mtime even within the clock's resolution
    assert load_rules(path).rules[0].name == "b"


def test_load_rules_missing_file(tmp_path: Path) -> None:
    with pytest.raises(RulesError, match="rules file not found"):
        load_rules(tmp_path / "nope.yaml")


@pytest.mark.parametrize(("value", "seconds"), [
    (0, 0.0), (90, 90.0), ("45", 45.0), ("30s", 30.0), ("5m", 300.0), ("2h", 7200.0),
    ("1d", 86400.0), ("1.5 min", 90.0)])
def test_durations(value: object, seconds: float) -> None:
    assert parse_duration(value) == seconds


@pytest.mark.parametrize("value", ["-5", "5 weeks", True, -1])
def test_bad_durations(value: object) -> None:
    with pytest.raises(ValueError):
        parse_duration(value)


def test_the_readme_example_is_a_valid_rules_file() -> None:
    readme = Path(__file__).resolve().parents[2] / "README.md"
    section = readme.read_text("utf-8").split("<!-- section: agent -->")[1]
    example = section.split("```yaml\n")[1].split("```")[0]
    rules = parse_rules(example, source="README.md")
    assert rules.rules[0].name == "train" and rules.rules[0].cooldown == 300

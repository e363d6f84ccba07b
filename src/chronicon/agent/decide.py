"""decide(text, rules) -> Decision: which rules fire on a description, and how strongly.

How the score is computed (per rule, in 0..1):
- every distinct keyword/phrase found as whole words and not negated is one piece of evidence of
  strength `keyword_weight` (0.75 by default), every weak keyword (an ambiguous word such as
  "db") of `weak_keyword_weight` (0.4); mentions inside an `exclude` span do not count;
- every regex that matches (outside `exclude` spans and negated spans) is one piece of strength
  `regex_weight`;
- meaning: the best cosine similarity between the rule's `examples` and any sentence of the
  description (with negated spans cut out), mapped linearly from `min_similarity` (0) to
  `full_similarity` (`example_weight`, 0.9 by default); a sentence closer to one of the rule's
  `counter_examples` (look-alikes such as "a bus at a bus stop") than to every example gives no
  meaning evidence;
- the pieces combine with a noisy-OR, score = 1 - (1 - s1)(1 - s2)..., i.e. the chance that at
  least one piece is right if each were right with its own strength: one keyword gives 0.75,
  two give 0.94, a keyword plus a strong paraphrase approaches 1.
A rule fires when its score reaches its `threshold`. The decision's label is the fired rule with
the highest score (the earlier rule on a tie); "none" with score 0 when no rule fires.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from .meaning import get_embedder
from .rules import Rule, RuleSet
from .words import Token, find_mentions, negated_mask, sentences, text_without_negated, tokenize

NO_LABEL = "none"


@dataclass
class RuleMatch:
    """The evidence one rule found: keywords and weak keywords found, terms found only negated,
    the text each matching regex matched, and the closest example with its cosine similarity."""

    rule: str
    label: str
    score: float
    fired: bool
    terms: list[str] = field(default_factory=list)
    weak_terms: list[str] = field(default_factory=list)
    negated: list[str] = field(default_factory=list)
    patterns: list[str] = field(default_factory=list)
    similarity: float | None = None
    example: str | None = None

    def evidence(self) -> list[str]:
        """Short phrases for a reason line: the terms, regex hits, then the paraphrase."""
        strong = self.terms + [f'"{p}"' for p in self.patterns]
        found = self.terms + self.weak_terms + [f'"{p}"' for p in self.patterns]
        if self.example is not None and self.similarity is not None and not strong:
            found.append(f'meaning "{self.example}" ({self.similarity:.2f})')
        return found

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Decision:
    label: str
    score: float
    reason: str
    matches: list[RuleMatch] = field(default_factory=list)

    @property
    def labels(self) -> list[str]:
        """Every label that fired, strongest first."""
        return list(dict.fromkeys(m.label for m in self.matches))

    def summary(self) -> dict[str, Any]:
        """The long-standing `{"label", "score", "reason"}` shape."""
        return {"label": self.label, "score": self.score, "reason": self.reason}

    def to_dict(self) -> dict[str, Any]:
        return {**self.summary(), "matches": [m.to_dict() for m in self.matches]}


@dataclass
class _Text:
    """A description prepared once for every rule: tokens, negation mask, units to embed."""

    text: str
    tokens: list[Token]
    mask: list[bool]
    units: list[str]
    _vectors: dict[str, np.ndarray] = field(default_factory=dict)

    @classmethod
    def prepare(cls, text: str) -> _Text:
        tokens = tokenize(text)
        mask = negated_mask(tokens)
        kept = text_without_negated(text, tokens, mask)
        # Examples are single sentences, so sentences are what to compare; the whole text only
        # when it is one (embedding it beside its sentences would pad every row to its length).
        units = list(dict.fromkeys(sentences(kept) or [kept])) if kept else []
        return cls(text, tokens, mask, units)

    def vectors(self, model: str) -> np.ndarray:
        if model not in self._vectors:
            self._vectors[model] = get_embedder(model).encode(self.units)
        return self._vectors[model]


def _combine(strengths: list[float]) -> float:
    missing = 1.0
    for s in strengths:
        missing *= 1.0 - s
    return 1.0 - missing


def _excluded_spans(rule: Rule, text: str) -> list[tuple[int, int]]:
    return [m.span() for p in rule.excludes for m in p.finditer(text)]


def _regex_hits(rule: Rule, prepared: _Text, excluded: list[tuple[int, int]]) -> list[str]:
    negated_spans = [(t.start, t.end)
                     for t, neg in zip(prepared.tokens, prepared.mask, strict=True) if neg]
    hits = []
    for pattern in rule.patterns:
        for m in pattern.finditer(prepared.text):
            s, e = m.span()
            overlaps = any(a < e and s < b for a, b in excluded + negated_spans)
            if not overlaps and e > s:
                hits.append(m.group(0)[:40])  # the text it matched explains more than the regex
                break
    return hits


def _closest_example(rule: Rule, prepared: _Text, model: str) -> tuple[float | None, str | None]:
    """The best cosine between a unit of the text and an example, counting only units that are
    closer to some example than to every counter-example ("a bus stops at a stop" is nearer
    "a bus at a bus stop" than "a train stops at the platform": no train evidence)."""
    if not rule.examples or not prepared.units:
        return None, None
    embedder = get_embedder(model)
    units = prepared.vectors(model)
    sims = units @ embedder.encode_cached(rule.examples).T
    best_per_unit = sims.max(axis=1)
    if rule.counter_examples:
        contrast = (units @ embedder.encode_cached(rule.counter_examples).T).max(axis=1)
        best_per_unit = np.where(best_per_unit > contrast, best_per_unit, -1.0)
    unit = int(np.argmax(best_per_unit))
    if best_per_unit[unit] <= -1.0:
        return 0.0, None
    return round(float(best_per_unit[unit]), 3), rule.examples[int(np.argmax(sims[unit]))]


def evaluate_rule(rule: Rule, prepared: _Text, model: str) -> RuleMatch:
    excluded = _excluded_spans(rule, prepared.text)
    mentions = find_mentions(rule.terms, prepared.tokens, prepared.mask, excluded)
    weak = find_mentions(rule.weak_terms, prepared.tokens, prepared.mask, excluded)
    terms = list(dict.fromkeys(m.term for m in mentions if not m.negated))
    weak_terms = [t for t in dict.fromkeys(m.term for m in weak if not m.negated)
                  if t not in terms]
    negated = [t for t in dict.fromkeys(m.term for m in mentions + weak if m.negated)
               if t not in terms and t not in weak_terms]
    patterns = _regex_hits(rule, prepared, excluded)
    strengths = ([rule.keyword_weight] * len(terms) + [rule.weak_keyword_weight] * len(weak_terms)
                 + [rule.regex_weight] * len(patterns))

    similarity, example = _closest_example(rule, prepared, model)
    if similarity is not None:
        strengths.append(rule.semantic_strength(similarity))

    score = round(_combine(strengths), 3)
    return RuleMatch(rule=rule.name, label=rule.label, score=score,
                     fired=score >= rule.threshold and score > 0, terms=terms,
                     weak_terms=weak_terms, negated=negated,
                     patterns=patterns, similarity=similarity, example=example)


def evaluate(text: str, rules: RuleSet) -> list[RuleMatch]:
    """Every rule's evidence on `text`, fired or not (the backtest and the web UI show both)."""
    prepared = _Text.prepare(text or "")
    return [evaluate_rule(rule, prepared, rules.model) for rule in rules.rules]


def decide(text: str, rules: RuleSet) -> Decision:
    """The decision on one description; see the module docstring for the score."""
    evaluated = evaluate(text, rules)
    fired = sorted((m for m in evaluated if m.fired), key=lambda m: -m.score)  # stable on ties
    if not fired:
        negated = [t for m in evaluated for t in m.negated]
        reason = "No rule matched" + (f" (negated: {', '.join(negated)})" if negated else "")
        return Decision(NO_LABEL, 0.0, reason, [])
    best = fired[0]
    reason = "Matched: " + ", ".join(best.evidence())
    others = [m.label for m in fired[1:] if m.label != best.label]
    if others:
        reason += f" (also: {', '.join(dict.fromkeys(others))})"
    return Decision(best.label, best.score, reason, fired)


def warm_up(rules: RuleSet) -> None:
    """Load the embedding model and embed every rule's examples now (a server calls this at
    startup, so the first decision does not pay the seconds of loading)."""
    for rule in rules.rules:
        if rule.examples:
            embedder = get_embedder(rules.model)
            embedder.encode_cached(rule.examples)
            if rule.counter_examples:
                embedder.encode_cached(rule.counter_examples)

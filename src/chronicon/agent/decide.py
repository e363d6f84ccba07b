"""decide(text, rules) -> Decision: which rules fire on a description, and how strongly.

How the score is computed (per rule, in 0..1):
- every distinct keyword/phrase found as whole words and not negated is one piece of evidence of
  strength `keyword_weight` (0.75 by default), every weak keyword (an ambiguous word such as
  "db") of `weak_keyword_weight` (0.4); mentions inside an `exclude` span do not count, nor a
  keyword of `also_verbs` used as a verb ("the instructor trains new staff", see senses.py);
- every regex that matches (outside `exclude` spans and negated spans) is one piece of strength
  `regex_weight`;
- negation reaches the whole statement: where a mention of the rule is negated, the rule's other
  evidence in the same region (a sentence up to a contrast word such as "but") does not count
  ("there is no train at the platform and the rails are empty"), and that sentence gives no
  meaning evidence for the rule;
- meaning, contrastive: each sentence of the description (negated spans and other senses cut
  out) is compared with the rule's `examples` and with its look-alikes (its `counter_examples`
  and the other labels' examples); the evidence is `example_weight` times the smaller of the
  cosine to the closest example (mapped from `min_similarity` to `full_similarity`) and its
  margin over the closest look-alike (mapped from `min_margin` to `full_margin`): a truck with
  containers is close to "a freight train hauling containers" but closer to a lorry;
- the pieces combine with a noisy-OR, score = 1 - (1 - s1)(1 - s2)..., i.e. the chance that at
  least one piece is right if each were right with its own strength: one keyword gives 0.75,
  two give 0.94, a keyword plus a strong paraphrase approaches 1.
A rule fires when its score reaches its `threshold`. The decision's label is the fired rule with
the highest score (the earlier rule on a tie); "none" with score 0 when no rule fires.
"""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from .meaning import get_embedder
from .rules import Rule, RuleSet
from .senses import is_verb_use
from .words import (
    Mention,
    Token,
    find_mentions,
    negated_mask,
    region_ids,
    sentence_ids,
    tokenize,
)

NO_LABEL = "none"


@dataclass
class RuleMatch:
    """The evidence one rule found: keywords and weak keywords found, terms found only negated
    (or in a negated statement), the text each matching regex matched, the closest example with
    its cosine similarity and its margin over the closest look-alike, and keywords found only in
    another sense ("trains new staff")."""

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
    margin: float | None = None
    other_senses: list[str] = field(default_factory=list)
    verification: dict[str, Any] | None = None  # set by decide_and_act for a `verify` rule

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
    """A description prepared once for every rule: tokens, negation mask, sentences and regions,
    and the sentences to embed (negated spans and other senses of keywords cut out)."""

    text: str
    tokens: list[Token]
    mask: list[bool]
    sentence_of: list[int]
    region_of: list[int]
    units: list[str]
    unit_sentences: list[set[int]]
    _vectors: dict[str, np.ndarray] = field(default_factory=dict)

    @classmethod
    def prepare(cls, text: str, rules: RuleSet) -> _Text:
        tokens = tokenize(text)
        mask = negated_mask(tokens)
        sentence_of = sentence_ids(tokens)
        cut = list(mask)
        for rule in rules.rules:
            for first, last in _other_sense_tokens(rule, text, tokens, mask):
                cut[first:last + 1] = [True] * (last + 1 - first)
        # Examples are single sentences, so sentences are what to compare.
        by_text: dict[str, set[int]] = {}
        for number in dict.fromkeys(sentence_of):
            kept = _kept_text(text, tokens, cut, sentence_of, number)
            if len(kept) > 2:
                by_text.setdefault(kept, set()).add(number)
        return cls(text, tokens, mask, sentence_of, region_ids(tokens), list(by_text),
                   list(by_text.values()))

    def vectors(self, model: str) -> np.ndarray:
        if model not in self._vectors:
            self._vectors[model] = get_embedder(model).encode(self.units)
        return self._vectors[model]

    def region_at(self, offset: int) -> int | None:
        """The region of the token that starts at or before character `offset`."""
        i = bisect_right([t.start for t in self.tokens], offset) - 1
        return self.region_of[i] if i >= 0 else None


def _kept_text(text: str, tokens: list[Token], cut: list[bool], sentence_of: list[int],
               number: int) -> str:
    kept = [t for t, c, n in zip(tokens, cut, sentence_of, strict=True)
            if n == number and not c]
    pieces = []
    for previous, tok in zip([None, *kept], kept, strict=False):
        gap = "" if previous is not None and previous.end == tok.start else " "
        pieces.append(gap + text[tok.start:tok.end])
    return "".join(pieces).strip()


def _other_sense_tokens(rule: Rule, text: str, tokens: list[Token],
                        mask: list[bool]) -> list[tuple[int, int]]:
    """Token spans where the rule's words mean something else: its keywords used as verbs, and
    its `exclude` spans (both are cut out of the text that is embedded)."""
    spans = [(m.first, m.last) for m in _verb_uses(rule, tokens, mask)]
    for start, end in _excluded_spans(rule, text):
        inside = [i for i, t in enumerate(tokens) if start < t.end and t.start < end]
        if inside:
            spans.append((inside[0], inside[-1]))
    return spans


def _verb_uses(rule: Rule, tokens: list[Token], mask: list[bool]) -> list[Mention]:
    if not rule.verbs:
        return []
    return [m for m in find_mentions(rule.terms, tokens, mask)
            if m.first == m.last and any(w in rule.verbs for w in _stems(tokens[m.first].text))
            and is_verb_use(tokens, m.first, m.last)]


def _stems(word: str) -> tuple[str, ...]:
    return (word, word[:-1]) if word.endswith("s") else (word,)


def _combine(strengths: list[float]) -> float:
    missing = 1.0
    for s in strengths:
        missing *= 1.0 - s
    return 1.0 - missing


def _excluded_spans(rule: Rule, text: str) -> list[tuple[int, int]]:
    return [m.span() for p in rule.excludes for m in p.finditer(text)]


def _regex_hits(rule: Rule, prepared: _Text, excluded: list[tuple[int, int]],
                negated_regions: set[int]) -> list[str]:
    negated_spans = [(t.start, t.end)
                     for t, neg in zip(prepared.tokens, prepared.mask, strict=True) if neg]
    hits = []
    for pattern in rule.patterns:
        for m in pattern.finditer(prepared.text):
            s, e = m.span()
            overlaps = any(a < e and s < b for a, b in excluded + negated_spans)
            if not overlaps and e > s and prepared.region_at(s) not in negated_regions:
                hits.append(m.group(0)[:40])  # the text it matched explains more than the regex
                break
    return hits


@dataclass(frozen=True)
class _Meaning:
    similarity: float
    margin: float
    example: str
    strength: float


def _closest_example(rule: Rule, rules: RuleSet, prepared: _Text,
                     skip_sentences: set[int]) -> _Meaning | None:
    """The sentence with the strongest contrastive meaning evidence (see the module docstring);
    sentences in `skip_sentences` (where the rule's thing is negated) are left out."""
    if not rule.examples or not prepared.units:
        return None
    embedder = get_embedder(rules.model)
    units = prepared.vectors(rules.model)
    sims = units @ embedder.encode_cached(rule.examples).T
    contrast = np.full(len(prepared.units), -1.0, dtype=np.float32)
    look_alikes = [rule.counter_examples] + [
        other.examples for other in rules.rules if other.label != rule.label and other.examples]
    for group in look_alikes:
        if group:
            contrast = np.maximum(contrast, (units @ embedder.encode_cached(group).T).max(axis=1))
    best: _Meaning | None = None
    for i, sentences in enumerate(prepared.unit_sentences):
        if sentences <= skip_sentences:
            continue
        similarity = float(sims[i].max())
        margin = similarity - float(contrast[i])
        found = _Meaning(round(similarity, 3), round(margin, 3),
                         rule.examples[int(np.argmax(sims[i]))],
                         rule.semantic_strength(similarity, margin))
        if best is None or (found.strength, found.similarity) > (best.strength, best.similarity):
            best = found
    return best


def evaluate_rule(rule: Rule, prepared: _Text, rules: RuleSet) -> RuleMatch:
    tokens = prepared.tokens
    excluded = _excluded_spans(rule, prepared.text)
    verb_uses = {(m.first, m.last) for m in _verb_uses(rule, tokens, prepared.mask)}
    found = [m for m in find_mentions(rule.terms, tokens, prepared.mask, excluded)
             if (m.first, m.last) not in verb_uses]
    weak = find_mentions(rule.weak_terms, tokens, prepared.mask, excluded)
    negated_mentions = [m for m in found + weak if m.negated]
    negated_regions = {prepared.region_of[m.first] for m in negated_mentions}
    negated_sentences = {prepared.sentence_of[m.first] for m in negated_mentions}

    def counts(m: Mention) -> bool:
        return not m.negated and prepared.region_of[m.first] not in negated_regions

    terms = list(dict.fromkeys(m.term for m in found if counts(m)))
    weak_terms = [t for t in dict.fromkeys(m.term for m in weak if counts(m)) if t not in terms]
    negated = [t for t in dict.fromkeys(m.term for m in found + weak if not counts(m))
               if t not in terms and t not in weak_terms]
    other_senses = list(dict.fromkeys(prepared.tokens[first].text for first, _ in verb_uses))
    patterns = _regex_hits(rule, prepared, excluded, negated_regions)
    strengths = ([rule.keyword_weight] * len(terms) + [rule.weak_keyword_weight] * len(weak_terms)
                 + [rule.regex_weight] * len(patterns))

    meaning = _closest_example(rule, rules, prepared, negated_sentences)
    if meaning is not None:
        strengths.append(meaning.strength)

    score = round(_combine(strengths), 3)
    return RuleMatch(rule=rule.name, label=rule.label, score=score,
                     fired=score >= rule.threshold and score > 0, terms=terms,
                     weak_terms=weak_terms, negated=negated, patterns=patterns,
                     similarity=meaning.similarity if meaning else None,
                     example=meaning.example if meaning else None,
                     margin=meaning.margin if meaning else None, other_senses=other_senses)


def evaluate(text: str, rules: RuleSet) -> list[RuleMatch]:
    """Every rule's evidence on `text`, fired or not (the backtest and the web UI show both)."""
    prepared = _Text.prepare(text or "", rules)
    return [evaluate_rule(rule, prepared, rules) for rule in rules.rules]


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

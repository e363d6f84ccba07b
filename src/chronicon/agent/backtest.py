"""Back-testing rules on labelled descriptions: precision, recall and F1 per label.

A description's predicted labels are every label whose rule fired (not only the strongest), so
a line labelled ["train", "database"] is right only when both fire. `backtest` scores a labelled
corpus (`chronicon rules test`); `backtest_history` runs rules over past analyses in the store
(the web page's back-test), taking the labels decided then as the reference.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..errors import BadInput
from ..store import Store
from .decide import decide, evaluate
from .rules import RuleSet


@dataclass
class LabelScores:
    label: str
    true_positives: int = 0
    false_positives: int = 0
    false_negatives: int = 0

    @property
    def precision(self) -> float:
        found = self.true_positives + self.false_positives
        return self.true_positives / found if found else 1.0

    @property
    def recall(self) -> float:
        wanted = self.true_positives + self.false_negatives
        return self.true_positives / wanted if wanted else 1.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0

    def to_dict(self) -> dict[str, float]:
        return {"precision": round(self.precision, 4), "recall": round(self.recall, 4),
                "f1": round(self.f1, 4)}


@dataclass
class Misclassified:
    line: int
    analysis: str
    expected: list[str]
    predicted: list[str]


@dataclass
class BacktestReport:
    labels: dict[str, LabelScores]
    misclassified: list[Misclassified] = field(default_factory=list)
    total: int = 0

    def to_dict(self) -> dict[str, Any]:
        """`{label: {"precision", "recall", "f1"}}`, the shape `rules test --json` prints."""
        return {label: scores.to_dict() for label, scores in self.labels.items()}

    def details(self) -> dict[str, Any]:
        return {"labels": self.to_dict(), "total": self.total,
                "misclassified": [asdict(m) for m in self.misclassified]}


def backtest(rules: RuleSet, records: list[dict]) -> BacktestReport:
    """Score `rules` on records `{"analysis": str, "labels": [str, ...]}`."""
    labels = list(dict.fromkeys([*rules.labels,
                                 *(lab for r in records for lab in r.get("labels", []))]))
    scores = {label: LabelScores(label) for label in labels}
    report = BacktestReport(scores, total=len(records))
    for number, record in enumerate(records, start=1):
        expected = set(record.get("labels", []))
        predicted = {m.label for m in evaluate(record["analysis"], rules) if m.fired}
        for label in labels:
            if label in predicted and label in expected:
                scores[label].true_positives += 1
            elif label in predicted:
                scores[label].false_positives += 1
            elif label in expected:
                scores[label].false_negatives += 1
        if predicted != expected:
            report.misclassified.append(Misclassified(
                number, record["analysis"], sorted(expected), sorted(predicted)))
    return report


def backtest_history(store: Store, rules: RuleSet, limit: int = 200) -> dict[str, Any]:
    """`rules` over the newest `limit` analyses: each one's label then and now, how many would
    change, and precision/recall against the labels decided then (`agreement`, None when no
    analysis was labelled)."""
    items, labelled = [], []
    for record in store.list_analyses(limit, 0):
        text = str(record.result.get("analysis", ""))
        decision = decide(text, rules)
        items.append({"analysis_id": record.id, "video_filename": record.video_filename,
                      "excerpt": text[:160], "previous_label": record.label,
                      **decision.summary()})
        if record.label:
            labelled.append({"analysis": text,
                             "labels": [] if record.label == "none" else [record.label]})
    changed = sum(1 for i in items
                  if i["previous_label"] is not None and i["previous_label"] != i["label"])
    return {"total": len(items), "changed": changed, "items": items,
            "agreement": backtest(rules, labelled).details() if labelled else None}


def read_corpus(path: Path) -> list[dict]:
    """Labelled descriptions from JSON Lines; a bad line is a `BadInput` naming its number."""
    try:
        lines = Path(path).read_text("utf-8").splitlines()
    except FileNotFoundError:
        raise BadInput(f"corpus file not found: {path}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise BadInput(f"cannot read corpus {path}: {exc}") from None
    records = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise BadInput(f"{path}:{number}: not JSON: {exc.msg}") from None
        ok = (isinstance(record, dict) and isinstance(record.get("analysis"), str)
              and isinstance(record.get("labels", []), list)
              and all(isinstance(x, str) for x in record.get("labels", [])))
        if not ok:
            raise BadInput(f"{path}:{number}: expected "
                           '{"analysis": "...", "labels": ["...", ...]}')
        records.append(record)
    if not records:
        raise BadInput(f"corpus {path} holds no descriptions")
    return records

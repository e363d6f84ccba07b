"""Verification: a rule that fired on the text asks the VLM a yes/no question on the frames.

A rule with `verify: "Is there a train in these frames?"` fires on the description as usual;
then the question is put to the model with the analysis' frames, and P("yes") is read from the
first answer token (`Backend.answer_yes_probability`: the Yes/No token ids' probabilities, not
parsed free text, for backends that have logits). The rule's actions run only if P("yes") >=
`verify_threshold`; otherwise its deliveries are recorded as `suppressed` with the note
`not verified, p=0.12`, never silently dropped. When nobody can answer (no frames: a text-only
`/decide_and_act`; a backend without probabilities) the firing stands and is marked
`unverified` with the reason.

The agent does not import the VLM: the caller hands `decide_and_act` a `Verifier`, usually
`Verifier.for_backend(backend, load_frames)`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

log = logging.getLogger("chronicon.agent")

LOGITS = "first-token probabilities"
PARSED = "parsed yes/no answer"


@dataclass(frozen=True)
class Verifier:
    """Asks one yes/no question about one analysis' frames: `ask(question) -> P(yes)` or None
    (cannot tell). `method` says how the probability is read, for the record."""

    ask: Callable[[str], float | None]
    method: str = LOGITS

    @classmethod
    def for_backend(cls, backend: Any, frames: Callable[[], list[Any]]) -> Verifier:
        """A verifier on `backend.answer_yes_probability`, with the frames loaded on the first
        question only (most descriptions fire no rule that verifies)."""
        loaded: list[list[Any]] = []

        def ask(question: str) -> float | None:
            if not loaded:
                loaded.append(frames())
            if not loaded[0]:
                return None
            return backend.answer_yes_probability(loaded[0], question)

        method = LOGITS if getattr(backend, "yes_probability_from_logits", False) else PARSED
        return cls(ask, method)


@dataclass(frozen=True)
class Verification:
    """The answer to one rule's question: `verified` is None when it could not be asked."""

    question: str
    threshold: float
    p_yes: float | None
    verified: bool | None
    method: str | None
    note: str

    @property
    def answer(self) -> str | None:
        """The model's yes/no: the likelier of the two first tokens."""
        return None if self.p_yes is None else ("yes" if self.p_yes >= 0.5 else "no")

    @property
    def rejected(self) -> bool:
        return self.verified is False

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "answer": self.answer}


def verify(question: str, threshold: float, verifier: Verifier | None) -> Verification:
    """Ask `question`; verified when P(yes) >= `threshold` (exactly: no rounding first)."""
    if verifier is None:
        return Verification(question, threshold, None, None, None,
                            "unverified: no frames to ask about")
    try:
        p_yes = verifier.ask(question)
    except Exception as exc:  # noqa: BLE001 - a failed check must not lose the alert
        log.warning("verification failed: %s", exc)
        return Verification(question, threshold, None, None, verifier.method,
                            f"unverified: the model could not answer ({type(exc).__name__})")
    if p_yes is None:
        return Verification(question, threshold, None, None, verifier.method,
                            "unverified: the model gives no yes/no probability")
    p_yes = min(1.0, max(0.0, float(p_yes)))
    verified = p_yes >= threshold
    note = f"{'verified' if verified else 'not verified'}, p={p_yes:.2f}"
    return Verification(question, threshold, p_yes, verified, verifier.method, note)

"""Reciprocal-rank fusion: one ranking from several, by rank alone (Cormack et al., 2009).

Scores from bm25 and from cosine similarity live on unrelated scales; ranks do not. Each list
gives an item 1 / (k + rank); k = 60 is the paper's constant, and it keeps the top of one list
from drowning an item both lists agree on.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from typing import TypeVar

K = 60

T = TypeVar("T", bound=Hashable)


def reciprocal_rank_fusion(rankings: Sequence[Sequence[T]], k: int = K) -> list[tuple[T, float]]:
    """Items of all `rankings` (each best first) with their fused score, best first; ties keep
    the order in which items were first seen, so the result is deterministic."""
    scores: dict[T, float] = {}
    for ranking in rankings:
        for rank, item in enumerate(ranking, start=1):
            scores[item] = scores.get(item, 0.0) + 1.0 / (k + rank)
    order = {item: i for i, item in enumerate(scores)}
    return sorted(scores.items(), key=lambda pair: (-pair[1], order[pair[0]]))

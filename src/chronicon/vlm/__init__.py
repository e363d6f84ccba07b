"""Vision-language model backends: the catalog, placement decisions and the local backend.

Import `chronicon.vlm.backend` for the interface; `chronicon.vlm.local` (torch + transformers)
is imported only when a local backend is created.
"""

from .backend import Backend, BackendInfo, GenerationParams, GenerationStats, create_backend
from .catalog import DEFAULT_MODEL, PRESETS, resolve_model

__all__ = ["Backend", "BackendInfo", "GenerationParams", "GenerationStats", "create_backend",
           "DEFAULT_MODEL", "PRESETS", "resolve_model"]

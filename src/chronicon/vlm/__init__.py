"""Vision-language model backends: the interface, the registry, the catalog and the runtimes.

`backend.py` is the interface (an ABC with one required method, `generate`) and the factory;
`registry.py` maps names to backend classes, imported lazily so torch loads only for the
transformers runtime; `warm.py` keeps one loaded backend for the server's jobs.
"""

from .backend import (
    Backend,
    BackendInfo,
    GenerationParams,
    GenerationRequest,
    GenerationStats,
    create_backend,
)
from .catalog import DEFAULT_MODEL, PRESETS, resolve_model
from .registry import BACKENDS, backend_class

__all__ = ["Backend", "BackendInfo", "GenerationParams", "GenerationRequest", "GenerationStats",
           "create_backend", "BACKENDS", "backend_class", "DEFAULT_MODEL", "PRESETS",
           "resolve_model"]

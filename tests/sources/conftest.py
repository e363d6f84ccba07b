"""Source fixtures: the tiny model, loaded once for every source test."""

from __future__ import annotations

from pathlib import Path

import pytest

from chronicon.config import Settings
from chronicon.vlm.backend import create_backend


@pytest.fixture(scope="session")
def tiny_backend(tiny_model_dir: Path):
    backend = create_backend(Settings(model=str(tiny_model_dir), device="cpu"))
    backend.load()
    return backend

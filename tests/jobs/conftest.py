"""Job fixtures: the real app on a temp data directory with the tiny model, a real clip."""

from __future__ import annotations

from pathlib import Path

import pytest

from chronicon.config import Settings
from support.media import write_video


@pytest.fixture
def web_settings(tmp_path: Path, tiny_model_dir: Path) -> Settings:
    return Settings(data_dir=tmp_path / "data", model=str(tiny_model_dir), device="cpu",
                    max_upload_mb=1)


@pytest.fixture(scope="session")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 1-second 320x240 H.264 clip."""
    return write_video(tmp_path_factory.mktemp("clips") / "clip.mp4", n_frames=30)

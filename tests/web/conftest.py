"""Web fixtures: the real app on a temp data directory with the tiny model, real test videos."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from chronicon.config import Settings
from chronicon.web import create_app
from support.media import write_video


@pytest.fixture
def web_settings(tmp_path: Path, tiny_model_dir: Path) -> Settings:
    return Settings(data_dir=tmp_path / "data", model=str(tiny_model_dir), device="cpu",
                    max_upload_mb=1)


@pytest.fixture(scope="session")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 1-second 320x240 H.264 clip."""
    return write_video(tmp_path_factory.mktemp("clips") / "clip.mp4", n_frames=30)


@pytest.fixture
def client(web_settings: Settings) -> Iterator[TestClient]:
    """The app with its worker running (lifespan entered)."""
    with TestClient(create_app(web_settings)) as test_client:
        yield test_client


@pytest.fixture
def idle_client(web_settings: Settings) -> Iterator[TestClient]:
    """The app WITHOUT its lifespan: no worker, so submitted jobs stay queued."""
    yield TestClient(create_app(web_settings))

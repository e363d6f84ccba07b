"""Shared fixtures: isolated settings and data directory per test."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from chronicon.config import Settings
from support.media import write_video


def setting_env_names() -> set[str]:
    """Every environment name a setting is read from, taken from `Settings.model_fields` (so a
    new setting is isolated the day it is added): CHRONICON_BACKEND, WEBHOOK_TOKEN, ..."""
    names: set[str] = set()
    for name, info in Settings.model_fields.items():
        alias = info.validation_alias
        choices = getattr(alias, "choices", [alias] if isinstance(alias, str) else [])
        names.update(c for c in choices if isinstance(c, str))
        names.add(name)
    return names


@pytest.fixture(autouse=True)
def _isolated_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No test reads the developer's .env or settings from their shell, writes to their data
    directory, or goes online."""
    monkeypatch.chdir(tmp_path)
    lowered = {n.lower() for n in setting_env_names()}
    for name in list(os.environ):
        if name.lower() in lowered:  # pydantic-settings matches names case-insensitively
            monkeypatch.delenv(name)
    monkeypatch.setenv("CHRONICON_DATA_DIR", str(tmp_path / "data"))
    # Frame indexes stay in memory (tests/video/test_video_index_cache.py turns the disk on).
    monkeypatch.setenv("CHRONICON_INDEX_CACHE", "off")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")


@pytest.fixture(autouse=True)
def _no_unexpected_error_logs(request: pytest.FixtureRequest,
                              caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    """Fail a test during which anything logged at ERROR or above, unless it is marked
    `@pytest.mark.expect_error_logs` (it provokes the failure on purpose). An error log nobody
    expected is a bug the test's own assertions did not look for."""
    yield
    if request.node.get_closest_marker("expect_error_logs"):
        return
    errors = [r for when in ("setup", "call") for r in caplog.get_records(when)
              if r.levelno >= logging.ERROR]
    if errors:
        lines = "\n".join(f"{r.name}: {r.getMessage()[:300]}" for r in errors[:5])
        pytest.fail(f"{len(errors)} unexpected ERROR log record(s) (mark the test "
                    f"expect_error_logs if they are the point):\n{lines}", pytrace=False)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "data")


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random-weight SmolVLM saved to disk once per session; pass it as `model=str(dir)`."""
    from support.tiny_model import build_tiny_smolvlm

    return build_tiny_smolvlm(tmp_path_factory.mktemp("tiny-smolvlm"))


# The real app's settings (tiny model, 1 MB uploads) and a short clip: web and job tests.
@pytest.fixture
def web_settings(tmp_path: Path, tiny_model_dir: Path) -> Settings:
    return Settings(data_dir=tmp_path / "data", model=str(tiny_model_dir), device="cpu",
                    max_upload_mb=1)


@pytest.fixture(scope="session")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 1-second 320x240 H.264 clip."""
    return write_video(tmp_path_factory.mktemp("clips") / "clip.mp4", n_frames=30)

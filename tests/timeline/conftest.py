"""Timeline fixtures: a 3-minute clip whose shots change at known times."""

from __future__ import annotations

from pathlib import Path

import pytest

from support.scene_clips import write_scene_clip


@pytest.fixture(scope="session")
def long_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_scene_clip(tmp_path_factory.mktemp("timeline") / "three-minutes.mp4")

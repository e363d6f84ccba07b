"""The pixel budget, sampling within a span, scene cut times and the warnings list."""

from __future__ import annotations

import json
import resource
import time
from pathlib import Path

import pytest

from chronicon.config import Settings
from chronicon.errors import EXIT_BAD_INPUT, BadParameter, FrameTooLarge
from chronicon.video.probe import DEFAULT_MAX_PIXELS, probe
from chronicon.video.sampling import sample
from chronicon.video.scenes import scene_cuts
from support.awkward_media import gif_bomb
from support.media import write_video

SIZE = (160, 120)


def test_gif_bomb_is_refused_fast_without_decoding(tmp_path: Path) -> None:
    path = gif_bomb(tmp_path / "bomb.gif")
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.perf_counter()
    with pytest.raises(FrameTooLarge) as caught:
        probe(path)
    assert time.perf_counter() - started < 1.0
    # One decoded 16000x16000 frame would take 1 GB: the peak must not move by 100 MB.
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 100_000
    message = str(caught.value)
    assert "16000x16000" in message and "CHRONICON_MAX_PIXELS" in message
    assert (caught.value.exit_code, caught.value.http_status) == (EXIT_BAD_INPUT, 413)


def test_pixel_budget_is_a_setting(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert Settings().max_pixels == DEFAULT_MAX_PIXELS == 64_000_000
    monkeypatch.setenv("CHRONICON_MAX_PIXELS", "1000")
    budget = Settings().max_pixels
    path = write_video(tmp_path / "a.mp4", n_frames=5, size=SIZE)
    with pytest.raises(FrameTooLarge, match="160x120"):
        probe(path, max_pixels=budget)
    assert probe(path, max_pixels=None).frame_count == 5
    assert probe(path, max_pixels=160 * 120).frame_count == 5


def test_warnings_travel_in_to_dict(tmp_path: Path) -> None:
    info = probe(write_video(tmp_path / "a.mp4", n_frames=5, size=SIZE))
    assert info.warnings == []
    assert json.loads(json.dumps(info.to_dict()))["warnings"] == []


@pytest.mark.parametrize("strategy", ["uniform", "motion", "scene"])
def test_sampling_within_a_span(tmp_path: Path, strategy: str) -> None:
    path = write_video(tmp_path / "a.mp4", n_frames=90, fps=30, size=SIZE)
    frames = sample(path, 4, strategy, 64, start=1.0, end=2.0)
    assert len(frames) == 4
    assert all(30 <= f.index < 60 and 1.0 <= f.timestamp < 2.0 for f in frames)
    assert [f.index for f in sample(path, 2, "uniform", 64, start=2.5)] == [78, 86]
    assert [f.index for f in sample(path, 2, "uniform", 64, end=0.2)] == [1, 4]


@pytest.mark.parametrize("span", [{"start": -1.0}, {"start": 2.0, "end": 1.0},
                                  {"start": 5.0}])
def test_bad_span_names_the_parameter(tmp_path: Path, span: dict) -> None:
    path = write_video(tmp_path / "a.mp4", n_frames=30, fps=30, size=SIZE)
    with pytest.raises(BadParameter):
        sample(path, 2, "uniform", 64, **span)


def test_scene_cuts_in_seconds(tmp_path: Path) -> None:
    colours = [(200, 30, 30), (30, 200, 30), (30, 30, 200)]

    def frame(i: int):
        import numpy as np
        img = np.zeros((SIZE[1], SIZE[0], 3), dtype=np.uint8)
        img[...] = colours[i // 30]
        img[:, (i % 30) * 4:(i % 30) * 4 + 8] = 255
        return img

    path = write_video(tmp_path / "cuts.mp4", n_frames=90, fps=30, size=SIZE, frame_fn=frame,
                       options={"g": "30", "sc_threshold": "0"})
    assert scene_cuts(path, probe(path)) == pytest.approx([1.0, 2.0], abs=1e-6)

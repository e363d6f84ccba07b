"""sample(): exact frames (pixel-identical to a full decode), interval arithmetic, parameters."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest

from chronicon.errors import BadParameter, NotAVideo
from chronicon.events import FrameSampled
from chronicon.video import sampling
from chronicon.video.decode import ExactFrameReader, OpenedAhead, to_rgb_image
from chronicon.video.probe import frame_index, probe
from chronicon.video.sampling import (
    MAX_FRAMES,
    MIN_FRAMES,
    STRATEGIES,
    fill_with_uniform,
    sample,
    scene_middles,
    uniform_indices,
)
from support.media import (
    distinct_frame,
    reference_decode,
    write_rotated_video,
    write_vfr_video,
    write_video,
)

SIZE = (160, 120)
NATIVE = max(SIZE)  # resize to the native longest edge: no scaling, so pixels compare exactly

CLIPS = {
    # B-frames (x264 default), short GOPs so that reads really seek between keyframes.
    "bframes.mp4": {"codec": "libx264", "options": {"g": "12", "bf": "3"}},
    "bframes.mov": {"codec": "libx264", "options": {"g": "10"}},
    "bframes.mkv": {"codec": "libx264", "options": {"g": "9"}},
    "vp9.webm": {"codec": "libvpx-vp9", "options": {"g": "15"}},
    "mjpeg.avi": {"codec": "mjpeg", "pix_fmt": "yuvj420p"},
    "hevc.mp4": {"codec": "hevc", "options": {"g": "12"}},
}


def assert_exact(path: Path, frames, reference: list[np.ndarray], rotate_cw: int = 0) -> None:
    for frame in frames:
        expected = np.rot90(reference[frame.index], k=-rotate_cw // 90)
        assert np.array_equal(np.asarray(frame.image), expected), \
            f"{path.name}: frame {frame.index} differs from the full decode"


def test_uniform_indices_are_segment_midpoints() -> None:
    assert uniform_indices(100, 4) == [12, 37, 62, 87]
    assert uniform_indices(8, 8) == list(range(8))
    assert uniform_indices(3, 8) == [0, 1, 2]
    assert uniform_indices(1, 16) == [0]
    for total in (9, 10, 17, 31, 1000, 17_999):
        for n in range(1, 17):
            picks = uniform_indices(total, n)
            assert len(picks) == min(n, total) == len(set(picks))
            assert picks == sorted(picks) and picks[0] >= 0 and picks[-1] < total


@pytest.mark.parametrize("name", sorted(CLIPS))
def test_uniform_frames_are_exactly_the_decoded_frames(tmp_path: Path, name: str) -> None:
    path = write_video(tmp_path / name, n_frames=50, size=SIZE, **CLIPS[name])
    frames = sample(path, n=7, resize=NATIVE)
    assert [f.index for f in frames] == uniform_indices(50, 7)
    assert_exact(path, frames, reference_decode(path))
    index = frame_index(path)
    for frame in frames:
        assert frame.timestamp == pytest.approx(frame.index / 30, abs=0.002)
        assert frame.timestamp == pytest.approx(index.timestamp(frame.index), abs=1e-6)


def test_b_frames_are_really_reordered(tmp_path: Path) -> None:
    # Guards the test above: the stream must decode out of display order for it to mean much.
    path = write_video(tmp_path / "b.mp4", n_frames=30, size=SIZE, options={"bf": "3"})
    with av.open(str(path)) as container:
        pts = [p.pts for p in container.demux(video=0) if p.size]
    assert pts != sorted(pts)


def test_every_frame_read_in_any_order_matches(tmp_path: Path) -> None:
    path = write_video(tmp_path / "g.mkv", n_frames=40, size=SIZE, options={"g": "7"})
    reference = reference_decode(path)
    index = frame_index(path)
    with ExactFrameReader(path, index) as reader:
        for targets in ([39, 0, 20], [5, 6, 7, 30, 31], list(range(40))):
            for k, frame in reader.read(targets):
                assert np.array_equal(frame.to_ndarray(format="rgb24"), reference[k]), k


def test_variable_frame_rate_uses_presentation_times(tmp_path: Path) -> None:
    times = [0, 0.02, 0.04, 0.06, 0.5, 0.9, 1.0, 1.5, 1.52, 2.0]
    path = write_vfr_video(tmp_path / "vfr.mkv", times, size=SIZE)
    frames = sample(path, n=5, resize=NATIVE)
    assert [f.index for f in frames] == uniform_indices(10, 5)
    assert [f.timestamp for f in frames] == pytest.approx([times[f.index] for f in frames])
    assert_exact(path, frames, reference_decode(path))


def test_rotation_is_applied_and_exact(tmp_path: Path) -> None:
    path = write_rotated_video(tmp_path / "phone.mp4", degrees=-90, n_frames=12, size=SIZE)
    frames = sample(path, n=3, resize=NATIVE)
    assert frames[0].image.size == (120, 160)  # upright: portrait
    assert_exact(path, frames, reference_decode(path), rotate_cw=90)


def test_resize_sets_the_longest_edge_and_keeps_aspect(tmp_path: Path) -> None:
    path = write_video(tmp_path / "wide.mp4", n_frames=5, size=(320, 180))
    for resize, expected in ((336, (336, 189)), (64, (64, 36)), (32, (32, 18))):
        frames = sample(path, n=1, resize=resize)
        assert frames[0].image.size == expected
        assert frames[0].image.mode == "RGB"


def test_resized_frame_is_the_right_frame(tmp_path: Path) -> None:
    # Each distinct_frame has its own green level: a downscale keeps it, so the index shows.
    path = write_video(tmp_path / "a.mp4", n_frames=30, size=(320, 240))
    for frame in sample(path, n=8, resize=80):
        green = np.asarray(frame.image)[..., 1]
        expected = distinct_frame(frame.index, (320, 240))[..., 1]
        assert abs(float(np.median(green)) - float(np.median(expected))) < 6


@pytest.mark.parametrize("total", [1, 3])
@pytest.mark.parametrize("strategy", STRATEGIES)
def test_clip_shorter_than_n_gives_each_frame_once(tmp_path: Path, total: int,
                                                   strategy: str) -> None:
    path = write_video(tmp_path / f"short{total}.mp4", n_frames=total, size=SIZE)
    frames = sample(path, n=8, strategy=strategy, resize=NATIVE)
    assert [f.index for f in frames] == list(range(total))
    assert_exact(path, frames, reference_decode(path))


def test_events_one_per_frame(tmp_path: Path) -> None:
    path = write_video(tmp_path / "e.mp4", n_frames=20, size=SIZE)
    events: list = []
    frames = sample(path, n=4, on_event=events.append)
    assert [type(e) for e in events] == [FrameSampled] * 4
    assert [(e.position, e.total, e.index) for e in events] == \
        [(i + 1, 4, f.index) for i, f in enumerate(frames)]


def test_probe_info_can_be_passed_in(tmp_path: Path) -> None:
    path = write_video(tmp_path / "i.mp4", n_frames=20, size=SIZE)
    info = probe(path)
    assert [f.index for f in sample(path, n=3, info=info)] == uniform_indices(20, 3)


@pytest.mark.parametrize("kwargs,flag", [
    ({"n": 0}, "frames"), ({"n": MAX_FRAMES + 1}, "frames"), ({"n": 2.5}, "frames"),
    ({"n": True}, "frames"), ({"strategy": "random"}, "sampling"),
    ({"resize": 31}, "resize"), ({"resize": 4097}, "resize"), ({"resize": "336"}, "resize"),
])
def test_out_of_range_parameters_name_the_flag(tmp_path: Path, kwargs: dict, flag: str) -> None:
    path = write_video(tmp_path / "p.mp4", n_frames=5, size=SIZE)
    with pytest.raises(BadParameter) as caught:
        sample(path, **kwargs)
    assert caught.value.name == flag
    assert str(caught.value).startswith(f"{flag}: ")


def test_parameters_checked_before_the_file(tmp_path: Path) -> None:
    with pytest.raises(BadParameter):
        sample(tmp_path / "missing.mp4", n=MIN_FRAMES - 1)
    (tmp_path / "t.mp4").write_text("text")
    with pytest.raises(NotAVideo):
        sample(tmp_path / "t.mp4")


def test_scene_middles_and_filling() -> None:
    assert scene_middles([20, 50, 75], 100, 8) == [9, 34, 62, 87]
    # More scenes than n: the longest ones.
    assert scene_middles([10, 12, 50, 90], 100, 2) == [30, 69]
    filled = fill_with_uniform([9, 34, 62, 87], 100, 6)
    assert len(filled) == 6 == len(set(filled)) and {9, 34, 62, 87} <= set(filled)
    assert fill_with_uniform([], 10, 3) == uniform_indices(10, 3)
    assert fill_with_uniform([0, 1, 2], 4, 4) == [0, 1, 2, 3]


def test_to_rgb_image_converts_any_pixel_format() -> None:
    rgb = distinct_frame(3, SIZE)
    for fmt in ("yuv420p", "yuv444p", "gray", "nv12"):
        frame = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format=fmt)
        image = to_rgb_image(frame, rotation=0, resize=80)
        assert image.mode == "RGB" and image.size == (80, 60)


def test_readers_side_by_side_read_the_groups_in_any_order_exactly(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Groups of unequal cost (targets near and far from their keyframe), more groups than
    # readers: each reader takes the costliest group left, so a reader goes back and forth.
    path = write_video(tmp_path / "q.mp4", n_frames=96, size=SIZE,
                       options={"g": "12", "bf": "3"})
    info = probe(path)
    picks = [1, 11, 13, 35, 36, 50, 59, 60, 83, 95]
    reference = reference_decode(path)
    for readers in (1, 2, 3):
        monkeypatch.setattr(sampling, "READERS", readers)
        frames = sampling.read_frames(path, info, picks, NATIVE)
        assert [f.index for f in frames] == picks
        assert_exact(path, frames, reference)


def test_containers_opened_ahead_serve_the_readers_exactly(tmp_path: Path) -> None:
    path = write_video(tmp_path / "a.mp4", n_frames=60, size=SIZE,
                       options={"g": "10", "bf": "2"})
    info = probe(path)
    picks = [5, 25, 45]
    with OpenedAhead(path, 2) as opened:
        frames = sampling.read_frames(path, info, picks, NATIVE, opened)
        extra = opened.take()  # none left: opened then and there
        extra.close()
    assert [f.index for f in frames] == picks
    assert_exact(path, frames, reference_decode(path))


def test_a_file_that_does_not_open_ahead_raises_where_it_is_used(tmp_path: Path) -> None:
    # The early opens fail quietly; the open at the time of use says why.
    with OpenedAhead(tmp_path / "missing.mp4", 2) as opened, pytest.raises(FileNotFoundError):
        opened.take()

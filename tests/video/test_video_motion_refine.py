"""Motion refinement: picks land on the very frames that change, on every decoding path."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest

from chronicon.video import motion
from chronicon.video.motion import grey, motion_scores, pick_peaks, window_motion_scores
from chronicon.video.probe import frame_index
from chronicon.video.sampling import sample
from support.media import write_video

SIZE = (160, 120)
START = 30  # the square sits still, then jumps every STEP-th frame (a camera that delivers
STEP = 3    # a new image every third frame, as OpenCV's vtest.avi does)

# One clip per decoding path: window runs (H.264 without and with B-frames, in MP4 and
# Matroska), exact runs from keyframes (VP9, AV1), exact intra-only probes (MJPEG).
CODECS = {
    "h264-p.mp4": {"codec": "libx264", "options": {"bf": "0"}},
    "h264-b.mkv": {"codec": "libx264"},
    "vp9.webm": {"codec": "libvpx-vp9", "options": {"g": "15"}},
    # SVT-AV1's mini-GOPs put hidden frames in the packets; libdav1d decodes them.
    "av1.webm": {"codec": "libsvtav1", "options": {"g": "30", "preset": "12"}},
    "mjpeg.avi": {"codec": "mjpeg", "pix_fmt": "yuvj420p"},
}


def jumping_square_frame(i: int) -> np.ndarray:
    w, h = SIZE
    yy, xx = np.mgrid[0:h, 0:w]
    img = np.stack([(xx * 3) % 256, (yy * 5) % 256, ((xx + yy) * 2) % 256], axis=-1)
    img = img.astype(np.uint8)
    x = 10 + (max(0, i - START) // STEP) * 8
    x %= w - 20
    img[h // 2 - 12:h // 2 + 12, x:x + 20] = 255
    return img


def jumping_square_clip(tmp_path: Path, name: str) -> Path:
    if CODECS[name]["codec"] not in av.codecs_available:
        pytest.skip(f"PyAV without the {CODECS[name]['codec']} encoder")
    return write_video(tmp_path / name, n_frames=120, size=SIZE, **CODECS[name],
                       frame_fn=jumping_square_frame)


@pytest.mark.parametrize("name", sorted(CODECS))
def test_motion_picks_the_frames_that_change(tmp_path: Path, name: str) -> None:
    path = jumping_square_clip(tmp_path, name)
    picks = [f.index for f in sample(path, n=3, strategy="motion", resize=64)]
    # The frames where the square has just jumped, never the still ones between.
    assert all(k >= START and (k - START) % STEP == 0 for k in picks), picks


def test_window_runs_decode_in_matroska(tmp_path: Path) -> None:
    # Matroska seeks only to keyframes and this stream has B-frames: the runs still decode.
    path = write_video(tmp_path / "b.mkv", n_frames=120, size=SIZE, codec="libx264",
                       frame_fn=jumping_square_frame)
    scores = window_motion_scores(path, frame_index(path))
    assert scores is not None
    assert scores[START + 10:].max() > 4 * scores[5:START - 5].max()


def test_a_flash_is_not_motion() -> None:
    # A still scene with a little motion, lit for one frame (two changes: on, then off).
    rng = np.random.default_rng(0)
    greys = {k: np.full((48, 64), 80, np.float32) + rng.normal(0, 0.5, (48, 64))
             .astype(np.float32) for k in range(10)}
    greys[5] = greys[5] + 120
    changes = motion._run_changes(greys)
    assert max(changes.values()) < 1.0, changes


def test_a_camera_with_repeated_frames_is_not_cut() -> None:
    # A new image every third frame (a few grey levels of change), sensor noise between.
    rng = np.random.default_rng(0)
    greys, level = {}, np.full((48, 64), 80.0, np.float32)
    for k in range(12):
        if k % 3 == 0:
            level = level.copy()
            level[10:30, (k * 2) % 40:(k * 2) % 40 + 20] += 20
        greys[k] = level + rng.normal(0, 1.0, level.shape).astype(np.float32)
    changes = motion._run_changes(greys)
    assert all(changes[k] > 2 * changes[k - 1] for k in changes if k % 3 == 0), changes


def test_grey_reads_high_bit_depth_frames() -> None:
    frame = av.VideoFrame.from_ndarray(np.full((96, 128, 3), 200, np.uint8), format="rgb24")
    frame = frame.reformat(format="yuv422p10le")
    small = grey(frame)
    assert small.shape[1] <= 64 and abs(float(small.mean()) - 200) < 8


def test_refined_scores_rank_the_refined_frames_first(tmp_path: Path) -> None:
    path = write_video(tmp_path / "p.mp4", n_frames=120, size=SIZE, codec="libx264",
                       options={"bf": "0"}, frame_fn=jumping_square_frame)
    scores = motion_scores(path, frame_index(path))
    top = np.argsort(-scores)[:5]
    assert all(k >= START and (k - START) % STEP == 0 for k in top), top


def test_frames_without_motion_are_left_to_uniform_picks() -> None:
    # Nothing was seen moving at the zeros: the sampler fills in with uniform picks instead.
    scores = np.array([0.0, 0, 5, 0, 0, 3, 0, 0, 0, 0])
    assert pick_peaks(scores, 4, 1) == [2, 5]


def test_a_measured_frame_outranks_an_interpolated_one() -> None:
    # Probes at 0, 10, 20: frame 9 lies next to a moving probe but was never measured.
    curve = motion._coarse_curve(21, {0: 0.0, 10: 2.0, 20: 1.5})
    assert curve[10] == 2.0 and curve[20] == 1.5
    assert curve[9] < curve[20] and curve[11] < curve[20]


@pytest.mark.parametrize("name", ["vp9.webm", "av1.webm", "mjpeg.avi"])
def test_readers_side_by_side_score_as_one_reader(tmp_path: Path, name: str,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    # Exact runs are shared out among READERS decoders in whatever order they finish: the
    # scores must not depend on it.
    path = jumping_square_clip(tmp_path, name)
    index = frame_index(path)
    side_by_side = motion_scores(path, index)
    monkeypatch.setattr(motion, "READERS", 1)
    assert np.array_equal(side_by_side, motion_scores(path, index))


def test_short_groups_of_pictures_stay_within_the_budget(tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    # A keyframe every 10 frames: the start of every group would cost 9 of each 10 frames.
    path = write_video(tmp_path / "short-gop.webm", n_frames=400, size=SIZE,
                       codec="libvpx-vp9", options={"g": "10"}, frame_fn=jumping_square_frame)
    index = frame_index(path)
    measured = []
    monkeypatch.setattr(motion, "grey", lambda frame: measured.append(1) or grey(frame))
    scores = motion.verified_packet_scores(path, index)
    assert len(measured) <= max(motion.VERIFY_BUDGET * len(index), motion.MIN_VERIFIED)
    top = np.argsort(-scores)[:3]
    assert all(k >= START and (k - START) % STEP == 0 for k in top), top

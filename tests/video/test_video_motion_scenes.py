"""Motion and scene strategies on clips whose events happen at known frames."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest

from chronicon.video import scenes
from chronicon.video.decode import ExactFrameReader
from chronicon.video.motion import motion_scores, pick_peaks
from chronicon.video.probe import frame_index
from chronicon.video.sampling import sample, uniform_indices
from chronicon.video.scenes import find_cuts
from support.media import (
    moving_square_frame,
    reference_decode,
    scene_frame,
    write_video,
    write_video_with_keyframes_at,
)

SIZE = (160, 120)
CODECS = {
    "h264.mp4": {"codec": "libx264"},
    "h264-gop8.mkv": {"codec": "libx264", "options": {"g": "8", "sc_threshold": "0"}},
    "vp9.webm": {"codec": "libvpx-vp9"},
    "mjpeg.avi": {"codec": "mjpeg", "pix_fmt": "yuvj420p"},
}

MOVE_START = 45  # the square sits still for 1.5 s, then moves


@pytest.mark.parametrize("name", sorted(CODECS))
def test_motion_frames_come_after_the_movement_starts(tmp_path: Path, name: str) -> None:
    path = write_video(tmp_path / name, n_frames=90, size=SIZE, **CODECS[name],
                       frame_fn=lambda i: moving_square_frame(i, MOVE_START, SIZE))
    frames = sample(path, n=3, strategy="motion", resize=96)
    indices = [f.index for f in frames]
    assert len(indices) == 3 == len(set(indices)) and indices == sorted(indices)
    assert all(k >= MOVE_START for k in indices), indices
    # Kept apart: at least half a segment (90 / (2*3) = 15 frames) between picks.
    assert min(np.diff(indices)) >= 15
    assert [f.index for f in sample(path, n=3, strategy="motion", resize=96)] == indices


def test_motion_scores_rise_where_the_movement_is(tmp_path: Path) -> None:
    path = write_video(tmp_path / "m.mp4", n_frames=90, size=SIZE,
                       frame_fn=lambda i: moving_square_frame(i, MOVE_START, SIZE))
    scores = motion_scores(path, frame_index(path))
    assert scores.shape == (90,)
    assert scores[MOVE_START + 10:].min() > 2 * scores[5:MOVE_START - 10].max()


def test_still_clip_falls_back_to_uniform(tmp_path: Path) -> None:
    path = write_video(tmp_path / "still.mp4", n_frames=60, size=SIZE,
                       frame_fn=lambda i: moving_square_frame(0, 10_000, SIZE))
    assert [f.index for f in sample(path, n=4, strategy="motion")] == uniform_indices(60, 4)


def test_pick_peaks_is_greedy_spread_and_stable() -> None:
    scores = np.array([0, 9, 8, 7, 0, 0, 5, 0, 0, 9], dtype=float)
    assert pick_peaks(scores, 3, min_gap=3) == [1, 6, 9]
    assert pick_peaks(scores, 2, min_gap=1) == [1, 9]  # tie: the earlier frame first
    assert pick_peaks(np.ones(10), 3, min_gap=2) == []  # flat: nothing stands out


CUTS = [23, 61, 97]


@pytest.mark.parametrize("name", sorted(CODECS))
def test_hard_cuts_found_within_one_frame(tmp_path: Path, name: str) -> None:
    path = write_video(tmp_path / name, n_frames=120, size=SIZE, **CODECS[name],
                       frame_fn=lambda i: scene_frame(i, CUTS, SIZE))
    found = find_cuts(path, frame_index(path))
    assert len(found) == len(CUTS), found
    assert all(abs(f - c) <= 1 for f, c in zip(found, CUTS, strict=True)), found


def test_cuts_inside_a_long_group_of_pictures(tmp_path: Path, monkeypatch) -> None:
    # Fewer anchors than cuts between keyframes: the gap fillers must still find them.
    monkeypatch.setattr(scenes, "MAX_ANCHOR_GAP", 30)
    cuts = [40, 80, 115]
    path = write_video(tmp_path / "long.mkv", n_frames=150, size=SIZE,
                       options={"g": "300", "sc_threshold": "0"},
                       frame_fn=lambda i: scene_frame(i, cuts, SIZE))
    assert frame_index(path).keyframe.sum() == 1
    assert find_cuts(path, frame_index(path)) == cuts


def test_no_cuts_in_a_single_shot(tmp_path: Path) -> None:
    path = write_video(tmp_path / "shot.mp4", n_frames=60, size=SIZE,
                       frame_fn=lambda i: moving_square_frame(i, 0, SIZE))
    assert find_cuts(path, frame_index(path)) == []


def test_scene_sampler_takes_the_middle_of_each_scene(tmp_path: Path) -> None:
    path = write_video(tmp_path / "s.mp4", n_frames=120, size=SIZE,
                       frame_fn=lambda i: scene_frame(i, CUTS, SIZE))
    frames = sample(path, n=4, strategy="scene", resize=64)
    assert [f.index for f in frames] == [11, 41, 78, 108]
    # One per scene: the colours of the four frames are the four scene colours.
    colours = {tuple(np.asarray(f.image)[60 // 2, 5] // 40) for f in frames}
    assert len(colours) == 4


def test_scene_sampler_fills_with_uniform_picks(tmp_path: Path) -> None:
    path = write_video(tmp_path / "s.mp4", n_frames=120, size=SIZE,
                       frame_fn=lambda i: scene_frame(i, CUTS, SIZE))
    indices = [f.index for f in sample(path, n=8, strategy="scene", resize=64)]
    assert len(indices) == 8 == len(set(indices)) and indices == sorted(indices)
    assert {11, 41, 78, 108} <= set(indices)


def test_scene_sampler_with_more_scenes_than_frames(tmp_path: Path) -> None:
    path = write_video(tmp_path / "s.mp4", n_frames=120, size=SIZE,
                       frame_fn=lambda i: scene_frame(i, CUTS, SIZE))
    # Scenes: 23, 38, 36, 23 frames long; the two longest are [23, 61) and [61, 97).
    assert [f.index for f in sample(path, n=2, strategy="scene", resize=64)] == [41, 78]


def test_cut_on_an_early_keyframe_is_taken(tmp_path: Path) -> None:
    cuts = [75, 140]
    path = write_video_with_keyframes_at(tmp_path / "k.mp4", 200, cuts,
                                         frame_fn=lambda i: scene_frame(i, cuts, SIZE))
    index = frame_index(path)
    assert np.flatnonzero(index.keyframe).tolist() == [0, 30, 60, 75, 105, 135, 140, 170]
    assert find_cuts(path, index) == cuts


def test_cut_on_a_regular_keyframe_is_still_confirmed(tmp_path: Path) -> None:
    # A cut that falls exactly on a scheduled keyframe is pinned by decoding, and a scene that
    # changes inside a GOP is found too.
    cuts = [60, 100]
    path = write_video(tmp_path / "r.mp4", n_frames=150, size=SIZE,
                       options={"g": "30", "sc_threshold": "0"},
                       frame_fn=lambda i: scene_frame(i, cuts, SIZE))
    assert find_cuts(path, frame_index(path)) == cuts


def test_scene_representative_prefers_a_central_keyframe(tmp_path: Path) -> None:
    cuts = [75, 140]
    path = write_video(tmp_path / "g.mp4", n_frames=200, size=SIZE,
                       options={"g": "30", "sc_threshold": "0"},
                       frame_fn=lambda i: scene_frame(i, cuts, SIZE))
    # Scenes [0,75) [75,140) [140,200): middles 37, 107, 169; keyframes every 30 frames.
    assert [f.index for f in sample(path, n=3, strategy="scene")] == [30, 120, 180]


def test_cut_between_shots_of_identical_colours(tmp_path: Path) -> None:
    # Mirror images: the same colour histogram, different content. The cut lies inside a
    # group of pictures, and a moving bar keeps neighbouring frames from being identical.
    def frame(i: int) -> np.ndarray:
        ramp = np.linspace(0, 255, SIZE[0]).astype(np.uint8)
        img = np.repeat(np.repeat(ramp[None, :, None], SIZE[1], 0), 3, 2)
        img = img if i < 45 else img[:, ::-1]
        img[(i * 2) % SIZE[1]:(i * 2) % SIZE[1] + 4] = 128
        return np.ascontiguousarray(img)

    path = write_video(tmp_path / "mirror.mp4", n_frames=90, size=SIZE, frame_fn=frame,
                       options={"g": "30", "sc_threshold": "0"})
    assert find_cuts(path, frame_index(path)) == [45]


def test_more_scenes_than_frames_covers_the_clip() -> None:
    # Ten scenes; the three longest are at the start. One pick per quarter of the clip.
    cuts = [40, 80, 120, 130, 140, 150, 160, 170, 180]
    picks = scenes_middles_of(cuts, 200, 4)
    assert [p * 4 // 200 for p in picks] == [0, 1, 2, 3]


def test_more_scenes_than_frames_prefers_variety() -> None:
    # Six equal scenes alternating between two looks (two cameras in turn): two picks show
    # both cameras, not the same one twice.
    a, b = np.eye(3, 16), np.roll(np.eye(3, 16), 8, axis=1)
    looks = {k * 10: (a if k % 2 == 0 else b) for k in range(6)}
    picks = scenes_middles_of([10, 20, 30, 40, 50], 60, 2, looks)
    assert [looks[p // 10 * 10] is a for p in picks] == [True, False]


def scenes_middles_of(cuts: list[int], total: int, n: int, looks: dict | None = None) -> list[int]:
    from chronicon.video.sampling import scene_middles

    return scene_middles(cuts, total, n, None, looks)


def test_a_cut_is_not_motion(tmp_path: Path) -> None:
    # Two still shots joined by a cut at 40; the square moves only from frame 70 on.
    def frame(i: int) -> np.ndarray:
        img = moving_square_frame(i, 70, SIZE)
        return img if i < 40 else np.ascontiguousarray(255 - img[::-1])

    path = write_video(tmp_path / "cut.mp4", n_frames=120, size=SIZE, frame_fn=frame)
    picks = [f.index for f in sample(path, n=2, strategy="motion", resize=64)]
    assert picks[-1] >= 70 and all(abs(k - 40) > 3 for k in picks), picks
    scores = motion_scores(path, frame_index(path))
    assert int(np.argmax(scores)) >= 70


VTEST = Path("/usr/share/doc/opencv-doc/examples/data/vtest.avi")


@pytest.mark.slow
@pytest.mark.skipif(not VTEST.exists(), reason="needs opencv-doc")
def test_motion_on_a_fixed_camera_beats_uniform_by_far() -> None:
    # OpenCV's vtest.avi: pedestrians before a fixed camera, 250-frame groups of pictures.
    import av

    with av.open(str(VTEST)) as container:
        greys = [f.reformat(width=64, height=48, format="gray").to_ndarray().astype(float)
                 for f in container.decode(video=0)]
    change = np.array([0.0] + [np.abs(b - a).mean() for a, b in zip(greys, greys[1:],
                                                                     strict=False)])
    percentile = (np.argsort(np.argsort(change)) + 1) / len(change) * 100
    picks = [f.index for f in sample(VTEST, n=8, strategy="motion", resize=64)]
    assert np.mean(percentile[picks]) >= 80, picks


I_FRAME_ENCODERS = {
    "libx264": {"x264-params": "keyint=250:min-keyint=60:open-gop=1"},
    # x265's plain I-frames are not found by the HEVC decoder's NONINTRA skipping: keyframes
    # only there, and the search still finds the cuts.
    "libx265": {"x265-params": "keyint=250:min-keyint=60:open-gop=1:log-level=none"},
}


def write_open_gop_with_i_frames_at(path: Path, n_frames: int, i_frames: list[int],
                                    frame_fn, encoder: str = "libx264") -> Path:
    """H.264/HEVC in an open group of pictures, with I-frames (not IDR frames) at `i_frames`:
    how x264 codes a scene change it finds soon after a keyframe."""
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream(encoder, rate=30)
        stream.width, stream.height, stream.pix_fmt = SIZE[0], SIZE[1], "yuv420p"
        stream.options = I_FRAME_ENCODERS[encoder]
        for i in range(n_frames):
            frame = av.VideoFrame.from_ndarray(frame_fn(i), format="rgb24")
            if i in i_frames:
                frame.pict_type = av.video.frame.PictureType.I
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return path


@pytest.mark.parametrize("encoder", sorted(I_FRAME_ENCODERS))
def test_intra_pass_decodes_i_frames_and_heads_exactly(tmp_path: Path, encoder: str) -> None:
    # Every frame the intra pass yields (intra frames, keyframes or not, and the frame after
    # each keyframe) equals the full decode's, and the reader reads exactly afterwards.
    cuts = [40, 52]
    path = write_open_gop_with_i_frames_at(tmp_path / "i.mp4", 90, cuts,
                                           lambda i: scene_frame(i, cuts, SIZE), encoder)
    index = frame_index(path)
    reference = reference_decode(path)
    with ExactFrameReader(path, index) as reader:
        got = list(reader.intra_frames(head=1))
        keyframes = np.flatnonzero(index.keyframe).tolist()
        if encoder == "libx264":
            assert [k for k, _, intra in got if intra] == [0, *cuts]
            heads = [k for k, _, intra in got if not intra]  # the first frame after each
            assert len(heads) == len(keyframes), (heads, keyframes)
        else:
            assert [k for k, _, _ in got] == keyframes
        for k, frame, _ in got:
            assert np.array_equal(frame.to_ndarray(format="rgb24"), reference[k]), k
        for k, frame in reader.read([5, 45, 80]):  # skip_frame was restored
            assert np.array_equal(frame.to_ndarray(format="rgb24"), reference[k]), k
    assert find_cuts(path, index) == cuts


def test_encoder_keyframe_in_fast_change_is_not_a_cut(tmp_path: Path) -> None:
    # A shot whose colours keep changing fast (a strobe, an explosion): encoders put a
    # keyframe in it, its ends differ in colour, yet no pair of neighbours differs as a cut.
    def frame(i: int) -> np.ndarray:
        img = np.empty((SIZE[1], SIZE[0], 3), dtype=np.uint8)
        img[:] = [128 + 100 * np.sin(0.3 * i + phase) for phase in (0, 2, 4)]
        x = (i * 3) % (SIZE[0] - 12)
        img[10:22, x:x + 12] = 0
        return img

    path = write_video_with_keyframes_at(tmp_path / "strobe.mp4", 120, [70], frame_fn=frame,
                                         gop=250)
    index = frame_index(path)
    assert index.keyframe[70] and index.keyframe.sum() > 2  # x264 adds scene-change keyframes
    assert find_cuts(path, index) == []


def test_a_stray_last_frame_is_no_scene(tmp_path: Path) -> None:
    cuts = [40, 88]  # the last scene would be two frames long
    path = write_video(tmp_path / "end.mp4", n_frames=90, size=SIZE,
                       frame_fn=lambda i: scene_frame(i, cuts, SIZE))
    assert find_cuts(path, frame_index(path)) == [40]


def test_a_cut_coded_afresh_before_an_encoder_cut_is_found(tmp_path: Path) -> None:
    # Keyframes at 0 and at the cut at 100 only (scene-change detection off): the cut at 60
    # is coded as a predicted frame far bigger than those around it, so the span before the
    # keyframe is searched instead of taking the keyframe alone.
    cuts = [60, 100]
    textures = [np.kron(np.random.default_rng(seed).integers(0, 256, (SIZE[1] // 8, 40, 3)),
                        np.ones((8, 8, 1))).astype(np.uint8) // (seed + 1) for seed in range(3)]

    def frame(i: int) -> np.ndarray:  # blocky noise, its own per shot, panning 1 px a frame
        scene = sum(1 for c in cuts if i >= c)
        return np.ascontiguousarray(textures[scene][:, i % 150:i % 150 + SIZE[0]])

    path = tmp_path / "fresh.mp4"
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("libx264", rate=30)
        stream.width, stream.height, stream.pix_fmt = SIZE[0], SIZE[1], "yuv420p"
        stream.options = {"g": "250", "sc_threshold": "0", "forced-idr": "1"}
        for i in range(140):
            video_frame = av.VideoFrame.from_ndarray(frame(i), format="rgb24")
            if i == 100:
                video_frame.pict_type = av.video.frame.PictureType.I
            container.mux(stream.encode(video_frame))
        container.mux(stream.encode(None))
    index = frame_index(path)
    assert np.flatnonzero(index.keyframe).tolist() == [0, 100]
    assert find_cuts(path, index) == cuts

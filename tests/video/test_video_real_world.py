"""Files as people really have them (section 1 of issue 11): each is read exactly (frame k is
the k-th frame a full decode yields, pixel for pixel) or, where data is damaged, every frame
that differs from a full decode carries a warning."""

from __future__ import annotations

import contextlib
import hashlib
from pathlib import Path

import av
import numpy as np
import pytest

from chronicon.video.decode import SKIP_NONREF_CODECS, ExactFrameReader
from chronicon.video.frame_index import CALIBRATION_FRAMES
from chronicon.video.probe import frame_index, probe
from chronicon.video.sampling import sample
from support.awkward_media import (
    cut_transport_stream,
    cut_with_stream_copy,
    damage_packets,
    has_encoder,
    remux,
    with_duplicate_timestamps,
)
from support.media import write_video

OPENCV_DATA = Path("/usr/share/doc/opencv-doc/examples/data")
SIZE = (160, 120)
H264 = {"codec": "libx264", "options": {"g": "15", "bf": "2"}}

needs_ffmpeg = pytest.mark.skipif(not has_encoder("libx264"), reason="needs the ffmpeg CLI")


def _digest(frame: av.VideoFrame) -> str:
    return hashlib.md5(frame.to_ndarray().tobytes()).hexdigest()


def full_decode(path: Path) -> list[tuple[int | None, str]]:
    """(pts, pixel digest) of every frame decoding the whole stream yields, in order; a packet
    that fails to decode is skipped, as players do."""
    out = []
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        for packet in container.demux(stream):
            with contextlib.suppress(av.FFmpegError):
                out += [(f.pts, _digest(f)) for f in stream.decode(packet)]
    return out


def assert_exact(path: Path) -> list[str]:
    """Every frame, read in one pass and one at a time in shuffled order, is the full decode's
    frame with the same number. Returns the probe's warnings."""
    reference = [digest for _, digest in full_decode(path)]
    info = probe(path)
    assert info.frame_count == len(reference)
    index = frame_index(path)
    with ExactFrameReader(path, index) as reader:
        assert [_digest(f) for _, f in reader.read(range(len(index)))] == reference
    order = np.random.default_rng(0).permutation(len(index))[:12]
    for k in order:
        with ExactFrameReader(path, index) as reader:
            [(_, frame)] = reader.read([int(k)])
            assert _digest(frame) == reference[k], f"frame {k}"
    return info.warnings


@pytest.fixture(scope="module")
def h264_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_video(tmp_path_factory.mktemp("src") / "src.mp4", n_frames=90, fps=30,
                       size=SIZE, **H264)


@needs_ffmpeg
def test_stream_copy_cut_with_an_edit_list(h264_clip: Path, tmp_path: Path) -> None:
    path = cut_with_stream_copy(h264_clip, tmp_path / "cut.mp4", start=1.1)
    warnings = assert_exact(path)
    assert any("edit list" in w for w in warnings)


@needs_ffmpeg
def test_transport_stream_cut_mid_gop(h264_clip: Path, tmp_path: Path) -> None:
    path = cut_transport_stream(h264_clip, tmp_path / "cut.ts", fraction=0.4)
    warnings = assert_exact(path)
    assert any("mid-GOP" in w for w in warnings)


@needs_ffmpeg
def test_transport_stream_cut_far_from_its_next_keyframe(tmp_path: Path) -> None:
    # Nothing decodes for longer than the calibration waits for frames in order: it waits
    # for the first frame (up to CALIBRATION_PACKETS packets) before it decides anything.
    source = write_video(tmp_path / "src.mp4", n_frames=240, size=SIZE,
                         options={"g": "120", "bf": "2"})
    path = cut_transport_stream(source, tmp_path / "cut.ts", fraction=0.1)
    with av.open(str(path)) as container:
        keys = [p.is_keyframe for p in container.demux(video=0) if p.size]
    assert keys.index(True) > 2 * CALIBRATION_FRAMES
    warnings = assert_exact(path)
    assert any("mid-GOP" in w for w in warnings)


@needs_ffmpeg
def test_mp4_starting_on_non_keyframes(h264_clip: Path, tmp_path: Path) -> None:
    cut = cut_transport_stream(h264_clip, tmp_path / "cut.ts", fraction=0.4)
    assert_exact(remux(cut, tmp_path / "cut.mp4"))


@pytest.mark.skipif(not has_encoder("libsvtav1"), reason="ffmpeg without libsvtav1")
@pytest.mark.parametrize("suffix", [".mp4", ".webm"])
def test_av1(h264_clip: Path, tmp_path: Path, suffix: str) -> None:
    from support.awkward_media import ffmpeg

    path = tmp_path / f"av1{suffix}"
    ffmpeg("-i", str(h264_clip), "-t", "2", "-c:v", "libsvtav1", "-g", "20", str(path))
    assert_exact(path)


@pytest.mark.parametrize("codec", sorted(SKIP_NONREF_CODECS))
def test_skipping_non_reference_frames_is_exact_for_each_allowed_codec(tmp_path: Path,
                                                                        codec: str) -> None:
    encoder = {"h264": "libx264", "hevc": "libx265"}.get(codec, codec)
    options = {"g": "12", "bf": "2"} if encoder != "libx265" else {
        "x265-params": "keyint=12:bframes=2:log-level=none"}
    path = write_video(tmp_path / f"{codec}.mkv", n_frames=40, size=SIZE, codec=encoder,
                       options=options)
    assert_exact(path)


@needs_ffmpeg
def test_duplicate_timestamps(h264_clip: Path, tmp_path: Path) -> None:
    path = with_duplicate_timestamps(h264_clip, tmp_path / "dup.mp4")
    warnings = assert_exact(path)
    assert any("timestamp" in w for w in warnings)


@pytest.mark.skipif(not (OPENCV_DATA / "Megamind.avi").exists(), reason="needs opencv-doc")
def test_xvid_avi_with_packed_b_frames() -> None:
    warnings = assert_exact(OPENCV_DATA / "Megamind.avi")
    assert any("packed B-frames" in w for w in warnings)


@pytest.mark.skipif(not (OPENCV_DATA / "tree.avi").exists(), reason="needs opencv-doc")
def test_avi_with_dropped_frames() -> None:
    warnings = assert_exact(OPENCV_DATA / "tree.avi")
    assert "the header lists 444 frames, 68 present" in warnings


def test_damaged_mjpeg_frame_is_named_and_the_rest_exact(tmp_path: Path) -> None:
    source = write_video(tmp_path / "a.avi", n_frames=20, size=SIZE, codec="mjpeg",
                         pix_fmt="yuvj420p")
    path = damage_packets(source, tmp_path / "bad.avi", fraction=0.01, only=10)
    reference = dict(full_decode(path))
    assert len(reference) == 19  # the damaged frame does not decode
    index = frame_index(path)
    assert len(index) == 20
    with ExactFrameReader(path, index) as reader:
        for k, frame in reader.read(range(20)):
            if k != 10:
                assert _digest(frame) == reference[int(index.pts[k])]
        assert list(reader.warnings) == [10]
        assert "cannot be decoded" in reader.warnings[10]
    frames = sample(path, 3, "uniform", 64, start=0.3, end=0.4)  # frames 9, 10, 11
    assert [f.index for f in frames if f.warnings] == [10]


def test_damaged_vp9_frames_carry_warnings(tmp_path: Path) -> None:
    source = write_video(tmp_path / "a.webm", n_frames=30, size=SIZE, codec="libvpx-vp9",
                         options={"g": "30"})
    path = damage_packets(source, tmp_path / "bad.webm", fraction=0.01)
    reference = dict(full_decode(path))
    index = frame_index(path)
    with ExactFrameReader(path, index) as reader:
        differ = [k for k, frame in reader.read(range(len(index)))
                  if reference.get(int(index.pts[k])) != _digest(frame)]
        assert reader.warnings, "damage must be reported"
        assert set(differ) <= set(reader.warnings)

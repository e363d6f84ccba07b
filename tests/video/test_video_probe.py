"""probe(): facts from real generated files, and one specific error per way a file is unusable."""

from __future__ import annotations

import json
from pathlib import Path

import av
import pytest

from chronicon.errors import (
    EXIT_BAD_INPUT,
    AudioOnly,
    CorruptVideo,
    EmptyVideo,
    NotAVideo,
    UnreadableVideo,
    UnsupportedCodec,
    VideoNotFound,
)
from chronicon.video.probe import VideoInfo, probe
from support.media import (
    truncate,
    write_audio_only,
    write_rotated_video,
    write_unknown_codec_video,
    write_vfr_video,
    write_video,
    write_video_with_audio,
    write_video_without_frames,
)

SIZE = (160, 120)

FORMATS = {
    # name: (writer kwargs, expected codec, expected frame_count_source)
    "h264.mp4": ({"codec": "libx264"}, "h264", "header"),
    "h264.mov": ({"codec": "libx264"}, "h264", "header"),
    "h264.mkv": ({"codec": "libx264"}, "h264", "packets"),
    "vp9.webm": ({"codec": "libvpx-vp9"}, "vp9", "packets"),
    "mjpeg.avi": ({"codec": "mjpeg", "pix_fmt": "yuvj420p"}, "mjpeg", "header"),
}


@pytest.mark.parametrize("name", sorted(FORMATS))
def test_probe_reads_each_container(tmp_path: Path, name: str) -> None:
    kwargs, codec, source = FORMATS[name]
    path = write_video(tmp_path / name, n_frames=45, fps=30, size=SIZE, **kwargs)
    info = probe(path)
    assert (info.codec, info.width, info.height, info.rotation) == (codec, 160, 120, 0)
    # Matroska/WebM headers hold no frame count: it must come from the packets, exactly.
    assert (info.frame_count, info.frame_count_source) == (45, source)
    assert info.fps == pytest.approx(30, rel=0.01)
    assert info.duration == pytest.approx(1.5, abs=0.01)
    assert not info.variable_fps and not info.has_audio
    assert info.bit_rate and info.bit_rate > 0
    assert json.loads(json.dumps(info.to_dict()))["frame_count"] == 45


def test_probe_counts_what_a_full_decode_gives(tmp_path: Path) -> None:
    path = write_video(tmp_path / "b.mkv", n_frames=37, size=SIZE)
    with av.open(str(path)) as container:
        decoded = sum(1 for _ in container.decode(video=0))
    assert probe(path).frame_count == decoded == 37


def test_rotation_from_display_matrix(tmp_path: Path) -> None:
    # FFmpeg's display matrix angle is counter-clockwise; VideoInfo reports the clockwise turn.
    info = probe(write_rotated_video(tmp_path / "phone.mp4", degrees=-90, size=SIZE))
    assert info.rotation == 90
    assert (info.display_width, info.display_height) == (120, 160)
    assert probe(write_rotated_video(tmp_path / "r180.mp4", degrees=180)).rotation == 180


def test_variable_frame_rate_is_detected(tmp_path: Path) -> None:
    times = [0, 0.04, 0.08, 0.5, 0.54, 1.0, 1.2, 1.6]
    info = probe(write_vfr_video(tmp_path / "vfr.mkv", times))
    assert info.variable_fps
    assert info.frame_count == len(times)
    assert info.fps == pytest.approx((len(times) - 1) / 1.6, rel=0.01)
    assert not probe(write_video(tmp_path / "cfr.mkv", n_frames=10, size=SIZE)).variable_fps


def test_audio_is_reported(tmp_path: Path) -> None:
    info = probe(write_video_with_audio(tmp_path / "av.mp4", n_frames=30))
    assert info.has_audio and info.frame_count == 30


def test_info_is_frozen(tmp_path: Path) -> None:
    info = probe(write_video(tmp_path / "a.mp4", n_frames=3, size=SIZE))
    assert isinstance(info, VideoInfo)
    with pytest.raises(AttributeError):
        info.fps = 1.0  # type: ignore[misc]


# ---- one error per cause ----------------------------------------------------------------------


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(VideoNotFound, match="nowhere.mp4: no such file"):
        probe(tmp_path / "nowhere.mp4")


def test_directory_is_unreadable(tmp_path: Path) -> None:
    (tmp_path / "clip.mp4").mkdir()
    with pytest.raises(UnreadableVideo, match="clip.mp4: is a directory"):
        probe(tmp_path / "clip.mp4")


def test_zero_bytes(tmp_path: Path) -> None:
    (tmp_path / "zero.mp4").write_bytes(b"")
    with pytest.raises(NotAVideo, match=r"zero.mp4: the file is empty \(0 bytes\)"):
        probe(tmp_path / "zero.mp4")


def test_text_named_mp4(tmp_path: Path) -> None:
    (tmp_path / "notes.mp4").write_text("these are not the frames you are looking for\n" * 20)
    with pytest.raises(NotAVideo, match="notes.mp4: not a video") as caught:
        probe(tmp_path / "notes.mp4")
    assert caught.value.exit_code == EXIT_BAD_INPUT
    assert "\n" not in str(caught.value)


def test_audio_only(tmp_path: Path) -> None:
    with pytest.raises(AudioOnly, match="song.mp4: audio only"):
        probe(write_audio_only(tmp_path / "song.mp4"))


def test_video_stream_without_frames(tmp_path: Path) -> None:
    with pytest.raises(EmptyVideo, match="hollow.mkv: the video stream holds no"):
        probe(write_video_without_frames(tmp_path / "hollow.mkv"))


def test_truncated_mp4_says_nothing_could_be_read(tmp_path: Path) -> None:
    # MP4 keeps its index (moov) at the end: cutting the second half leaves nothing playable.
    path = truncate(write_video(tmp_path / "cut.mp4", n_frames=60, size=SIZE))
    with pytest.raises(CorruptVideo, match="cut.mp4: damaged or truncated, nothing could be read"):
        probe(path)


@pytest.mark.parametrize("name,codec", [("cut.mkv", "libx264"), ("cut.webm", "libvpx-vp9")])
def test_truncated_matroska_says_how_far(tmp_path: Path, name: str, codec: str) -> None:
    path = truncate(write_video(tmp_path / name, n_frames=60, size=SIZE, codec=codec))
    with pytest.raises(CorruptVideo, match=rf"{name}: truncated, readable up to 0\.\d+ s "
                                           r"\(\d+ frames\) of 2\.00 s"):
        probe(path)


def test_truncated_avi_compares_with_header(tmp_path: Path) -> None:
    path = truncate(write_video(tmp_path / "cut.avi", n_frames=60, size=SIZE, codec="mjpeg",
                                pix_fmt="yuvj420p"))
    with pytest.raises(CorruptVideo, match=r"cut.avi: truncated, .*the header lists 60 frames"):
        probe(path)


def test_truncated_file_with_audio_is_still_caught(tmp_path: Path) -> None:
    path = truncate(write_video_with_audio(tmp_path / "cut.mkv", n_frames=60))
    with pytest.raises(CorruptVideo, match="truncated"):
        probe(path)


def test_unsupported_codec(tmp_path: Path) -> None:
    with pytest.raises(UnsupportedCodec, match="odd.mkv: unsupported video codec"):
        probe(write_unknown_codec_video(tmp_path / "odd.mkv"))

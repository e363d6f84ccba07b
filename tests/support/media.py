"""Test videos, generated on demand with PyAV (never committed).

`write_video` is the one writer every test uses; `distinct_frame` draws frames that differ
enough that a pixel comparison tells which frame index a decoder returned.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

FrameFn = Callable[[int], np.ndarray]


def distinct_frame(i: int, size: tuple[int, int] = (320, 240)) -> np.ndarray:
    """An RGB frame whose content identifies `i`: a gradient plus a bar at a position set by i."""
    w, h = size
    img = np.zeros((h, w, 3), dtype=np.uint8)
    img[..., 0] = (np.arange(w)[None, :] * 255 // max(w - 1, 1)).astype(np.uint8)
    img[..., 1] = (i * 37) % 256
    img[..., 2] = (np.arange(h)[:, None] * 255 // max(h - 1, 1)).astype(np.uint8)
    x = (i * 7) % max(w - 16, 1)
    img[:, x:x + 16, :] = 255
    return img


def _add_video_stream(container: av.container.OutputContainer, codec: str, fps: int,
                      size: tuple[int, int],
                      pix_fmt: str = "yuv420p") -> av.video.stream.VideoStream:
    stream = container.add_stream(codec, rate=Fraction(fps))
    stream.width, stream.height = size
    stream.pix_fmt = pix_fmt
    return stream


def _rgb_frames(frame_fn: FrameFn, n_frames: int) -> Iterator[av.VideoFrame]:
    for i in range(n_frames):
        yield av.VideoFrame.from_ndarray(frame_fn(i), format="rgb24")


def _encode_all(container: av.container.OutputContainer, stream: av.stream.Stream,
                frames: Iterable[av.frame.Frame]) -> None:
    """Encode and mux every frame, then flush the encoder (the empty encode())."""
    for frame in frames:
        for packet in stream.encode(frame):
            container.mux(packet)
    for packet in stream.encode():
        container.mux(packet)


def write_video(
    path: Path,
    n_frames: int = 30,
    fps: int = 30,
    size: tuple[int, int] = (320, 240),
    codec: str = "libx264",
    pix_fmt: str = "yuv420p",
    frame_fn: FrameFn | None = None,
    options: dict[str, str] | None = None,
    stream_metadata: dict[str, str] | None = None,
) -> Path:
    """Encode `n_frames` frames of `frame_fn(i)` (default `distinct_frame`) into `path`."""
    path = Path(path)
    frame_fn = frame_fn or (lambda i: distinct_frame(i, size))
    with av.open(str(path), mode="w") as container:
        stream = _add_video_stream(container, codec, fps, size, pix_fmt)
        if options:
            stream.options = options
        for key, value in (stream_metadata or {}).items():
            stream.metadata[key] = value
        _encode_all(container, stream, _rgb_frames(frame_fn, n_frames))
    return path


# ---- content with known events --------------------------------------------------------------


def moving_square_frame(i: int, start: int, size: tuple[int, int] = (160, 120)) -> np.ndarray:
    """A textured still background with a white square that stays put until frame `start`,
    then moves 3 px per frame to the right (wrapping)."""
    w, h = size
    yy, xx = np.mgrid[0:h, 0:w]
    img = np.stack([(xx * 3) % 256, (yy * 5) % 256, ((xx + yy) * 2) % 256], axis=-1)
    img = img.astype(np.uint8)
    x = 10 + max(0, i - start) * 3
    x %= max(w - 20, 1)
    img[h // 2 - 10:h // 2 + 10, x:x + 20] = 255
    return img


SCENE_COLOURS = ((200, 40, 40), (40, 180, 60), (50, 60, 210), (230, 210, 40), (30, 30, 30),
                 (220, 220, 220), (150, 40, 190), (20, 170, 190))


def scene_frame(i: int, cuts: list[int], size: tuple[int, int] = (160, 120)) -> np.ndarray:
    """A frame of the scene that frame `i` belongs to: scenes start at 0 and at each cut, each
    with its own colour, and a small dark square drifting 1 px per frame (motion in a shot)."""
    w, h = size
    scene = sum(1 for c in cuts if i >= c)
    img = np.empty((h, w, 3), dtype=np.uint8)
    img[:] = SCENE_COLOURS[scene % len(SCENE_COLOURS)]
    yy = np.arange(h)[:, None]
    img[..., 1] = np.clip(img[..., 1].astype(int) + (yy // 8) % 2 * 20, 0, 255)
    x = (i * 1) % max(w - 12, 1)
    img[10:22, x:x + 12] = 0
    return img


# ---- files with special structure ------------------------------------------------------------


def write_vfr_video(path: Path, timestamps: list[float], size: tuple[int, int] = (160, 120),
                    codec: str = "libx264") -> Path:
    """Frames `distinct_frame(i)` at the given presentation times (seconds, increasing)."""
    path = Path(path)
    with av.open(str(path), mode="w") as container:
        stream = _add_video_stream(container, codec, 30, size)
        stream.codec_context.time_base = Fraction(1, 1000)

        def timed() -> Iterator[av.VideoFrame]:
            frames = _rgb_frames(lambda i: distinct_frame(i, size), len(timestamps))
            for frame, t in zip(frames, timestamps, strict=True):
                frame.pts = int(round(t * 1000))
                frame.time_base = Fraction(1, 1000)
                yield frame

        _encode_all(container, stream, timed())
    return path


def write_rotated_video(path: Path, degrees: int, n_frames: int = 10,
                        size: tuple[int, int] = (160, 120)) -> Path:
    """An H.264 MP4 whose display matrix says: rotate by `degrees` counter-clockwise (as the
    FFmpeg API counts; a phone held upright records 90 clockwise = -90 here)."""
    path = Path(path)
    with av.open(str(path), mode="w") as container:
        stream = _add_video_stream(container, "libx264", 30, size)
        stream.set_display_rotation(degrees)
        _encode_all(container, stream, _rgb_frames(lambda i: distinct_frame(i, size), n_frames))
    return path


def _add_tone_stream(container: av.container.OutputContainer) -> av.audio.stream.AudioStream:
    stream = container.add_stream("aac", rate=44100)
    stream.layout = "mono"
    return stream


def _encode_tone(container: av.container.OutputContainer, stream: av.audio.stream.AudioStream,
                 seconds: float) -> None:
    samples = np.sin(np.arange(int(seconds * 44100)) * 2 * np.pi * 440 / 44100)
    samples = (samples * 0.3).astype(np.float32)
    chunk = 1024

    def blocks() -> Iterator[av.AudioFrame]:
        for start in range(0, len(samples), chunk):
            block = samples[start:start + chunk].reshape(1, -1)
            frame = av.AudioFrame.from_ndarray(block, format="fltp", layout="mono")
            frame.sample_rate = 44100
            frame.pts = start
            yield frame

    _encode_all(container, stream, blocks())


def write_audio_only(path: Path, seconds: float = 1.0) -> Path:
    """An AAC tone in an audio-only container (use a video extension to test refusal)."""
    path = Path(path)
    with av.open(str(path), mode="w") as container:
        _encode_tone(container, _add_tone_stream(container), seconds)
    return path


def write_video_with_audio(path: Path, n_frames: int = 30, fps: int = 30,
                           size: tuple[int, int] = (160, 120)) -> Path:
    """`distinct_frame` video plus an AAC tone of the same length."""
    path = Path(path)
    with av.open(str(path), mode="w") as container:
        stream = _add_video_stream(container, "libx264", fps, size)
        audio = _add_tone_stream(container)  # every stream exists before the first packet
        _encode_all(container, stream, _rgb_frames(lambda i: distinct_frame(i, size), n_frames))
        _encode_tone(container, audio, n_frames / fps)
    return path


def truncate(path: Path, keep: float = 0.5) -> Path:
    """Cut the file after the first `keep` fraction of its bytes (in place)."""
    path = Path(path)
    data = path.read_bytes()
    path.write_bytes(data[:int(len(data) * keep)])
    return path


def reference_decode(path: Path) -> list[np.ndarray]:
    """Every frame of the first video stream as RGB arrays, by a plain full decode."""
    with av.open(str(path)) as container:
        return [frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)]


def write_video_without_frames(path: Path) -> Path:
    """A Matroska file whose video stream has no frames (only an audio tone)."""
    path = Path(path)
    with av.open(str(path), mode="w", format="matroska") as container:
        _add_video_stream(container, "libx264", 30, (160, 120))
        _encode_tone(container, _add_tone_stream(container), 0.5)
    return path


def write_unknown_codec_video(path: Path) -> Path:
    """A Matroska file whose video track names a codec FFmpeg does not know: an H.264 file with
    its CodecID element renamed (same length, so the file structure stays valid)."""
    path = write_video(Path(path), n_frames=5, size=(160, 120))
    data = path.read_bytes()
    assert data.count(b"V_MPEG4/ISO/AVC") == 1
    path.write_bytes(data.replace(b"V_MPEG4/ISO/AVC", b"V_CHRONICON_XYZ"))
    return path


def write_video_with_keyframes_at(path: Path, n_frames: int, keyframes: list[int],
                                  frame_fn: FrameFn, gop: int = 30,
                                  size: tuple[int, int] = (160, 120)) -> Path:
    """H.264 with a regular keyframe every `gop` frames plus forced IDR frames at `keyframes`,
    as an encoder's scene-change detection places them."""
    path = Path(path)
    with av.open(str(path), mode="w") as container:
        stream = _add_video_stream(container, "libx264", 30, size)
        stream.options = {"g": str(gop), "forced-idr": "1"}

        def marked() -> Iterator[av.VideoFrame]:
            for i, frame in enumerate(_rgb_frames(frame_fn, n_frames)):
                if i in keyframes:
                    frame.pict_type = av.video.frame.PictureType.I
                yield frame

        _encode_all(container, stream, marked())
    return path

"""Test videos, generated on demand with PyAV (never committed).

`write_video` is the one writer every test uses; `distinct_frame` draws frames that differ
enough that a pixel comparison tells which frame index a decoder returned.
"""

from __future__ import annotations

from collections.abc import Callable
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
        stream = container.add_stream(codec, rate=Fraction(fps))
        stream.width, stream.height = size
        stream.pix_fmt = pix_fmt
        if options:
            stream.options = options
        for key, value in (stream_metadata or {}).items():
            stream.metadata[key] = value
        for i in range(n_frames):
            frame = av.VideoFrame.from_ndarray(frame_fn(i), format="rgb24")
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path

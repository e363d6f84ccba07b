"""Live sources on loopback for stream tests: a clip that alternates still and moving spans,
published by the real `ffmpeg` as MPEG-TS over UDP or TCP, or as HLS served over HTTP."""

from __future__ import annotations

import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np

from .media import write_video
from .ports import free_port

FFMPEG = shutil.which("ffmpeg")


def still_or_moving_frame(i: int, fps: int, span_s: int, size: tuple[int, int]) -> np.ndarray:
    """A textured background; a large white block that moves during odd spans of `span_s`
    seconds and stands still during even ones."""
    w, h = size
    yy, xx = np.mgrid[0:h, 0:w]
    img = np.stack([(xx * 3) % 256, (yy * 5) % 256, ((xx + yy) * 2) % 256], axis=-1)
    img = img.astype(np.uint8)
    span = (i // fps) // span_s
    moving_frames = sum(fps * span_s for s in range(span) if s % 2 == 1)
    if span % 2 == 1:
        moving_frames += i - span * span_s * fps
    x = (10 + moving_frames * 4) % (w - 40)
    img[h // 2 - 20:h // 2 + 20, x:x + 40] = 255
    return img


def write_still_moving_clip(path: Path, duration_s: int = 24, span_s: int = 4, fps: int = 10,
                            size: tuple[int, int] = (160, 120)) -> Path:
    """Even spans still, odd spans moving; a keyframe every second (a late joiner decodes)."""
    return write_video(path, n_frames=duration_s * fps, fps=fps, size=size,
                       frame_fn=lambda i: still_or_moving_frame(i, fps, span_s, size),
                       options={"g": str(fps), "preset": "ultrafast", "tune": "zerolatency"})


@contextmanager
def publisher(clip: Path, url: str, log: Path, loops: int = -1,
              realtime: bool = True) -> Iterator[subprocess.Popen]:
    """ffmpeg sending `clip` to `url` as MPEG-TS, `loops` extra times (-1: forever; timestamps
    stay continuous), at its own pace (`-re`) or as fast as the reader takes it; always
    stopped."""
    assert FFMPEG, "ffmpeg is not installed (.ci/run installs it)"
    args = [FFMPEG, "-hide_banner", "-loglevel", "error", *(["-re"] if realtime else []),
            "-stream_loop", str(loops), "-i", str(clip), "-c", "copy", "-f", "mpegts", url]
    with log.open("ab") as sink:
        process = subprocess.Popen(args, stdout=sink, stderr=sink, stdin=subprocess.DEVNULL)
    try:
        yield process
    finally:
        stop_process(process)


def stop_process(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


@contextmanager
def hls_server(clip: Path, folder: Path, log: Path) -> Iterator[str]:
    """ffmpeg writing a live HLS playlist (1-s segments) into `folder`, served over HTTP on
    127.0.0.1; yields the playlist URL."""
    assert FFMPEG, "ffmpeg is not installed (.ci/run installs it)"
    folder.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as sink:
        process = subprocess.Popen(
            [FFMPEG, "-hide_banner", "-loglevel", "error", "-re", "-stream_loop", "-1", "-i",
             str(clip), "-c", "copy", "-f", "hls", "-hls_time", "1", "-hls_list_size", "6",
             "-hls_flags", "delete_segments", str(folder / "live.m3u8")],
            stdout=sink, stderr=sink, stdin=subprocess.DEVNULL)
    port = free_port()
    handler = partial(_QuietHandler, directory=str(folder))
    server = ThreadingHTTPServer(("127.0.0.1", port), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 20
        while not (folder / "live.m3u8").exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        yield f"http://127.0.0.1:{port}/live.m3u8"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
        stop_process(process)


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the base's name
        pass

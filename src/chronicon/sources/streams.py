"""Live streams: cut into windows while decoding, gated by motion, reconnected when they drop.

`StreamWatcher.run(stop)` opens the URL with PyAV (rtsp, rtmp, HLS over http(s), MPEG-TS over
udp/tcp, srt when FFmpeg has it) with open and read timeouts, so a dead source never hangs the
thread. Decoded frames fall into windows of `window_s` seconds of stream time. While decoding,
each window keeps only a grey 64-px thumbnail to compare against (its motion score: the largest
share of pixels that changed within half a second) and the `frames` frames nearest its evenly
spread target times (already resized): memory is bounded by one window, never the stream.
A window whose motion stays under `motion_threshold` is skipped (counted); the others go to
`on_window` as a `StreamWindow`, which the analyst describes like a clip.

When the stream drops (error, end, silence past the timeout) the watcher reconnects with
exponential backoff (1, 2, 4 … s, capped at `backoff_max_s`); its state
(`connected`, `reconnecting (attempt 3, next in 8 s)`, the last error) is in `status`.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import av
import numpy as np

from ..analysis import AnalysisOptions, AnalysisResult, StageTimes
from ..video.decode import thumbnail, to_rgb_image
from ..video.frames import Frame
from ..video.motion import changed_fraction
from ..video.probe import VideoInfo
from .registry import mask_url

log = logging.getLogger(__name__)

MOTION_SPAN_S = 0.5  # motion compares each frame with the reference thumbnail this long ago
BACKOFF_START_S = 1.0
# A jump in stream time larger than this many windows (or backwards) is a new timeline (a
# publisher restarted behind the same UDP port): windows restart from there.
DISCONTINUITY_WINDOWS = 3


@dataclass
class StreamState:
    """A stream's visible state (for `GET /api/sources`, the System page and the terminal)."""

    state: str = "starting"
    attempt: int = 0
    next_retry_s: float | None = None
    last_error: str | None = None
    connected_at: str | None = None
    connects: int = 0
    frames: int = 0
    windows: int = 0
    windows_skipped: int = 0
    windows_kept: int = 0

    @property
    def detail(self) -> str:
        if self.state == "reconnecting":
            return (f"reconnecting (attempt {self.attempt}, next in "
                    f"{self.next_retry_s:.0f} s)")
        return self.state

    def to_dict(self) -> dict[str, Any]:
        return {"state": self.state, "detail": self.detail, "attempt": self.attempt,
                "next_retry_s": self.next_retry_s, "last_error": self.last_error,
                "connected_at": self.connected_at, "connects": self.connects,
                "frames": self.frames, "windows": self.windows,
                "windows_skipped": self.windows_skipped, "windows_kept": self.windows_kept}


@dataclass
class StreamWindow:
    """`window_s` seconds of a stream: the frames picked while decoding, and when it was."""

    source: str
    url: str  # credentials masked
    index: int
    stream_start: float
    stream_end: float
    wall_start: str
    wall_end: str
    frames: list[Frame] = field(repr=False)
    motion: float
    decode_s: float
    info: VideoInfo

    def describe(self, options: AnalysisOptions, backend: Any) -> AnalysisResult:
        """Describe the window's frames like a clip's (the backend is loaded if needed)."""
        load_s = backend.load()
        pieces: list[str] = []
        params = options.generation_params()
        stats = backend.generate(self.frames, options.prompt, params, pieces.append,
                                 video_fps=self.info.fps or None,
                                 video_duration=self.stream_end - self.stream_start)
        return AnalysisResult(
            video_path=self.url, options=options, analysis="".join(pieces).strip(),
            timestamp=datetime.now(timezone.utc).isoformat(timespec="microseconds"),
            backend=backend.info(), stats=stats,
            times=StageTimes(probe=0.0, sampling=self.decode_s, model_load=load_s,
                             preprocess=stats.preprocess_s,
                             time_to_first_token=stats.time_to_first_token_s,
                             generate=stats.generate_s,
                             total=self.decode_s + load_s + stats.preprocess_s
                             + stats.generate_s),
            video=self.info, frames=self.frames)

    def extra(self) -> dict[str, Any]:
        return {"source": self.source,
                "stream": {"url": self.url, "window": self.index,
                           "stream_time": [round(self.stream_start, 3),
                                           round(self.stream_end, 3)],
                           "wall_clock": [self.wall_start, self.wall_end],
                           "motion": round(self.motion, 4)}}


class _WindowBuilder:
    """Collects one window while frames decode: a motion score and the picked frames."""

    def __init__(self, index: int, start: float, end: float, picks: int, resize: int) -> None:
        self.index, self.start, self.end = index, start, end
        self.targets = [start + (i + 0.5) * (end - start) / picks for i in range(picks)]
        self.resize = resize
        self.frames: list[Frame] = []
        self.reference: tuple[float, np.ndarray] | None = None
        self.motion = 0.0
        self.count = 0
        self.decode_s = 0.0
        self.wall_start = _now()
        self.last_time = start

    def add(self, frame: av.VideoFrame, t: float, number: int) -> None:
        started = time.perf_counter()
        self.count += 1
        self.last_time = t
        small = thumbnail(frame)
        if self.reference is None or self.reference[1].shape != small.shape:
            self.reference = (t, small)
        else:
            self.motion = max(self.motion, changed_fraction(self.reference[1], small))
            if t - self.reference[0] >= MOTION_SPAN_S:
                self.reference = (t, small)
        if len(self.frames) < len(self.targets) and t >= self.targets[len(self.frames)]:
            self.frames.append(Frame(index=number, timestamp=round(t, 3),
                                     image=to_rgb_image(frame, 0, self.resize)))
        self.decode_s += time.perf_counter() - started

    def covered(self) -> float:
        return (self.last_time - self.start) / (self.end - self.start)


class StreamWatcher:
    """Reads one live stream into windows until stopped (see the module docstring)."""

    def __init__(self, url: str, on_window: Callable[[StreamWindow], None], *, source: str,
                 window_s: float = 10.0, motion_threshold: float = 0.01, frames: int = 8,
                 resize: int = 336, timeout_s: float = 10.0, backoff_max_s: float = 60.0,
                 on_state: Callable[[dict[str, Any]], None] | None = None) -> None:
        self.url = url
        self.masked = mask_url(url)
        self.on_window = on_window
        self.source = source
        self.window_s = window_s
        self.motion_threshold = motion_threshold
        self.frames = frames
        self.resize = resize
        self.timeout_s = timeout_s
        self.backoff_max_s = backoff_max_s
        self.on_state = on_state
        self.status = StreamState()

    # ---- the loop ------------------------------------------------------------------------------
    def run(self, stop: threading.Event) -> None:
        attempt = 0
        try:
            while not stop.is_set():
                self._set(state="connecting", next_retry_s=None)
                error = self._session(stop)
                if stop.is_set():
                    break
                if self.status.state == "connected":
                    attempt = 0  # it worked for a while: start the backoff again from 1 s
                attempt += 1
                delay = min(self.backoff_max_s, BACKOFF_START_S * 2 ** (attempt - 1))
                self._set(state="reconnecting", attempt=attempt, next_retry_s=delay,
                          last_error=error)
                log.warning("%s: %s: %s", self.masked, self.status.detail, error)
                stop.wait(delay)
        finally:
            self._set(state="stopped", next_retry_s=None)

    def _session(self, stop: threading.Event) -> str:
        """One connection: read until it ends; the reason it ended."""
        try:
            container = av.open(self.url, options=self._options(),
                                timeout=(self.timeout_s, self.timeout_s))
        except (av.FFmpegError, OSError) as exc:
            return self._reason(exc)
        try:
            if not container.streams.video:
                return "the stream has no video"
            self._set(state="connected", connected_at=_now(), connects=self.status.connects + 1)
            log.info("%s: connected", self.masked)
            self._read(container, stop)
            return "the stream ended"
        except (av.FFmpegError, OSError) as exc:
            return self._reason(exc)
        finally:
            container.close()

    def _options(self) -> dict[str, str]:
        micros = str(int(self.timeout_s * 1_000_000))
        scheme = self.url.split("://", 1)[0].lower()
        if scheme.startswith("rtsp"):
            return {"rtsp_transport": "tcp", "timeout": micros}
        if scheme == "udp":
            return {"timeout": micros, "overrun_nonfatal": "1", "fifo_size": "1000000"}
        if scheme in ("tcp", "srt"):
            return {"timeout": micros}
        if scheme.startswith("http"):
            return {"rw_timeout": micros}
        return {}

    def _read(self, container: av.container.InputContainer, stop: threading.Event) -> None:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        info = _stream_info(self.masked, container, stream)
        origin: float | None = None
        builder: _WindowBuilder | None = None
        for number, frame in enumerate(container.decode(stream)):
            if stop.is_set():
                return
            t = frame.time if frame.time is not None else number / (info.fps or 25.0)
            if origin is None:
                origin = t
            rel = t - origin
            if builder is not None and (rel < builder.start - 1.0 or rel > builder.end
                                        + DISCONTINUITY_WINDOWS * self.window_s):
                origin = t - builder.end  # a new timeline: carry on after the current window
                rel = builder.end
            if builder is None or rel >= builder.end:
                if builder is not None:
                    self._finish(builder, info)
                index = int(rel // self.window_s)
                # Each window measures the motion inside it: its first frame is its reference.
                builder = _WindowBuilder(index, index * self.window_s,
                                         (index + 1) * self.window_s, self.frames, self.resize)
            builder.add(frame, rel, number)
            self.status.frames += 1
        if builder is not None and builder.covered() >= 0.5:
            self._finish(builder, info)

    def _finish(self, builder: _WindowBuilder, info: VideoInfo) -> None:
        self.status.windows += 1
        if builder.motion < self.motion_threshold or not builder.frames:
            self.status.windows_skipped += 1
            log.debug("%s: window %d skipped (motion %.4f)", self.masked, builder.index,
                      builder.motion)
            return
        self.status.windows_kept += 1
        window_info = VideoInfo(**{**info.__dict__, "frame_count": builder.count,
                                   "duration": builder.end - builder.start})
        self.on_window(StreamWindow(
            source=self.source, url=self.masked, index=builder.index,
            stream_start=builder.start, stream_end=builder.end, wall_start=builder.wall_start,
            wall_end=_now(), frames=builder.frames, motion=builder.motion,
            decode_s=builder.decode_s, info=window_info))

    def _reason(self, exc: BaseException) -> str:
        """The error in one line, the URL's credentials masked (FFmpeg names the URL)."""
        if isinstance(exc, av.ExitError):  # our interrupt callback: the timeout passed
            return f"no data for {self.timeout_s:g} s (timeout)"
        text = str(exc).strip().splitlines()
        line = f"{type(exc).__name__}: {text[0] if text else ''}".rstrip(": ")
        return line.replace(self.url, self.masked)

    def _set(self, **changes: Any) -> None:
        for key, value in changes.items():
            setattr(self.status, key, value)
        if self.on_state is not None and "state" in changes:
            self.on_state(self.status.to_dict())


def _stream_info(url: str, container: av.container.InputContainer,
                 stream: av.video.stream.VideoStream) -> VideoInfo:
    rate = stream.average_rate or stream.guessed_rate
    return VideoInfo(path=url, container=container.format.name, codec=stream.codec_context.name,
                     width=stream.codec_context.width, height=stream.codec_context.height,
                     rotation=0, fps=float(rate) if rate else 0.0, variable_fps=False,
                     frame_count=0, frame_count_source="stream", duration=0.0,
                     has_audio=bool(container.streams.audio), bit_rate=None,
                     pix_fmt=stream.codec_context.pix_fmt or "")


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")

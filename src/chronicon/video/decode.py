"""Exact frame access: a packet index of the video stream, and seek-and-decode-forward reads.

"Frame k" always means the k-th frame a full decode of the stream produces. A full decode emits
frames in presentation order, so frame k is the frame whose presentation timestamp (PTS) is the
k-th smallest PTS among the stream's packets. Building that list needs only demuxing (no
decoding), and it handles B-frames (decode order != display order) and variable frame rates,
where "index = time * fps" would be wrong.

To read frame k we seek to the keyframe at or before it and decode forward until a frame with
exactly that PTS comes out; nearby targets in the same group of pictures share one decode run.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from PIL import Image

from ..errors import CorruptVideo

# How many earlier keyframes we try when a seek lands after its target before decoding the
# stream from its very start (a seek can overshoot when a container indexes DTS, not PTS).
_SEEK_RETRIES = 2


@dataclass(frozen=True)
class FrameIndex:
    """Every video frame of a stream in display order, from one demux pass (no decoding).

    Arrays are indexed by frame number k: `pts[k]` (stream time base, strictly increasing),
    `keyframe[k]` (the packet is a random-access point), `size[k]` (packet bytes, a cheap
    measure of how much changed since the reference frames). `origin` is the PTS of frame 0;
    timestamps are seconds from it.
    """

    pts: np.ndarray
    keyframe: np.ndarray
    size: np.ndarray
    time_base: Fraction
    origin: int
    read_error: str | None = None  # why demuxing stopped early, if it did
    end_time: float = 0.0  # seconds: the end of the last packet read, over all scanned streams

    def __len__(self) -> int:
        return int(self.pts.shape[0])

    def timestamp(self, k: int) -> float:
        return float((int(self.pts[k]) - self.origin) * self.time_base)

    @functools.cached_property
    def timestamps(self) -> np.ndarray:
        """Every frame's timestamp in seconds (float64), ascending."""
        return (self.pts - self.origin).astype(np.float64) * float(self.time_base)

    def index_at(self, pts: int) -> int | None:
        """The frame number whose PTS is exactly `pts`, or None."""
        k = int(np.searchsorted(self.pts, pts))
        return k if k < len(self) and int(self.pts[k]) == pts else None

    def keyframe_before(self, k: int) -> int:
        """The last keyframe at or before frame k (0 when none is flagged)."""
        keys = self._keyframe_numbers
        pos = int(np.searchsorted(keys, k, side="right")) - 1
        return int(keys[pos]) if pos >= 0 else 0

    @functools.cached_property
    def _keyframe_numbers(self) -> np.ndarray:
        return np.flatnonzero(self.keyframe)

    @property
    def intra_only(self) -> bool:
        """Every frame is a keyframe (MJPEG, ProRes, all-intra H.264): each decodes alone."""
        return bool(len(self) and self.keyframe.all())


def scan_packets(container: av.container.InputContainer, stream: av.video.stream.VideoStream,
                 audio: av.audio.stream.AudioStream | None = None) -> FrameIndex:
    """Demux the whole stream once and index its frames (see `FrameIndex`).

    Packets without any timestamp are rare (raw elementary streams); they get the timestamp
    after the previous one so they still count as frames. With `audio`, its packets are read
    too (not indexed) so `end_time` tells how far the whole file could be read.
    """
    pts: list[int] = []
    key: list[bool] = []
    size: list[int] = []
    error = None
    end_time = 0.0
    streams = [stream] if audio is None else [stream, audio]
    try:
        for packet in container.demux(streams):
            if packet.size == 0 or packet.is_discard:
                continue  # flush packets carry no frame; discarded ones are never shown
            end_time = max(end_time, _packet_end(packet))
            if packet.stream.type != "video":
                continue
            ts = packet.pts if packet.pts is not None else packet.dts
            if ts is None:
                ts = pts[-1] + 1 if pts else 0
            pts.append(ts)
            key.append(packet.is_keyframe)
            size.append(packet.size)
    except av.FFmpegError as exc:
        error = str(exc)
    order = np.argsort(np.asarray(pts, dtype=np.int64), kind="stable")
    sorted_pts = np.asarray(pts, dtype=np.int64)[order]
    if len(sorted_pts) > 1 and not (np.diff(sorted_pts) > 0).all():
        # Duplicate PTS (a broken muxer): keep the first of each so indices stay unique.
        keep = np.concatenate(([True], np.diff(sorted_pts) > 0))
        order, sorted_pts = order[keep], sorted_pts[keep]
    return FrameIndex(
        pts=sorted_pts,
        keyframe=np.asarray(key, dtype=bool)[order],
        size=np.asarray(size, dtype=np.int64)[order],
        time_base=stream.time_base or Fraction(1, 1),
        origin=int(sorted_pts[0]) if len(sorted_pts) else 0,
        read_error=error,
        end_time=end_time,
    )


def _packet_end(packet: av.Packet) -> float:
    ts = packet.pts if packet.pts is not None else packet.dts
    if ts is None or packet.time_base is None:
        return 0.0
    return float((ts + (packet.duration or 0)) * packet.time_base)


def open_video(path: Path) -> av.container.InputContainer:
    return av.open(str(path), mode="r")


class ExactFrameReader:
    """Reads exact frames of one video stream by number; keep it open for several reads.

    `read(targets)` yields `(k, frame)` for each distinct k in ascending order. The decoder
    state is reused between targets: after frame k, a later target whose keyframe we have
    already passed is reached by decoding on, not by seeking again.
    """

    def __init__(self, path: Path, index: FrameIndex, threads: bool = True):
        self.path = Path(path)
        self.index = index
        self._container = open_video(self.path)
        self._stream = self._container.streams.video[0]
        if threads:
            # Frame+slice threading: decoding forward through a GOP is the cost we pay.
            self._stream.thread_type = "AUTO"
        self._frames: Iterator[av.VideoFrame] | None = None
        self._last = -1  # frame number of the last frame the current decode run produced
        self._want: int | None = None  # PTS being decoded towards (None: decode everything)

    def __enter__(self) -> ExactFrameReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._container.close()

    def read(self, targets: Sequence[int]) -> Iterator[tuple[int, av.VideoFrame]]:
        for k in sorted(set(int(t) for t in targets)):
            if not 0 <= k < len(self.index):
                raise IndexError(f"frame {k} outside 0..{len(self.index) - 1}")
            yield k, self._read_one(k)

    def keyframes(self, only: set[int] | None = None) -> Iterator[tuple[int, av.VideoFrame]]:
        """Decode only the keyframes (those in `only`, if given), in order, in one pass.

        Only keyframe packets reach the decoder (each decodes on its own). Measured on a quiet
        machine: 2.1 s for the 80 keyframes of a 10-min 1080p clip, against 4.5 s with the
        decoder's own `skip_frame = "NONKEY"`, where frame threads wait on packets they drop.
        """
        self._want = None
        self._seek_to(0)
        try:
            for packet in self._container.demux(self._stream):
                if packet.size and not (packet.is_keyframe and self._wanted(packet, only)):
                    continue  # the empty packet at the end still goes in: it flushes
                for frame in self._stream.decode(packet):
                    k = self.index.index_at(frame.pts) if frame.pts is not None else None
                    if k is not None:
                        yield k, frame
        except av.FFmpegError as exc:
            raise CorruptVideo(f"{self.path.name}: decoding keyframes failed ({exc})") from None
        finally:
            # The decoder saw a broken sequence: the next read must start from a fresh seek.
            self._frames = None

    # ---- internals ------------------------------------------------------------------------

    def _wanted(self, packet: av.Packet, only: set[int] | None) -> bool:
        if only is None:
            return True
        return packet.pts is not None and self.index.index_at(packet.pts) in only

    def _read_one(self, k: int) -> av.VideoFrame:
        start = self.index.keyframe_before(k)
        if self._frames is None or k <= self._last or start > self._last:
            self._seek_to(start)
        for _ in range(_SEEK_RETRIES + 1):
            frame = self._decode_until(k)
            if frame is not None:
                return frame
            # The seek landed after k (the container indexes DTS, or the keyframe flag lies):
            # step back one more keyframe and try again.
            start = self.index.keyframe_before(max(start - 1, 0))
            self._seek_to(start)
        self._seek_to(0, from_start=True)
        frame = self._decode_until(k)
        if frame is None:
            raise CorruptVideo(f"{self.path.name}: frame {k} (at {self.index.timestamp(k):.3f} s)"
                               " cannot be decoded; the file is damaged from there on")
        return frame

    def _seek_to(self, k: int, from_start: bool = False) -> None:
        # Seeking lands on the keyframe at or before the requested PTS; frames before the
        # target are decoded and dropped by `_decode_until`.
        target = int(self.index.pts[k]) if len(self.index) else 0
        if from_start or k == 0:
            self._container.seek(0, backward=True, any_frame=False)
        else:
            self._container.seek(target, backward=True, any_frame=False, stream=self._stream)
        self._frames = None
        self._last = -1

    def _decoded(self) -> Iterator[av.VideoFrame]:
        if self._frames is None:
            self._frames = self._decode_packets()
        return self._frames

    def _decode_packets(self) -> Iterator[av.VideoFrame]:
        context = self._stream.codec_context
        for packet in self._container.demux(self._stream):
            if self._want is not None:
                # A frame shown before the target that no other frame refers to is needed
                # neither for output nor as a reference: let the decoder skip it (B-frames).
                early = packet.pts is not None and packet.pts < self._want
                context.skip_frame = "NONREF" if early else "DEFAULT"
            yield from self._stream.decode(packet)

    def _decode_until(self, k: int) -> av.VideoFrame | None:
        want = self._want = int(self.index.pts[k])
        frames = self._decoded()
        try:
            for frame in frames:
                if frame.pts is None:
                    continue
                position = self.index.index_at(frame.pts)
                if position is not None:
                    self._last = position
                if frame.pts == want:
                    return frame
                if frame.pts > want:
                    self._frames = None
                    return None
        except av.FFmpegError as exc:
            raise CorruptVideo(f"{self.path.name}: decoding failed near "
                               f"{self.index.timestamp(k):.3f} s ({exc})") from None
        self._frames = None
        return None


def display_size(width: int, height: int, rotation: int, resize: int) -> tuple[int, int]:
    """Size (w, h) of the upright image whose longest edge is `resize`, aspect ratio kept."""
    if rotation in (90, 270):
        width, height = height, width
    scale = resize / max(width, height)
    return max(1, round(width * scale)), max(1, round(height * scale))


_UPRIGHT = {90: Image.Transpose.ROTATE_270, 180: Image.Transpose.ROTATE_180,
            270: Image.Transpose.ROTATE_90}


def to_rgb_image(frame: av.VideoFrame, rotation: int, resize: int | None) -> Image.Image:
    """The frame as an upright RGB image, longest edge `resize` (None: native size).

    `rotation` is the clockwise turn the display needs (VideoInfo.rotation). Scaling happens
    in swscale on the coded frame (cheaper than PIL), the quarter turn afterwards (lossless).
    """
    if resize is None:
        image = frame.to_image()
    else:
        w, h = display_size(frame.width, frame.height, rotation, resize)
        if rotation in (90, 270):
            w, h = h, w
        if (w, h) == (frame.width, frame.height):
            image = frame.to_image()
        else:
            image = frame.reformat(width=w, height=h, format="rgb24",
                                   interpolation="AREA").to_image()
    transpose = _UPRIGHT.get(rotation)
    return image.transpose(transpose) if transpose is not None else image


def thumbnail(frame: av.VideoFrame, width: int = 64) -> np.ndarray:
    """A small grey float32 image for cheap comparisons (motion, cuts)."""
    height = max(1, round(frame.height * width / frame.width))
    small = frame.reformat(width=width, height=height, format="gray", interpolation="AREA")
    return small.to_ndarray().astype(np.float32)


def colour_thumbnail(frame: av.VideoFrame, width: int = 64) -> np.ndarray:
    """A small RGB uint8 image: cut detection compares colour histograms of these."""
    height = max(1, round(frame.height * width / frame.width))
    return frame.reformat(width=width, height=height, format="rgb24",
                          interpolation="AREA").to_ndarray()

"""The frame index: every frame a full decode yields, from one demux pass and a short decode.

"Frame k" always means the k-th frame a full decode of the stream produces (decoding every
packet from the start, as a player does). Demuxing alone almost gives that list: frames come
out in presentation order, so frame k is the frame with the k-th smallest presentation
timestamp (PTS). Real files break that in four ways, each handled here:

- an edit list (`ffmpeg -ss 3.3 -i in.mp4 -c copy out.mp4`) marks pre-roll packets as
  discarded: they are decoded as references but never shown, so they are not frames;
- a recording that starts mid-GOP (a cut MPEG-TS) begins with packets that cannot be decoded
  (their references are missing): the decoder yields nothing before the first keyframe;
- packed B-frames (XviD/DivX AVI) and muxers that write duplicate timestamps give decoded
  frames PTS that are out of order or repeated, so PTS cannot name a frame;
- headers that disagree with the packets (AVI with dropped frames).

A short calibration decode from the start (at most `CALIBRATION_PACKETS` packets, about one
group of pictures) shows which case a file is in: its first output frame tells where decoding
really starts, and whether the output PTS follow the packet PTS decides the positioning:
"pts" (frame k is the frame whose PTS is `pts[k]`; lets the reader skip frames it does not
need) or "count" (frame k is the (k - r)-th frame output after seeking to the keyframe at
position r; exact whatever the timestamps say, but every frame must be decoded).
"""

from __future__ import annotations

import contextlib
import functools
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

# The calibration decode stops after this many packets (or at the end of the stream).
CALIBRATION_PACKETS = 96
# Indexes are kept on disk (index_cache.py): a change to what FrameIndex holds or to how it is
# built (this file, calibration included) must bump index_cache.FORMAT_VERSION, or processes
# keep using indexes built the old way.

PacketKey = tuple[int | None, int | None]  # (dts, pts) identifies a packet within its stream


@dataclass(frozen=True)
class FrameIndex:
    """Every video frame of a stream in display order, from one demux pass.

    Arrays are indexed by frame number k: `pts[k]` (stream time base, non-decreasing),
    `keyframe[k]` (the frame is a random-access point), `size[k]` (packet bytes, a cheap
    measure of how much changed since the reference frames). `origin` is the PTS of frame 0;
    timestamps are seconds from it. `positioning` says how the reader finds frame k (see the
    module docstring); `key_packets` maps each keyframe packet's (dts, pts) to its frame
    number, for "count" positioning. `notes` list what was odd but usable.
    """

    pts: np.ndarray
    keyframe: np.ndarray
    size: np.ndarray
    time_base: Fraction
    origin: int
    read_error: str | None = None  # why demuxing stopped early, if it did
    end_time: float = 0.0  # seconds: the end of the last packet read, over all scanned streams
    positioning: str = "pts"
    key_packets: dict[PacketKey, int] = field(default_factory=dict)
    notes: tuple[str, ...] = ()

    def __len__(self) -> int:
        return int(self.pts.shape[0])

    def timestamp(self, k: int) -> float:
        return float((int(self.pts[k]) - self.origin) * self.time_base)

    @functools.cached_property
    def timestamps(self) -> np.ndarray:
        """Every frame's timestamp in seconds (float64), ascending."""
        return (self.pts - self.origin).astype(np.float64) * float(self.time_base)

    def index_at(self, pts: int) -> int | None:
        """The frame number whose PTS is exactly `pts`, or None ("pts" positioning)."""
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

    @functools.cached_property
    def packet_of_keyframe(self) -> dict[int, PacketKey]:
        """Frame number of each keyframe -> its packet's (dts, pts) ("count" positioning)."""
        return {k: key for key, k in self.key_packets.items()}

    @property
    def intra_only(self) -> bool:
        """Every frame is a keyframe (MJPEG, ProRes, all-intra H.264): each decodes alone."""
        return bool(len(self) and self.keyframe.all())


@dataclass
class _Packets:
    """The video packets in decode order, as demuxed."""

    pts: list[int] = field(default_factory=list)
    dts: list[int | None] = field(default_factory=list)
    key: list[bool] = field(default_factory=list)
    size: list[int] = field(default_factory=list)
    discarded: int = 0
    error: str | None = None
    end_time: float = 0.0


def scan_packets(container: av.container.InputContainer, stream: av.video.stream.VideoStream,
                 audio: av.audio.stream.AudioStream | None = None) -> _Packets:
    """Demux the whole stream once, in decode order (no decoding).

    Packets without any timestamp are rare (raw elementary streams); they get the timestamp
    after the previous one so they still count as frames. With `audio`, its packets are read
    too (not kept) so `end_time` tells how far the whole file could be read.
    """
    packets = _Packets()
    streams = [stream] if audio is None else [stream, audio]
    # The largest pts + duration per stream, in its time base: converted to seconds once at
    # the end (Fraction arithmetic per packet was a third of the scan's time).
    ends: dict[int, int] = {}
    try:
        for packet in container.demux(streams):
            if packet.size == 0:
                continue  # flush packets carry no frame
            end = packet.pts if packet.pts is not None else packet.dts
            if end is not None:
                end += packet.duration or 0
                if end > ends.get(packet.stream_index, end - 1):
                    ends[packet.stream_index] = end
            if packet.stream.type != "video":
                continue
            if packet.is_discard:
                packets.discarded += 1  # edit-list pre-roll: decoded, never shown
                continue
            ts = packet.pts if packet.pts is not None else packet.dts
            if ts is None:
                ts = packets.pts[-1] + 1 if packets.pts else 0
            packets.pts.append(ts)
            packets.dts.append(packet.dts)
            packets.key.append(packet.is_keyframe)
            packets.size.append(packet.size)
    except av.FFmpegError as exc:
        packets.error = str(exc)
    for s in streams:
        if s.index in ends and s.time_base is not None:
            packets.end_time = max(packets.end_time, float(ends[s.index] * s.time_base))
    return packets


@dataclass(frozen=True)
class Calibration:
    """A decode from the start over the first CALIBRATION_PACKETS packets (then flushed):
    the PTS of the shown packets fed, and of the frames that came out, in order."""

    fed: list[int]
    outputs: list[int | None]


def calibrate(path: Path) -> Calibration:
    """Decode the start of the stream as a player does (damaged packets are skipped), for
    the timestamps of the frames that come out."""
    fed: list[int] = []
    outputs: list[int | None] = []
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        # Only the timestamps of what comes out matter here, never the pixels: the in-loop
        # deblocking filter (a fifth of H.264 decoding) changes pixels only, so skip it.
        stream.codec_context.options = {"skip_loop_filter": "all"}
        for packet in container.demux(stream):
            if len(fed) >= CALIBRATION_PACKETS:
                packet = None  # noqa: PLW2901 - flush what the decoder still holds
            elif packet.size and not packet.is_discard:
                fed.append(packet.pts if packet.pts is not None else packet.dts)
            with contextlib.suppress(av.FFmpegError):  # damaged: skipped, as players do
                outputs.extend(frame.pts for frame in stream.decode(packet))
            if packet is None:
                break
    return Calibration(fed=fed, outputs=outputs)


def build_index(packets: _Packets, calibration: Calibration, time_base: Fraction) -> FrameIndex:
    """The frame index from the demuxed packets and the calibration decode."""
    outputs = calibration.outputs
    pts = np.asarray(packets.pts, dtype=np.int64)
    notes: list[str] = []
    if packets.discarded:
        notes.append(f"the edit list hides {packets.discarded} pre-roll packets (a cut made "
                     "without re-encoding); they are not frames")
    unique = len(np.unique(pts)) == len(pts)
    decoded = [p for p in outputs if p is not None]
    if unique and decoded and len(decoded) == len(outputs):
        index = _by_pts(packets, pts, calibration.fed, decoded, time_base, notes)
        if index is not None:
            return index
    if not unique:
        notes.append(f"{len(pts) - len(np.unique(pts))} frames repeat another frame's timestamp "
                     "(a muxer fault); frames are counted in decoding order")
    else:
        notes.append("decoded frames carry timestamps out of order (packed B-frames); frames "
                     "are counted in decoding order")
    return _by_count(packets, pts, time_base, notes)


def _by_pts(packets: _Packets, pts: np.ndarray, fed: list[int | None], decoded: list[int],
            time_base: Fraction, notes: list[str]) -> FrameIndex | None:
    """"pts" positioning, or None when the decoded frames' PTS do not follow the packets'.

    They follow when they rise and each is a packet's PTS; a damaged packet that yields no
    frame leaves a gap, which the reader reports on the frame concerned.
    """
    shown = {p for p in fed if p is not None}
    rising = all(a < b for a, b in zip(decoded, decoded[1:], strict=False))
    if not rising or not shown.issuperset(decoded):
        return None
    order = np.argsort(pts, kind="stable")
    sorted_pts = pts[order]
    keep = sorted_pts >= decoded[0]  # the decoder yields nothing before its first frame
    skipped = int((~keep).sum())
    if skipped:
        notes.append(f"the stream starts mid-GOP: {skipped} frames before the first keyframe "
                     "cannot be decoded and are skipped")
    order, sorted_pts = order[keep], sorted_pts[keep]
    return FrameIndex(
        pts=sorted_pts,
        keyframe=np.asarray(packets.key, dtype=bool)[order],
        size=np.asarray(packets.size, dtype=np.int64)[order],
        time_base=time_base,
        origin=int(sorted_pts[0]) if len(sorted_pts) else 0,
        read_error=packets.error,
        end_time=packets.end_time,
        notes=tuple(notes),
    )


def _by_count(packets: _Packets, pts: np.ndarray, time_base: Fraction,
              notes: list[str]) -> FrameIndex:
    """"count" positioning: in a closed group of pictures every frame shown before a keyframe
    is decoded before it, so a keyframe's frame number is the number of packets before it
    (counted from the first keyframe: nothing before it decodes)."""
    keys = np.asarray(packets.key, dtype=bool)
    first = int(np.argmax(keys)) if keys.any() else 0
    if first:
        notes.append(f"the stream starts mid-GOP: {first} frames before the first keyframe "
                     "cannot be decoded and are skipped")
    kept = slice(first, None)
    shown = np.sort(pts[kept], kind="stable")
    key_packets = {(packets.dts[i], packets.pts[i]): i - first
                   for i in np.flatnonzero(keys[kept]) + first}
    sizes = np.asarray(packets.size, dtype=np.int64)[kept][np.argsort(pts[kept], kind="stable")]
    return FrameIndex(
        pts=shown,
        keyframe=keys[kept].copy(),
        size=sizes,
        time_base=time_base,
        origin=int(shown[0]) if len(shown) else 0,
        read_error=packets.error,
        end_time=packets.end_time,
        positioning="count",
        key_packets=key_packets,
        notes=tuple(notes),
    )

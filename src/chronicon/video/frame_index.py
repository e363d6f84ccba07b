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

A short calibration decode from the start, fed the first packets of the demux pass, shows
which case a file is in: its first output frame tells where decoding really starts, and
whether the output PTS follow the packet PTS decides the positioning: "pts" (frame k is the
frame whose PTS is `pts[k]`; lets the reader skip frames it does not need) or "count" (frame k
is the (k - r)-th frame output after seeking to the keyframe at position r; exact whatever the
timestamps say, but every frame must be decoded). It stops as soon as the output has decided:
at the first frame out of order, or once `CALIBRATION_FRAMES` frames came out in order,
including a frame the packets carried out of order when they do (a B-frame: packed B-frames
show there); and at the latest after `CALIBRATION_PACKETS` packets (a mid-GOP start whose
first keyframe lies further in), flushing the decoder.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from fractions import Fraction
from queue import SimpleQueue

import av
import numpy as np

# The calibration decode stops once this many frames came out in order (see above)...
CALIBRATION_FRAMES = 16
# ... and at the latest after this many packets (or at the end of the stream).
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
                 audio: av.audio.stream.AudioStream | None = None,
                 calibrator: Calibrator | None = None) -> _Packets:
    """Demux the whole stream once, in decode order (no decoding).

    Packets without any timestamp are rare (raw elementary streams); they get the timestamp
    after the previous one so they still count as frames. With `audio`, its packets are read
    too (not kept) so `end_time` tells how far the whole file could be read. With
    `calibrator`, the first video packets are handed to it as they are read (it decodes them
    on another thread) and its input is closed at the end.
    """
    packets = _Packets()
    streams = [stream] if audio is None else [stream, audio]
    # The largest pts + duration per stream, in its time base: converted to seconds once at
    # the end (Fraction arithmetic per packet was a third of the scan's time).
    ends: dict[int, int] = {}
    video = stream.index
    # (Each attribute of a packet is read once: this loop runs for every packet of the file.)
    pts_list, dts_list, key_list, size_list = packets.pts, packets.dts, packets.key, packets.size
    try:
        for packet in container.demux(streams):
            size = packet.size
            if size == 0:
                continue  # flush packets carry no frame
            pts, dts, index = packet.pts, packet.dts, packet.stream_index
            ts = pts if pts is not None else dts
            if ts is not None:
                end = ts + (packet.duration or 0)
                if end > ends.get(index, end - 1):
                    ends[index] = end
            if index != video:
                continue
            if calibrator is not None and calibrator.wanted:
                calibrator.feed(packet)
            if packet.is_discard:
                packets.discarded += 1  # edit-list pre-roll: decoded, never shown
                continue
            if ts is None:
                ts = pts_list[-1] + 1 if pts_list else 0
            pts_list.append(ts)
            dts_list.append(dts)
            key_list.append(packet.is_keyframe)
            size_list.append(size)
    except av.FFmpegError as exc:
        packets.error = str(exc)
    finally:
        if calibrator is not None:
            calibrator.close()
    for s in streams:
        if s.index in ends and s.time_base is not None:
            packets.end_time = max(packets.end_time, float(ends[s.index] * s.time_base))
    return packets


@dataclass
class Calibration:
    """A decode from the start (see the module docstring): the PTS of the shown packets fed,
    and of the frames that came out, in order. `first_rotation` is the display rotation of
    the first frame out (None: no frame came out); `first_error` the decoding error met
    before it, if any (the probe refuses such a stream as a player would fail on it)."""

    fed: list[int | None] = field(default_factory=list)
    outputs: list[int | None] = field(default_factory=list)
    first_rotation: float | None = None
    first_error: av.FFmpegError | None = None


class Calibrator:
    """The calibration decode, fed packet by packet by the demux pass.

    `feed` (the demuxing thread) queues packets while `wanted`; `run` (another thread: FFmpeg
    decodes without the GIL, so the demux pass goes on beside it) decodes them as a player
    does, damaged packets skipped, with the stream's own decoder, and returns the
    `Calibration` once the output has decided or the input is closed (`close`: the end of
    the stream, or of the demux pass).
    """

    def __init__(self, stream: av.video.stream.VideoStream):
        self._stream = stream
        # Only the timestamps of what comes out matter here, never the pixels: the in-loop
        # deblocking filter (a fifth of H.264 decoding) changes pixels only, so skip it.
        stream.codec_context.options = {"skip_loop_filter": "all"}
        self._queue: SimpleQueue[av.Packet | None] = SimpleQueue()
        self._shown = 0  # shown packets queued
        self.wanted = True  # read by the demuxing thread: more packets are welcome
        self._result = Calibration()
        self._fed: set[int] = set()
        self._highest_fed: int | None = None
        self._reordered: set[int] = set()  # PTS of packets that came after a later frame's
        self._in_order = 0  # frames out so far, all in order
        self._saw_reordered = False

    def feed(self, packet: av.Packet) -> None:
        if packet.size and not packet.is_discard:
            self._shown += 1
        self._queue.put(packet)
        if self._shown >= CALIBRATION_PACKETS:
            self.close()

    def close(self) -> None:
        if self.wanted:
            self.wanted = False
            self._queue.put(None)  # flush what the decoder still holds

    def run(self) -> Calibration:
        try:
            while True:
                packet = self._queue.get()
                if packet is not None and packet.size and not packet.is_discard:
                    self._note_fed(packet.pts if packet.pts is not None else packet.dts)
                if self._decode(packet) or packet is None:
                    return self._result
        finally:
            self.wanted = False  # (an early return: the feeder stops queueing)

    def _note_fed(self, pts: int | None) -> None:
        self._result.fed.append(pts)
        if pts is None:
            return
        if self._highest_fed is not None and pts < self._highest_fed:
            self._reordered.add(pts)
        self._fed.add(pts)
        self._highest_fed = pts if self._highest_fed is None else max(self._highest_fed, pts)

    def _decode(self, packet: av.Packet | None) -> bool:
        """Decode one packet (None: flush); True when the output has decided."""
        result = self._result
        try:
            frames = self._stream.decode(packet)
        except av.FFmpegError as exc:  # damaged: skipped, as players do
            if result.first_rotation is None and result.first_error is None:
                result.first_error = exc
            return False
        for frame in frames:
            if result.first_rotation is None:
                result.first_rotation = frame.rotation
            in_order = self._in_order_after(result.outputs, frame.pts)
            result.outputs.append(frame.pts)
            if not in_order:
                return True  # "count" positioning, whatever follows
            self._in_order += 1
            self._saw_reordered = self._saw_reordered or frame.pts in self._reordered
        return (self._in_order >= CALIBRATION_FRAMES
                and (self._saw_reordered or not self._reordered))

    def _in_order_after(self, outputs: list[int | None], pts: int | None) -> bool:
        """A frame out follows the packets when its PTS is a fed packet's and rises."""
        return (pts is not None and pts in self._fed
                and (not outputs or (outputs[-1] is not None and pts > outputs[-1])))


def build_index(packets: _Packets, calibration: Calibration, time_base: Fraction) -> FrameIndex:
    """The frame index from the demuxed packets and the calibration decode."""
    outputs = calibration.outputs
    pts = np.asarray(packets.pts, dtype=np.int64)
    notes: list[str] = []
    if packets.discarded:
        notes.append(f"the edit list hides {packets.discarded} pre-roll packets (a cut made "
                     "without re-encoding); they are not frames")
    ordered = np.sort(pts)
    # (Not np.unique: its first call imports numpy.ma, ~60 ms of a cold probe.)
    repeated = int(np.count_nonzero(ordered[1:] == ordered[:-1]))
    decoded = [p for p in outputs if p is not None]
    if not repeated and decoded and len(decoded) == len(outputs):
        index = _by_pts(packets, pts, calibration.fed, decoded, time_base, notes)
        if index is not None:
            return index
    if repeated:
        notes.append(f"{repeated} frames repeat another frame's timestamp "
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

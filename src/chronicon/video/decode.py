"""Exact frame reads: seek to the keyframe before a target and decode forward to it.

Which frame is "frame k" is settled by the frame index (`frame_index.FrameIndex`): the k-th
frame a full decode yields. With "pts" positioning the reader decodes until the frame with
PTS `pts[k]` comes out; with "count" positioning (packed B-frames, repeated timestamps) it
counts the frames output after the keyframe it seeked to. Nearby targets in the same group of
pictures share one decode run.

Damaged data is decoded as a player would: a packet that fails to decode is skipped, and the
frames decoded after it (until the next keyframe decodes cleanly) carry a warning, because
they may show smeared blocks; a target frame that cannot be decoded at all is replaced by the
next frame that can, with a warning that says so.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from queue import Empty, SimpleQueue
from typing import TypeVar

import av
import numpy as np
from PIL import Image

from ..errors import CorruptVideo
from .frame_index import FrameIndex, PacketKey

# How many earlier keyframes we try when a seek lands after its target before decoding the
# stream from its very start (a seek can overshoot when a container indexes DTS, not PTS).
_SEEK_RETRIES = 2

# Decoders that drop a non-reference frame under `skip_frame = "NONREF"` and still decode every
# frame after it exactly (proven against a full decode in tests/video/test_video_real_world.py).
# libdav1d (AV1) is not one: with NONREF the target frame never comes out; mpeg4 and VP8/VP9
# gain nothing (few or no non-reference frames). Everything else decodes every frame.
SKIP_NONREF_CODECS = frozenset({"h264", "hevc", "mpeg1video", "mpeg2video"})
# Decoders that honour `skip_frame = "NONINTRA"` slice by slice: fed every packet, they decode
# only the intra-coded pictures, keyframes or not (x264 codes a scene change it finds too soon
# after a keyframe as a plain I-frame), each exactly as a full decode would (checked in
# tests/video/test_video_motion_scenes.py). Not hevc: under NONINTRA its decoder outputs the
# keyframes but none of the plain I-frames of an x265 open-GOP stream.
SKIP_NONINTRA_CODECS = frozenset({"h264"})


def open_video(path: Path) -> av.container.InputContainer:
    return av.open(str(path), mode="r")


# Exact readers decoding side by side (one decoder thread each): the machines we run on have
# two cores or more.
READERS = 2

_Job = TypeVar("_Job")
_Worker = TypeVar("_Worker")
_Result = TypeVar("_Result")


def groups_of_pictures(targets: Sequence[int], index: FrameIndex) -> list[list[int]]:
    """Sorted targets cut into runs that share a group of pictures (one seek each)."""
    groups: list[list[int]] = []
    for k in targets:
        if groups and index.keyframe_before(groups[-1][-1]) == index.keyframe_before(k):
            groups[-1].append(k)
        else:
            groups.append([k])
    return groups


def side_by_side(jobs: list[_Job], workers: list[_Worker],
                 work: Callable[[_Worker, _Job], list[_Result]],
                 cost: Callable[[_Job], float]) -> list[_Result]:
    """Every `work(worker, job)` result, the workers side by side (FFmpeg decodes and scales
    without holding the GIL). A worker takes the next job when it is done, costliest first,
    so all end together even when the jobs differ in cost or another process holds a core.
    Only for work whose result does not depend on which worker did it, or after what."""
    queue: SimpleQueue[_Job] = SimpleQueue()
    for job in sorted(jobs, key=cost, reverse=True):
        queue.put(job)

    def drain(worker: _Worker) -> list[_Result]:
        done: list[_Result] = []
        while True:
            try:
                job = queue.get_nowait()
            except Empty:
                return done
            done += work(worker, job)

    busy = workers[:len(jobs)]
    if len(busy) <= 1:
        return drain(busy[0]) if busy else []
    with ThreadPoolExecutor(max_workers=len(busy), thread_name_prefix="chronicon-read") as pool:
        parts = [pool.submit(drain, worker) for worker in busy]
        return [result for part in parts for result in part.result()]


class OpenedAhead:
    """Containers of one file opened on another thread before they are needed.

    Opening costs real work (FFmpeg decodes the first frames to learn the stream's
    parameters: ~60 ms for a 1080p H.264 file), so the readers' containers are opened while
    the caller does something else with the file (probes it, picks frames). `take()` gives
    one of them, or opens one then and there when none is left or the early open failed (so
    a file that does not open raises where it did before); `close()` closes those not taken.
    """

    def __init__(self, path: Path, count: int):
        self._path = Path(path)
        self._opened: SimpleQueue[av.container.InputContainer] = SimpleQueue()
        self._lock = threading.Lock()
        self._closed = False
        self._thread = threading.Thread(target=self._open_all, args=(count,), daemon=True,
                                        name="open-ahead")
        self._thread.start()

    def _open_all(self, count: int) -> None:
        for _ in range(count):
            try:
                container = open_video(self._path)
            except Exception:  # noqa: BLE001 - whoever takes it opens again and sees why
                return
            with self._lock:
                if self._closed:
                    container.close()
                    return
                self._opened.put(container)

    def take(self) -> av.container.InputContainer:
        self._thread.join()
        try:
            return self._opened.get_nowait()
        except Empty:
            return open_video(self._path)

    def __enter__(self) -> OpenedAhead:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        with self._lock:
            self._closed = True
        self._thread.join()
        while True:
            try:
                self._opened.get_nowait().close()
            except Empty:
                return


def packet_key(packet: av.Packet) -> PacketKey:
    """How the frame index names a packet: (dts, pts), pts falling back to dts."""
    return packet.dts, (packet.pts if packet.pts is not None else packet.dts)


class _LostPosition(Exception):
    """A seek landed on a packet the index does not know as a keyframe."""


class ExactFrameReader:
    """Reads exact frames of one video stream by number; keep it open for several reads.

    `read(targets)` yields `(k, frame)` for each distinct k in ascending order; afterwards
    `warnings[k]` says why frame k may be wrong (damaged data), for the frames that may be.
    The decoder state is reused between targets: after frame k, a later target whose keyframe
    we have already passed is reached by decoding on, not by seeking again.
    """

    def __init__(self, path: Path, index: FrameIndex, threads: bool = True,
                 container: av.container.InputContainer | None = None):
        self.path = Path(path)
        self.index = index
        self.warnings: dict[int, str] = {}
        # (`container`: one opened ahead for this file and not read yet; the reader owns it.)
        self._container = container if container is not None else open_video(self.path)
        self._stream = self._container.streams.video[0]
        if threads:
            # Frame+slice threading: decoding forward through a GOP is the cost we pay.
            self._stream.thread_type = "AUTO"
        self._skip_nonref = (index.positioning == "pts"
                             and self._stream.codec_context.name in SKIP_NONREF_CODECS)
        self._frames: Iterator | None = None
        self._last = -1  # frame number of the last frame the current decode run produced
        self._want: int | None = None  # PTS being decoded towards (None: decode everything)
        self._damage: str | None = None  # the damaged packet the current frames follow
        self._run_damage: str | None = None  # the last damaged packet since the last seek

    @property
    def codec_name(self) -> str:
        return self._stream.codec_context.name

    def set_decoder_options(self, options: dict[str, str]) -> None:
        """Decoder options (e.g. `{"lowres": "3"}`: 1/8-size frames) for every frame read;
        call before the first read."""
        self._stream.codec_context.options = options

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
            if self.index.positioning == "count":
                yield k, self._read_counted(k)
            else:
                yield k, self._read_by_pts(k)

    def keyframes(self, only: set[int] | None = None) -> Iterator[tuple[int, av.VideoFrame]]:
        """Decode only the keyframes (those in `only`, if given), in order, in one pass.

        Only keyframe packets reach the decoder (each decodes on its own). Measured on a quiet
        machine: 2.1 s for the 80 keyframes of a 10-min 1080p clip, against 4.5 s with the
        decoder's own `skip_frame = "NONKEY"`, where frame threads wait on packets they drop.
        """
        self._want = None
        self._seek_to(0, from_start=True)
        fed: list[int] = []  # frame numbers of the packets sent, in order ("count")
        try:
            for packet in self._container.demux(self._stream):
                k = self._keyframe_number(packet) if packet.size else None
                if packet.size and (k is None or (only is not None and k not in only)):
                    continue  # the empty packet at the end still goes in: it flushes
                if k is not None:
                    fed.append(k)
                for frame in self._decode_packet(packet):
                    if self.index.positioning == "count":
                        yield fed.pop(0), frame
                        continue
                    position = self.index.index_at(frame.pts) if frame.pts is not None else None
                    if position is not None:
                        yield position, frame
        finally:
            # The decoder saw a broken sequence: the next read must start from a fresh seek.
            self._frames = None

    def intra_frames(self, head: int = 0) -> Iterator[tuple[int, av.VideoFrame, bool]]:
        """Decode every intra-coded frame in one pass, in order, with the `head` frames that
        follow each keyframe in decoding order: yields `(k, frame, intra)`.

        The intra frames are the keyframes, plus the I-frames inside groups of pictures where
        the decoder can skip everything else (`SKIP_NONINTRA_CODECS`, "pts" positioning);
        elsewhere the keyframes only, without heads. Every packet is fed, but the decoder
        only parses the headers of the predicted ones it skips: on a 10-min 1080p H.264 clip
        this costs about as much as feeding the keyframes alone. A keyframe resets the
        decoder's references, so the frames of its head decode exactly as in a full decode (a
        plain I-frame does not: frames after it may refer to frames before it, skipped here).
        """
        context = self._stream.codec_context
        if self.index.positioning != "pts" or context.name not in SKIP_NONINTRA_CODECS:
            for k, frame in self.keyframes():
                yield k, frame, True
            return
        self._want = None
        self._seek_to(0, from_start=True)
        left = 0  # packets of the current head still to decode in full
        key_pts = 0
        wanted: set[int] = set()  # PTS of the head frames fed, not yet out
        try:
            for packet in self._container.demux(self._stream):
                if packet.is_keyframe and packet.size and packet.pts is not None:
                    left, key_pts = 1 + head, packet.pts
                if left and packet.pts is not None and packet.pts >= key_pts:
                    # (A frame shown before its keyframe may refer to frames before it, as in
                    # an open group of pictures: those were skipped, so it is not kept.)
                    wanted.add(packet.pts)
                context.skip_frame = "DEFAULT" if left else "NONINTRA"
                left = max(0, left - 1)
                for frame in self._decode_packet(packet):
                    intra = frame.pict_type == av.video.frame.PictureType.I
                    if frame.pts is None or not (intra or frame.pts in wanted):
                        continue
                    wanted.discard(frame.pts)
                    position = self.index.index_at(frame.pts)
                    if position is not None:
                        yield position, frame, intra
        finally:
            context.skip_frame = "DEFAULT"
            self._frames = None

    # ---- internals ------------------------------------------------------------------------

    def _keyframe_number(self, packet: av.Packet) -> int | None:
        if not packet.is_keyframe:
            return None
        if self.index.positioning == "count":
            return self.index.key_packets.get(packet_key(packet))
        k = self.index.index_at(packet.pts) if packet.pts is not None else None
        return k if k is not None and self.index.keyframe[k] else None

    def _decode_packet(self, packet: av.Packet) -> list[av.VideoFrame]:
        """Decode one packet as a player would: damaged data is skipped, not fatal."""
        try:
            frames = self._stream.decode(packet)
        except av.error.DecoderNotFoundError:
            raise
        except av.FFmpegError as exc:
            at = float(packet.pts * packet.time_base) if packet.pts is not None else 0.0
            self._damage = self._run_damage = f"damaged data at {at:.3f} s ({_reason(exc)})"
            return []
        if packet.is_keyframe and packet.size:
            self._damage = None
        return frames

    def _note(self, k: int, frame: av.VideoFrame) -> None:
        if self._damage:
            self.warnings[k] = (f"decoded after {self._damage}: may show smeared blocks")
        elif frame.is_corrupt:
            self.warnings[k] = "the decoder flagged this frame as corrupt"

    # "pts" positioning -----------------------------------------------------------------------

    def _read_by_pts(self, k: int) -> av.VideoFrame:
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
        if from_start or k == 0:
            self._container.seek(0, backward=True, any_frame=False)
        else:
            target = int(self.index.pts[k])
            self._container.seek(target, backward=True, any_frame=False, stream=self._stream)
        self._frames = None
        self._last = -1
        self._damage = self._run_damage = None

    def _decoded(self) -> Iterator[av.VideoFrame]:
        if self._frames is None:
            self._frames = self._decode_packets()
        return self._frames

    def _decode_packets(self) -> Iterator[av.VideoFrame]:
        context = self._stream.codec_context
        for packet in self._container.demux(self._stream):
            if self._want is not None and self._skip_nonref:
                # A frame shown before the target that no other frame refers to is needed
                # neither for output nor as a reference: let the decoder skip it (B-frames).
                early = packet.pts is not None and packet.pts < self._want
                context.skip_frame = "NONREF" if early else "DEFAULT"
            yield from self._decode_packet(packet)

    def _decode_until(self, k: int) -> av.VideoFrame | None:
        want = self._want = int(self.index.pts[k])
        for frame in self._decoded():
            if frame.pts is None:
                continue
            position = self.index.index_at(frame.pts)
            if position is not None:
                self._last = position
            if frame.pts == want:
                self._note(k, frame)
                return frame
            if frame.pts > want:
                self._frames = None
                if self._run_damage:  # frame k itself could not be decoded: show the next one
                    self.warnings[k] = (f"frame {k} cannot be decoded ({self._run_damage}); "
                                        f"the next decodable frame is shown")
                    return frame
                return None
        self._frames = None
        return None

    # "count" positioning ---------------------------------------------------------------------

    def _read_counted(self, k: int) -> av.VideoFrame:
        start = self.index.keyframe_before(k)
        if self._frames is None or k <= self._last or start > self._last + 1:
            self._frames = self._counted_run(start)
        try:
            return self._count_to(k)
        except _LostPosition:
            self._frames = self._counted_run(0, from_start=True)
            return self._count_to(k)

    def _count_to(self, k: int) -> av.VideoFrame:
        assert self._frames is not None
        for position, frame in self._frames:
            self._last = position
            if position == k:
                self._note(k, frame)
                return frame
            if position > k:
                raise _LostPosition
        self._frames = None
        raise CorruptVideo(f"{self.path.name}: frame {k} (at {self.index.timestamp(k):.3f} s)"
                           " cannot be decoded; the file is damaged from there on")

    def _counted_run(self, start: int, from_start: bool = False
                     ) -> Iterator[tuple[int, av.VideoFrame]]:
        self._stream.codec_context.skip_frame = "DEFAULT"
        key = self.index.packet_of_keyframe.get(start)
        if from_start or start == 0 or key is None:
            self._container.seek(0, backward=True, any_frame=False)
            from_start = True
        else:
            dts, pts = key
            self._container.seek(dts if dts is not None else pts, backward=True,
                                 any_frame=False, stream=self._stream)
        self._last = -1
        self._damage = self._run_damage = None
        return self._count_frames(0 if from_start else None)

    def _count_frames(self, position: int | None) -> Iterator[tuple[int, av.VideoFrame]]:
        for packet in self._container.demux(self._stream):
            if position is None and packet.size:
                position = self.index.key_packets.get(packet_key(packet))
                if position is None:
                    raise _LostPosition
            for frame in self._decode_packet(packet):
                assert position is not None
                yield position, frame
                position += 1


def _reason(exc: Exception) -> str:
    text = getattr(exc, "strerror", None) or str(exc)
    return str(text).split(":")[0].strip().rstrip(".").lower()


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
    """A small RGB uint8 image (about `width` pixels across): cut detection compares these.

    For 4:2:0 frames (nearly every video) it is read straight from the planes: 4x4-sample
    block means of the luma, chroma sampled at the block centres, then YCbCr -> RGB on the
    few pixels left. swscale would first convert the whole frame (5 ms a 1080p frame on a
    busy machine against ~0.3 ms here), most of the cost of searching a group of pictures.
    """
    if frame.format.name in ("yuv420p", "yuvj420p") and frame.width >= 2 * width:
        return _yuv420_thumbnail(frame, width)
    height = max(1, round(frame.height * width / frame.width))
    return frame.reformat(width=width, height=height, format="rgb24",
                          interpolation="BILINEAR").to_ndarray()


def _yuv420_thumbnail(frame: av.VideoFrame, width: int) -> np.ndarray:
    stride = max(1, frame.width // width // 4)  # 4 samples per block side, `stride` apart
    block = 4 * stride
    rows, cols = frame.height // block, frame.width // block
    luma = _plane(frame, 0)[:rows * block:stride, :cols * block:stride].astype(np.float32)
    y = luma.reshape(rows, 4, cols, 4).mean(axis=(1, 3))
    centre = block // 4  # chroma planes are half size: a block is block/2 chroma pixels
    u = _plane(frame, 1)[centre:rows * block // 2:block // 2, centre:cols * block // 2:block // 2]
    v = _plane(frame, 2)[centre:rows * block // 2:block // 2, centre:cols * block // 2:block // 2]
    cb, cr = u[:rows, :cols].astype(np.float32) - 128, v[:rows, :cols].astype(np.float32) - 128
    rgb = np.stack([y + 1.402 * cr, y - 0.344 * cb - 0.714 * cr, y + 1.772 * cb], axis=2)
    return np.clip(rgb, 0, 255).astype(np.uint8)


def _plane(frame: av.VideoFrame, i: int) -> np.ndarray:
    plane = frame.planes[i]
    return np.frombuffer(plane, np.uint8).reshape(-1, plane.line_size)

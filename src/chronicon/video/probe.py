"""What a video file holds, read with PyAV: `probe(path) -> VideoInfo`.

Probing demuxes the whole video stream once and decodes its first frames (see `frame_index`),
both through the one container it opens, so the frame count is the count a full decode gives
even where the header is silent or wrong (WebM/MKV headers often say 0), and every way a file
can be unusable surfaces here as one specific error from `chronicon.errors`. The frame index
is cached per file version, in memory (the sampler that follows reuses it instead of
demuxing again) and, where configured, on disk (`index_cache`: a new process does not read
the whole file again).
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any, NoReturn

import av
import numpy as np

from ..errors import (
    AudioOnly,
    CorruptVideo,
    EmptyVideo,
    FrameTooLarge,
    NotAVideo,
    UnreadableVideo,
    UnsupportedCodec,
    VideoNotFound,
)
from . import index_cache
from .decode import open_video
from .frame_index import Calibration, Calibrator, FrameIndex, build_index, scan_packets

# Leading bytes of the containers we accept: a file that starts like one of these but does not
# open is a damaged video (CorruptVideo), anything else is not a video at all (NotAVideo).
_SIGNATURES: tuple[tuple[int, bytes], ...] = (
    (4, b"ftyp"), (4, b"moov"), (4, b"mdat"), (4, b"free"), (4, b"wide"), (4, b"skip"),
    (0, b"\x1a\x45\xdf\xa3"),  # Matroska / WebM (EBML)
    (0, b"RIFF"),  # AVI
    (0, b"\x00\x00\x01\xba"), (0, b"\x00\x00\x01\xb3"),  # MPEG-PS / MPEG-1 video
    (0, b"\x47"),  # MPEG-TS sync byte
    (0, b"FLV"), (0, b"OggS"), (0, b"\x30\x26\xb2\x75"),  # FLV, Ogg, ASF/WMV
)

# The largest decoded frame (width x height) we accept unless the caller says otherwise
# (`Settings.max_pixels`, CHRONICON_MAX_PIXELS): 8K is 33 MP; a GIF declaring a 16000x16000
# screen (256 MP) would need a gigabyte per decoded frame.
DEFAULT_MAX_PIXELS = 64_000_000

# Average frame intervals may differ this much (relative to the median) before we call the
# frame rate variable; container time bases (1 ms in Matroska) round 1/30 s to 33 or 34 ms.
_VFR_TOLERANCE = 0.1


@dataclass(frozen=True)
class VideoInfo:
    """A video file's facts. Sizes in pixels as coded; `rotation` is the clockwise turn (0, 90,
    180, 270 degrees) a player applies for display (display matrix or legacy `rotate` tag).
    `frame_count` is always counted from the demuxed packets (what a full decode yields);
    `frame_count_source` is "header" when the container's own count agrees and "packets" when
    the header is silent or wrong ("duration", an estimate, is part of the contract but never
    needed: a stream we cannot demux is refused as corrupt). `warnings` lists what was odd but
    usable ("header lists 444 frames, 68 present"), for the result to carry."""

    path: str
    container: str
    codec: str
    width: int
    height: int
    rotation: int
    fps: float
    variable_fps: bool
    frame_count: int
    frame_count_source: str
    duration: float
    has_audio: bool
    bit_rate: int | None
    pix_fmt: str = ""
    keyframes: int = 0
    warnings: list[str] = field(default_factory=list)

    @property
    def display_width(self) -> int:
        return self.height if self.rotation in (90, 270) else self.width

    @property
    def display_height(self) -> int:
        return self.width if self.rotation in (90, 270) else self.height

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["display_width"], data["display_height"] = self.display_width, self.display_height
        return data


def probe(path: str | Path, *, max_pixels: int | None = DEFAULT_MAX_PIXELS) -> VideoInfo:
    """Read a video's facts; raise the specific `BadVideo` subclass when it cannot be used.

    A stream whose decoded frame would exceed `max_pixels` (None: no limit) is refused with
    `FrameTooLarge` before a single frame is decoded: opening reads only headers.
    """
    path = Path(path)
    _check_file(path)
    container = _open(path)
    try:
        stream = _video_stream(path, container)
        check_pixel_budget(path, stream.codec_context.width, stream.codec_context.height,
                           max_pixels)
        # The header fields `_video_info` reads survive the decoding and demuxing below: one
        # open serves the whole probe, the index included when it is not known yet.
        version = file_version(path)
        index = _known_index(version)
        if index is not None:
            rotation = _first_frame_rotation(path, container, stream)
        else:
            try:
                index, calibration = _build_index(container)
            except (av.FFmpegError, OSError, IndexError) as exc:
                raise _what_is_wrong_now(path, exc) from None
            rotation = _calibrated_rotation(path, stream, calibration)
            _keep_index(version, index)
        return _video_info(path, container, index, rotation)
    finally:
        container.close()


def frame_index(path: str | Path) -> FrameIndex:
    """The frame index of the file's video stream, cached while the file is unchanged: in
    memory, and on disk when `index_cache` has a directory.

    Callers may hold a probe taken earlier (an upload probed at submission); a file that has
    changed since and no longer reads raises what `probe` would say of it now (the specific
    BadVideo, the file's name, never FFmpeg's message with the server path)."""
    try:
        version = file_version(path)
        index = _known_index(version)
        if index is None:
            with open_video(Path(path)) as container:
                index, _ = _build_index(container)
            _keep_index(version, index)
        return index
    except (av.FFmpegError, OSError, IndexError) as exc:
        raise _what_is_wrong_now(Path(path), exc) from None


def _what_is_wrong_now(path: Path, exc: Exception) -> Exception:
    _check_file(path)
    with _open(path) as container:
        _video_stream(path, container)
    if isinstance(exc, OSError) and not isinstance(exc, av.FFmpegError):
        return exc  # the file reads again: a passing I/O error, as it was
    return CorruptVideo(f"{path.name}: damaged, its packets cannot be read ({_reason(exc)})")


def file_version(path: str | Path) -> tuple[str, int, int]:
    """(resolved path, size, mtime in ns): what per-file caches are keyed by, so a rewritten
    file is read again."""
    path = Path(path).resolve()
    stat = path.stat()
    return str(path), stat.st_size, stat.st_mtime_ns


FileVersion = tuple[str, int, int]


class _RecentIndexes:
    """The frame indexes of the last few file versions this process used (keyed by
    `file_version`: a rewritten file is indexed again)."""

    def __init__(self, size: int = 16):
        self._size = size
        self._indexes: OrderedDict[FileVersion, FrameIndex] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, version: FileVersion) -> FrameIndex | None:
        with self._lock:
            index = self._indexes.get(version)
            if index is not None:
                self._indexes.move_to_end(version)
            return index

    def put(self, version: FileVersion, index: FrameIndex) -> None:
        with self._lock:
            self._indexes[version] = index
            self._indexes.move_to_end(version)
            while len(self._indexes) > self._size:
                self._indexes.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._indexes.clear()


_recent_indexes = _RecentIndexes()


def _known_index(version: FileVersion) -> FrameIndex | None:
    """The index of this file version from memory, else from the disk cache, else None."""
    index = _recent_indexes.get(version)
    if index is None:
        index = index_cache.load(*version)
        if index is not None:
            _recent_indexes.put(version, index)
    return index


def _keep_index(version: FileVersion, index: FrameIndex) -> None:
    _recent_indexes.put(version, index)
    path, size, mtime_ns = version
    # A file still being written (an upload, a recording) changed while we read it: what we
    # read belongs to no version we could name, so it is not kept on disk.
    with contextlib.suppress(OSError):
        if file_version(path) == version:
            index_cache.save(path, size, mtime_ns, index)


def _build_index(container: av.container.InputContainer) -> tuple[FrameIndex, Calibration]:
    """Index the video stream of a container just opened, in one demux pass.

    The calibration decode (FFmpeg, without the GIL) runs on one core, fed the first packets
    as the demux pass (mostly Python per packet) reads them on the other: the cold cost is
    about the demux pass alone, and the file is opened once."""
    audio = container.streams.audio[0] if container.streams.audio else None
    stream = container.streams.video[0]
    calibrator = Calibrator(stream)
    with ThreadPoolExecutor(max_workers=1) as pool:
        calibration = pool.submit(calibrator.run)
        packets = scan_packets(container, stream, audio, calibrator)
        index = build_index(packets, calibration.result(), stream.time_base or Fraction(1, 1))
    return index, calibration.result()


def check_pixel_budget(path: Path, width: int, height: int, max_pixels: int | None) -> None:
    """Raise FrameTooLarge when a width x height frame exceeds `max_pixels` (None: no limit)."""
    if max_pixels is None or width * height <= max_pixels:
        return
    raise FrameTooLarge(
        f"{path.name}: a decoded frame would be {width}x{height} = "
        f"{width * height / 1e6:.1f} megapixels, over the limit of {max_pixels / 1e6:.1f} "
        f"megapixels (CHRONICON_MAX_PIXELS); scale the video down first (e.g. ffmpeg -vf "
        f"scale=1920:-2), or raise CHRONICON_MAX_PIXELS if you trust the file")


def _check_file(path: Path) -> None:
    if not path.exists():
        raise VideoNotFound(f"{path.name}: no such file ({path})")
    if path.is_dir():
        raise UnreadableVideo(f"{path.name}: is a directory, not a video file")
    if not os.access(path, os.R_OK):
        raise UnreadableVideo(f"{path.name}: permission denied (cannot read the file)")
    if path.stat().st_size == 0:
        raise NotAVideo(f"{path.name}: the file is empty (0 bytes)")


def _looks_like_video_container(path: Path) -> bool:
    with path.open("rb") as fh:
        head = fh.read(16)
    return any(head[at:at + len(sig)] == sig for at, sig in _SIGNATURES)


def _open(path: Path) -> av.container.InputContainer:
    try:
        return open_video(path)
    except PermissionError:
        raise UnreadableVideo(f"{path.name}: permission denied (cannot read the file)") from None
    except av.FFmpegError as exc:
        if _looks_like_video_container(path):
            raise CorruptVideo(
                f"{path.name}: damaged or truncated, nothing could be read "
                f"(the container index is missing or unreadable: {_reason(exc)})") from None
        raise NotAVideo(f"{path.name}: not a video or media file FFmpeg recognises "
                        f"({_reason(exc)})") from None


def _reason(exc: Exception) -> str:
    text = getattr(exc, "strerror", None) or str(exc)
    return str(text).split(":")[0].strip().rstrip(".").lower()


def _video_stream(path: Path, container: av.container.InputContainer
                  ) -> av.video.stream.VideoStream:
    videos = [s for s in container.streams.video
              if not (s.disposition & av.stream.Disposition.attached_pic)]
    if not videos:
        if container.streams.audio:
            raise AudioOnly(f"{path.name}: audio only, the file has no video stream")
        raise NotAVideo(f"{path.name}: the file has no video stream")
    stream = videos[0]
    if stream.codec_context is None:
        # PyAV gives no codec context when FFmpeg does not know the codec at all.
        raise UnsupportedCodec(f"{path.name}: unsupported video codec (this FFmpeg build has "
                               "no decoder for it); convert it, e.g. to H.264")
    return stream


def _first_frame_rotation(path: Path, container: av.container.InputContainer,
                          stream: av.video.stream.VideoStream) -> int:
    """Decode the first frame: proves the stream decodes and gives its display rotation."""
    try:
        for frame in container.decode(stream):
            return _clockwise(frame.rotation, stream.metadata.get("rotate"))
    except av.FFmpegError as exc:
        _refuse_undecodable(path, stream, exc)
    raise EmptyVideo(f"{path.name}: the video stream holds no decodable frame")


def _calibrated_rotation(path: Path, stream: av.video.stream.VideoStream,
                         calibration: Calibration) -> int:
    """What `_first_frame_rotation` says, from the calibration decode: the same packets from
    the start through the same decoder."""
    if calibration.first_error is not None:
        _refuse_undecodable(path, stream, calibration.first_error)
    if calibration.first_rotation is None:
        # Nothing came out of the packets calibrated (the first keyframe lies further in, or
        # the stream cannot be read): decode on, as a player would, from a fresh open.
        with _open(path) as container:
            return _first_frame_rotation(path, container, _video_stream(path, container))
    return _clockwise(calibration.first_rotation, stream.metadata.get("rotate"))


def _refuse_undecodable(path: Path, stream: av.video.stream.VideoStream,
                        exc: av.FFmpegError) -> NoReturn:
    if isinstance(exc, av.error.DecoderNotFoundError):
        raise UnsupportedCodec(f"{path.name}: no decoder for the video codec "
                               f"'{stream.codec_context.name}' in this FFmpeg build") from None
    raise CorruptVideo(f"{path.name}: damaged, the first frame cannot be decoded "
                       f"({_reason(exc)})") from None


def _clockwise(matrix_rotation: int | float, rotate_tag: str | None) -> int:
    # The display matrix gives the counter-clockwise angle; the legacy tag the clockwise one.
    if matrix_rotation:
        return int(round(-matrix_rotation / 90.0)) * 90 % 360
    if rotate_tag and rotate_tag.lstrip("-").isdigit():
        return int(round(int(rotate_tag) / 90.0)) * 90 % 360
    return 0


def _video_info(path: Path, container: av.container.InputContainer, index: FrameIndex,
                rotation: int) -> VideoInfo:
    stream = container.streams.video[0]
    n = len(index)
    if n == 0:
        raise EmptyVideo(f"{path.name}: the video stream holds no frames")
    fps, variable = _frame_rate(index, stream)
    duration = _duration(index, fps)
    warnings = [*index.notes, *_check_complete(path, container, index, duration)]
    header = int(stream.frames or 0)
    ctx = stream.codec_context
    return VideoInfo(
        path=str(path),
        container=container.format.name,
        codec=ctx.name,
        width=ctx.width,
        height=ctx.height,
        rotation=rotation,
        fps=round(fps, 6),
        variable_fps=variable,
        frame_count=n,
        frame_count_source="header" if header == n else "packets",
        duration=round(duration, 6),
        has_audio=bool(container.streams.audio),
        bit_rate=(container.bit_rate or None),
        pix_fmt=ctx.pix_fmt or "",
        keyframes=int(index.keyframe.sum()),
        warnings=warnings,
    )


def _frame_rate(index: FrameIndex, stream: av.video.stream.VideoStream) -> tuple[float, bool]:
    """Average frame rate over the stream and whether frame intervals vary."""
    if len(index) < 2:
        rate = stream.average_rate or stream.guessed_rate or stream.base_rate
        return (float(rate) if rate else 0.0), False
    intervals = np.diff(index.pts).astype(np.float64) * float(index.time_base)
    span = float(intervals.sum())
    fps = (len(index) - 1) / span if span > 0 else 0.0
    # np.median would import numpy.ma on first use (~70 ms of a warm probe's ~150 ms).
    ordered = np.sort(intervals)
    median = float(ordered[(len(ordered) - 1) // 2] + ordered[len(ordered) // 2]) / 2
    tick = float(index.time_base)
    spread = float(intervals.max() - intervals.min())
    variable = spread > max(2 * tick, _VFR_TOLERANCE * median)
    return fps, variable


def _duration(index: FrameIndex, fps: float) -> float:
    # The last frame is shown for one frame interval after its timestamp.
    last = index.timestamp(len(index) - 1)
    return last + (1.0 / fps if fps > 0 else 0.0)


def _check_complete(path: Path, container: av.container.InputContainer, index: FrameIndex,
                    duration: float) -> list[str]:
    """A truncated file demuxes cleanly up to the cut: compare how far the packets reach with
    the duration the header promises. A frame count that disagrees with the packets while the
    packets reach the end is normal in the wild (dropped frames, edit lists): a warning."""
    read = f"readable up to {duration:.2f} s ({len(index)} frames)"
    if index.read_error:
        raise CorruptVideo(f"{path.name}: damaged, reading stopped at {duration:.2f} s "
                           f"({len(index)} frames): {index.read_error}")
    header_frames = int(container.streams.video[0].frames or 0)
    if container.duration:
        promised = (container.duration + (container.start_time or 0)) / 1e6
        # Half a second of slack plus 10 %: audio priming and rounding, never a real cut.
        if index.end_time < 0.9 * promised - 0.5:
            raise CorruptVideo(f"{path.name}: truncated, {read} of {promised:.2f} s")
    if header_frames <= len(index):
        return []
    # More frames in the header than packets: dropped frames (the packets still reach the end
    # of the time the header's count spans) or a cut (they stop short of it).
    rate = container.streams.video[0].average_rate
    spanned = header_frames / float(rate) if rate else float("inf")
    if index.end_time < 0.9 * spanned - 0.5:
        raise CorruptVideo(f"{path.name}: truncated, {read}; the header lists "
                           f"{header_frames} frames")
    if any("edit list" in note for note in index.notes):
        return []  # the hidden pre-roll packets are the difference, already noted
    return [f"the header lists {header_frames} frames, {len(index)} present"]

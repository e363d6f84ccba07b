"""Picking the frames that matter: `sample(path, n, strategy, resize) -> list[Frame]`.

A `Sampler` (`sampler.py`) picks WHICH frame numbers to take; `sample` reads them once (exact
frames through `decode.ExactFrameReader`, resized and turned upright by `decode.to_rgb_image`).
`SAMPLERS` is built from each sampler's `name`. Strategies:

- `uniform`: the middle frame of each of n equal segments of the clip.
- `motion`:  the n frames where most changes (`motion.motion_scores`), kept apart in time.
- `scene`:   a frame of each scene between hard cuts (`scenes.find_scenes`), filled with
             uniform picks when the clip has fewer scenes than n; with more scenes than n,
             one per n-th of the clip, preferring scenes that look unlike those picked.

Every strategy returns distinct frames sorted by index; a clip with fewer than n frames gives
each of its frames once. `start`/`end` (seconds) restrict every strategy to a span of the clip.
"""

from __future__ import annotations

import contextlib
import logging
from pathlib import Path

import av
import numpy as np

from ..errors import BadParameter
from ..events import EventCallback, FrameSampled, ignore_event
from .decode import (
    READERS,
    ExactFrameReader,
    OpenedAhead,
    groups_of_pictures,
    side_by_side,
    to_rgb_image,
)
from .frame_index import FrameIndex
from .frames import Frame
from .motion import MotionSampler
from .probe import VideoInfo, frame_index, probe
from .sampler import Sampler, UniformSampler, fill_with_uniform, uniform_indices
from .scenes import SceneSampler, scene_middles

__all__ = ["SAMPLERS", "STRATEGIES", "Sampler", "fill_with_uniform", "read_frames", "sample",
           "scene_middles", "uniform_indices"]

log = logging.getLogger(__name__)

MIN_FRAMES = 1
MAX_FRAMES = 16
DEFAULT_FRAMES = 8
MIN_RESIZE = 32
MAX_RESIZE = 4096
DEFAULT_RESIZE = 336

SAMPLERS: dict[str, Sampler] = {sampler.name: sampler for sampler in
                                (UniformSampler(), MotionSampler(), SceneSampler())}
STRATEGIES = tuple(SAMPLERS)


def read_frames(path: Path, info: VideoInfo, indices: list[int], resize: int,
                opened: OpenedAhead | None = None) -> list[Frame]:
    """The exact frames `indices` of the video, resized and upright, sorted by index.
    `opened`: the file's containers opened ahead, used by the readers (not closed here).

    Targets in different groups of pictures are decoded side by side by READERS readers
    (FFmpeg decodes and scales without holding the GIL), each with its own single-threaded
    decoder: two cores decode two groups rather than passing the frames of one group between
    threads. Each reader takes the next group when it is done, costliest first (the frames from
    the keyframe to the last target), so both cores stay busy to the end even when the groups
    differ in cost or another process holds one core.
    """
    index = frame_index(path)
    groups = groups_of_pictures(sorted(set(indices)), index)
    if len(groups) < 2 or READERS < 2:
        return _read_run(path, info, index, sorted(set(indices)), resize, threads=True,
                         container=opened.take() if opened else None)
    with contextlib.ExitStack() as stack:
        readers = [stack.enter_context(ExactFrameReader(
            path, index, threads=False, container=opened.take() if opened else None))
            for _ in range(min(READERS, len(groups)))]
        frames = side_by_side(groups, readers,
                              lambda reader, group: _frames(reader, info, index, group, resize),
                              cost=lambda g: g[-1] - index.keyframe_before(g[0]))
    return sorted(frames, key=lambda f: f.index)


def _read_run(path: Path, info: VideoInfo, index: FrameIndex, targets: list[int], resize: int,
              threads: bool, container: av.container.InputContainer | None = None
              ) -> list[Frame]:
    with ExactFrameReader(path, index, threads=threads, container=container) as reader:
        return _frames(reader, info, index, targets, resize)


def _frames(reader: ExactFrameReader, info: VideoInfo, index: FrameIndex, targets: list[int],
            resize: int) -> list[Frame]:
    frames = [(k, to_rgb_image(frame, info.rotation, resize)) for k, frame in reader.read(targets)]
    return [Frame(index=k, timestamp=round(index.timestamp(k), 6), image=image,
                  warnings=(reader.warnings[k],) if k in reader.warnings else ())
            for k, image in frames]


def check_parameters(n: int, strategy: str, resize: int) -> None:
    """Raise BadParameter naming the flag when a value is outside its documented range."""
    if isinstance(n, bool) or not isinstance(n, int) or not MIN_FRAMES <= n <= MAX_FRAMES:
        raise BadParameter("frames", f"must be a whole number from {MIN_FRAMES} to "
                                     f"{MAX_FRAMES}, got {n!r}")
    if strategy not in STRATEGIES:
        raise BadParameter("sampling", f"must be one of {', '.join(STRATEGIES)}, "
                                       f"got {strategy!r}")
    if (isinstance(resize, bool) or not isinstance(resize, int)
            or not MIN_RESIZE <= resize <= MAX_RESIZE):
        raise BadParameter("resize", f"the longest edge in pixels must be from {MIN_RESIZE} "
                                     f"to {MAX_RESIZE}, got {resize!r}")


def check_span(start: float | None, end: float | None) -> None:
    """Raise BadParameter when `start`/`end` (seconds) are negative or out of order."""
    for name, value in (("start", start), ("end", end)):
        if value is not None and (isinstance(value, bool) or not value >= 0):
            raise BadParameter(name, f"must be a time in seconds >= 0, got {value!r}")
    if start is not None and end is not None and end <= start:
        raise BadParameter("end", f"must be after start ({start} s), got {end} s")


def frame_span(path: Path, info: VideoInfo, start: float | None, end: float | None) -> range:
    """The frame numbers whose timestamps lie in [start, end) seconds (None: open end)."""
    if start is None and end is None:
        return range(info.frame_count)
    stamps = frame_index(path).timestamps
    lo = 0 if start is None else int(np.searchsorted(stamps, start - 1e-9, side="left"))
    hi = len(stamps) if end is None else int(np.searchsorted(stamps, end - 1e-9, side="left"))
    if hi <= lo:
        raise BadParameter("start", f"no frame between {start or 0:.3f} s and "
                                    f"{end if end is not None else info.duration:.3f} s "
                                    f"(the video lasts {info.duration:.3f} s)")
    return range(lo, hi)


def sample(path: str | Path, n: int = DEFAULT_FRAMES, strategy: str = "uniform",
           resize: int = DEFAULT_RESIZE, info: VideoInfo | None = None,
           on_event: EventCallback = ignore_event, *, start: float | None = None,
           end: float | None = None) -> list[Frame]:
    """Sample n frames of the video at `path` with `strategy` (see the module docstring).

    `start`/`end` (seconds from the first frame, end exclusive; None = the clip's own ends)
    restrict the picks to a span. Parameters are checked before the file is touched
    (BadParameter names the flag); then the file is probed unless `info` is given, raising the
    specific BadVideo subclass. Emits one `FrameSampled` event per returned frame. A clip
    (or span) shorter than n frames gives all its frames (fewer than n), and logs that it did.
    """
    check_parameters(n, strategy, resize)
    check_span(start, end)
    path = Path(path)
    # The readers' containers open on another core while the probe and the picking run.
    with OpenedAhead(path, READERS) as opened:
        info = info or probe(path)
        span = frame_span(path, info, start, end)
        if len(span) <= n:
            picks = list(span)
        else:
            picks = SAMPLERS[strategy].pick(path, frame_index(path), n, span)
        frames = read_frames(path, info, sorted(set(picks)), resize, opened)
    if len(frames) < n:
        log.info("%s has only %d frames: returning all of them instead of %d",
                 path.name, len(frames), n)
    for position, frame in enumerate(frames, start=1):
        on_event(FrameSampled(position=position, total=len(frames), index=frame.index,
                              timestamp=frame.timestamp))
    return frames


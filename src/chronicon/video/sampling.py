"""Picking the frames that matter: `sample(path, n, strategy, resize) -> list[Frame]`.

A `Sampler` decides WHICH frame numbers to take; reading them is shared (exact frames through
`decode.ExactFrameReader`, resized and turned upright by `decode.to_rgb_image`). Strategies:

- `uniform`: the middle frame of each of n equal segments of the clip.
- `motion`:  the n frames where most changes (`motion.motion_scores`), kept apart in time.
- `scene`:   a frame of each scene between hard cuts (`scenes.find_scenes`), filled with
             uniform picks when the clip has fewer scenes than n; with more scenes than n,
             one per n-th of the clip, preferring scenes that look unlike those picked.

Every strategy returns distinct frames sorted by index; a clip with fewer than n frames gives
each of its frames once. `start`/`end` (seconds) restrict every strategy to a span of the clip.
"""

from __future__ import annotations

import logging
from itertools import pairwise
from pathlib import Path
from typing import Protocol

import numpy as np

from ..errors import BadParameter
from ..events import EventCallback, FrameSampled, ignore_event
from .decode import ExactFrameReader, to_rgb_image
from .frames import Frame
from .motion import motion_scores, pick_peaks
from .probe import VideoInfo, frame_index, probe
from .scenes import find_scenes, histogram_distance

log = logging.getLogger(__name__)

MIN_FRAMES = 1
MAX_FRAMES = 16
DEFAULT_FRAMES = 8
STRATEGIES = ("uniform", "motion", "scene")
MIN_RESIZE = 32
MAX_RESIZE = 4096
DEFAULT_RESIZE = 336


class Sampler(Protocol):
    """One sampling strategy. `sample` is the only method an implementation must write."""

    def sample(self, path: Path, info: VideoInfo, n: int, resize: int,
               span: range) -> list[Frame]:
        """Return at most n distinct frames of the video among the frame numbers `span`,
        sorted by index, each an upright RGB image whose longest edge is `resize` pixels."""
        ...


def uniform_indices(frame_count: int, n: int) -> list[int]:
    """The middle frame of each of n equal segments of [0, frame_count).

    Segment i covers [i*N/n, (i+1)*N/n); its midpoint floor((i + 1/2) * N / n) is always inside
    the clip, and for N >= n consecutive midpoints are at least one frame apart, so there are
    no duplicates. Integer arithmetic: no float rounding at the ends of long clips.
    """
    if frame_count <= n:
        return list(range(frame_count))
    return [((2 * i + 1) * frame_count) // (2 * n) for i in range(n)]


def read_frames(path: Path, info: VideoInfo, indices: list[int], resize: int) -> list[Frame]:
    """The exact frames `indices` of the video, resized and upright, sorted by index."""
    index = frame_index(path)
    with ExactFrameReader(path, index) as reader:
        frames = [(k, to_rgb_image(frame, info.rotation, resize))
                  for k, frame in reader.read(indices)]
        return [Frame(index=k, timestamp=round(index.timestamp(k), 6), image=image,
                      warnings=(reader.warnings[k],) if k in reader.warnings else ())
                for k, image in frames]


def _shift(picks: list[int], offset: int) -> list[int]:
    return [offset + k for k in picks]


class UniformSampler:
    """Evenly spread frames: segment midpoints."""

    def sample(self, path: Path, info: VideoInfo, n: int, resize: int,
               span: range) -> list[Frame]:
        picks = _shift(uniform_indices(len(span), n), span.start)
        return read_frames(path, info, picks, resize)


class MotionSampler:
    """The frames where most changes, at least a half-segment (N / 2n frames) apart."""

    def sample(self, path: Path, info: VideoInfo, n: int, resize: int,
               span: range) -> list[Frame]:
        if len(span) <= n:
            return read_frames(path, info, list(span), resize)
        index = frame_index(path)
        scores = motion_scores(path, index)[span.start:span.stop]
        min_gap = max(1, len(span) // (2 * n))
        picks = fill_with_uniform(pick_peaks(scores, n, min_gap), len(span), n)
        return read_frames(path, info, _shift(picks, span.start), resize)


class SceneSampler:
    """A frame of each scene between hard cuts (see `scene_middles`); uniform picks added when
    there are fewer scenes than n."""

    def sample(self, path: Path, info: VideoInfo, n: int, resize: int,
               span: range) -> list[Frame]:
        if len(span) <= n:
            return read_frames(path, info, list(span), resize)
        index = frame_index(path)
        cuts, histograms = find_scenes(path, index)
        cuts = [k - span.start for k in cuts if span.start < k < span.stop]
        looks = {k - span.start: h for k, h in histograms.items() if k in span}
        keyframes = np.flatnonzero(index.keyframe[span.start:span.stop])
        picks = scene_middles(cuts, len(span), n, keyframes, looks)
        picks = fill_with_uniform(picks, len(span), n)
        return read_frames(path, info, _shift(picks, span.start), resize)


# How much a scene's likeness to those already picked (0-1) counts against its share of the
# n-th of the clip being filled (0-1).
VARIETY_WEIGHT = 0.5


def scene_middles(cuts: list[int], frame_count: int, n: int,
                  keyframes: np.ndarray | None = None,
                  looks: dict[int, np.ndarray] | None = None) -> list[int]:
    """A representative frame per scene; with more scenes than n, one per n-th of the clip.

    The representative is the middle frame, or, when `keyframes` (frame numbers) has one in the
    central half of the scene, the keyframe nearest the middle: it shows the same shot, is
    coded at the best quality, and decodes on its own instead of after half a group of
    pictures (the difference between seconds and a fraction of one on long clips).

    With more scenes than n, the clip is cut into n equal parts and each part takes one scene
    not taken yet: the one that fills most of the part, less VARIETY_WEIGHT times how much it
    looks like the picks so far (colour histograms of its frames in `looks`, if any), and is
    represented within that part. So picks cover the whole duration, and a shot the
    recording keeps coming back to (two cameras in turn) is not shown again and again.
    """
    bounds = [0, *sorted(set(cuts)), frame_count]
    scenes = [(start, end) for start, end in pairwise(bounds) if end > start]
    if len(scenes) <= n:
        return sorted(_representative(start, end, keyframes) for start, end in scenes)
    looks = looks or {}
    picks: list[int] = []
    seen: list[np.ndarray] = []
    taken: set[tuple[int, int]] = set()
    for i in range(n):
        part = (i * frame_count // n, (i + 1) * frame_count // n)
        best = _best_scene(scenes, taken, part, seen, looks)
        if best is None:
            continue  # every scene here is taken: fill_with_uniform adds a frame later
        taken.add(best)
        start, end = max(best[0], part[0]), min(best[1], part[1])
        picks.append(_representative(start, end, keyframes))
        seen += _looks_of(best, looks)
    return sorted(set(picks))


def _best_scene(scenes: list[tuple[int, int]], taken: set[tuple[int, int]],
                part: tuple[int, int], seen: list[np.ndarray],
                looks: dict[int, np.ndarray]) -> tuple[int, int] | None:
    def score(scene: tuple[int, int]) -> float:
        share = (min(scene[1], part[1]) - max(scene[0], part[0])) / (part[1] - part[0])
        likeness = max((1 - histogram_distance(a, b) for a in _looks_of(scene, looks)
                        for b in seen), default=0.0)
        return share - VARIETY_WEIGHT * likeness

    candidates = [s for s in scenes if s not in taken and s[0] < part[1] and s[1] > part[0]]
    return max(candidates, key=score, default=None)


def _looks_of(scene: tuple[int, int], looks: dict[int, np.ndarray]) -> list[np.ndarray]:
    return [h for k, h in looks.items() if scene[0] <= k < scene[1]]


def _representative(start: int, end: int, keyframes: np.ndarray | None) -> int:
    middle = (start + end - 1) // 2
    if keyframes is None or len(keyframes) == 0:
        return middle
    quarter = (end - start) // 4
    central = keyframes[(keyframes >= start + quarter) & (keyframes < end - quarter)]
    if len(central) == 0:
        return middle
    return int(central[np.argmin(np.abs(central - middle))])


def fill_with_uniform(picks: list[int], frame_count: int, n: int) -> list[int]:
    """Add uniform picks, farthest from those already chosen first, until there are n."""
    chosen = sorted(set(picks))
    if len(chosen) >= n:
        return chosen[:n]
    spare = [k for k in uniform_indices(frame_count, n) if k not in chosen]
    if len(spare) < n - len(chosen):  # uniform midpoints collide with picks: use any frame
        spare += [k for k in range(frame_count) if k not in chosen and k not in spare]
    while len(chosen) < n and spare:
        taken = np.asarray(chosen) if chosen else np.asarray([-frame_count])
        distance = [int(np.min(np.abs(taken - k))) for k in spare]
        best = spare.pop(int(np.argmax(distance)))  # argmax: the earliest on ties
        chosen.append(best)
    return sorted(chosen)


SAMPLERS: dict[str, Sampler] = {
    "uniform": UniformSampler(),
    "motion": MotionSampler(),
    "scene": SceneSampler(),
}


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
    info = info or probe(path)
    span = frame_span(path, info, start, end)
    frames = SAMPLERS[strategy].sample(path, info, n, resize, span)
    if len(frames) < n:
        log.info("%s has only %d frames: returning all of them instead of %d",
                 path.name, len(frames), n)
    for position, frame in enumerate(frames, start=1):
        on_event(FrameSampled(position=position, total=len(frames), index=frame.index,
                              timestamp=frame.timestamp))
    return frames


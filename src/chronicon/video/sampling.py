"""Picking the frames that matter: `sample(path, n, strategy, resize) -> list[Frame]`.

A `Sampler` decides WHICH frame numbers to take; reading them is shared (exact frames through
`decode.ExactFrameReader`, resized and turned upright by `decode.to_rgb_image`). Strategies:

- `uniform`: the middle frame of each of n equal segments of the clip.
- `motion`:  the n frames where most changes (`motion.motion_scores`), kept apart in time.
- `scene`:   the middle frame of each scene between hard cuts (`scenes.find_cuts`), filled with
             uniform picks when the clip has fewer scenes than n.

Every strategy returns distinct frames sorted by index; a clip with fewer than n frames gives
each of its frames once.
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
from .scenes import find_cuts

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

    def sample(self, path: Path, info: VideoInfo, n: int, resize: int) -> list[Frame]:
        """Return at most n distinct frames of the video, sorted by index, each an upright
        RGB image whose longest edge is `resize` pixels."""
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
        return [Frame(index=k, timestamp=round(index.timestamp(k), 6),
                      image=to_rgb_image(frame, info.rotation, resize))
                for k, frame in reader.read(indices)]


class UniformSampler:
    """Evenly spread frames: segment midpoints."""

    def sample(self, path: Path, info: VideoInfo, n: int, resize: int) -> list[Frame]:
        return read_frames(path, info, uniform_indices(info.frame_count, n), resize)


class MotionSampler:
    """The frames where most changes, at least a half-segment (N / 2n frames) apart."""

    def sample(self, path: Path, info: VideoInfo, n: int, resize: int) -> list[Frame]:
        index = frame_index(path)
        if len(index) <= n:
            return read_frames(path, info, list(range(len(index))), resize)
        scores = motion_scores(path, index)
        min_gap = max(1, len(index) // (2 * n))
        picks = pick_peaks(scores, n, min_gap)
        picks = fill_with_uniform(picks, len(index), n)
        return read_frames(path, info, picks, resize)


class SceneSampler:
    """A middle frame of each scene between hard cuts (see `scene_middles`); the longest scenes
    when there are more than n, uniform picks added when there are fewer."""

    def sample(self, path: Path, info: VideoInfo, n: int, resize: int) -> list[Frame]:
        index = frame_index(path)
        if len(index) <= n:
            return read_frames(path, info, list(range(len(index))), resize)
        cuts = find_cuts(path, index)
        picks = scene_middles(cuts, len(index), n, np.flatnonzero(index.keyframe))
        picks = fill_with_uniform(picks, len(index), n)
        return read_frames(path, info, picks, resize)


def scene_middles(cuts: list[int], frame_count: int, n: int,
                  keyframes: np.ndarray | None = None) -> list[int]:
    """A representative frame per scene: the n longest scenes (earlier first on ties) if more.

    The representative is the middle frame, or, when `keyframes` (frame numbers) has one in the
    central half of the scene, the keyframe nearest the middle: it shows the same shot, is
    coded at the best quality, and decodes on its own instead of after half a group of
    pictures (the difference between seconds and a fraction of one on long clips).
    """
    bounds = [0, *sorted(set(cuts)), frame_count]
    scenes = [(start, end) for start, end in pairwise(bounds) if end > start]
    longest = sorted(scenes, key=lambda s: (-(s[1] - s[0]), s[0]))[:n]
    return sorted(_representative(start, end, keyframes) for start, end in longest)


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


def sample(path: str | Path, n: int = DEFAULT_FRAMES, strategy: str = "uniform",
           resize: int = DEFAULT_RESIZE, info: VideoInfo | None = None,
           on_event: EventCallback = ignore_event) -> list[Frame]:
    """Sample n frames of the video at `path` with `strategy` (see the module docstring).

    Parameters are checked before the file is touched (BadParameter names the flag); then the
    file is probed unless `info` is given, raising the specific BadVideo subclass. Emits one
    `FrameSampled` event per returned frame. A clip shorter than n frames gives all its frames
    (fewer than n), and logs that it did.
    """
    check_parameters(n, strategy, resize)
    path = Path(path)
    info = info or probe(path)
    frames = SAMPLERS[strategy].sample(path, info, n, resize)
    if len(frames) < n:
        log.info("%s has only %d frames: returning all of them instead of %d",
                 path.name, len(frames), n)
    for position, frame in enumerate(frames, start=1):
        on_event(FrameSampled(position=position, total=len(frames), index=frame.index,
                              timestamp=frame.timestamp))
    return frames


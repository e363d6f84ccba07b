"""The sampling interface: a `Sampler` picks frame numbers, `sampling.sample` reads them once.

Like PySceneDetect's detectors (which return timecodes and leave reading frames to the scene
manager), a sampler only decides WHICH frames to take. Each sampler lives next to its scoring
(`MotionSampler` in `motion.py`, `SceneSampler` in `scenes.py`); `sampling.SAMPLERS` is built
from their `name`s.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path
from typing import ClassVar

import numpy as np

from .frame_index import FrameIndex


class Sampler(ABC):
    """One sampling strategy, registered under `name`."""

    name: ClassVar[str]

    # ---- required ---------------------------------------------------------------------------
    @abstractmethod
    def pick(self, path: Path, index: FrameIndex, n: int, span: range) -> list[int]:
        """At most n distinct frame numbers from `span` (which holds more than n frames), in
        any order. `index` is the file's frame index; reading the frames is not the sampler's
        job."""


class UniformSampler(Sampler):
    """Evenly spread frames: segment midpoints."""

    name = "uniform"

    def pick(self, path: Path, index: FrameIndex, n: int, span: range) -> list[int]:
        return [span.start + k for k in uniform_indices(len(span), n)]


def uniform_indices(frame_count: int, n: int) -> list[int]:
    """The middle frame of each of n equal segments of [0, frame_count).

    Segment i covers [i*N/n, (i+1)*N/n); its midpoint floor((i + 1/2) * N / n) is always inside
    the clip, and for N >= n consecutive midpoints are at least one frame apart, so there are
    no duplicates. Integer arithmetic: no float rounding at the ends of long clips.
    """
    if frame_count <= n:
        return list(range(frame_count))
    return [((2 * i + 1) * frame_count) // (2 * n) for i in range(n)]


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

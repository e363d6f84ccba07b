"""Hard-cut detection without decoding the whole file: `find_cuts(path, index) -> [frame, ...]`.

A hard cut changes the colour distribution from one frame to the next; motion and gradual
fades barely do between neighbours. So two frames "differ" when their colour histograms are
further apart than `CUT_THRESHOLD`, and a cut is a pair of neighbouring frames that differ.

1. Coarse pass: histograms of cheap anchor frames: the keyframes (one decode pass that skips
   every other frame) or, for intra-only streams, evenly spread frames; plus the last frame.
2. Between two anchors that differ: when the later one is a keyframe the encoder placed early
   (encoders start a new group of pictures at a scene change), the cut is that keyframe, at no
   further cost. Otherwise the cut is found to the exact frame by bisection on exact frames,
   steered to the biggest packet in the interval (see `_split_point`): typically one forward
   decode of part of a group of pictures per cut, never the whole file.

Limits (deliberate, for speed): a cut that leaves and returns to the same scene between two
anchors, or a cut between scenes of near-identical colours, is not reported.
"""

from __future__ import annotations

from collections.abc import Iterable
from itertools import pairwise
from pathlib import Path

import numpy as np

from .decode import ExactFrameReader, colour_thumbnail
from .frame_index import FrameIndex
from .probe import VideoInfo, frame_index

# Half the L1 distance of normalised 16-bin-per-channel histograms, averaged over R, G, B:
# 0 = same distribution, 1 = disjoint. Motion within a shot stays well below; a cut above.
CUT_THRESHOLD = 0.3
HISTOGRAM_BINS = 16
# First pass: besides the likely cuts, decode every second regular keyframe (see
# `_first_pass_keyframes`).
KEYFRAME_STRIDE = 2
# A packet this many times the interval's median size is taken for the first frame of a shot.
SPIKE_RATIO = 2.0
# Anchors for intra-only streams (each frame decodes alone, so more anchors cost little).
MAX_INTRA_ANCHORS = 400
# Keyframes further apart than this many frames get extra anchors between them, so a scene that
# comes and goes inside one long GOP still has a chance to be seen.
MAX_ANCHOR_GAP = 300


def colour_histogram(rgb: np.ndarray) -> np.ndarray:
    """Normalised per-channel histograms, shape (3, HISTOGRAM_BINS)."""
    pixels = rgb.reshape(-1, 3)
    hist = np.stack([np.bincount(pixels[:, c] // (256 // HISTOGRAM_BINS),
                                 minlength=HISTOGRAM_BINS) for c in range(3)])
    return hist / max(1, pixels.shape[0])


def histogram_distance(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a - b).sum(axis=1).mean() / 2)


class _Histograms:
    """Colour histograms of exact frames, decoded on demand and remembered."""

    def __init__(self, reader: ExactFrameReader):
        self.reader = reader
        self.known: dict[int, np.ndarray] = {}

    def get(self, k: int) -> np.ndarray:
        if k not in self.known:
            self.add(self.reader.read([k]))
        return self.known[k]

    def add(self, frames: Iterable) -> None:
        for k, frame in frames:
            self.known[k] = colour_histogram(colour_thumbnail(frame))

    def differ(self, a: int, b: int) -> bool:
        return histogram_distance(self.get(a), self.get(b)) > CUT_THRESHOLD


def scene_cuts(path: str | Path, info: VideoInfo) -> list[float]:
    """Times (seconds from the first frame) where a new scene starts after a hard cut,
    ascending; 0 is never included. `info` is the file's `probe` result."""
    path = Path(path)
    index = frame_index(path)
    return [round(index.timestamp(k), 6) for k in find_cuts(path, index)]


def find_cuts(path: Path, index: FrameIndex) -> list[int]:
    """Frame numbers that start a new scene after a hard cut, ascending (0 never included)."""
    n = len(index)
    if n < 2:
        return []
    with ExactFrameReader(path, index) as reader:
        hist = _Histograms(reader)
        anchors = _anchors(index, hist)
        cuts: list[int] = []
        for a, b in pairwise(anchors):
            cuts += _locate(a, b, hist, index)
    return sorted(set(cuts))


def _anchors(index: FrameIndex, hist: _Histograms) -> list[int]:
    n = len(index)
    if index.intra_only:
        anchors = set(np.linspace(0, n - 1, num=min(n, MAX_INTRA_ANCHORS)).astype(int).tolist())
        hist.add(hist.reader.read(sorted(anchors)))
        return sorted(anchors | {0, n - 1})
    hist.add(hist.reader.keyframes(only=_first_pass_keyframes(index)))
    keyframes = set(np.flatnonzero(index.keyframe).tolist())
    fillers = _gap_fillers(sorted(keyframes | {0, n - 1}))
    hist.add(hist.reader.read(sorted(k for k in fillers if k not in hist.known)))
    return sorted(set(hist.known) | fillers | {0, n - 1})


def _first_pass_keyframes(index: FrameIndex) -> set[int]:
    """The keyframes worth decoding up front: every early one (a likely cut) with the keyframe
    before it, and every KEYFRAME_STRIDE-th of the rest. Keyframes skipped here are decoded
    later only where the anchors around them differ (see `_locate`): keyframe decoding is most
    of the cost of the whole search, so this halves it on long clips with few cuts."""
    keys = np.flatnonzero(index.keyframe).tolist()
    early = {k for k in keys if _encoder_marked_cut(k, index)}
    before = {index.keyframe_before(k - 1) for k in early}
    regular = [k for k in keys if k not in early and k not in before]
    return early | before | set(regular[::KEYFRAME_STRIDE]) | {keys[0]} if keys else set()


def _gap_fillers(anchors: list[int]) -> set[int]:
    extra: set[int] = set()
    for a, b in pairwise(anchors):
        pieces = (b - a) // MAX_ANCHOR_GAP
        extra.update(a + (b - a) * i // (pieces + 1) for i in range(1, pieces + 1))
    return extra


def _locate(a: int, b: int, hist: _Histograms, index: FrameIndex) -> list[int]:
    """Cuts in (a, b], given frames a and b; empty when a and b do not differ."""
    if b <= a or not hist.differ(a, b):
        return []
    inner = _keyframes_between(a, b, index)
    if inner:  # keyframes skipped by the first pass: cheap to decode, narrow the search first
        points = [a, *inner, b]
        return [cut for x, y in pairwise(points) for cut in _locate(x, y, hist, index)]
    if b == a + 1 or _encoder_marked_cut(b, index):
        return [b]
    m = _split_point(a, b, index)
    return _locate(a, m, hist, index) + _locate(m, b, hist, index)


def _keyframes_between(a: int, b: int, index: FrameIndex) -> list[int]:
    return [int(k) for k in np.flatnonzero(index.keyframe[a + 1:b]) + a + 1]


def _encoder_marked_cut(k: int, index: FrameIndex) -> bool:
    """Frame k is a keyframe the encoder put early, before its regular keyframe interval.

    Encoders (x264, x265, libvpx) start a new group of pictures where they detect a scene
    change. When our own histograms also say the scene changed up to such a keyframe, the cut
    is that keyframe: no need to decode the group before it to confirm, which would cost most
    of the time of the whole search.
    """
    if not index.keyframe[k] or k == 0:
        return False
    regular = _regular_keyframe_interval(index)
    return regular is not None and k - index.keyframe_before(k - 1) < regular


def _regular_keyframe_interval(index: FrameIndex) -> int | None:
    """The encoder's keyframe interval: the longest interval, if it occurs at least twice."""
    intervals = np.diff(np.flatnonzero(index.keyframe))
    if len(intervals) < 2:
        return None
    longest = int(intervals.max())
    return longest if int((intervals == longest).sum()) >= 2 else None


def _split_point(a: int, b: int, index: FrameIndex) -> int:
    """Where to split (a, b]: just before its biggest packet when that one stands out.

    Encoders code the first frame of a new shot as a large (often intra) frame. Splitting at
    spike-1 makes the next level compare exactly that pair of neighbours, and reading frame
    spike-1 then spike is one forward decode from the keyframe: a cut costs about half a group
    of pictures instead of log2(GOP) seeks. Without a clear spike, plain bisection.
    """
    sizes = index.size[a + 1:b + 1]
    spike = a + 1 + int(np.argmax(sizes))
    if sizes.max() >= SPIKE_RATIO * float(np.median(sizes)):
        if spike - 1 > a:
            return spike - 1
        if spike < b:
            return spike
    return (a + b) // 2

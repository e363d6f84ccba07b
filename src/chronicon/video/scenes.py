"""Hard-cut detection without decoding the whole file: `find_cuts(path, index) -> [frame, ...]`.

Two small-thumbnail measures, both cheap on 64-pixel images:

- the *content difference*: the mean absolute difference of hue, saturation and value, 0-255
  (PySceneDetect's ContentDetector measure): sees a cut between shots of similar colours;
- the *histogram distance*: half the L1 distance of colour histograms, 0-1: barely moves with
  motion, so it tells a cut from a pan when two frames are seconds apart.

A cut is a pair of neighbouring frames whose content difference is at least `CONTENT_MIN` and
`ADAPTIVE_RATIO` times the mean of the two pairs on each side (PySceneDetect's AdaptiveDetector):
motion raises every pair around it, a flash raises two pairs in a row, a cut only its own.

1. Coarse pass: thumbnails of the anchors: every keyframe (one pass that decodes only them)
   plus evenly spaced frames in groups of pictures longer than `MAX_ANCHOR_GAP`, or, for
   intra-only streams, evenly spread frames.
2. Every span between two anchors whose thumbnails differ (either measure) is searched. If the
   later anchor is a keyframe the encoder placed early (encoders start a group of pictures at a
   scene change), the few frames after it are decoded (cheap, from that keyframe): a cut there
   is the one (x264 with B-frames puts its keyframe a few frames early); else, if the anchors
   differ clearly (colours, or content far beyond the shot's own motion after the keyframe),
   the keyframe is the cut. Otherwise the span is decoded frame by
   frame (one forward run) and tested pair by pair.

Spans whose anchors look alike are not searched: a cut to another shot and back between two
anchors is not reported; nor is a cut the encoder coded cheaply (no keyframe, no frame near a
keyframe's size) in the same group of pictures as a later cut it marked with a keyframe.
"""

from __future__ import annotations

import functools
from itertools import pairwise
from pathlib import Path

import av
import numpy as np

from .decode import ExactFrameReader, colour_thumbnail
from .frame_index import FrameIndex
from .probe import VideoInfo, file_version, frame_index
from .sampler import Sampler, fill_with_uniform

HISTOGRAM_BINS = 16
THUMBNAIL_WIDTH = 64
# A cut's own content difference (0-255) is at least this, and ADAPTIVE_RATIO times the mean
# of the two pairs on either side.
CONTENT_MIN = 8.0
ADAPTIVE_RATIO = 3.0
# Anchors further apart than neighbours differ by motion too; a span is searched when its
# anchors' histograms differ by SEARCH_HISTOGRAM or their content by SEARCH_CONTENT.
SEARCH_HISTOGRAM = 0.12
SEARCH_CONTENT = 18.0
# An encoder's early keyframe is taken as the cut without decoding the span before it when
# the anchors' colours differ at least this much and no cut follows it within AFTER_KEYFRAME
# frames (encoders with B-frames place their scene-cut keyframe up to a few frames early).
SURE_HISTOGRAM = 0.25
AFTER_KEYFRAME = 8
# ... or their content differs this much, more than twice what the shot changes over those
# frames (so fast motion is not taken for a cut).
SURE_CONTENT = 30.0
# A cut this close after the previous one is the same event (a one-frame flash, a frame
# misplaced at a splice): only the first counts (PySceneDetect's min_scene_len is 15).
MIN_SCENE_FRAMES = 4
# A predicted frame at least this share of its keyframe's size was mostly coded afresh.
INTRA_SIZED = 0.4
# Anchors for intra-only streams (each frame decodes alone, so more anchors cost little).
MAX_INTRA_ANCHORS = 400
# Keyframes further apart than this many frames get extra anchors between them.
MAX_ANCHOR_GAP = 120


class Thumbnail:
    """What the cut tests compare of one frame: an HSV thumbnail and its colour histogram."""

    def __init__(self, frame: av.VideoFrame):
        rgb = colour_thumbnail(frame, THUMBNAIL_WIDTH)
        self.hsv = _hsv(rgb)
        self.histogram = colour_histogram(rgb)

    def content_difference(self, other: Thumbnail) -> float:
        delta = np.abs(self.hsv - other.hsv)
        delta[..., 0] = np.minimum(delta[..., 0], 256.0 - delta[..., 0])  # hue is a circle
        return float(delta.mean())

    def histogram_distance(self, other: Thumbnail) -> float:
        return histogram_distance(self.histogram, other.histogram)


def colour_histogram(rgb: np.ndarray) -> np.ndarray:
    """Normalised per-channel histograms, shape (3, HISTOGRAM_BINS)."""
    pixels = rgb.reshape(-1, 3)
    hist = np.stack([np.bincount(pixels[:, c] // (256 // HISTOGRAM_BINS),
                                 minlength=HISTOGRAM_BINS) for c in range(3)])
    return hist / max(1, pixels.shape[0])


def histogram_distance(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a - b).sum(axis=1).mean() / 2)


def _hsv(rgb: np.ndarray) -> np.ndarray:
    """RGB uint8 -> HSV float32, every channel 0-255."""
    rgb = rgb.astype(np.float32)
    high, low = rgb.max(axis=2), rgb.min(axis=2)
    spread = high - low
    safe = np.where(spread > 0, spread, 1.0)
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    hue = np.where(high == r, (g - b) / safe, np.where(high == g, 2 + (b - r) / safe,
                                                       4 + (r - g) / safe))
    hue = np.where(spread > 0, (hue / 6.0) % 1.0 * 256.0, 0.0)
    saturation = np.where(high > 0, spread / np.where(high > 0, high, 1.0) * 255.0, 0.0)
    return np.stack([hue, saturation, high], axis=2).astype(np.float32)


class SceneSampler(Sampler):
    """A frame of each scene between hard cuts (see `scene_middles`); uniform picks added when
    there are fewer scenes than n."""

    name = "scene"

    def pick(self, path: Path, index: FrameIndex, n: int, span: range) -> list[int]:
        cuts, histograms = find_scenes(path, index)
        cuts = [k - span.start for k in cuts if span.start < k < span.stop]
        looks = {k - span.start: h for k, h in histograms.items() if k in span}
        keyframes = np.flatnonzero(index.keyframe[span.start:span.stop])
        picks = fill_with_uniform(scene_middles(cuts, len(span), n, keyframes, looks),
                                  len(span), n)
        return [span.start + k for k in picks]


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


def scene_cuts(path: str | Path, info: VideoInfo) -> list[float]:
    """Times (seconds from the first frame) where a new scene starts after a hard cut,
    ascending; 0 is never included. `info` is the file's `probe` result."""
    path = Path(path)
    index = frame_index(path)
    return [round(index.timestamp(k), 6) for k in find_cuts(path, index)]


def find_cuts(path: Path, index: FrameIndex) -> list[int]:
    """Frame numbers that start a new scene after a hard cut, ascending (0 never included)."""
    return find_scenes(path, index)[0]


def find_scenes(path: Path, index: FrameIndex) -> tuple[list[int], dict[int, np.ndarray]]:
    """The cuts (as `find_cuts`) and the colour histograms of the frames the search decoded
    anyway (every keyframe among them), by frame number: what scene picking compares.
    Remembered per file version, so the chunks of a timeline search the file once."""
    if len(index) < 2:
        return [], {}
    cuts, histograms = _cached_scenes(*file_version(path))
    return list(cuts), histograms


@functools.lru_cache(maxsize=8)
def _cached_scenes(path: str, size: int, mtime_ns: int
                   ) -> tuple[list[int], dict[int, np.ndarray]]:
    index = frame_index(path)
    with ExactFrameReader(Path(path), index) as reader:
        search = _CutSearch(reader, index)
        cuts = search.run()
        return cuts, {k: thumb.histogram for k, thumb in search.thumbs.items()}


class _CutSearch:
    def __init__(self, reader: ExactFrameReader, index: FrameIndex):
        self.reader = reader
        self.index = index
        self.thumbs: dict[int, Thumbnail] = {}
        self.regular_gop = _regular_keyframe_interval(index)

    def run(self) -> list[int]:
        cuts: list[int] = []
        for a, b in pairwise(self._anchors()):
            cuts += self._search(a, b)
        kept: list[int] = []
        for cut in sorted(set(cuts)):
            if not kept or cut - kept[-1] >= MIN_SCENE_FRAMES:
                kept.append(cut)
        return kept

    def _read(self, frames: list[int]) -> None:
        wanted = [k for k in frames if k not in self.thumbs]
        for k, frame in self.reader.read(wanted):
            self.thumbs[k] = Thumbnail(frame)

    def _anchors(self) -> list[int]:
        n = len(self.index)
        if self.index.intra_only:
            anchors = np.linspace(0, n - 1, num=min(n, MAX_INTRA_ANCHORS)).astype(int).tolist()
            self._read(sorted(set(anchors)))
            return sorted(self.thumbs)
        for k, frame in self.reader.keyframes():
            self.thumbs[k] = Thumbnail(frame)
        keys = sorted(set(self.thumbs) | {0, n - 1})
        self._read(sorted(_gap_fillers(keys) | {0, n - 1}))
        return sorted(self.thumbs)

    def _search(self, a: int, b: int) -> list[int]:
        """Cuts in (a, b], anchors a and b already read."""
        first, last = self.thumbs[a], self.thumbs[b]
        histogram, content = first.histogram_distance(last), first.content_difference(last)
        if histogram < SEARCH_HISTOGRAM and content < SEARCH_CONTENT:
            return []
        if self._encoder_marked_cut(b):
            # Cheap: decoding on from keyframe b. With B-frames x264 may put its scene-cut
            # keyframe a few frames before the cut (measured: 3 to 7 on the bench reel).
            end = min(b + AFTER_KEYFRAME, len(self.index) - 1)
            after = self._cuts_in(b, end)
            if after:
                return after
            # Colours changed, or content changed far more than the shot moves after b.
            drift = self.thumbs[b].content_difference(self.thumbs[end])
            clear = histogram >= SURE_HISTOGRAM or (content >= SURE_CONTENT
                                                    and drift < content / 2)
            if clear and not self._intra_sized_frame_inside(a, b):
                return [b]
        # One forward run from a; b + 1 and b + 2 (just after a keyframe, when b is one) tell a
        # cut at b from motion there.
        return self._cuts_in(a, b)

    def _cuts_in(self, a: int, b: int) -> list[int]:
        """Cuts in (a, b] found by decoding every frame from a to b + 2."""
        frames = list(range(a, min(b + 3, len(self.index))))
        self._read(frames)
        diffs = {k: self.thumbs[k - 1].content_difference(self.thumbs[k])
                 for k in frames[1:]}
        return [k for k in range(a + 1, b + 1) if _is_cut(k, diffs)]

    def _intra_sized_frame_inside(self, a: int, b: int) -> bool:
        """A predicted frame in (a, b) coded nearly as big as keyframe a: most of it had to be
        coded afresh, as after a cut the encoder did not mark with a keyframe. Then (a, b] may
        hold another cut than b, and is searched frame by frame."""
        sizes = self.index.size[a + 1:b][~self.index.keyframe[a + 1:b]]
        return bool(len(sizes) and sizes.max() >= INTRA_SIZED * self.index.size[a])

    def _encoder_marked_cut(self, k: int) -> bool:
        """Frame k is a keyframe the encoder put before its regular keyframe interval (or any
        keyframe, when no interval repeats: shots shorter than the interval cap).

        Encoders (x264, x265, libvpx) start a new group of pictures where they detect a scene
        change; when the anchors around it differ clearly too, the cut is that keyframe: no
        need to decode the group before it, which would cost most of the search.
        """
        if not self.index.keyframe[k] or k == 0:
            return False
        if self.regular_gop is None:
            return True  # no keyframe interval repeats: the encoder placed every keyframe
        return k - self.index.keyframe_before(k - 1) < self.regular_gop


def _is_cut(k: int, diffs: dict[int, float]) -> bool:
    """The pair (k-1, k) differs as a cut: enough, and far more than the pairs beside it."""
    own = diffs[k]
    beside = [diffs[j] for j in (k - 2, k - 1, k + 1, k + 2) if j in diffs]
    return own >= CONTENT_MIN and own >= ADAPTIVE_RATIO * float(np.mean(beside or [0.0]))


def _gap_fillers(anchors: list[int]) -> set[int]:
    extra: set[int] = set()
    for a, b in pairwise(anchors):
        pieces = (b - a) // MAX_ANCHOR_GAP
        extra.update(a + (b - a) * i // (pieces + 1) for i in range(1, pieces + 1))
    return extra


def _regular_keyframe_interval(index: FrameIndex) -> int | None:
    """The encoder's keyframe interval: the longest interval, if it occurs at least twice."""
    intervals = np.diff(np.flatnonzero(index.keyframe))
    if len(intervals) < 2:
        return None
    longest = int(intervals.max())
    return longest if int((intervals == longest).sum()) >= 2 else None

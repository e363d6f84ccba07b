"""Hard-cut detection without decoding the whole file: `find_cuts(path, index) -> [frame, ...]`.

Two small-thumbnail measures, both cheap on 64-pixel images:

- the *content difference*: the mean absolute difference of hue, saturation and value, 0-255
  (PySceneDetect's ContentDetector measure): sees a cut between shots of similar colours;
- the *histogram distance*: half the L1 distance of colour histograms, 0-1: barely moves with
  motion, so it tells a cut from a pan when two frames are seconds apart.

A cut is a pair of neighbouring frames whose content difference is at least `CONTENT_MIN` and
`ADAPTIVE_RATIO` times the mean of the two pairs on each side (PySceneDetect's AdaptiveDetector):
motion raises every pair around it, a flash raises two pairs in a row, a cut only its own.

1. Coarse pass: one pass over the file that decodes only the intra-coded frames (the
   keyframes, and for H.264 also the I-frames inside groups of pictures: x264 codes a
   scene change found soon after a keyframe as one) and the first frame after each keyframe;
   the anchors are those intra frames, plus evenly spaced frames in gaps longer than
   `MAX_ANCHOR_GAP` that do not end on an intra frame the encoder placed; for intra-only
   streams, evenly spread frames.
2. Every span between two anchors whose thumbnails differ (either measure) is searched. If the
   later anchor b is an intra frame the encoder placed (off its regular interval: encoders
   code a scene change as one) and the anchors differ clearly (colours or content) and far
   more than the shot at b moves (its drift: b against the frame after it, decoded in the
   coarse pass), b is the cut, unless a frame in the span was coded mostly afresh (packet
   sizes). In doubt, the few frames after b are decoded (x264 with B-frames may put its
   keyframe a few frames before the cut), then the span, frame by frame in one forward run,
   tested pair by pair. Short spans (up to 2 * `AFTER_KEYFRAME`) are always decoded: a flash or
   a fast fade gets intra frames a few frames apart too.

Spans whose anchors look alike are not searched: a cut to another shot and back between two
anchors is not reported; nor is, usually, a cut the encoder did not mark (coded as a predicted
frame no bigger than those around it) in the same span as one it marked. A keyframe the
encoder put in the middle of a slow dissolve passes for a cut (the shot hardly moves after it,
its ends differ clearly); PySceneDetect reports none there.

Profile (10-min 1080p x264 reel, 14,453 frames, 210 cuts): the coarse pass decodes 233 intra
frames and 216 frames after keyframes; the search then decodes ~1,300 more frames (drift
doubts, short spans, fresh-frame hints), about 12 % of the file all told.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
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
# An intra frame the encoder placed is taken as the cut without decoding the span before it
# when the anchors' colours differ at least SURE_HISTOGRAM, or their content SURE_CONTENT, and
# that content difference is more than twice what the shot changes over DRIFT_FRAMES frames
# after it (so fast motion or a flash is not taken for a cut; the first frame decoded after a
# keyframe is 1-4 frames on with B-frames, and a nearer one's change is scaled up).
SURE_HISTOGRAM = 0.25
SURE_CONTENT = 30.0
DRIFT_FRAMES = 4
# With B-frames an encoder may put its scene-change keyframe a few frames before the cut
# (x264: 3 to 7 measured): when in doubt, the frames up to this many after it are searched.
AFTER_KEYFRAME = 8
# A cut this close after the previous one is the same event (a one-frame flash, a frame
# misplaced at a splice): only the first counts (PySceneDetect's min_scene_len is 15). Nor is
# one this close to either end of the clip a scene (a stray frame left at a splice).
MIN_SCENE_FRAMES = 4
# A predicted frame at least FRESH_SHARE of the size of the intra frames around it, and
# FRESH_RATIO times the largest predicted frame within FRESH_NEIGHBOURS frames of it, was coded
# mostly afresh: the encoder could not predict it (new content). The largest, not the median:
# with B-frames every few frames is a bigger P-frame, and motion raises them all alike.
FRESH_SHARE = 0.3
FRESH_RATIO = 1.5
FRESH_NEIGHBOURS = 6
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
        # Intra-coded frames: the keyframes, and I-frames inside groups of pictures where the
        # decoder can tell them (see `ExactFrameReader.intra_frames`).
        self.intra = np.zeros(len(index), dtype=bool)
        self.regular_interval: int | None = None
        self.heads: dict[int, int] = {}  # keyframe -> the frame after it decoded in its head

    def run(self) -> list[int]:
        cuts: list[int] = []
        anchors = self._anchors()
        for i, (a, b) in enumerate(pairwise(anchors)):
            following = anchors[i + 2] if i + 2 < len(anchors) else None
            cuts += self._search(a, b, following)
        kept: list[int] = []
        for cut in sorted(set(cuts)):
            if (cut - (kept[-1] if kept else 0) >= MIN_SCENE_FRAMES
                    and len(self.index) - cut >= MIN_SCENE_FRAMES):
                kept.append(cut)
        return kept

    def _read(self, frames: list[int] | range) -> None:
        wanted = [k for k in frames if k not in self.thumbs]
        for k, frame in self.reader.read(wanted):
            self.thumbs[k] = Thumbnail(frame)

    def _anchors(self) -> list[int]:
        """The intra frames (read with the first frame after each keyframe), the first and
        the last frame, and evenly spaced frames in gaps longer than MAX_ANCHOR_GAP that do
        not end on an intra frame the encoder placed."""
        n = len(self.index)
        if self.index.intra_only:
            anchors = np.linspace(0, n - 1, num=min(n, MAX_INTRA_ANCHORS)).astype(int).tolist()
            self._read(sorted(set(anchors)))
            return sorted(self.thumbs)
        for k, frame, intra in self.reader.intra_frames(head=1):
            self.thumbs[k] = Thumbnail(frame)
            if intra:
                self.intra[k] = True
            else:
                key = self.index.keyframe_before(k)
                self.heads[key] = min(k, self.heads.get(key, k))
        self.intra |= self.index.keyframe
        self.regular_interval = _regular_interval(np.flatnonzero(self.intra))
        keys = sorted(set(np.flatnonzero(self.intra).tolist()) | {0, n - 1})
        # No fillers before an intra frame the encoder placed: the span up to it is taken as
        # one shot unless the evidence says otherwise (`_marked_cut`), and reaching a filler
        # costs decoding most of the span anyway.
        fillers = _gap_fillers(keys, unless_before=self._encoder_marked_cut)
        self._read(sorted(fillers | {0, n - 1}))
        return sorted(set(keys) | fillers)

    def _alike(self, a: int, b: int) -> bool:
        first, last = self.thumbs[a], self.thumbs[b]
        return (first.histogram_distance(last) < SEARCH_HISTOGRAM
                and first.content_difference(last) < SEARCH_CONTENT)

    def _search(self, a: int, b: int, following: int | None) -> list[int]:
        """Cuts in (a, b], anchors a and b already read; `following` is the anchor after b."""
        if self._alike(a, b):
            return []
        if self._encoder_marked_cut(b) and b - a > 2 * AFTER_KEYFRAME:
            # (A short span costs no more to decode than the checks that would spare it; an
            # encoder also codes I-frames in a flash or a fast fade, a few frames apart.)
            return self._marked_cut(a, b, following)
        # One forward run from a; b + 1 and b + 2 (just after a keyframe, when b is one) tell a
        # cut at b from motion there.
        return self._cuts_in(a, b)

    def _marked_cut(self, a: int, b: int, following: int | None) -> list[int]:
        """The cuts in (a, b] (and in the few frames after b) when the encoder coded b as a
        scene change, without decoding the span before it when the evidence suffices.

        b is the cut when the anchors differ clearly (colours or content) and far more than
        the shot at b moves: its drift, the content difference from b to the first frame
        after it (decoded with b in the intra pass), scaled up to DRIFT_FRAMES frames
        (motion grows less than linearly, so this overstates it: a doubt costs a search, not a
        wrong cut). Else the span and the frames after b are searched in one forward run (b
        may be a few frames before the cut: x264 with B-frames).
        """
        first, last = self.thumbs[a], self.thumbs[b]
        histogram, content = first.histogram_distance(last), first.content_difference(last)
        end = min(b + AFTER_KEYFRAME, len(self.index) - 1)
        if following is not None and following <= end:
            # An intra frame soon after b: the cut may be that one.
            after = self._cuts_in(b, following)
            if after:
                return after
            end = following
        clear = histogram >= SURE_HISTOGRAM or content >= SURE_CONTENT
        if (clear and self._drift(b) < content / 2
                and not self._fresh_frame_inside(a + 1, b, a, b)):
            return [b]
        return self._cuts_in(a, end)

    def _drift(self, b: int) -> float:
        """How much the shot at keyframe b changes over DRIFT_FRAMES frames (content
        difference), extrapolated from the frame after b the intra pass decoded with it; when
        that pass decoded none (codecs without NONINTRA skipping), from frame b + DRIFT_FRAMES,
        decoded from b. inf for a plain I-frame without one: reaching a frame after it means
        decoding from the keyframe before it."""
        k = self.heads.get(b)
        if k is None and self.index.keyframe[b] and b + DRIFT_FRAMES < len(self.index):
            k = b + DRIFT_FRAMES
            self._read([k])
        if k is None or k <= b:
            return float("inf")
        change = self.thumbs[b].content_difference(self.thumbs[k])
        return change * max(1.0, DRIFT_FRAMES / (k - b))

    def _cuts_in(self, a: int, b: int) -> list[int]:
        """Cuts in (a, b] found by decoding every frame from a to b + 2."""
        frames = list(range(a, min(b + 3, len(self.index))))
        self._read(frames)
        diffs = {k: self.thumbs[k - 1].content_difference(self.thumbs[k]) for k in frames[1:]}
        return [k for k in range(a + 1, b + 1) if _is_cut(k, diffs)]

    def _fresh_frame_inside(self, start: int, stop: int, a: int, b: int) -> bool:
        """A predicted frame in [start, stop) coded mostly afresh (FRESH_SHARE, FRESH_RATIO):
        how a cut the encoder did not mark is often coded; not always (joined shots coded in
        fixed groups of pictures: 4 of 17 cuts), so this is a hint to search, never a proof
        that a span has no other cut."""
        size = self.index.size
        reference = max(int(size[a]), int(size[b]))
        for k in range(start, min(stop, len(self.index))):
            if self.intra[k] or size[k] < FRESH_SHARE * reference:
                continue
            lo, hi = max(0, k - FRESH_NEIGHBOURS), min(len(self.index), k + FRESH_NEIGHBOURS + 1)
            around = [int(size[j]) for j in range(lo, hi) if j != k and not self.intra[j]]
            if not around or size[k] >= FRESH_RATIO * max(around):
                return True
        return False

    def _encoder_marked_cut(self, k: int) -> bool:
        """Frame k is an intra frame the encoder put before its regular intra interval (or any
        intra frame, when no interval repeats: shots shorter than the interval cap).

        Encoders (x264, x265, libvpx) code a frame where they detect a scene change as an
        intra frame (a keyframe, or a plain I-frame soon after one); when the anchors around
        it differ clearly too, the cut is that frame: no need to decode the group before it,
        which would cost most of the search.
        """
        if not self.intra[k] or k == 0:
            return False
        if self.regular_interval is None:
            return True  # no interval repeats: the encoder placed every intra frame
        earlier = np.flatnonzero(self.intra[:k])
        return len(earlier) > 0 and k - int(earlier[-1]) < self.regular_interval


def _is_cut(k: int, diffs: dict[int, float]) -> bool:
    """The pair (k-1, k) differs as a cut: enough, and far more than the pairs beside it."""
    own = diffs[k]
    beside = [diffs[j] for j in (k - 2, k - 1, k + 1, k + 2) if j in diffs]
    return own >= CONTENT_MIN and own >= ADAPTIVE_RATIO * float(np.mean(beside or [0.0]))


def _gap_fillers(anchors: list[int],
                 unless_before: Callable[[int], bool] = lambda b: False) -> set[int]:
    """Evenly spaced frames in gaps between anchors longer than MAX_ANCHOR_GAP, except in
    gaps that end on an anchor where `unless_before` holds."""
    extra: set[int] = set()
    for a, b in pairwise(anchors):
        if unless_before(b):
            continue
        pieces = (b - a) // MAX_ANCHOR_GAP
        extra.update(a + (b - a) * i // (pieces + 1) for i in range(1, pieces + 1))
    return extra


def _regular_interval(intra: np.ndarray) -> int | None:
    """The encoder's intra interval (frame numbers of the intra frames): the longest interval,
    if it occurs at least twice."""
    intervals = np.diff(intra)
    if len(intervals) < 2:
        return None
    longest = int(intervals.max())
    return longest if int((intervals == longest).sum()) >= 2 else None

"""Cheap motion scores per frame, and picking the n strongest moments kept apart in time.

Inter-coded streams (H.264, HEVC, VP9, ...) already measured motion for us: a predicted frame's
packet holds the residual and motion vectors against its references, so its size grows with how
much changed. Demuxing gives those sizes without decoding a single frame. Keyframe packets are
left out (their size measures detail, not change) and filled from their neighbours, and a short
moving average evens out the P/B-frame size pattern.

Intra-only streams (MJPEG, ProRes, all-intra) code every frame alone, so sizes say nothing about
change; there we decode pairs of neighbouring frames at a few hundred evenly spread points and
compare 64-pixel grey thumbnails. Each intra frame decodes on its own, so this stays cheap.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .decode import ExactFrameReader, thumbnail
from .frame_index import FrameIndex

# Pixel probes for intra-only streams: enough to place motion within ~0.3 % of the clip.
MAX_PIXEL_PROBES = 300
# Grey-level change (0-255) that counts as a changed pixel rather than coding noise.
PIXEL_NOISE = 12
# Scores whose peak is this close to their median carry no information: sample uniformly.
FLAT_PEAK_RATIO = 1.15


def motion_scores(path: Path, index: FrameIndex) -> np.ndarray:
    """A non-negative motion score for every frame (float64, one per frame number)."""
    if len(index) < 2:
        return np.zeros(len(index))
    if index.intra_only:
        return pixel_motion_scores(path, index)
    return packet_motion_scores(index)


def packet_motion_scores(index: FrameIndex, window_s: float = 0.5) -> np.ndarray:
    """Smoothed sizes of the predicted frames' packets (see the module docstring)."""
    sizes = index.size.astype(np.float64)
    predicted = ~index.keyframe
    if not predicted.any():
        return np.zeros(len(index))
    frames = np.arange(len(index))
    # A keyframe's size measures detail, not change: take its predicted neighbours' instead.
    sizes = np.interp(frames, frames[predicted], sizes[predicted])
    fps = _frames_per_second(index)
    width = max(1, int(round(window_s * fps)) | 1)  # odd, so the average stays centred
    return _moving_average(sizes, width)


def pixel_motion_scores(path: Path, index: FrameIndex) -> np.ndarray:
    """Changed share of pixels between frame k and k+1 (`changed_fraction`) at evenly spread
    probes k, interpolated to every frame."""
    n = len(index)
    probes = np.unique(np.linspace(0, n - 2, num=min(MAX_PIXEL_PROBES, n - 1)).astype(int))
    wanted = sorted(set(probes.tolist()) | set((probes + 1).tolist()))
    with ExactFrameReader(path, index, threads=False) as reader:
        thumbs = {k: thumbnail(frame) for k, frame in reader.read(wanted)}
    diffs = np.asarray([changed_fraction(thumbs[k], thumbs[k + 1]) for k in probes])
    return np.interp(np.arange(n), probes, diffs)


def changed_fraction(a: np.ndarray, b: np.ndarray) -> float:
    """Share of thumbnail pixels whose grey level moved by more than compression noise.

    A count, not a mean difference: requantisation noise touches every pixel a little (an
    intra encoder settling its quality does that for whole seconds), motion a few pixels a lot.
    """
    return float(np.mean(np.abs(a - b) > PIXEL_NOISE))


def pick_peaks(scores: np.ndarray, n: int, min_gap: int) -> list[int]:
    """Up to n frame numbers with the highest scores, each at least `min_gap` frames from every
    other pick. Greedy and stable (the earlier frame wins a tie), so always deterministic.
    Returns [] when the scores are flat: nothing stands out, uniform sampling is better."""
    if len(scores) == 0 or n <= 0:
        return []
    median = float(np.median(scores))
    peak = float(np.max(scores))
    if peak <= 0 or peak <= FLAT_PEAK_RATIO * median:
        return []
    picks: list[int] = []
    for k in np.argsort(-scores, kind="stable"):
        if all(abs(int(k) - p) >= min_gap for p in picks):
            picks.append(int(k))
            if len(picks) == n:
                break
    return sorted(picks)


def _frames_per_second(index: FrameIndex) -> float:
    span = index.timestamp(len(index) - 1)
    return (len(index) - 1) / span if span > 0 else 1.0


def _moving_average(values: np.ndarray, width: int) -> np.ndarray:
    if width <= 1 or len(values) < 2:
        return values
    padded = np.pad(values, width // 2, mode="edge")
    return np.convolve(padded, np.ones(width) / width, mode="valid")

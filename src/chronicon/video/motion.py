"""Cheap motion scores per frame, and picking the n strongest moments kept apart in time.

Motion is measured with pixels, on small grey images, at a few hundred probes: the change
between neighbouring frames, unless it jumps far above the change just before (a hard cut or
a flash is not motion).

- Inter-coded streams (H.264, MPEG-4, HEVC, ...): decoding the frames before a probe from its
  keyframe would cost a full decode on long groups of pictures (a security camera's can be 10 s
  long). So each probe decodes a short window of `WINDOW` frames starting right there, on a
  non-keyframe, at the decoder's lowest resolution where it has one (`lowres`). The references
  are missing, so the pictures are not exact, but what changes between them is exactly what
  the packets code: the residual and moved blocks of the moving objects. Measured on OpenCV's
  vtest.avi (fixed camera, 795 frames, 250-frame GOPs): picks at the 90th-93rd percentile of a
  full-decode frame-difference curve, 4-6x cheaper than that full decode; packet sizes alone
  (rate control flattens them) gave the 52nd-61st.
  Half the probes go where packet sizes peak (the cheap first signal, keyframes and the first
  second of rate-control ramp left out), half are evenly spread.
- Intra-only streams (MJPEG, ProRes, all-intra) decode every frame alone: probes there read
  exact frames.
- When a decoder yields nothing from a window (VP9 and AV1 need their references), packet-size
  candidates are checked with exact frames, the cheapest to reach first, within a budget of a
  quarter of the clip (`verified_packet_scores`).
"""

from __future__ import annotations

import contextlib
import functools
from pathlib import Path

import av
import numpy as np

from .decode import ExactFrameReader, open_video, thumbnail
from .frame_index import FrameIndex
from .probe import file_version, frame_index
from .sampler import Sampler, fill_with_uniform

# Probes per clip: enough to place motion within ~0.3 % of the clip.
MAX_PIXEL_PROBES = 300
MAX_WINDOW_PROBES = 80
# Frames decoded per window probe: the last pair is measured, the pair before it tells a cut.
WINDOW = 3
# Grey-level change (0-255) that counts as a changed pixel rather than coding noise.
PIXEL_NOISE = 12
# Scores whose peak is this close to their median carry no information: sample uniformly.
FLAT_PEAK_RATIO = 1.15
# A change this many times the one before it is a cut or a flash, not motion.
CUT_JUMP = 4.0
# Decoders that can decode at 1/8 size (the `lowres` option): far less work per frame.
LOWRES_CODECS = frozenset({"mpeg4", "msmpeg4v1", "msmpeg4v2", "msmpeg4", "h263", "h263p",
                           "mpeg1video", "mpeg2video", "wmv1", "wmv2", "mjpeg"})
# Verifying packet-size candidates with exact frames decodes at most this share of the clip.
VERIFY_BUDGET = 0.25
# Seconds at the start whose packet sizes reflect the encoder's rate control settling.
RAMP_SECONDS = 1.0
# Share of window probes whose decoder must yield frames before we trust them.
MIN_PROBES_ANSWERED = 0.5


class MotionSampler(Sampler):
    """The frames where most changes, at least a half-segment (N / 2n frames) apart; uniform
    picks fill in when fewer stand out."""

    name = "motion"

    def pick(self, path: Path, index: FrameIndex, n: int, span: range) -> list[int]:
        scores = _cached_scores(*file_version(path))[span.start:span.stop]
        min_gap = max(1, len(span) // (2 * n))
        picks = fill_with_uniform(pick_peaks(scores, n, min_gap), len(span), n)
        return [span.start + k for k in picks]


@functools.lru_cache(maxsize=8)
def _cached_scores(path: str, size: int, mtime_ns: int) -> np.ndarray:
    # Per file version: the chunks of a timeline score the file once.
    scores = motion_scores(Path(path), frame_index(path))
    scores.flags.writeable = False
    return scores


def motion_scores(path: Path, index: FrameIndex) -> np.ndarray:
    """A non-negative motion score for every frame (float64, one per frame number)."""
    if len(index) < 3:
        return np.zeros(len(index))
    if index.intra_only:
        return pixel_motion_scores(path, index)
    scores = window_motion_scores(path, index)
    if scores is not None:
        return scores
    return verified_packet_scores(path, index)


def packet_motion_scores(index: FrameIndex, window_s: float = 0.5) -> np.ndarray:
    """Smoothed sizes of the predicted frames' packets; keyframes (their size measures detail,
    not change) take their neighbours' sizes, and the rate-control ramp counts as nothing."""
    sizes = index.size.astype(np.float64)
    predicted = ~index.keyframe
    if not predicted.any():
        return np.zeros(len(index))
    frames = np.arange(len(index))
    sizes = np.interp(frames, frames[predicted], sizes[predicted])
    fps = _frames_per_second(index)
    width = max(1, int(round(window_s * fps)) | 1)  # odd, so the average stays centred
    scores = _moving_average(sizes, width)
    scores[:_ramp_frames(index)] = 0.0
    return scores


def window_motion_scores(path: Path, index: FrameIndex) -> np.ndarray | None:
    """Motion at window probes (see the module docstring), interpolated to every frame; None
    when the decoder cannot start away from keyframes."""
    n = len(index)
    probes = _window_probes(index)
    found: dict[int, float] = {}
    with open_video(path) as container:
        stream = container.streams.video[0]
        options = {"skip_loop_filter": "all", "flags2": "+showall"}
        if stream.codec_context.name in LOWRES_CODECS:
            options["lowres"] = "3"
        stream.codec_context.options = options
        for end in probes:
            greys = _decode_window(container, stream, index, end)
            if len(greys) >= 2:  # a B-frame whose references are missing is not output
                found[end] = _steady_change(*greys[-3:])
    if len(found) < MIN_PROBES_ANSWERED * len(probes):
        return None
    ends = np.asarray(sorted(found))
    return np.interp(np.arange(n), ends, [found[k] for k in ends])


def verified_packet_scores(path: Path, index: FrameIndex) -> np.ndarray:
    """Packet-size candidates checked with exact pixels, for decoders that cannot start away
    from a keyframe (VP9, AV1): the candidates cheapest to reach first, until VERIFY_BUDGET of
    the clip is decoded. Verified candidates score their measured change (plus a tie-break by
    packet score), the rest keep a tenth of their normalised packet score."""
    n = len(index)
    packets = packet_motion_scores(index)
    top = float(packets.max()) or 1.0
    scores = packets / top * 0.1
    candidates = pick_peaks(packets, MAX_WINDOW_PROBES // 2, max(1, n // MAX_WINDOW_PROBES))
    budget, spent, chosen = VERIFY_BUDGET * n, 0, []
    for k in sorted(candidates, key=lambda k: k - index.keyframe_before(k)):
        cost = k + 1 - index.keyframe_before(max(k - 2, 0))
        if spent + cost > budget:
            continue
        spent += cost
        chosen.append(k)
    if not chosen:
        return packets
    wanted = sorted({j for k in chosen for j in (k - 2, k - 1, k) if j >= 0})
    with ExactFrameReader(path, index) as reader:
        greys = {j: thumbnail(frame) for j, frame in reader.read(wanted)}
    for k in chosen:
        seen = [greys[j] for j in (k - 2, k - 1, k) if j in greys]
        if len(seen) >= 2:
            scores[k] = 1.0 + _steady_change(*seen) + scores[k]
    return scores


def _window_probes(index: FrameIndex) -> list[int]:
    n = len(index)
    first = min(WINDOW, n - 1)
    count = min(MAX_WINDOW_PROBES, max(2, n // 8))
    even = np.linspace(first, n - 1, num=count // 2).astype(int)
    peaks = pick_peaks(packet_motion_scores(index), count - len(even), max(1, n // count))
    return sorted(set(even.tolist()) | {max(first, k) for k in peaks})


def _decode_window(container: av.container.InputContainer, stream: av.video.stream.VideoStream,
                   index: FrameIndex, end: int) -> list[np.ndarray]:
    """Grey images of the frames decoded from WINDOW frames before `end` up to `end`."""
    first, want = int(index.pts[max(0, end - WINDOW + 1)]), int(index.pts[end])
    container.seek(first, backward=True, any_frame=True, stream=stream)
    greys: list[np.ndarray] = []
    for read, packet in enumerate(container.demux(stream)):
        if read > 4 * WINDOW + 4:
            return []  # the container only seeks to keyframes (Matroska): not cheap here
        with contextlib.suppress(av.FFmpegError):  # missing references: expected here
            for frame in stream.decode(packet):
                if frame.pts is not None and first <= frame.pts <= want:
                    greys.append(_grey(frame))
                if frame.pts is not None and frame.pts >= want:
                    return greys  # B-frames: the target comes out after later packets
    return greys


def _grey(frame: av.VideoFrame, width: int = 64) -> np.ndarray:
    """The luma plane, strided down to about `width` pixels across (no scaling work)."""
    plane = frame.planes[0]
    luma = np.frombuffer(plane, np.uint8).reshape(-1, plane.line_size)
    step = max(1, frame.width // width)
    return luma[:frame.height:step, :frame.width:step].astype(np.int16)


def _steady_change(*greys: np.ndarray) -> float:
    """Mean grey change between the last two images, unless it jumps far above the change
    between the two before (a cut or a flash, not motion: then the earlier change). The
    earlier pair alone would be a worse measure: right after a seek to a non-keyframe,
    pictures still build up from missing references."""
    last = float(np.abs(greys[-1] - greys[-2]).mean())
    if len(greys) < 3:
        return last
    before = float(np.abs(greys[-2] - greys[-3]).mean())
    return last if last <= CUT_JUMP * max(before, 1.0) else before


def pixel_motion_scores(path: Path, index: FrameIndex) -> np.ndarray:
    """Changed share of pixels (`changed_fraction`) around evenly spread probes k, over the
    pairs (k-1, k) and (k, k+1), the smaller one; interpolated to every frame."""
    n = len(index)
    # Three frames a probe: a twelfth of the frames as probes decodes a quarter of the clip.
    count = min(MAX_PIXEL_PROBES, max(2, n // 12), n - 2)
    probes = np.unique(np.linspace(1, n - 2, num=count).astype(int))
    wanted = sorted(set((probes - 1).tolist()) | set(probes.tolist()) | set((probes + 1).tolist()))
    with ExactFrameReader(path, index, threads=False) as reader:
        thumbs = {k: thumbnail(frame) for k, frame in reader.read(wanted)}
    diffs = np.asarray([min(changed_fraction(thumbs[k - 1], thumbs[k]),
                            changed_fraction(thumbs[k], thumbs[k + 1])) for k in probes])
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


def _ramp_frames(index: FrameIndex) -> int:
    return min(len(index) // 4, int(RAMP_SECONDS * _frames_per_second(index)))


def _frames_per_second(index: FrameIndex) -> float:
    span = index.timestamp(len(index) - 1)
    return (len(index) - 1) / span if span > 0 else 1.0


def _moving_average(values: np.ndarray, width: int) -> np.ndarray:
    if width <= 1 or len(values) < 2:
        return values
    padded = np.pad(values, width // 2, mode="edge")
    return np.convolve(padded, np.ones(width) / width, mode="valid")

"""Cheap motion scores per frame, and picking the n strongest moments kept apart in time.

Motion is measured with pixels, on small grey images: the mean grey change between
neighbouring frames, unless it jumps far above the change around it (a hard cut or a flash is
not motion). Every path works in two stages:

1. Coarse: probes (a few hundred at most, three frames each) tell where motion is.
2. Refine: around the `REFINE_CANDIDATES` strongest coarse probes, runs of `REFINE_RUN`
   consecutive frames are decoded and each frame scores the change typical of its run (how
   much moves there: steadier than any one frame) plus its own change (which frame moves
   most). Motion is not smooth frame to frame (a camera that delivers new images unevenly,
   frames coded at different quality): the frame that changes most within a moving stretch
   is worth finding, not just the stretch. Measured on OpenCV's vtest.avi and four
   re-encodings of it (benchmarks/bench_motion.py): picks at the 87th-96th percentile of a
   full-decode frame-difference curve, against the 69th-92nd with coarse probes alone.

How runs of frames are decoded depends on the stream:

- Inter-coded streams whose decoder starts on a non-keyframe (H.264, HEVC, MPEG-4, MPEG-2,
  ...; `window_motion_scores`): decoding the frames before a probe from its keyframe would
  cost a full decode on long groups of pictures (a security camera's can be 10 s long). So
  each run is decoded right after a seek to it (in containers that seek only to keyframes,
  Matroska, the packets before it are demuxed and dropped, not decoded), at the decoder's
  lowest resolution where it has one (`lowres`). The references are missing, so the
  pictures are not exact, but what changes between them is what the packets code: the
  residual and moved blocks of the moving objects. Half the coarse probes go where packet
  sizes peak (the cheap first signal, keyframes and the first second of rate-control ramp
  left out), half are evenly spread. With B-frames a probe costs about two packets a frame:
  packet sizes alone are the coarse signal there, and twice as many runs are measured.
- Intra-only streams (MJPEG, ProRes, all-intra) decode every frame alone: runs there are exact
  frames, at the decoder's lowest resolution where it has one (`pixel_motion_scores`).
- Decoders whose state a gap corrupts (VP9, AV1) decode exact runs from keyframes, within
  VERIFY_BUDGET of the clip: the start of every group of pictures first (of an even spread
  of them when the groups are short), then further on in
  the groups whose starts move most and up to the packet-size peaks
  (`verified_packet_scores`).

Exact frames (the last two paths) are read by READERS decoders side by side, one thread each,
a group of pictures at a time (`_read_greys`): both cores work, and no frame is decoded only
to be dropped by a frame-threaded decoder's seek.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterable, Iterator
from pathlib import Path

import av
import numpy as np

from .decode import READERS, ExactFrameReader, groups_of_pictures, open_video, side_by_side
from .frame_index import FrameIndex
from .probe import file_version, frame_index
from .sampler import Sampler, fill_with_uniform

# Coarse probes per clip: enough to place motion within ~0.3 % of the clip.
MAX_PIXEL_PROBES = 300
MAX_WINDOW_PROBES = 80
# Coarse pixel probes (intra-only streams): one every this many frames, three frames each
# (at most MAX_PIXEL_PROBES): an eighth of the clip, the refinement adds up to REFINE_RUN
# frames for each of REFINE_CANDIDATES.
PIXEL_PROBE_SPACING = 24
# Coarse window probes: one every this many frames (at most MAX_WINDOW_PROBES).
WINDOW_PROBE_SPACING = 28
# Frames decoded per coarse window probe: it scores the mean change of its two pairs.
WINDOW = 3
# Refinement: this many of the strongest coarse probes (twice as many where packet sizes are
# the coarse signal), each centred in a run of this many consecutive frames (about a second
# of a 10-fps camera, a third of a second at 30 fps).
REFINE_CANDIDATES = 10
REFINE_RUN = 9
# Frames decoded and dropped before a window run: pictures built on missing references
# settle over the first frames.
WINDOW_LEAD = 2
# Frames a sampler is usually asked for (sampling.DEFAULT_FRAMES): regions verified on
# reference-needing streams are spaced like its picks (N / 2n frames apart).
TYPICAL_PICKS = 8
# Exact decoding (intra-only probes, or runs from keyframes) decodes at most this share of
# the clip; runs from keyframes spend VERIFY_START_SHARE of it on the start of every group.
VERIFY_BUDGET = 0.25
VERIFY_START_SHARE = 0.3
# ... but at least this many frames (a short clip costs little whole): two runs of REFINE_RUN
# frames for each typical pick.
MIN_VERIFIED = 2 * TYPICAL_PICKS * REFINE_RUN
# Grey-level change (0-255) that counts as a changed pixel rather than coding noise.
PIXEL_NOISE = 12
# Scores whose peak is this close to their median carry no information: sample uniformly.
FLAT_PEAK_RATIO = 1.15
# A change this many times the typical one around it is a cut or a flash, not motion; changes
# below CUT_FLOOR grey levels are never taken for one (noise on a still scene varies a lot).
CUT_JUMP = 4.0
CUT_FLOOR = 1.0
# Decoders that decode a run of frames started on a non-keyframe, without its references
# (they stand in grey or the last picture). Not VP8/VP9/AV1: their entropy coder adapts its
# probabilities from every frame before, so they yield nothing or noise there.
WINDOW_CODECS = frozenset({"h264", "hevc", "mpeg4", "msmpeg4v1", "msmpeg4v2", "msmpeg4",
                           "h263", "h263p", "mpeg1video", "mpeg2video"})
# Decoders that can decode at 1/8 size (the `lowres` option): far less work per frame.
LOWRES_CODECS = frozenset({"mpeg4", "msmpeg4v1", "msmpeg4v2", "msmpeg4", "h263", "h263p",
                           "mpeg1video", "mpeg2video", "wmv1", "wmv2", "mjpeg"})
# Frames between coarse probes score this share of the probes' interpolated scores.
UNMEASURED_WEIGHT = 0.5
# Seconds at the start whose packet sizes reflect the encoder's rate control settling.
RAMP_SECONDS = 1.0
# Share of window probes whose decoder must yield frames before we trust them.
MIN_PROBES_ANSWERED = 0.5
# Grey thumbnails are about this many pixels across.
GREY_WIDTH = 64
# Pixel formats whose first plane is 8-bit luma, read without conversion.
_EIGHT_BIT_LUMA = frozenset({"yuv420p", "yuvj420p", "yuv422p", "yuvj422p", "yuv444p",
                             "yuvj444p", "yuv411p", "yuv440p", "yuvj440p", "nv12", "nv21",
                             "gray"})


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


# ---- window runs: inter-coded streams, decoded from a non-keyframe -------------------------

def window_motion_scores(path: Path, index: FrameIndex) -> np.ndarray | None:
    """Motion at window probes refined around the strongest (see the module docstring),
    interpolated to every other frame; None when the decoder cannot decode runs of frames
    without the frames before them."""
    if index.positioning != "pts":
        return None  # frames are named by their timestamps here
    with open_video(path) as container:
        context = container.streams.video[0].codec_context
        codec, reorders = context.name, bool(context.has_b_frames)
    if codec not in WINDOW_CODECS:
        return None
    if reorders:
        # With B-frames a probe costs about two packets a frame (the frames it is predicted
        # from come along): packet sizes (over half a second they mix frame types evenly)
        # are the coarse signal, and twice as many candidates are measured with pixels.
        packets = packet_motion_scores(index)
        coarse = packets / (float(packets.max()) or 1.0) * 0.1  # below measured motion
        runs = _refine_runs(coarse, exclude=(), candidates=2 * REFINE_CANDIDATES)
        greys = _decode_runs(path, index, runs)
        if runs and len(_run_changes(greys)) < MIN_PROBES_ANSWERED * len(runs):
            return None  # the decoder yields (almost) nothing without the frames before
        return _refined(coarse, runs, greys)
    n = len(index)
    probes = _window_probes(index)
    changes = _run_changes(_decode_runs(path, index, [(k - WINDOW + 1, k) for k in probes]))
    found = {k: _probe_change(changes, k) for k in probes if k in changes}
    if len(found) < MIN_PROBES_ANSWERED * len(probes):
        return None
    coarse = _coarse_curve(n, found)
    runs = _refine_runs(coarse, exclude=())
    return _refined(coarse, runs, _decode_runs(path, index, runs))


def _window_probes(index: FrameIndex) -> list[int]:
    n = len(index)
    first = min(WINDOW, n - 1)
    count = min(MAX_WINDOW_PROBES, max(2, n // WINDOW_PROBE_SPACING))
    even = np.linspace(first, n - 1, num=count // 2).astype(int)
    peaks = pick_peaks(packet_motion_scores(index), count - len(even), max(1, n // count))
    return sorted(set(even.tolist()) | {max(first, k) for k in peaks})


def _decode_runs(path: Path, index: FrameIndex,
                 runs: list[tuple[int, int]]) -> dict[int, np.ndarray]:
    """Grey images of the frames of each run (first, last) that the decoder yields, each run
    decoded from WINDOW_LEAD frames before it, right after a seek there (see the module
    docstring: the references are missing, the first pictures build up from grey)."""
    wanted = {int(index.pts[j]) for a, b in runs for j in range(max(0, a), b + 1)}
    greys: dict[int, np.ndarray] = {}
    with open_video(path) as container:
        stream = container.streams.video[0]
        stream.codec_context.options = _fast_decoding(stream.codec_context.name)
        for a, b in _merge_runs([(max(0, a - WINDOW_LEAD), b) for a, b in runs]):
            for frame in _decode_stretch(container, stream, int(index.pts[a]),
                                         int(index.pts[b])):
                if frame.pts in wanted:
                    greys[int(np.searchsorted(index.pts, frame.pts))] = grey(frame)
    return greys


def _decode_stretch(container: av.container.InputContainer,
                    stream: av.video.stream.VideoStream, first: int,
                    last: int) -> Iterator[av.VideoFrame]:
    """The frames decoded from the packets of the frames with PTS first..last (and the frames
    those are predicted from that come after them in decoding order)."""
    # Lands on the packet of `first` where the container indexes every packet (MP4, AVI), on
    # the keyframe before it where it indexes only keyframes (Matroska): the packets before
    # `first` are then demuxed and dropped (cheap), not decoded.
    container.seek(first, backward=True, any_frame=True, stream=stream)
    for packet in container.demux(stream):
        if packet.size and packet.dts is not None and packet.dts > last:
            break  # every frame up to `last` has been fed
        if packet.size and (packet.pts is None or packet.pts < first):
            continue  # before the stretch: not even needed as a reference for a rough picture
        with contextlib.suppress(av.FFmpegError):  # missing references: decoded anyway
            yield from stream.decode(packet if packet.size else None)
        if not packet.size:
            return
    with contextlib.suppress(av.FFmpegError):
        yield from stream.decode(None)  # the frames held back for reordering


def _merge_runs(runs: Iterable[tuple[int, int]]) -> list[tuple[int, int]]:
    merged: list[list[int]] = []
    for a, b in sorted(runs):
        if merged and a <= merged[-1][1] + 1:
            merged[-1][1] = max(merged[-1][1], b)
        else:
            merged.append([a, b])
    return [(a, b) for a, b in merged]


def _fast_decoding(codec: str) -> dict[str, str]:
    options = {"skip_loop_filter": "all", "flags2": "+showall"}
    if codec in LOWRES_CODECS:
        options["lowres"] = "3"
    return options


# ---- exact runs: intra-only streams, and decoders that need their references ---------------

def pixel_motion_scores(path: Path, index: FrameIndex) -> np.ndarray:
    """Intra-only streams: exact coarse probes (three frames each, evenly spread), refined
    around the strongest; interpolated to every other frame."""
    n = len(index)
    count = min(MAX_PIXEL_PROBES, max(2, n // PIXEL_PROBE_SPACING), n - 2)
    probes = np.unique(np.linspace(1, n - 2, num=count).astype(int)).tolist()
    with _exact_readers(path, index) as readers:
        greys = _read_greys(readers, [j for k in probes for j in (k - 1, k, k + 1)])
        changes = _run_changes(greys)
        found = {k: _probe_change(changes, k + 1) for k in probes}
        scores = _coarse_curve(n, found)
        refined = _refine_runs(scores, exclude=greys)
        greys.update(_read_greys(readers, [j for start, end in refined
                                           for j in range(start - 1, end + 1)
                                           if j not in greys]))
    return _refined(scores, refined, greys)


def verified_packet_scores(path: Path, index: FrameIndex) -> np.ndarray:
    """Exact runs from keyframes for decoders that cannot start away from one (VP9, AV1),
    within VERIFY_BUDGET of the clip, every frame decoded scoring its own change.

    VERIFY_START_SHARE of the budget decodes the start of every group of pictures (of an
    even spread of them where the starts of all would take over half the budget). The rest
    decodes further on in some groups (`_further_targets`), taking in turn the groups whose
    starts move most (motion lasts: where it is under way at a group's start it likely goes
    on) and the packet-size peaks (where the encoder lets the bit rate follow the picture,
    moving frames cost more bits; a constant-bit-rate encoder spends them on still frames
    too). Frames never decoded keep a tenth of their normalised packet score, below any
    measured motion: they only order the rest."""
    n = len(index)
    packets = packet_motion_scores(index)
    scores = packets / (float(packets.max()) or 1.0) * 0.1
    keys = np.flatnonzero(index.keyframe).tolist() or [0]
    ends = dict(zip(keys, keys[1:] + [n], strict=True))
    budget = max(int(VERIFY_BUDGET * n), MIN_VERIFIED)
    first = max(REFINE_RUN, int(budget * VERIFY_START_SHARE) // len(keys))
    # Short groups (a keyframe every second or two) would spend the whole budget, and more,
    # on their starts: past half the budget, the starts of an even spread of groups.
    probed = _spread(keys, max(1, budget // 2 // first))
    reach = {key: min(key + first, ends[key]) - 1 for key in probed}
    with _exact_readers(path, index) as readers:
        greys = _read_greys(readers, [j for key in probed for j in range(key, reach[key] + 1)])
        starts = {key: _typical(_run_changes({j: greys[j] for j in range(key, reach[key] + 1)
                                              if j in greys})) for key in probed}
        left = budget - len(greys)
        further = {key: reach.get(key, key - 1) for key in keys}  # the last frame decoded
        for key, target in _further_targets(index, packets, starts, reach):
            target = min(target, ends[key] - 1)
            # Decoding further re-decodes the start too (a fresh seek): count it once.
            cost = target - further[key] + (reach[key] - key + 1
                                             if key in reach and further[key] == reach[key]
                                             else 0)
            if target > further[key] and cost <= left:
                further[key], left = target, left - cost
        greys.update(_read_greys(readers, [j for key in keys
                                           for j in range(reach.get(key, key - 1) + 1,
                                                          further[key] + 1)]))
    runs = [(key + 1, further[key]) for key in keys if further[key] > key]
    return _refined(scores, runs, greys)


def _further_targets(index: FrameIndex, packets: np.ndarray, starts: dict[int, float],
                     reach: dict[int, int]) -> Iterator[tuple[int, int]]:
    """(keyframe, last frame to decode) in order of preference, alternating: far enough past
    the start of the groups whose starts move most for a second pick there (picks are kept
    n / (2 * picks) apart), and a run past each packet-size peak, strongest first."""
    n = len(index)
    step = n // (2 * TYPICAL_PICKS) + REFINE_RUN
    by_start = [(key, reach[key] + step) for key in sorted(starts, key=lambda k: -starts[k])]
    gap = max(REFINE_RUN, n // (4 * REFINE_CANDIDATES))
    peaks = pick_peaks(packets, 2 * REFINE_CANDIDATES, gap)
    by_packets = [(index.keyframe_before(k), k + REFINE_RUN // 2)
                  for k in sorted(peaks, key=lambda k: -packets[k])]
    for pair in zip(by_start, by_packets, strict=False):
        yield from pair
    longer = by_start if len(by_start) > len(by_packets) else by_packets
    yield from longer[min(len(by_start), len(by_packets)):]


def _spread(items: list[int], count: int) -> list[int]:
    """`count` of the items evenly spread over them, first and last included (all of them
    when there are no more)."""
    if count >= len(items):
        return list(items)
    return [items[i] for i in np.unique(np.linspace(0, len(items) - 1, num=count).round()
                                        .astype(int))]


def _typical(changes: dict[int, float]) -> float:
    return float(np.median(list(changes.values()))) if changes else 0.0


@contextlib.contextmanager
def _exact_readers(path: Path, index: FrameIndex) -> Iterator[list[ExactFrameReader]]:
    """READERS exact readers, kept open from one pass to the next: opening a file costs a
    frame decode for some codecs (FFmpeg decodes one to learn the stream's parameters: ~9 ms
    for a 768x576 VP9 or H.264 stream), and a reader may go on where it stopped."""
    with contextlib.ExitStack() as stack:
        yield [stack.enter_context(_exact_reader(path, index)) for _ in range(READERS)]


def _read_greys(readers: list[ExactFrameReader], wanted: Iterable[int]) -> dict[int, np.ndarray]:
    """Grey images of the exact frames `wanted` (those inside the clip), each group of
    pictures read from its keyframe, the readers taking the groups side by side."""
    index = readers[0].index
    targets = sorted({j for j in wanted if 0 <= j < len(index)})

    def read_group(reader: ExactFrameReader, group: list[int]) -> list[tuple[int, np.ndarray]]:
        return [(k, grey(frame)) for k, frame in reader.read(group)]

    return dict(side_by_side(groups_of_pictures(targets, index), readers, read_group,
                             cost=lambda g: g[-1] - index.keyframe_before(g[0])))


def _exact_reader(path: Path, index: FrameIndex) -> ExactFrameReader:
    # One decoder thread per reader (READERS of them side by side): runs here are short and
    # start after seeks, where frame threads (and libdav1d's own frame pipeline, on by
    # default) wait to fill and drop the frames in flight at every seek. Measured on the
    # bench_motion clips: 8 % (VP9) to 20 % (AV1) less CPU than frame threads, same scores.
    reader = ExactFrameReader(path, index, threads=False)
    options = {"threads": "1"}
    if reader.codec_name in LOWRES_CODECS:
        options["lowres"] = "3"
    reader.set_decoder_options(options)
    return reader


# ---- measuring -----------------------------------------------------------------------------

def _coarse_curve(n: int, found: dict[int, float]) -> np.ndarray:
    """Probe scores at the probes, interpolated between them at UNMEASURED_WEIGHT: a frame
    never measured ranks below a measured one that moves as much (near a moving probe, a
    frame that was still would otherwise look as good)."""
    probes = np.asarray(sorted(found))
    values = np.asarray([found[k] for k in probes])
    curve = np.interp(np.arange(n), probes, values) * UNMEASURED_WEIGHT
    curve[probes] = values
    return curve


def _probe_change(changes: dict[int, float], last: int) -> float:
    """A coarse probe's motion: the mean change over its pairs (frames last-WINDOW+2..last),
    so that a camera delivering new images only every few frames is not missed between."""
    pairs = [changes[k] for k in range(last - WINDOW + 2, last + 1) if k in changes]
    return float(np.mean(pairs)) if pairs else 0.0


def _refine_runs(scores: np.ndarray, exclude: Iterable[int],
                 candidates: int | None = None) -> list[tuple[int, int]]:
    """(first, last) frames of the runs to measure frame by frame: REFINE_RUN frames centred
    on each of the strongest `candidates` (REFINE_CANDIDATES) coarse scores, frames in
    `exclude` left out."""
    n = len(scores)
    candidates = candidates or REFINE_CANDIDATES
    done = set(exclude)
    runs = []
    # Apart by a run at least, so that the runs cover different moments.
    gap = max(REFINE_RUN, n // (2 * candidates))
    for k in pick_peaks(scores, candidates, gap):
        start = max(1, k - REFINE_RUN // 2)
        end = min(n - 1, start + REFINE_RUN - 1)
        if all(j in done for j in range(start - 1, end + 1)):
            continue
        runs.append((start, end))
    return runs


def _refined(coarse: np.ndarray, runs: list[tuple[int, int]],
             greys: dict[int, np.ndarray]) -> np.ndarray:
    """The coarse scores with each refined run's frames scored one by one: the run's typical
    change (how much moves there, a steadier measure than any one frame) plus the frame's
    own change (which frame of the run moves most)."""
    scores = coarse.copy()
    for start, end in runs:
        changes = _run_changes({j: g for j, g in greys.items() if start - 1 <= j <= end})
        if not changes:
            continue
        ks = sorted(changes)
        values = np.asarray([changes[k] for k in ks])
        half = REFINE_RUN // 2
        for i, k in enumerate(ks):
            typical = float(np.median(values[max(0, i - half):i + half + 1]))
            scores[k] = typical + changes[k]
    return scores


def _run_changes(greys: dict[int, np.ndarray]) -> dict[int, float]:
    """Frame k -> mean grey change from frame k-1 (both in `greys`), with a cut or a flash
    replaced by the change typical of its run of consecutive frames: a change above CUT_JUMP
    times the median of the others in its run (and above CUT_FLOOR) is not motion. The same
    test drops a picture still settling after missing references (the first of a run)."""
    changes: dict[int, float] = {}
    for k in sorted(greys):
        if k - 1 in greys and greys[k].shape == greys[k - 1].shape:
            changes[k] = float(np.abs(greys[k] - greys[k - 1]).mean())
    cleaned = dict(changes)
    for run in _consecutive(sorted(changes)):
        values = np.asarray([changes[k] for k in run])
        for i, k in enumerate(run):
            others = np.delete(values, i)
            typical = float(np.median(others)) if len(others) else changes[k]
            if changes[k] > CUT_JUMP * max(typical, CUT_FLOOR):
                cleaned[k] = typical
    return cleaned


def _consecutive(ks: list[int]) -> list[list[int]]:
    runs: list[list[int]] = []
    for k in ks:
        if runs and k == runs[-1][-1] + 1:
            runs[-1].append(k)
        else:
            runs.append([k])
    return runs


def grey(frame: av.VideoFrame, width: int = GREY_WIDTH) -> np.ndarray:
    """A small grey image about `width` pixels across (float32): block means of the luma
    plane, read without conversion for 8-bit YUV (swscale would convert the whole frame
    first, several times the cost of decoding a small one)."""
    if frame.format.name in _EIGHT_BIT_LUMA:
        plane = frame.planes[0]
        luma = np.frombuffer(plane, np.uint8).reshape(-1, plane.line_size)
        luma = luma[:frame.height, :frame.width]
    else:
        luma = frame.reformat(format="gray").to_ndarray()
    # Average blocks of up to 4x4 samples taken `stride` apart: less noise than one sample.
    stride = max(1, frame.width // (4 * width))
    side = max(1, min(4, frame.width // (width * stride)))
    block = side * stride
    rows, cols = frame.height // block, frame.width // block
    samples = luma[:rows * block:stride, :cols * block:stride].astype(np.uint16)
    sums = samples.reshape(rows, side, cols * side).sum(axis=1)  # uint16 sums: no overflow
    return sums.reshape(rows, cols, side).sum(axis=2).astype(np.float32) / (side * side)


def changed_fraction(a: np.ndarray, b: np.ndarray) -> float:
    """Share of thumbnail pixels whose grey level moved by more than compression noise.

    A count, not a mean difference: requantisation noise touches every pixel a little (an
    intra encoder settling its quality does that for whole seconds), motion a few pixels a lot.
    """
    return float(np.mean(np.abs(a - b) > PIXEL_NOISE))


def pick_peaks(scores: np.ndarray, n: int, min_gap: int) -> list[int]:
    """Up to n frame numbers with the highest positive scores, each at least `min_gap` frames
    from every other pick. Greedy and stable (the earlier frame wins a tie), so always
    deterministic. Returns [] when the scores are flat: nothing stands out, uniform sampling
    is better."""
    if len(scores) == 0 or n <= 0:
        return []
    median = float(np.median(scores))
    peak = float(np.max(scores))
    if peak <= 0 or peak <= FLAT_PEAK_RATIO * median:
        return []
    picks: list[int] = []
    for k in np.argsort(-scores, kind="stable"):
        if scores[k] <= 0:
            break  # nothing seen there: uniform picks spread better than the earliest frame
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

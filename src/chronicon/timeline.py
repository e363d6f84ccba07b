"""Long videos as a timeline: chunks → captions → summary → WebVTT/SRT.

`describe_timeline(path, options, timeline, backend)` cuts the video into time chunks
(`plan_chunks`: 30 s by default, longer for very long files so there are at most
`MAX_CHUNKS`, each boundary moved onto a scene cut when one lies within ±20 % of a chunk
length), samples each chunk's own frames with the chosen strategy (`sample(start=, end=)`:
only that span is decoded, never the whole file), describes every chunk with the model, then
writes a summary of the whole video from the chunk captions with a text-only prompt to the same
model. The result is an ordinary `AnalysisResult` (`analysis` = the summary) plus the timeline;
`TimelineResult.to_dict()` is the result JSON with `timeline` added.

Progress goes out as `ChunkProgress` (chunk k of n, ETA) besides the usual stage events.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from .analysis import AnalysisOptions, AnalysisResult, StageTimes
from .errors import BadParameter
from .events import (
    ChunkProgress,
    EventCallback,
    Stage,
    StageFinished,
    StageStarted,
    TokenGenerated,
    ignore_event,
)
from .video.frames import Frame
from .video.probe import VideoInfo, probe
from .video.sampling import sample, uniform_indices
from .video.scenes import scene_cuts
from .vlm.backend import GenerationParams, GenerationRequest, GenerationStats

DEFAULT_CHUNK_S = 30.0
DEFAULT_FRAMES_PER_CHUNK = 4
MAX_CHUNKS = 120
MIN_CHUNK_S = 1.0
MAX_CHUNK_S = 3600.0
# A boundary moves onto a scene cut at most this fraction of the chunk length away.
SNAP_FRACTION = 0.2
# The summary prompt carries every caption; past this many characters each one is shortened,
# so a 2-hour timeline still fits the small model's context (8k tokens for SmolVLM2).
SUMMARY_CAPTIONS_CHARS = 12_000
SUMMARY_PROMPT = ("Below are captions of consecutive parts of one video, each with its time "
                  "range.\n{captions}\n\nSummarise the whole video in a few sentences: what "
                  "happens, and when.")


@dataclass(frozen=True)
class TimelineOptions:
    """How to cut the video. `chunk_s=None` means automatic: 30 s, longer when the video would
    otherwise give more than `MAX_CHUNKS` chunks."""

    chunk_s: float | None = None
    frames_per_chunk: int = DEFAULT_FRAMES_PER_CHUNK
    snap: bool = True

    def validate(self) -> TimelineOptions:
        if self.chunk_s is not None and not MIN_CHUNK_S <= self.chunk_s <= MAX_CHUNK_S:
            raise BadParameter("chunk", f"seconds per chunk must be from {MIN_CHUNK_S:g} to "
                                        f"{MAX_CHUNK_S:g}, got {self.chunk_s:g}")
        if not 1 <= self.frames_per_chunk <= 16:
            raise BadParameter("frames_per_chunk", "must be a whole number from 1 to 16, got "
                                                   f"{self.frames_per_chunk!r}")
        return self


@dataclass(frozen=True)
class Chunk:
    """A span of the video in seconds, [start, end)."""

    start: float
    end: float

    @property
    def length(self) -> float:
        return self.end - self.start


@dataclass
class TimelineEntry:
    """One described chunk. `timing`: seconds spent decoding its frames and in the model."""

    chunk: Chunk
    caption: str
    frames: list[Frame] = field(repr=False)
    stats: GenerationStats
    decode_s: float

    def to_dict(self) -> dict[str, Any]:
        s = self.stats
        return {
            "start": round(self.chunk.start, 3),
            "end": round(self.chunk.end, 3),
            "caption": self.caption,
            "frames": [{"index": f.index, "timestamp": round(f.timestamp, 3)}
                       for f in self.frames],
            "timing": {"decode": round(self.decode_s, 4),
                       "preprocess": round(s.preprocess_s, 4),
                       "generate": round(s.generate_s, 4),
                       "total": round(self.decode_s + s.preprocess_s + s.generate_s, 4)},
            "tokens": {"prompt": s.prompt_tokens, "generated": s.generated_tokens},
        }


@dataclass
class TimelineResult:
    """`result` is the whole video's analysis (its `analysis` is the summary, its frames every
    chunk's frames); `entries` the chunks in order."""

    result: AnalysisResult
    entries: list[TimelineEntry]
    timeline_options: TimelineOptions
    chunk_s: float
    cuts: list[float]
    summary_stats: GenerationStats
    summary_input: str  # "text": a text-only prompt; "frames": the backend needed frames too

    def timeline_dicts(self) -> list[dict[str, Any]]:
        return [e.to_dict() for e in self.entries]

    def extra(self) -> dict[str, Any]:
        """What a timeline adds to (or, for `timing`, widens in) the plain result JSON."""
        timing = dict(self.result.to_dict()["timing"])
        timing["decode"] = round(sum(e.decode_s for e in self.entries), 4)
        timing["summary"] = round(self.summary_stats.preprocess_s
                                  + self.summary_stats.generate_s, 4)
        return {
            "timing": timing,
            "timeline": self.timeline_dicts(),
            "timeline_options": {"chunk": self.chunk_s,
                                 "chunk_requested": self.timeline_options.chunk_s,
                                 "frames_per_chunk": self.timeline_options.frames_per_chunk,
                                 "scene_cuts": [round(c, 3) for c in self.cuts],
                                 "summary_input": self.summary_input},
        }

    def to_dict(self) -> dict[str, Any]:
        """The result JSON: every field of a plain analysis (`analysis` is the summary), the
        timing widened with decode and summary seconds, then `timeline`."""
        return {**self.result.to_dict(), **self.extra()}


# ---- planning -----------------------------------------------------------------------------------

def chunk_length(duration: float, requested: float | None = None,
                 max_chunks: int = MAX_CHUNKS) -> float:
    """The chunk length: `requested` when given, else 30 s, made longer (whole seconds) when the
    video would need more than `max_chunks` chunks (a 2-hour file gets 60 s chunks)."""
    if requested is not None:
        return float(requested)
    if duration <= DEFAULT_CHUNK_S * max_chunks:
        return DEFAULT_CHUNK_S
    return float(math.ceil(duration / max_chunks))


def plan_chunks(duration: float, chunk_s: float, cuts: Sequence[float] = (),
                snap_fraction: float = SNAP_FRACTION) -> list[Chunk]:
    """Chunks of about `chunk_s` covering [0, duration); each inner boundary moves onto the
    nearest scene cut within ±`snap_fraction`·`chunk_s` (a caption then describes whole shots).
    A final piece shorter than a fifth of a chunk is merged into the one before it."""
    if duration <= 0:
        return []
    count = max(1, math.ceil(duration / chunk_s - 1e-9))
    bounds = [i * chunk_s for i in range(count)] + [duration]
    if len(bounds) > 2 and bounds[-1] - bounds[-2] < 0.2 * chunk_s:
        del bounds[-2]
    tolerance = snap_fraction * chunk_s
    candidates = sorted(c for c in cuts if 0 < c < duration)
    for i in range(1, len(bounds) - 1):
        nearest = _nearest(candidates, bounds[i])
        if nearest is not None and abs(nearest - bounds[i]) <= tolerance and \
                bounds[i - 1] < nearest < bounds[i + 1]:
            bounds[i] = nearest
    return [Chunk(a, b) for a, b in zip(bounds, bounds[1:], strict=False) if b > a]


def _nearest(values: Sequence[float], target: float) -> float | None:
    if not values:
        return None
    pos = int(np.searchsorted(values, target))
    near = [values[j] for j in (pos - 1, pos) if 0 <= j < len(values)]
    return min(near, key=lambda v: abs(v - target))


# ---- generation through any backend --------------------------------------------------------------

def generate_text_with(backend: Any, prompt: str, params: GenerationParams,
                       on_piece: Callable[[str], None],
                       fallback_frames: list[Frame]) -> tuple[GenerationStats, str]:
    """A text-only generation: (stats, "text"). A backend that cannot take a prompt without
    frames gets `fallback_frames` with it: (stats, "frames")."""
    try:
        return backend.generate_text(prompt, params, on_piece), "text"
    except BadParameter:
        return backend.generate(fallback_frames, prompt, params, on_piece), "frames"


def summary_prompt(entries: Sequence[TimelineEntry],
                   max_chars: int = SUMMARY_CAPTIONS_CHARS) -> str:
    per_caption = max(40, max_chars // max(1, len(entries)))
    lines = []
    for e in entries:
        caption = " ".join(e.caption.split())
        if len(caption) > per_caption:
            caption = caption[:per_caption - 1].rstrip() + "…"
        lines.append(f"[{clock(e.chunk.start)}-{clock(e.chunk.end)}] {caption or '(nothing)'}")
    return SUMMARY_PROMPT.format(captions="\n".join(lines))


def clock(seconds: float) -> str:
    """03:20 (or 1:03:20 past an hour)."""
    total = int(seconds)
    h, rest = divmod(total, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m:02d}:{s:02d}"


# ---- the run ----------------------------------------------------------------------------------

def describe_timeline(video_path: str | Path, options: AnalysisOptions,
                      timeline: TimelineOptions, backend: Any,
                      on_event: EventCallback = ignore_event,
                      info: VideoInfo | None = None,
                      on_entry: Callable[[TimelineEntry], None] | None = None
                      ) -> TimelineResult:
    """Describe the video chunk by chunk, then summarise (see the module docstring).
    `options.frames` is ignored in favour of `timeline.frames_per_chunk`; `options.prompt` is the
    prompt of every chunk. `on_entry` sees each chunk as soon as it is described."""
    timeline.validate()
    options = replace(options, frames=timeline.frames_per_chunk).validate()
    started = time.perf_counter()
    path = Path(video_path)

    on_event(StageStarted(Stage.PROBE, path.name))
    t = time.perf_counter()
    info = info or probe(path)
    probe_s = time.perf_counter() - t
    on_event(StageFinished(Stage.PROBE, probe_s,
                           f"{info.display_width}x{info.display_height}, {info.duration:.1f}s"))

    chunk_s = chunk_length(info.duration, timeline.chunk_s)
    on_event(StageStarted(Stage.SAMPLING, f"scene cuts, {chunk_s:g}s chunks"))
    t = time.perf_counter()
    cuts = scene_cuts(path, info) if timeline.snap else []
    chunks = plan_chunks(info.duration, chunk_s, cuts)
    cuts_s = time.perf_counter() - t
    on_event(StageFinished(Stage.SAMPLING, cuts_s,
                           f"{len(chunks)} chunks, {len(cuts)} scene cuts"))

    on_event(StageStarted(Stage.MODEL_LOAD, backend.info().model_id))
    load_s = backend.load()
    on_event(StageFinished(Stage.MODEL_LOAD, load_s, "already loaded" if load_s == 0 else ""))

    params = options.generation_params()
    entries: list[TimelineEntry] = []
    chunks_started = time.perf_counter()
    batch = chunk_batch_size(backend)
    for first in range(0, len(chunks), batch):
        group = chunks[first:first + batch]
        elapsed = time.perf_counter() - chunks_started
        for k, chunk in enumerate(group, start=first + 1):  # all of a group start together
            eta = elapsed / first * (len(chunks) - first) if first else None
            on_event(ChunkProgress(k, len(chunks), chunk.start, chunk.end, eta))
        for entry in _describe_chunks(path, info, group, options, params, backend, on_event):
            entries.append(entry)
            if on_entry is not None:
                on_entry(entry)
    on_event(ChunkProgress(len(chunks), len(chunks), info.duration, info.duration, 0.0,
                           done=True))

    on_event(StageStarted(Stage.GENERATE, "summary"))
    pieces: list[str] = []

    def on_piece(piece: str) -> None:
        pieces.append(piece)
        on_event(TokenGenerated(piece))

    summary_params = GenerationParams(max_tokens=params.max_tokens,
                                      min_tokens=min(params.min_tokens, params.max_tokens))
    key_frames = _one_frame_per_chunk(entries, limit=16)
    summary_stats, summary_input = generate_text_with(
        backend, summary_prompt(entries), summary_params, on_piece, key_frames)
    on_event(StageFinished(Stage.GENERATE, summary_stats.generate_s, "summary"))

    frames = [f for e in entries for f in e.frames]
    stats = GenerationStats(
        prompt_tokens=sum(e.stats.prompt_tokens for e in entries) + summary_stats.prompt_tokens,
        generated_tokens=(sum(e.stats.generated_tokens for e in entries)
                          + summary_stats.generated_tokens),
        preprocess_s=sum(e.stats.preprocess_s for e in entries) + summary_stats.preprocess_s,
        time_to_first_token_s=entries[0].stats.time_to_first_token_s if entries else 0.0,
        generate_s=sum(e.stats.generate_s for e in entries) + summary_stats.generate_s)
    total = time.perf_counter() - started
    result = AnalysisResult(
        video_path=str(video_path), options=options, analysis="".join(pieces).strip(),
        timestamp=datetime.now(timezone.utc).isoformat(timespec="microseconds"),
        backend=backend.info(), stats=stats,
        times=StageTimes(probe=probe_s, sampling=cuts_s + sum(e.decode_s for e in entries),
                         model_load=load_s, preprocess=stats.preprocess_s,
                         time_to_first_token=stats.time_to_first_token_s,
                         generate=stats.generate_s, total=total),
        video=info, frames=frames)
    return TimelineResult(result=result, entries=entries, timeline_options=timeline,
                          chunk_s=chunk_s, cuts=cuts, summary_stats=summary_stats,
                          summary_input=summary_input)


def chunk_batch_size(backend: Any) -> int:
    """How many chunks are described together: a backend that shares forward passes between
    requests (`supports_batch`) takes up to its `max_batch` (CHRONICON_MAX_BATCH) at once; any
    other describes them one by one, so progress still moves chunk by chunk."""
    if not getattr(backend, "supports_batch", False):
        return 1
    return max(1, int(getattr(backend, "max_batch", 1)))


def _describe_chunks(path: Path, info: VideoInfo, chunks: Sequence[Chunk],
                     options: AnalysisOptions, params: GenerationParams, backend: Any,
                     on_event: EventCallback) -> list[TimelineEntry]:
    """Sample each chunk (only its span is decoded: seek to each frame's keyframe, decode
    forward), then describe them in one `generate_batch` call."""
    sampled = []
    for chunk in chunks:
        t = time.perf_counter()
        frames = sample(path, options.frames, options.sampling, options.resize, info=info,
                        start=chunk.start, end=chunk.end)
        sampled.append((frames, time.perf_counter() - t))
    quiet = _quiet(on_event)
    requests = [GenerationRequest(frames, options.prompt, params, video_fps=info.fps or None,
                                  video_duration=info.duration, on_event=quiet)
                for frames, _ in sampled]
    pieces: list[list[str]] = [[] for _ in chunks]
    # Chunk captions are not streamed as TokenGenerated: the summary is the text being written.
    all_stats = backend.generate_batch(requests, lambda i, piece: pieces[i].append(piece))
    return [TimelineEntry(chunk=chunk, caption="".join(text).strip(), frames=frames,
                          stats=stats, decode_s=decode_s)
            for chunk, (frames, decode_s), text, stats
            in zip(chunks, sampled, pieces, all_stats, strict=True)]


def _quiet(on_event: EventCallback) -> EventCallback:
    """Per-chunk preprocess/generate stages would flood the progress display: drop them."""
    def forward(event: Any) -> None:
        if not isinstance(event, StageStarted | StageFinished):
            on_event(event)
    return forward


def _one_frame_per_chunk(entries: Sequence[TimelineEntry], limit: int) -> list[Frame]:
    middles = [e.frames[len(e.frames) // 2] for e in entries if e.frames]
    if len(middles) <= limit:
        return middles
    return [middles[i] for i in uniform_indices(len(middles), limit)]


# ---- subtitles --------------------------------------------------------------------------------

def subtitles(timeline: Sequence[dict[str, Any]]) -> Any:
    """The timeline (result JSON `timeline` entries) as a pysubs2 file of one cue per chunk."""
    import pysubs2

    subs = pysubs2.SSAFile()
    for entry in timeline:
        text = " ".join(str(entry.get("caption", "")).split()) or "…"
        event = pysubs2.SSAEvent(start=int(round(entry["start"] * 1000)),
                                 end=int(round(entry["end"] * 1000)))
        event.plaintext = text  # escapes what SSA would read as override tags
        subs.append(event)
    return subs


def to_vtt(timeline: Sequence[dict[str, Any]]) -> str:
    return subtitles(timeline).to_string("vtt")


def to_srt(timeline: Sequence[dict[str, Any]]) -> str:
    return subtitles(timeline).to_string("srt")


SUBTITLE_FORMATS: dict[str, Callable[[Sequence[dict[str, Any]]], str]] = {
    "vtt": to_vtt, "srt": to_srt}


def write_subtitles(timeline: Sequence[dict[str, Any]], path: Path, fmt: str) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(SUBTITLE_FORMATS[fmt](timeline), encoding="utf-8")
    return path

"""One analysis, end to end: probe → sample → load (cached) → preprocess → generate.

`analyze(video, options, backend, on_event)` returns an `AnalysisResult`; `to_dict()` is the
result JSON users script against (every MISSION §4 field, in that order, then our additions);
`save_result` writes it under the results directory. Progress flows out through `on_event`:
StageStarted/StageFinished per stage, FrameSampled per frame, TokenGenerated per text piece.
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from . import __version__
from .events import (
    EventCallback,
    Stage,
    StageFinished,
    StageStarted,
    TokenGenerated,
    ignore_event,
    stage,
)
from .options import DEFAULT_PROMPT, AnalysisOptions
from .video.frames import Frame
from .video.probe import VideoInfo, probe
from .video.sampling import sample
from .vlm.backend import Backend, BackendInfo, GenerationRequest, GenerationStats


@dataclass(frozen=True)
class StageTimes:
    probe: float
    sampling: float
    model_load: float
    preprocess: float
    time_to_first_token: float
    generate: float
    total: float


@dataclass
class AnalysisResult:
    video_path: str
    options: AnalysisOptions
    analysis: str
    timestamp: str
    backend: BackendInfo
    stats: GenerationStats
    times: StageTimes
    video: VideoInfo
    frames: list[Frame] = field(repr=False)

    def to_dict(self) -> dict[str, Any]:
        """The result JSON. MISSION §4's fields first and exactly as named there."""
        o, t, s = self.options, self.times, self.stats
        return {
            "video_path": self.video_path,
            "prompt": o.prompt,
            "num_frames": len(self.frames),
            "resize": o.resize,
            "max_tokens": o.max_tokens,
            "analysis": self.analysis,
            "timestamp": self.timestamp,
            "model": self.backend.model_id,
            "device": self.backend.device,
            "quantized": self.backend.quantized,
            "timing": {
                "model_load_time": _r(t.model_load),
                "inference_time": _r(t.preprocess + t.generate),
                "total_time": _r(t.total),
                "probe": _r(t.probe),
                "sampling": _r(t.sampling),
                "preprocess": _r(t.preprocess),
                "time_to_first_token": _r(t.time_to_first_token),
                "generate": _r(t.generate),
            },
            "min_tokens": o.min_tokens,
            "frames_requested": o.frames,
            "sampling": o.sampling,
            "frames": [{"index": f.index, "timestamp": round(f.timestamp, 3),
                        **({"warnings": list(f.warnings)} if f.warnings else {})}
                       for f in self.frames],
            "dtype": self.backend.dtype,
            "quantization": {"used": self.backend.quantization,
                             "reason": self.backend.quantization_reason},
            "compiled": self.backend.compiled,
            "backend": self.backend.backend,
            "speedups": list(self.backend.speedups),
            "tokens": {"prompt": s.prompt_tokens, "generated": s.generated_tokens},
            "tokens_per_second": round(s.tokens_per_second, 2),
            "chronicon_version": __version__,
            "video": self.video.to_dict(),
        }


def _r(seconds: float) -> float:
    return round(seconds, 4)


@dataclass
class PreparedAnalysis:
    """A video probed and sampled, waiting for the model: what `prepare_analysis` returns.
    `request()` is its GenerationRequest, `complete()` turns the generated text and stats into
    the `AnalysisResult` (its total counted from `started`). The job queue prepares several and
    describes them in one `Backend.generate_batch` call; `analyze` does one."""

    video_path: str  # as the caller gave it (the result JSON shows it so)
    options: AnalysisOptions
    info: VideoInfo
    frames: list[Frame]
    probe_s: float
    sampling_s: float
    started: float

    def request(self, on_event: EventCallback = ignore_event) -> GenerationRequest:
        return GenerationRequest(self.frames, self.options.prompt,
                                 self.options.generation_params(),
                                 video_fps=self.info.fps or None,
                                 video_duration=self.info.duration, on_event=on_event)

    def complete(self, backend: BackendInfo, text: str, stats: GenerationStats,
                 model_load_s: float) -> AnalysisResult:
        return AnalysisResult(
            video_path=self.video_path,
            options=self.options,
            analysis=text.strip(),
            timestamp=datetime.now(timezone.utc).isoformat(timespec="microseconds"),
            backend=backend,
            stats=stats,
            times=StageTimes(probe=self.probe_s, sampling=self.sampling_s,
                             model_load=model_load_s, preprocess=stats.preprocess_s,
                             time_to_first_token=stats.time_to_first_token_s,
                             generate=stats.generate_s,
                             total=time.perf_counter() - self.started),
            video=self.info,
            frames=self.frames,
        )


def analyze(video_path: str | Path, options: AnalysisOptions, backend: Backend,
            on_event: EventCallback = ignore_event,
            on_frames: Callable[[list[Frame]], None] | None = None, *,
            info: VideoInfo | None = None) -> AnalysisResult:
    """Describe the video at `video_path`. `options` is trusted: an `AnalysisOptions` is valid
    by construction, and an edge with narrower ranges has checked them. A bad video raises the
    specific BadVideo subclass, an unavailable model ModelUnavailable. `info`: the video's
    probe, when the caller already has it (the web probes at upload), so the file is not probed
    twice (the probe stage then takes no time). `on_frames` receives the sampled frames
    (with their images) before the model runs, so a caller can show them while the text is
    still being written."""
    prepared = prepare_analysis(video_path, options, on_event, on_frames, info=info)
    load_s = load_model(backend, on_event)
    pieces: list[str] = []

    def on_piece(piece: str) -> None:
        pieces.append(piece)
        on_event(TokenGenerated(piece))

    r = prepared.request(on_event)
    stats = backend.generate(r.frames, r.prompt, r.params, on_piece, video_fps=r.video_fps,
                             video_duration=r.video_duration, on_event=on_event)
    return prepared.complete(backend.info(), "".join(pieces), stats, load_s)


def prepare_analysis(video_path: str | Path, options: AnalysisOptions,
                     on_event: EventCallback = ignore_event,
                     on_frames: Callable[[list[Frame]], None] | None = None, *,
                     info: VideoInfo | None = None) -> PreparedAnalysis:
    """The PROBE and SAMPLING stages of `analyze` (same arguments): no model is touched."""
    start = time.perf_counter()
    path = Path(video_path)

    with stage(on_event, Stage.PROBE, path.name) as probing:
        info = info or probe(path)
        probing.detail = f"{info.display_width}x{info.display_height}, {info.duration:.1f}s"

    with stage(on_event, Stage.SAMPLING,
               f"{options.frames} frames, {options.sampling}") as sampling:
        frames = sample(path, n=options.frames, strategy=options.sampling,
                        resize=options.resize, info=info, on_event=on_event)
        sampling.detail = f"{len(frames)} frames"
    if on_frames is not None:
        on_frames(frames)
    return PreparedAnalysis(str(video_path), options, info, frames, probing.seconds,
                            sampling.seconds, start)


def load_model(backend: Backend, on_event: EventCallback = ignore_event) -> float:
    """The MODEL_LOAD stage: load `backend` if needed; seconds it took (0.0: already loaded)."""
    on_event(StageStarted(Stage.MODEL_LOAD, backend.info().model_id))
    load_s = backend.load()
    on_event(StageFinished(Stage.MODEL_LOAD, load_s,
                           "already loaded" if load_s == 0 else _describe_info(backend.info())))
    return load_s


def _describe_info(info: BackendInfo) -> str:
    return f"{info.device}, {info.dtype}, quantization {info.quantization}"


def result_filename(result: AnalysisResult) -> str:
    """`<UTC timestamp>_<video stem>.json`, safe on every filesystem."""
    when = datetime.fromisoformat(result.timestamp).strftime("%Y%m%d-%H%M%S")
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", Path(result.video_path).stem).strip("._") or "video"
    return f"{when}_{stem[:80]}.json"


def save_result(result: AnalysisResult, results_dir: Path,
                data: dict[str, Any] | None = None) -> Path:
    """Write the result JSON (`data`, default `result.to_dict()`) under `results_dir` (created
    if needed) without overwriting an earlier file; returns the path written."""
    return write_result_json(data if data is not None else result.to_dict(), Path(results_dir),
                             result_filename(result))


def write_result_json(data: dict[str, Any], directory: Path, filename: str) -> Path:
    """Write `data` as `directory/filename`, adding `-2`, `-3`, ... when the name is taken
    (exclusive create: two analyses finishing in the same second never overwrite each other)."""
    directory.mkdir(parents=True, exist_ok=True)
    text = json.dumps(data, indent=2, ensure_ascii=False) + "\n"
    stem, suffix = os.path.splitext(filename)
    for n in range(1, 1000):
        target = directory / (filename if n == 1 else f"{stem}-{n}{suffix}")
        try:
            with target.open("x", encoding="utf-8") as fh:
                fh.write(text)
            return target
        except FileExistsError:
            continue
    raise FileExistsError(f"too many results named {filename} in {directory}")


def write_output(data: dict[str, Any], path: Path) -> Path:
    """Write the result JSON to an explicit path (`--output`), replacing what is there."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    os.replace(tmp, path)
    return path


__all__ = ["AnalysisOptions", "AnalysisResult", "DEFAULT_PROMPT", "PreparedAnalysis", "StageTimes",
           "analyze", "load_model", "prepare_analysis", "result_filename", "save_result",
           "write_output", "write_result_json"]

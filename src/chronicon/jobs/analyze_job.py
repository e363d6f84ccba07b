"""The `analyze` job kind: one uploaded (or watched) video → one analysis in the history, then
the agent's decision on it."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import fields
from pathlib import Path
from typing import Any

from ..analysis import AnalysisResult, analyze
from ..errors import ChroniconError
from ..events import Decision, Stage, StageFinished, StageStarted, Thumbnail
from ..history import frames_path, record_analysis
from ..options import AnalysisOptions
from ..store.job_records import JobRecord
from ..video.frames import Frame, save_frames
from ..video.probe import VideoInfo
from .kinds import JobContext

log = logging.getLogger(__name__)


def run_analyze_job(job: JobRecord, context: JobContext) -> str:
    options = AnalysisOptions.from_dict(job.options)
    backend = context.backends.get(options.model)
    was_loaded = backend.loaded
    result: AnalysisResult | None = None
    try:
        result = analyze(Path(job.video_path), options, backend, context.emit,
                         on_frames=frame_saver(job, context), info=_probed_info(job))
    finally:
        if not was_loaded and backend.loaded:  # this job paid for the (one) model load
            context.backends.count_load(result.times.model_load if result else 0.0)
    return record_and_act(job, result, context)


def frame_saver(job: JobRecord, context: JobContext) -> Callable[[list[Frame]], None]:
    """`on_frames` for a job: the frames are saved where its analysis will keep them (a job's
    analysis id is its job id) and announced before generation, so the page shows them while
    the text is written."""
    frames_dir = frames_path(context.settings, job.id)

    def on_frames(frames: list[Frame]) -> None:
        for entry in save_frames(frames, frames_dir):
            context.emit(Thumbnail(entry["position"], entry["index"], entry["timestamp"]))

    return on_frames


def record_and_act(job: JobRecord, result: AnalysisResult, context: JobContext) -> str:
    """Record `result` as the job's analysis, then run the agent on it; the analysis id."""
    analysis_id = record_analysis(context.store, context.settings, result, job_id=job.id,
                                  source=job.source, video_filename=job.video_filename,
                                  frames_saved=True, extra=_upload_names(job, result))
    if context.agent_step is not None and context.settings.agent_enabled:
        run_agent(job, analysis_id, result.analysis, context)
    return analysis_id


def _upload_names(job: JobRecord, result: AnalysisResult) -> dict[str, Any] | None:
    """An upload's result names the user's file, not where the server stored it: absolute
    server paths never reach result.json or the API."""
    if job.source is not None or not job.video_filename:
        return None
    return {"video_path": job.video_filename,
            "video": {**result.video.to_dict(), "path": job.video_filename}}


def _probed_info(job: JobRecord) -> VideoInfo | None:
    """The probe taken at submission (so the file is not probed twice), if it still fits. A
    file that is gone is probed again, which raises the error that names the cause."""
    if not job.video or not Path(job.video_path).is_file():
        return None
    names = {f.name for f in fields(VideoInfo)}
    try:
        return VideoInfo(**{k: v for k, v in job.video.items() if k in names})
    except TypeError:  # written by another version: probe again
        return None


def run_agent(job: JobRecord, analysis_id: str, description: str, context: JobContext) -> None:
    """The agent on one description (the configured agent step)."""
    assert context.agent_step is not None
    step = context.agent_step
    run_agent_stage(context, analysis_id,
                    lambda: step(analysis_id, description, job.video_filename or ""))


def run_agent_stage(context: JobContext, analysis_id: str,
                    decide: Callable[[], dict[str, Any]]) -> None:
    """The job's AGENT stage around `decide()` (its answer dict). The agent's failure does not
    fail the analysis: it is recorded on the analysis and shown in the Decision event."""
    context.emit(StageStarted(Stage.AGENT))
    started = time.perf_counter()
    answer: dict[str, Any] = {}
    error: str | None = None
    try:
        answer = decide()
    except ChroniconError as exc:
        error = exc.message
    except Exception as exc:  # noqa: BLE001
        log.exception("agent failed for analysis %s", analysis_id)
        error = f"internal error: {type(exc).__name__}"
    if error is not None:
        context.store.set_agent_error(analysis_id, error)
    context.emit(Decision(answer, error))
    label = (answer.get("decision") or {}).get("label")
    context.emit(StageFinished(Stage.AGENT, time.perf_counter() - started,
                               detail=label or error or ""))

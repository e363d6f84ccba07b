"""Recording a finished analysis in the history: the one way every path does it.

The CLI, the job worker (and, as they arrive, watched folders, streams, timelines and remote
workers) all call `record_analysis`. It writes, in this order, the result JSON (results dir),
the frame JPEGs (`settings.frames_dir/<analysis id>`) and the `analyses` row: the row comes last,
so a row always has its files. A job's analysis id IS its job id, which makes recording a job
idempotent: a job that is run again after a crash (a `kill -9` during the agent step) finds its
analysis and records nothing twice.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

from .analysis import AnalysisResult, save_result
from .config import Settings
from .search import index_analysis
from .store import Store
from .video.frames import save_frames


def frames_path(settings: Settings, analysis_id: str) -> Path:
    """Where an analysis' frames are: `<frames dir>/<analysis id>/<position>.jpg`."""
    return settings.frames_dir / analysis_id


def record_analysis(store: Store, settings: Settings, result: AnalysisResult, *,
                    job_id: str | None = None, source: str | None = None,
                    extra: dict[str, Any] | None = None, video_filename: str | None = None,
                    result_path: Path | None = None, frames_saved: bool = False,
                    embed: bool = True) -> str:
    """Save `result` in the history and return its analysis id.

    `job_id`: the job it ran for; the analysis id is then the job id, and a second call for the
    same job returns that id and writes nothing. `source`: where the video came from (a watched
    folder, a stream; None for a plain upload or CLI run), kept on the row and in the result
    JSON. `extra` is merged into the result JSON (e.g.
    `timeline`, `source`). `video_filename`: the user's name for the file (default: the
    path's name). `result_path`: the result JSON was already written there (the CLI's
    `--output`), so no second copy goes to the results dir. `frames_saved`: the frames are
    already in `frames_path(settings, id)` (a job saves them as soon as they are sampled).
    The texts are indexed for search (`embed=False`: full text only, the vectors come with
    the next meaning search, so a one-shot CLI run does not load the embedding model)."""
    if job_id is not None:
        existing = store.analysis_for_job(job_id)
        if existing is not None:
            return existing.id
    analysis_id = job_id or uuid.uuid4().hex
    data = {**result.to_dict(), **(extra or {})}
    if source is not None:
        data["source"] = source
    if result_path is None:
        result_path = save_result(result, settings.results_dir, data=data)
    frames_dir = frames_path(settings, analysis_id)
    if not frames_saved:
        save_frames(result.frames, frames_dir)
    store.insert_analysis(
        analysis_id, data, video_path=result.video_path,
        video_filename=video_filename or Path(result.video_path).name,
        model=result.backend.model_id, frames_dir=str(frames_dir), job_id=job_id,
        result_path=str(result_path), source=source)
    index_analysis(store, analysis_id, data, embed=embed)
    return analysis_id


__all__ = ["frames_path", "record_analysis"]

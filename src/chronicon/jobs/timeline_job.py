"""The `timeline` job kind: an uploaded (or watched) long video → a timeline of chunk captions
and a summary in the history, then the agent's decision on every chunk (with its time range).

The job's `frames` option is the frames per chunk; the chunk length is automatic (30 s, longer
for videos over an hour). Progress: `ChunkProgress` (chunk k of n, ETA) and each chunk's frames
as thumbnails as soon as the chunk is described; the summary streams as the job's text.
"""

from __future__ import annotations

import logging
from pathlib import Path

from ..events import Thumbnail
from ..history import frames_path, record_analysis
from ..options import AnalysisOptions
from ..sources.record import act
from ..store.job_records import JobRecord
from ..timeline import TimelineEntry, TimelineOptions, describe_timeline
from ..video.frames import FRAME_JPEG_QUALITY
from .analyze_job import _probed_info, run_agent_stage
from .kinds import JobContext

log = logging.getLogger(__name__)


def run_timeline_job(job: JobRecord, context: JobContext) -> str:
    options = AnalysisOptions.from_dict(job.options)
    timeline = TimelineOptions(frames_per_chunk=options.frames)
    backend = context.backends.get(options.model)
    was_loaded = backend.loaded
    frames_dir = frames_path(context.settings, job.id)
    shown = 0

    def on_entry(entry: TimelineEntry) -> None:
        # Shown while the next chunk is described; record_analysis writes the final listing.
        nonlocal shown
        frames_dir.mkdir(parents=True, exist_ok=True)
        for frame in entry.frames:
            frame.image.convert("RGB").save(frames_dir / f"{shown}.jpg", "JPEG",
                                            quality=FRAME_JPEG_QUALITY)
            context.emit(Thumbnail(shown, frame.index, frame.timestamp))
            shown += 1

    result = None
    try:
        result = describe_timeline(Path(job.video_path), options, timeline, backend,
                                   context.emit, info=_probed_info(job), on_entry=on_entry)
    finally:
        if not was_loaded and backend.loaded:
            context.backends.count_load(result.result.times.model_load if result else 0.0)
    analysis_id = record_analysis(context.store, context.settings, result.result, job_id=job.id,
                                  source=job.source, video_filename=job.video_filename,
                                  extra=result.extra())
    if context.agent_step is not None and context.settings.agent_enabled:
        _decide_per_chunk(analysis_id, context)
    return analysis_id


def _decide_per_chunk(analysis_id: str, context: JobContext) -> None:
    """One decision per chunk (a rule that fires at 03:20 says so); the strongest is shown."""
    run_agent_stage(context, analysis_id,
                    lambda: act(context.store, context.settings, analysis_id,
                                backend=context.backends.current))

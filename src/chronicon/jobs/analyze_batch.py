"""Several `analyze` jobs that share forward passes: the worker claimed them together (the same
model, on a backend that batches; see `JobQueue._claim`).

Each job is probed and sampled on its own, with its own events and thumbnails, so a bad video
fails only its job. The model is loaded once (every job sees the MODEL_LOAD stage), then ONE
`Backend.generate_batch` call describes the rest, each row streaming its text to its own job's
events. Each job then records its own analysis with its own timing (probe, sampling and its
row's GenerationStats: preprocess, time to first token, generate), runs the agent and ends,
one after another. When the batch itself fails in the model, its jobs are described again one
at a time, so a job that cannot be described fails alone; a job whose text had already
started streaming fails with the batch's error instead (its text cannot be taken back).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ..analysis import PreparedAnalysis, load_model, prepare_analysis
from ..events import Event, TokenGenerated
from ..options import AnalysisOptions
from ..store.job_records import JobRecord
from ..vlm.backend import Backend, GenerationRequest, GenerationStats
from .analyze_job import _probed_info, frame_saver, record_and_act
from .kinds import JobContext
from .runner import JobEvents, JobRunner, Unfinished

log = logging.getLogger(__name__)


@dataclass
class _Member:
    """One job of the batch, and what it has gathered so far."""

    job: JobRecord
    context: JobContext
    events: JobEvents
    prepared: PreparedAnalysis | None = None
    pieces: list[str] = field(default_factory=list)
    error: Exception | None = None  # the first event of its own it could not write
    ended: bool = False

    def on_event(self, event: Event) -> None:
        """The job's events while the model runs for every row: one job's failure to write
        its events is kept for its end and does not stop the other rows."""
        if self.error is not None:
            return
        try:
            self.events.on_event(event)
        except Exception as exc:  # noqa: BLE001 - reported when this job ends
            self.error = exc

    def on_piece(self, piece: str) -> None:
        self.pieces.append(piece)
        self.on_event(TokenGenerated(piece))

    def request(self) -> GenerationRequest:
        assert self.prepared is not None, "only a prepared job is described"
        return self.prepared.request(self.on_event)


def run_analyze_batch(jobs: list[JobRecord], runner: JobRunner) -> None:
    """Run `jobs` (analyze jobs for one model) together; every job ends done or failed. Raises
    Unfinished (for the worker to retry) when some job's end could not be recorded."""
    members = [_Member(job, *runner.job_context(job)) for job in jobs]
    unfinished: list[Callable[[], None]] = []

    def end(member: _Member, analysis_id: str | None = None,
            error: BaseException | None = None) -> None:
        member.ended = True
        try:
            member.events.flush()
        except Exception as exc:  # noqa: BLE001 - the job's end says it
            error = error or exc
        try:
            runner.conclude(member.job, None if error else analysis_id, error)
        except Unfinished as exc:
            unfinished.append(exc.finish)

    try:
        _run(members, runner, end)
    except Exception as exc:  # noqa: BLE001 - shared by the jobs still open (the model load)
        for member in members:
            if not member.ended:
                end(member, error=exc)
    if unfinished:
        raise Unfinished.of_all(unfinished)


def _run(members: list[_Member], runner: JobRunner,
         end: Callable[..., None]) -> None:
    backend = runner.backends.get(AnalysisOptions.from_dict(members[0].job.options).model)
    for m in members:
        try:
            m.prepared = prepare_analysis(
                Path(m.job.video_path), AnalysisOptions.from_dict(m.job.options),
                m.events.on_event, on_frames=frame_saver(m.job, m.context),
                info=_probed_info(m.job))
        except Exception as exc:  # noqa: BLE001 - a bad video fails its own job only
            end(m, error=exc)
    live = [m for m in members if not m.ended]
    if not live:
        return
    load_s = _load(backend, live, runner)
    for m, outcome in _generate(backend, live):
        if isinstance(outcome, Exception):
            end(m, error=outcome)
            continue
        try:
            if m.error is not None:
                raise m.error
            m.events.flush()
            assert m.prepared is not None
            result = m.prepared.complete(backend.info(), "".join(m.pieces), outcome, load_s)
            analysis_id = record_and_act(m.job, result, m.context)
        except Exception as exc:  # noqa: BLE001 - this job fails, the others go on
            end(m, error=exc)
        else:
            end(m, analysis_id)


def _load(backend: Backend, live: list[_Member], runner: JobRunner) -> float:
    """Load the model once; every job sees the MODEL_LOAD stage (and its seconds)."""
    def to_every_job(event: Event) -> None:
        for m in live:
            m.on_event(event)

    was_loaded = backend.loaded
    load_s = 0.0
    try:
        load_s = load_model(backend, to_every_job)
    finally:
        if not was_loaded and backend.loaded:  # counted once, for the batch
            runner.backends.count_load(load_s)
    return load_s


def _generate(backend: Backend, live: list[_Member]
              ) -> list[tuple[_Member, GenerationStats | Exception]]:
    """Each job's GenerationStats, or the exception that fails it."""
    requests = [m.request() for m in live]
    try:
        stats = backend.generate_batch(requests, lambda row, piece: live[row].on_piece(piece))
        return list(zip(live, stats, strict=True))
    except Exception as exc:  # noqa: BLE001 - find the job that fails by running each alone
        log.warning("describing %d jobs together failed (%s: %s); describing them one at a "
                    "time", len(live), type(exc).__name__, exc)
        batch_error = exc
    outcomes: list[tuple[_Member, GenerationStats | Exception]] = []
    for m, r in zip(live, requests, strict=True):
        if m.pieces:  # its text had started: it cannot be taken back
            outcomes.append((m, batch_error))
            continue
        try:
            outcomes.append((m, backend.generate(
                r.frames, r.prompt, r.params, m.on_piece, video_fps=r.video_fps,
                video_duration=r.video_duration, on_event=r.on_event)))
        except Exception as exc:  # noqa: BLE001 - this job fails alone
            outcomes.append((m, exc))
    return outcomes


__all__ = ["run_analyze_batch"]

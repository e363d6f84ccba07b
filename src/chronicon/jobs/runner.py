"""Running one claimed job: its events, its kind, and how it ends (done or failed, always).

The runner turns whatever a job kind raises into a `failed` job with the cause: a ChroniconError
shows its message, an OSError (a full disk, a read-only folder) its system reason, anything else
its type. Even when recording that end fails too (the database's disk is full), it raises
`Unfinished` for the worker to retry, so a job is never left `running` by a live process.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable
from pathlib import Path

from ..config import Settings
from ..errors import ChroniconError, ModelUnavailable
from ..events import Done, Event, Failed, TokenGenerated, to_dict
from ..store import Store
from ..store.job_records import DONE, FAILED, JobRecord
from ..vlm.warm import WarmBackend
from .kinds import AgentStep, JobContext, JobKind, get_job_kind

log = logging.getLogger(__name__)


class TokenBatcher:
    """At most one `token` event per `window` seconds: a piece that comes after a quiet spell
    goes out at once, pieces that come faster are joined. The page still sees the text grow
    live, and the store writes ~20 rows a second instead of one per token (each row is a
    committed transaction that the SSE readers poll)."""

    def __init__(self, emit: Callable[[str], None], window: float = 0.05):
        self._emit = emit
        self._window = window
        self._pieces: list[str] = []
        self._last_emit = float("-inf")

    def add(self, text: str) -> None:
        self._pieces.append(text)
        if time.monotonic() - self._last_emit >= self._window:
            self.flush()

    def flush(self) -> None:
        if self._pieces:
            text, self._pieces = "".join(self._pieces), []
            self._last_emit = time.monotonic()
            self._emit(text)


class Unfinished(Exception):
    """The job ended but its end could not be recorded; `finish()` tries again."""

    def __init__(self, finish: Callable[[], None]):
        super().__init__("the job's end could not be recorded")
        self.finish = finish

    @classmethod
    def of_all(cls, finishes: list[Callable[[], None]]) -> Unfinished:
        """The ends of several jobs (a batch): `finish()` records them in order, and a retry
        starts from the first one still unrecorded, so no job is ended twice."""
        pending = list(finishes)

        def finish() -> None:
            while pending:
                pending[0]()
                pending.pop(0)

        return cls(finish)


def failure_message(exc: BaseException) -> str:
    """What a failed job says about its cause (never a traceback or a server path)."""
    if isinstance(exc, ChroniconError):
        return exc.message
    if isinstance(exc, OSError) and exc.strerror:
        return f"the server could not write or read its files: {exc.strerror}"
    return f"internal error: {type(exc).__name__}: {exc}" if str(exc) else \
        f"internal error: {type(exc).__name__}"


class JobEvents:
    """One running job's event stream: `emit` persists an event (and beats), `on_event` is what
    the job's stages report to (text pieces joined by a TokenBatcher; `flush()` sends the
    rest). The stored file name in a detail is shown as the user's."""

    def __init__(self, job: JobRecord, store: Store, beat: Callable[[], None]):
        self.job = job
        self._store = store
        self._beat = beat
        self._stored_name = Path(job.video_path).name
        self._tokens = TokenBatcher(lambda text: self.emit(TokenGenerated(text)))

    def emit(self, event: Event) -> None:
        self._beat()
        detail = getattr(event, "detail", "")
        if isinstance(detail, str) and self._stored_name in detail:
            # Show the user's file name, not our generated one.
            event = dataclasses.replace(
                event, detail=detail.replace(self._stored_name,
                                             self.job.video_filename or "video"))
        self._store.append_job_event(self.job.id, event.kind, to_dict(event))

    def on_event(self, event: Event) -> None:
        if isinstance(event, TokenGenerated):
            self._tokens.add(event.text)
            return
        self._tokens.flush()
        self.emit(event)

    def flush(self) -> None:
        self._tokens.flush()


class JobRunner:
    """Runs claimed jobs for the worker (`run(job)`, or `run_batch(jobs)`: analyze jobs that
    share forward passes); `beat` marks progress."""

    def __init__(self, settings: Settings, store: Store, backends: WarmBackend,
                 agent_step: AgentStep | None = None, beat: Callable[[], None] = lambda: None):
        self.settings = settings
        self.store = store
        self.backends = backends
        self.agent_step = agent_step
        self.beat = beat

    def job_context(self, job: JobRecord) -> tuple[JobContext, JobEvents]:
        """What one job runs with: its context (whose `emit` is the events' `on_event`) and
        its event stream (to flush once the job's text is written)."""
        events = JobEvents(job, self.store, lambda: self.beat())
        context = JobContext(self.settings, self.store, self.backends, events.on_event,
                             lambda: self.beat(), self.agent_step)
        return context, events

    def run(self, job: JobRecord, kind: JobKind | None = None) -> None:
        """Run `job` with its registered kind, or with `kind` (the Redis queue's server side
        records a remote worker's result this way: the same events, the same end)."""
        run_kind = kind or get_job_kind(job.kind)
        context, events = self.job_context(job)
        try:
            try:
                analysis_id = run_kind(job, context)
            finally:
                events.flush()
        except Exception as exc:  # noqa: BLE001 - the worker must survive any one job
            self.conclude(job, error=exc)
        else:
            self.conclude(job, analysis_id)

    def run_batch(self, jobs: list[JobRecord]) -> None:
        """Run the jobs the worker claimed together: one job as `run` does; several `analyze`
        jobs (same model, a batching backend) with one `generate_batch` call, each ending on
        its own (see `analyze_batch.py`)."""
        if len(jobs) == 1:
            self.run(jobs[0])
            return
        from .analyze_batch import run_analyze_batch

        run_analyze_batch(jobs, self)

    def conclude(self, job: JobRecord, analysis_id: str | None = None,
                 error: BaseException | None = None) -> None:
        """End `job`: done with `analysis_id`, or failed with `error`'s cause. Raises
        Unfinished when even that cannot be recorded."""
        if error is None:
            self._end(lambda: self._done(job, analysis_id))
            return
        if isinstance(error, ModelUnavailable):
            self.backends.last_error = error.message
        if not isinstance(error, ChroniconError):
            log.error("job %s failed", job.id, exc_info=error)
        message, error_type = failure_message(error), type(error).__name__
        self._end(lambda: self._fail(job, message, error_type))

    def _end(self, finish: Callable[[], None]) -> None:
        try:
            finish()
        except Exception as exc:  # noqa: BLE001
            log.error("could not record the end of a job (%s); will retry", exc)
            raise Unfinished(finish) from exc

    def _done(self, job: JobRecord, analysis_id: str | None) -> None:
        record = self.store.get_analysis(analysis_id) if analysis_id else None
        done = Done({"analysis_id": analysis_id, "label": record.label if record else None})
        self.store.finish_job(job.id, DONE, (done.kind, to_dict(done)), analysis_id=analysis_id)

    def _fail(self, job: JobRecord, message: str, error_type: str) -> None:
        failed = Failed(message, error_type)
        self.store.finish_job(job.id, FAILED, (failed.kind, to_dict(failed)), error=message,
                              error_type=error_type)


__all__ = ["JobEvents", "JobRunner", "TokenBatcher", "Unfinished", "failure_message"]

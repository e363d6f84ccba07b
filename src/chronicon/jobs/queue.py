"""The job queue: jobs persisted in SQLite and run by ONE worker thread that keeps one model
backend loaded for every job (a model is never loaded per request).

The worker claims the oldest queued job. When it is an `analyze` job, its model's backend
batches (`supports_batch`) and more `analyze` jobs for the same model are queued, it claims up
to `max_batch` (CHRONICON_MAX_BATCH) of them with it: they share forward passes in one
`generate_batch` call, and each still ends, records and reports on its own
(`analyze_batch.py`). Anything else runs one job at a time.

States: queued → running → done | failed, or queued → cancelled. Every progress event of a job
is persisted (`job_events`) so a browser that reconnects, or opens a finished job, replays it.
A process that dies mid-job leaves the job `running`; the next `JobQueue.recover()` puts it
back in the queue, so nothing submitted is lost (and recording is idempotent by job id, so a
job run twice leaves one analysis).
"""

from __future__ import annotations

import logging
import uuid
from pathlib import Path
from typing import Any

from ..config import Settings
from ..errors import Conflict, NotFound
from ..events import Cancelled, Interrupted, Queued, Stage, StageFinished, to_dict
from ..history import frames_path
from ..options import AnalysisOptions
from ..store import Store
from ..store.job_records import QUEUED, JobRecord
from ..vlm.warm import WarmBackend
from .kinds import AgentStep, get_job_kind
from .runner import JobRunner
from .worker import STUCK_AFTER_S, JobRuntime, Worker

log = logging.getLogger(__name__)


class JobQueue:
    """Submit, cancel and run jobs; `start()` the worker, `stop()` it at shutdown."""

    def __init__(self, settings: Settings, store: Store, backends: WarmBackend,
                 agent_step: AgentStep | None = None, preload: bool = False,
                 stuck_after: float = STUCK_AFTER_S):
        self.settings = settings
        self.store = store
        self.backends = backends
        self.agent_step = agent_step
        self.runner = JobRunner(settings, store, backends, agent_step)
        self.worker = Worker(self._claim, self.runner.run_batch,
                             before_first=self._preload if preload else None,
                             stuck_after=stuck_after)
        self.runner.beat = self.worker.beat

    @property
    def current(self) -> JobRuntime | None:
        return self.worker.current

    def frames_dir(self, job_id: str) -> Path:
        """Where a job's sampled frames are (its analysis, once recorded, keeps them there)."""
        return frames_path(self.settings, job_id)

    # ---- public API ------------------------------------------------------------------------------
    def submit(self, video_path: Path, video_filename: str, options: AnalysisOptions, *,
               upload: dict[str, Any] | None = None, source: str | None = None,
               kind: str = "analyze") -> JobRecord:
        """Queue a job of `kind` (a registered job kind) on a probed video. `upload` (seconds,
        detail, and `video`: the probe's `VideoInfo.to_dict()`) becomes its first event and
        spares the worker a second probe."""
        get_job_kind(kind)  # an unknown kind fails here, not in the worker
        first = []
        upload = upload or {}
        if "seconds" in upload:
            event = StageFinished(Stage.UPLOAD, upload["seconds"], detail=upload.get("detail", ""))
            first.append((event.kind, to_dict(event)))
        job = self.store.insert_job(uuid.uuid4().hex, str(video_path), video_filename,
                                    options.to_dict(), kind=kind, source=source,
                                    video=upload.get("video"), first_events=first)
        self.worker.wake()
        return job

    def cancel(self, job_id: str) -> JobRecord:
        """Cancel a queued job (Conflict once it has started or finished)."""
        job = self.get(job_id)  # 404 for an unknown id
        event = Cancelled()
        if not self.store.cancel_queued_job(job_id, (event.kind, to_dict(event))):
            raise Conflict(f"job {job_id} is {self.get(job_id).state}; only a queued job "
                           "can be cancelled")
        if job.source is None:  # an upload, never analysed: nothing refers to it. A watched
            Path(job.video_path).unlink(missing_ok=True)  # folder's clip is the user's file.
        return self.get(job_id)

    def get(self, job_id: str) -> JobRecord:
        job = self.store.get_job(job_id)
        if job is None:
            raise NotFound(f"no job with id {job_id}")
        return job

    def depth(self) -> int:
        return self.store.count_jobs_by_state()[QUEUED]

    def health(self) -> str:
        """The worker's state for /health: `ok`, `dead` or `stuck`."""
        return self.worker.health()

    def recover(self) -> list[str]:
        """Requeue the jobs a dead process left running; each gets an `interrupted` event."""
        ids = self.store.requeue_running_jobs()
        for job_id in ids:
            for event in (Interrupted(), Queued(self.store.queue_position(job_id))):
                self.store.append_job_event(job_id, event.kind, to_dict(event))
            log.warning("job %s was interrupted by a restart; requeued", job_id)
        return ids

    def start(self) -> None:
        self.worker.start()

    def stop(self, timeout: float = 30.0) -> None:
        self.worker.stop(timeout)

    def _claim(self) -> list[JobRecord]:
        """The oldest queued job, with the companions it can share forward passes with."""
        job = self.store.claim_next_job()
        if job is None:
            return []
        return [job, *self._companions(job)]

    def _companions(self, job: JobRecord) -> list[JobRecord]:
        """More queued `analyze` jobs for `job`'s model, up to the backend's batch size (none
        unless the backend batches). Whatever goes wrong here (a model name that cannot be
        right) leaves `job` to run alone and report it."""
        if job.kind != "analyze":
            return []
        from ..timeline import chunk_batch_size

        try:
            more = chunk_batch_size(self.backends.get(job.model)) - 1
            if more < 1:
                return []
            default = self.backends.default_model
            return self.store.claim_more_jobs("analyze", job.model or default, default, more,
                                              after_seq=job.seq)
        except Exception as exc:  # noqa: BLE001 - the claimed job must still run
            log.warning("job %s runs alone: could not claim a batch with it (%s)", job.id, exc)
            return []

    def _preload(self) -> None:
        try:
            self.backends.preload()
        except Exception as exc:  # noqa: BLE001 - jobs will report it with their own error
            self.backends.last_error = str(exc)
            log.error("could not preload the model: %s", exc)


__all__ = ["JobQueue"]

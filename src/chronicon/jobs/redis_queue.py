"""The Redis queue kind (`CHRONICON_QUEUE=redis://host:port/db`): jobs go to remote workers.

The server keeps every job in SQLite exactly as the embedded queue does (SQLite stays the
source of truth) and, instead of running them, enqueues one Dramatiq message per job. Workers
(`chronicon worker`) claim jobs through the internal HTTP API, stream progress to it and post
the result; this class is the server's side of that conversation: it records what workers send
through the same runner, `record_analysis` and agent step as a local job, so the page, the
history and the outbox cannot tell the difference.

A sweep runs every few seconds:
- a running job whose worker has sent no heartbeat for `worker_timeout` seconds is marked
  `interrupted` (Dramatiq delivers its message again once the worker's broker heartbeat is
  that old too; the server runs Dramatiq's maintenance itself so that happens on time);
- a queued or interrupted job whose message the broker does not hold (Redis restarted without
  its data) is enqueued again. Nothing the server accepted is lost, and a duplicate delivery is
  harmless: the second claim finds the job taken or finished.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from ..config import Settings
from ..errors import Conflict, QueueUnavailable
from ..events import Failed, Interrupted, Thumbnail, to_dict
from ..history import frames_path, record_analysis
from ..options import AnalysisOptions
from ..store import Store
from ..store.job_records import FAILED, RUNNING, JobRecord
from ..store.worker_records import INTERRUPTED, WAITING_STATES, Claim, seconds_ago
from ..vlm.warm import WarmBackend
from ..worker import broker as wire
from .analyze_job import run_agent
from .kinds import AgentStep, JobContext
from .queue import JobQueue

log = logging.getLogger(__name__)



@dataclass
class ReceivedResult:
    """A result JSON as a worker sent it, with what `record_analysis` reads from a result:
    its dict, timestamp, video path (the server's copy) and model id. The frames are already
    on the server (the worker sent them as they were sampled)."""

    data: dict[str, Any]
    video_path: str
    frames: list[Any] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.data = {**self.data, "video_path": self.video_path}

    def to_dict(self) -> dict[str, Any]:
        return self.data

    @property
    def timestamp(self) -> str:
        return self.data["timestamp"]

    @property
    def analysis(self) -> str:
        return str(self.data.get("analysis", ""))

    @property
    def backend(self) -> Any:
        return SimpleNamespace(model_id=self.data.get("model"))


@dataclass(frozen=True)
class SweepReport:
    interrupted: list[str]
    reenqueued: list[str]


class RedisJobQueue(JobQueue):
    """Jobs in SQLite, run by remote workers through Redis; `start()` runs the sweep."""

    def __init__(self, settings: Settings, store: Store, backends: WarmBackend,
                 agent_step: AgentStep | None = None, preload: bool = False, **kwargs: Any):
        wire.require_dramatiq()
        if settings.worker_token is None:
            raise QueueUnavailable("CHRONICON_QUEUE=redis://… needs CHRONICON_WORKER_TOKEN: "
                                   "the workers use it to fetch videos and report results")
        # The server never loads a model here: the workers do.
        super().__init__(settings, store, backends, agent_step, preload=False, **kwargs)
        self.broker = wire.make_broker(settings, maintenance_chance=0)
        self.sweep_interval = max(0.5, min(10.0, settings.worker_timeout / 3))
        self.reenqueued_total = 0
        self.broker_error: str | None = None
        self._job_locks: dict[str, threading.Lock] = {}
        self._locks_guard = threading.Lock()
        self._stop_sweep = threading.Event()
        self._sweep_thread: threading.Thread | None = None

    # ---- the JobQueue API ------------------------------------------------------------------------
    def submit(self, video_path: Path, video_filename: str, options: AnalysisOptions,
               **kwargs: Any) -> JobRecord:
        job = super().submit(video_path, video_filename, options, **kwargs)
        self._enqueue(job)  # if Redis is down now, the sweep enqueues it later
        return job

    def recover(self) -> list[str]:
        """Nothing to requeue at start: running jobs belong to workers, and the sweep deals
        with those whose worker is gone."""
        return []

    def start(self) -> None:
        if self._sweep_thread is not None and self._sweep_thread.is_alive():
            return
        self._stop_sweep.clear()
        self._sweep_thread = threading.Thread(target=self._sweep_loop, name="chronicon-sweep",
                                              daemon=True)
        self._sweep_thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        self._stop_sweep.set()
        if self._sweep_thread is not None:
            self._sweep_thread.join(timeout)
            self._sweep_thread = None

    @property
    def current(self) -> Any:
        return None  # the server runs no job itself

    def health(self) -> str:
        if self._sweep_thread is not None and not self._sweep_thread.is_alive():
            return "dead"
        return "ok"

    def status(self) -> dict[str, Any]:
        """For /health and /metrics: the broker, its depth, the sweep's work so far."""
        try:
            depth = wire.queue_size(self.broker)
            self.broker_error = None
        except Exception as exc:  # noqa: BLE001 - Redis down is a state to show, not a crash
            depth = None
            self.broker_error = f"{type(exc).__name__}: {exc}"
        return {"kind": "redis", "url": wire.redact_url(self.settings.queue),
                "broker_messages": depth, "broker_error": self.broker_error,
                "reenqueued_total": self.reenqueued_total}

    # ---- the sweep -------------------------------------------------------------------------------
    def _sweep_loop(self) -> None:
        while not self._stop_sweep.wait(self.sweep_interval):
            try:
                self.sweep()
            except Exception as exc:  # noqa: BLE001 - Redis down: try again next round
                self.broker_error = f"{type(exc).__name__}: {exc}"
                log.warning("queue sweep failed: %s", exc)

    def sweep(self) -> SweepReport:
        """One round: mark the jobs of vanished workers, re-deliver what the broker lost."""
        alive_after = seconds_ago(self.settings.worker_timeout)
        interrupted = []
        for job_id, worker_id in self.store.interrupt_orphaned_jobs(alive_after):
            event = Interrupted(f"worker {worker_id} stopped answering; the job runs again "
                                "when another worker takes it")
            self.store.append_job_event(job_id, event.kind, to_dict(event))
            log.warning("job %s: worker %s vanished; interrupted", job_id, worker_id)
            interrupted.append(job_id)
        wire.run_maintenance(self.broker)
        reenqueued = []
        # A job younger than one sweep may have its message on the way to Redis right now:
        # leave it to the next round (a duplicate would be harmless, only wasteful).
        waiting = self.store.jobs_awaiting_worker(seconds_ago(self.sweep_interval))
        if waiting:
            held = wire.job_ids_in_broker(self.broker)
            for job in waiting:
                # Checked again after reading the broker: a job acked in between is finished.
                if job.id not in held and self.store.job_state(job.id) in WAITING_STATES:
                    self._enqueue(job)
                    reenqueued.append(job.id)
            if reenqueued:
                self.reenqueued_total += len(reenqueued)
                log.warning("re-enqueued %d job(s) the broker did not hold", len(reenqueued))
        self.broker_error = None
        return SweepReport(interrupted, reenqueued)

    def _enqueue(self, job: JobRecord) -> bool:
        try:
            wire.enqueue(self.broker, wire.JobMessage(job.id, job.kind, job.options))
            return True
        except Exception as exc:  # noqa: BLE001 - the job is safe in SQLite; the sweep retries
            self.broker_error = f"{type(exc).__name__}: {exc}"
            log.warning("could not enqueue job %s (%s); the sweep will retry", job.id, exc)
            return False

    # ---- what workers report (web/routes/internal.py) --------------------------------------------
    def claim(self, job_id: str, worker_id: str) -> Claim:
        self.get(job_id)  # 404 for an unknown id
        claim = self.store.claim_job(job_id, worker_id, seconds_ago(self.settings.worker_timeout))
        if claim.previous is not None:
            # The broker re-delivered before the sweep marked the job: say so now, so the page
            # shows the interruption before the new worker's progress.
            event = Interrupted(f"worker {claim.previous} stopped answering; worker "
                                f"{worker_id} runs the job again")
            self.store.append_job_event(job_id, event.kind, to_dict(event))
        if claim.granted:
            log.info("job %s %s by %s", job_id, claim.reason, worker_id)
        return claim

    def worker_events(self, job_id: str, worker_id: str,
                      events: list[tuple[str, dict[str, Any]]]) -> int:
        self._check_holder(job_id, worker_id)
        for kind, data in events:
            self.store.append_job_event(job_id, kind, data)
        return len(events)

    def worker_frame(self, job_id: str, worker_id: str, position: int, index: int,
                     timestamp: float, jpeg: bytes) -> None:
        self._check_holder(job_id, worker_id)
        directory = frames_path(self.settings, job_id)
        directory.mkdir(parents=True, exist_ok=True)
        target = directory / f"{position}.jpg"
        partial = target.with_suffix(".jpg.part")
        partial.write_bytes(jpeg)
        partial.replace(target)
        _add_to_listing(directory, {"position": position, "index": index,
                                    "timestamp": timestamp})
        event = Thumbnail(position, index, timestamp)
        self.store.append_job_event(job_id, event.kind, to_dict(event))

    def worker_result(self, job_id: str, worker_id: str, data: dict[str, Any]) -> JobRecord:
        """Record the result once, run the agent, finish the job; a repeat returns the job."""
        with self._job_lock(job_id):
            job = self.get(job_id)
            if job.finished:
                if job.analysis_id is None:
                    raise Conflict(f"job {job_id} is {job.state}; its result is not wanted")
                return job  # the same result again (the worker retried after a lost answer)
            result = ReceivedResult(data, job.video_path)
            self.runner.run(job, kind=_record_received(result))
            return self.get(job_id)

    def worker_failure(self, job_id: str, worker_id: str, error: str,
                       error_type: str) -> JobRecord:
        with self._job_lock(job_id):
            job = self.get(job_id)
            if not job.finished:
                self._check_holder(job_id, worker_id)
                failed = Failed(error, error_type)
                self.store.finish_job(job_id, FAILED, (failed.kind, to_dict(failed)),
                                      error=error, error_type=error_type)
            return self.get(job_id)

    def _check_holder(self, job_id: str, worker_id: str) -> None:
        """Only the worker that holds a running job may report on it."""
        state = self.store.job_state(job_id)
        if state is None:
            self.get(job_id)  # 404
        holder = self.store.job_holder(job_id)
        if state == INTERRUPTED and holder == worker_id:
            # Its heartbeats were late, not gone: the worker is still at it; running again.
            self.store.claim_job(job_id, worker_id, seconds_ago(self.settings.worker_timeout))
            return
        if state != RUNNING or holder != worker_id:
            raise Conflict(f"job {job_id} is {state} and held by {holder or 'no worker'}, "
                           f"not {worker_id}")

    def _job_lock(self, job_id: str) -> threading.Lock:
        with self._locks_guard:
            return self._job_locks.setdefault(job_id, threading.Lock())


def _record_received(result: ReceivedResult) -> Callable[[JobRecord, JobContext], str]:
    """A job kind for the runner that records a worker's result instead of analysing."""

    def record(job: JobRecord, context: JobContext) -> str:
        analysis_id = record_analysis(context.store, context.settings, result, job_id=job.id,
                                      source=job.source, video_filename=job.video_filename,
                                      frames_saved=True)
        if context.agent_step is not None and context.settings.agent_enabled:
            run_agent(job, analysis_id, result.analysis, context)
        return analysis_id

    return record


def _add_to_listing(directory: Path, entry: dict[str, Any]) -> None:
    """Keep `frames.json` (what the history reads) in step with the JPEGs received."""
    listing_path = directory / "frames.json"
    try:
        listing = json.loads(listing_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        listing = []
    listing = [e for e in listing if e.get("position") != entry["position"]] + [entry]
    listing.sort(key=lambda e: e["position"])
    listing_path.write_text(json.dumps(listing), encoding="utf-8")


__all__ = ["RedisJobQueue", "ReceivedResult", "SweepReport"]

"""Queries for remote workers: their heartbeats, which worker holds which job, and the jobs a
vanished worker left behind (migration 008).

A worker is alive while its last heartbeat is newer than `alive_after` (an ISO UTC timestamp
the caller computes from `Settings.worker_timeout`); timestamps are `utc_now()` strings, which
sort in time order, so the comparisons below are plain string comparisons.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from .database import utc_now
from .job_records import FINISHED_STATES, QUEUED, RUNNING, JobRecord

# A job whose worker vanished: shown as such until another worker claims it. It is waiting for
# a worker like a queued job (the broker delivers its message again), so both states count as
# "waiting" for the reconciliation sweep.
INTERRUPTED = "interrupted"
WAITING_STATES = (QUEUED, INTERRUPTED)


def seconds_ago(seconds: float) -> str:
    """The `utc_now()`-style timestamp of `seconds` ago, for `alive_after`/`created_before`."""
    return (datetime.now(timezone.utc) - timedelta(seconds=seconds)).isoformat()


@dataclass(frozen=True)
class WorkerRecord:
    """One worker as its last heartbeat described it."""

    id: str
    host: str | None
    pid: int | None
    model: str | None
    device: str | None
    concurrency: int
    current_job: str | None
    jobs_done: int
    model_loads: int
    started_at: str
    last_seen: str

    def alive(self, alive_after: str) -> bool:
        return self.last_seen >= alive_after

    def to_dict(self, alive_after: str) -> dict[str, Any]:
        return {**self.__dict__, "alive": self.alive(alive_after)}

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> WorkerRecord:
        return cls(**dict(row))


@dataclass(frozen=True)
class Claim:
    """The answer to a worker asking for a job: `granted` (`claimed`, or `taken over` from a
    vanished worker the sweep had not yet marked), or why not (`finished`, `elsewhere`: another
    live worker runs it, `unknown`: no such job)."""

    granted: bool
    reason: str
    job: JobRecord | None = None
    holder: str | None = None
    previous: str | None = None  # the vanished worker this claim took the job over from


class WorkerRecords:
    """Mixin on `Store`; relies on `Database.query/transaction` and `JobRecords`."""

    # ---- heartbeats ------------------------------------------------------------------------------
    def record_heartbeat(self, worker_id: str, *, host: str | None = None,
                         pid: int | None = None, model: str | None = None,
                         device: str | None = None, concurrency: int = 1,
                         current_job: str | None = None, jobs_done: int = 0,
                         model_loads: int = 0) -> None:
        now = utc_now()
        with self.transaction() as conn:  # type: ignore[attr-defined]
            conn.execute(
                "INSERT INTO workers (id, host, pid, model, device, concurrency, current_job,"
                " jobs_done, model_loads, started_at, last_seen)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT(id) DO UPDATE SET host = excluded.host, pid = excluded.pid,"
                " model = excluded.model, device = excluded.device,"
                " concurrency = excluded.concurrency, current_job = excluded.current_job,"
                " jobs_done = excluded.jobs_done, model_loads = excluded.model_loads,"
                " last_seen = excluded.last_seen",
                (worker_id, host, pid, model, device, concurrency, current_job, jobs_done,
                 model_loads, now, now))

    def list_workers(self, seen_after: str | None = None) -> list[WorkerRecord]:
        """Workers, most recently seen first; `seen_after` leaves out the long gone."""
        rows = self.query(  # type: ignore[attr-defined]
            "SELECT * FROM workers WHERE last_seen >= ? ORDER BY last_seen DESC, id",
            (seen_after or "",))
        return [WorkerRecord.from_row(r) for r in rows]

    def get_worker(self, worker_id: str) -> WorkerRecord | None:
        row = self.query_one("SELECT * FROM workers WHERE id = ?",  # type: ignore[attr-defined]
                             (worker_id,))
        return WorkerRecord.from_row(row) if row else None

    # ---- which worker holds which job ------------------------------------------------------------
    def claim_job(self, job_id: str, worker_id: str, alive_after: str) -> Claim:
        """Give `job_id` to `worker_id` unless it is finished or a live worker holds it.

        A message can be delivered twice (a worker killed before its ack, a re-enqueue by the
        reconciliation sweep); this is where the second delivery learns it has nothing to do.
        The same worker claiming again (its own retry) is granted."""
        with self.transaction() as conn:  # type: ignore[attr-defined]
            row = conn.execute("SELECT state FROM jobs WHERE id = ?", (job_id,)).fetchone()
            if row is None:
                return Claim(False, "unknown")
            state = row[0]
            holder = conn.execute(
                "SELECT a.worker_id, a.claimed_at, w.last_seen, w.current_job"
                " FROM job_assignments a LEFT JOIN workers w ON w.id = a.worker_id"
                " WHERE a.job_id = ?", (job_id,)).fetchone()
            if state in FINISHED_STATES:
                return Claim(False, "finished", holder=holder[0] if holder else None)
            if state == RUNNING and holder is not None and holder[0] != worker_id:
                worker, claimed_at, last_seen, current = holder
                # The holder keeps the job while it is alive and says it runs it (or claimed
                # it too recently to have said so): its own message comes back if it dies.
                working = job_id in (current or "").split(",") or claimed_at >= alive_after
                if (last_seen or "") >= alive_after and working:
                    return Claim(False, "elsewhere", holder=worker)
                previous = worker
                conn.execute("UPDATE jobs SET interruptions = interruptions + 1 WHERE id = ?",
                             (job_id,))
            else:
                previous = None
            conn.execute("UPDATE jobs SET state = ?, started_at = ? WHERE id = ?",
                         (RUNNING, utc_now(), job_id))
            conn.execute(
                "INSERT INTO job_assignments (job_id, worker_id, claimed_at) VALUES (?, ?, ?)"
                " ON CONFLICT(job_id) DO UPDATE SET worker_id = excluded.worker_id,"
                " claimed_at = excluded.claimed_at, attempts = attempts + 1",
                (job_id, worker_id, utc_now()))
        return Claim(True, "taken over" if previous else "claimed",
                     self.get_job(job_id), worker_id, previous)  # type: ignore[attr-defined]

    def job_holder(self, job_id: str) -> str | None:
        """The worker that last claimed the job (None for a job no worker claimed)."""
        row = self.query_one(  # type: ignore[attr-defined]
            "SELECT worker_id FROM job_assignments WHERE job_id = ?", (job_id,))
        return row[0] if row else None

    def interrupt_orphaned_jobs(self, alive_after: str) -> list[tuple[str, str]]:
        """Running jobs whose worker has not been seen since `alive_after` become `interrupted`
        (the broker will deliver them again); returns (job id, worker id) pairs."""
        with self.transaction() as conn:  # type: ignore[attr-defined]
            rows = conn.execute(
                "SELECT j.id, a.worker_id FROM jobs j JOIN job_assignments a ON a.job_id = j.id"
                " LEFT JOIN workers w ON w.id = a.worker_id"
                " WHERE j.state = ? AND COALESCE(w.last_seen, '') < ? ORDER BY j.seq",
                (RUNNING, alive_after)).fetchall()
            for job_id, _ in rows:
                conn.execute("UPDATE jobs SET state = ?, interruptions = interruptions + 1"
                             " WHERE id = ?", (INTERRUPTED, job_id))
        return [(r[0], r[1]) for r in rows]

    def jobs_awaiting_worker(self, created_before: str | None = None) -> list[JobRecord]:
        """Queued and interrupted jobs, oldest first (`created_before`: leave out the newest,
        whose message may be on its way to the broker right now)."""
        rows = self.query(  # type: ignore[attr-defined]
            f"SELECT * FROM jobs WHERE state IN ({','.join('?' * len(WAITING_STATES))})"
            " AND created_at < ? ORDER BY seq",
            (*WAITING_STATES, created_before or "9999"))
        return [JobRecord.from_row(r) for r in rows]

    def job_state(self, job_id: str) -> str | None:
        row = self.query_one("SELECT state FROM jobs WHERE id = ?",  # type: ignore[attr-defined]
                             (job_id,))
        return row[0] if row else None

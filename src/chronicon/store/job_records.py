"""Queries for the job queue and each job's replayable event log."""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from typing import Any

from .database import utc_now

QUEUED, RUNNING, DONE, FAILED, CANCELLED = "queued", "running", "done", "failed", "cancelled"
JOB_STATES = (QUEUED, RUNNING, DONE, FAILED, CANCELLED)
FINISHED_STATES = (DONE, FAILED, CANCELLED)


@dataclass(frozen=True)
class JobRecord:
    """One row of `jobs`. `options` is the job's `AnalysisOptions.to_dict()` as submitted (the
    store serialises; `chronicon.options.AnalysisOptions.from_dict` makes it typed again);
    `kind` names its entry in the job-kind registry; `video` is the probe taken at submission
    (`VideoInfo.to_dict()`), when there was one."""

    id: str
    seq: int
    state: str
    created_at: str
    started_at: str | None
    finished_at: str | None
    video_path: str
    video_filename: str | None
    model: str | None
    options: dict[str, Any]
    analysis_id: str | None
    error: str | None
    error_type: str | None
    interruptions: int
    kind: str = "analyze"
    source: str | None = None
    video: dict[str, Any] | None = None

    @property
    def finished(self) -> bool:
        return self.state in FINISHED_STATES

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> JobRecord:
        data = dict(row)
        data["options"] = json.loads(data.pop("options_json"))
        video_json = data.pop("video_json", None)
        data["video"] = json.loads(video_json) if video_json else None
        return cls(**data)


@dataclass(frozen=True)
class JobEvent:
    """One persisted progress event; `seq` is its SSE id (1-based, per job)."""

    job_id: str
    seq: int
    created_at: str
    kind: str
    data: dict[str, Any]


def _insert_event(conn: sqlite3.Connection, job_id: str, kind: str, data: dict[str, Any]) -> int:
    seq = conn.execute("SELECT COALESCE(MAX(seq), 0) + 1 FROM job_events WHERE job_id = ?",
                       (job_id,)).fetchone()[0]
    conn.execute("INSERT INTO job_events (job_id, seq, created_at, kind, data_json)"
                 " VALUES (?, ?, ?, ?, ?)", (job_id, seq, utc_now(), kind, json.dumps(data)))
    return seq


class JobRecords:
    """Mixin on `Store`; relies on `Database.query/execute/transaction`."""

    # ---- jobs ------------------------------------------------------------------------------------
    def insert_job(self, job_id: str, video_path: str, video_filename: str | None,
                   options: dict[str, Any], *, kind: str = "analyze", source: str | None = None,
                   video: dict[str, Any] | None = None,
                   first_events: list[tuple[str, dict[str, Any]]] = ()) -> JobRecord:
        """Queue a job with its first events, then a `queued` event with its position, in one
        transaction: the worker never sees the job before its history starts. `options` is
        `AnalysisOptions.to_dict()`; its `model` is also kept in the `model` column."""
        with self.transaction() as conn:  # type: ignore[attr-defined]
            seq = conn.execute("SELECT COALESCE(MAX(seq), 0) + 1 FROM jobs").fetchone()[0]
            conn.execute(
                "INSERT INTO jobs (id, seq, state, created_at, video_path, video_filename, model,"
                " options_json, kind, source, video_json) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (job_id, seq, QUEUED, utc_now(), video_path, video_filename,
                 options.get("model"), json.dumps(options), kind, source,
                 json.dumps(video) if video is not None else None))
            position = conn.execute("SELECT COUNT(*) FROM jobs WHERE state = ? AND seq <= ?",
                                    (QUEUED, seq)).fetchone()[0]
            events = [*first_events, ("queued", {"position": position})]
            conn.executemany(
                "INSERT INTO job_events (job_id, seq, created_at, kind, data_json)"
                " VALUES (?, ?, ?, ?, ?)",
                [(job_id, n, utc_now(), kind, json.dumps(data))
                 for n, (kind, data) in enumerate(events, start=1)])
        job = self.get_job(job_id)
        assert job is not None
        return job

    def get_job(self, job_id: str) -> JobRecord | None:
        row = self.query_one("SELECT * FROM jobs WHERE id = ?", (job_id,))  # type: ignore[attr-defined]
        return JobRecord.from_row(row) if row else None

    def list_jobs(self, limit: int = 50, offset: int = 0,
                  states: tuple[str, ...] | None = None) -> list[JobRecord]:
        where, params = "", ()
        if states:
            where = f"WHERE state IN ({','.join('?' * len(states))})"
            params = tuple(states)
        rows = self.query(  # type: ignore[attr-defined]
            f"SELECT * FROM jobs {where} ORDER BY seq DESC LIMIT ? OFFSET ?",
            (*params, limit, offset))
        return [JobRecord.from_row(r) for r in rows]

    def count_jobs_by_state(self) -> dict[str, int]:
        rows = self.query("SELECT state, COUNT(*) FROM jobs GROUP BY state")  # type: ignore[attr-defined]
        counts = dict.fromkeys(JOB_STATES, 0)
        counts.update({r[0]: r[1] for r in rows})
        return counts

    def queue_position(self, job_id: str) -> int | None:
        """1 for the next job to run, 2 for the one after, ...; None unless the job is queued."""
        row = self.query_one(  # type: ignore[attr-defined]
            "SELECT COUNT(*) FROM jobs q, jobs j WHERE j.id = ? AND j.state = ? "
            "AND q.state = ? AND q.seq <= j.seq", (job_id, QUEUED, QUEUED))
        return row[0] or None if row else None

    def claim_next_job(self) -> JobRecord | None:
        """The oldest queued job, atomically moved to running; None when the queue is empty."""
        with self.transaction() as conn:  # type: ignore[attr-defined]
            row = conn.execute("SELECT id FROM jobs WHERE state = ? ORDER BY seq LIMIT 1",
                               (QUEUED,)).fetchone()
            if row is None:
                return None
            conn.execute("UPDATE jobs SET state = ?, started_at = ? WHERE id = ?",
                         (RUNNING, utc_now(), row[0]))
        return self.get_job(row[0])

    def claim_more_jobs(self, kind: str, model: str, default_model: str, limit: int,
                        after_seq: int) -> list[JobRecord]:
        """Up to `limit` more queued jobs of `kind` whose model is `model` (a job without a
        model runs `default_model`), oldest first and queued after `after_seq` (the job already
        claimed), atomically moved to running: the companions of a batch. Jobs of another kind
        or model in between keep their place; the oldest queued job is always the next one
        `claim_next_job` takes, so a skipped job waits for one batch at most."""
        if limit < 1:
            return []
        with self.transaction() as conn:  # type: ignore[attr-defined]
            ids = [r[0] for r in conn.execute(
                "SELECT id FROM jobs WHERE state = ? AND kind = ? AND seq > ?"
                " AND COALESCE(model, ?) = ? ORDER BY seq LIMIT ?",
                (QUEUED, kind, after_seq, default_model, model, limit))]
            if not ids:
                return []
            marks = ",".join("?" * len(ids))
            # Read back inside the transaction: a job moved to running is always returned.
            conn.execute(f"UPDATE jobs SET state = ?, started_at = ? WHERE id IN ({marks})",
                         (RUNNING, utc_now(), *ids))
            rows = conn.execute(f"SELECT * FROM jobs WHERE id IN ({marks}) ORDER BY seq",
                                ids).fetchall()
        return [JobRecord.from_row(r) for r in rows]

    def finish_job(self, job_id: str, state: str, event: tuple[str, dict[str, Any]],
                   analysis_id: str | None = None, error: str | None = None,
                   error_type: str | None = None) -> None:
        """Set the final state and append the terminal `event` in one transaction, so a reader
        never sees a finished job without its last event (or the reverse)."""
        with self.transaction() as conn:  # type: ignore[attr-defined]
            conn.execute(
                "UPDATE jobs SET state = ?, finished_at = ?, analysis_id = ?, error = ?,"
                " error_type = ? WHERE id = ?",
                (state, utc_now(), analysis_id, error, error_type, job_id))
            _insert_event(conn, job_id, *event)

    def cancel_queued_job(self, job_id: str, event: tuple[str, dict[str, Any]]) -> bool:
        """Cancel the job if it is still queued, appending `event` with it; False when it
        already started or finished."""
        with self.transaction() as conn:  # type: ignore[attr-defined]
            cur = conn.execute(
                "UPDATE jobs SET state = ?, finished_at = ? WHERE id = ? AND state = ?",
                (CANCELLED, utc_now(), job_id, QUEUED))
            if cur.rowcount != 1:
                return False
            _insert_event(conn, job_id, *event)
            return True

    def requeue_running_jobs(self) -> list[str]:
        """Jobs left `running` by a process that died go back to the queue, in their old order."""
        with self.transaction() as conn:  # type: ignore[attr-defined]
            ids = [r[0] for r in conn.execute("SELECT id FROM jobs WHERE state = ? ORDER BY seq",
                                              (RUNNING,))]
            conn.execute("UPDATE jobs SET state = ?, started_at = NULL,"
                         " interruptions = interruptions + 1 WHERE state = ?", (QUEUED, RUNNING))
        return ids

    # ---- events ----------------------------------------------------------------------------------
    def append_job_event(self, job_id: str, kind: str, data: dict[str, Any]) -> int:
        """Persist one event; returns its sequence number (the SSE event id)."""
        with self.transaction() as conn:  # type: ignore[attr-defined]
            return _insert_event(conn, job_id, kind, data)

    def job_events_after(self, job_id: str, after_seq: int = 0) -> list[JobEvent]:
        rows = self.query(  # type: ignore[attr-defined]
            "SELECT * FROM job_events WHERE job_id = ? AND seq > ? ORDER BY seq",
            (job_id, after_seq))
        return [JobEvent(r["job_id"], r["seq"], r["created_at"], r["kind"],
                         json.loads(r["data_json"])) for r in rows]

    def stage_duration_totals(self) -> dict[str, tuple[int, float]]:
        """Per stage, (count, total seconds) over every finished stage of every job."""
        rows = self.query(  # type: ignore[attr-defined]
            "SELECT json_extract(data_json, '$.stage') AS stage, COUNT(*),"
            " SUM(json_extract(data_json, '$.seconds')) FROM job_events"
            " WHERE kind = 'stage_finished' GROUP BY stage")
        return {r[0]: (r[1], float(r[2] or 0.0)) for r in rows if r[0]}

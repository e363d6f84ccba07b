"""Queries for sources added at run time and the files watched folders have taken.

A watched file is known by its identity: path, size, mtime and a hash of its first and last MiB.
`claim_watched_file` inserts that identity once (the UNIQUE constraint decides, across threads
and restarts), so a clip is analysed exactly once; a file that changes gets a new identity.
States: `taken` (claimed, analysis under way), `queued` (handed to the job queue as `job_id`),
`done` (`analysis_id`), `failed` (`error`, never retried until the file changes).
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from typing import Any

from .database import utc_now

TAKEN, QUEUED, DONE, FAILED = "taken", "queued", "done", "failed"


@dataclass(frozen=True)
class WatchedFile:
    id: int
    path: str
    size: int
    mtime_ns: int
    digest: str
    source: str
    state: str
    created_at: str
    updated_at: str
    job_id: str | None
    analysis_id: str | None
    error: str | None

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> WatchedFile:
        return cls(**dict(row))


@dataclass(frozen=True)
class SourceRow:
    id: str
    kind: str
    location: str
    options: dict[str, Any]
    created_at: str


class SourceRecords:
    """Mixin on `Store`; relies on `Database.query/execute/transaction`."""

    def claim_watched_file(self, path: str, size: int, mtime_ns: int, digest: str,
                           source: str) -> WatchedFile | None:
        """Record a new file identity as `taken`; None when it was seen before (any state)."""
        now = utc_now()
        with self.transaction() as conn:  # type: ignore[attr-defined]
            cursor = conn.execute(
                "INSERT OR IGNORE INTO watched_files (path, size, mtime_ns, digest, source, state,"
                " created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (path, size, mtime_ns, digest, source, TAKEN, now, now))
            if cursor.rowcount == 0:
                return None
            row = conn.execute("SELECT * FROM watched_files WHERE id = ?",
                               (cursor.lastrowid,)).fetchone()
        return WatchedFile.from_row(row)

    def watched_file_known(self, path: str, size: int, mtime_ns: int, digest: str) -> bool:
        row = self.query_one(  # type: ignore[attr-defined]
            "SELECT 1 FROM watched_files WHERE path = ? AND size = ? AND mtime_ns = ?"
            " AND digest = ?", (path, size, mtime_ns, digest))
        return row is not None

    def finish_watched_file(self, file_id: int, state: str, *, job_id: str | None = None,
                            analysis_id: str | None = None, error: str | None = None) -> None:
        self.execute(  # type: ignore[attr-defined]
            "UPDATE watched_files SET state = ?, updated_at = ?,"
            " job_id = COALESCE(?, job_id), analysis_id = COALESCE(?, analysis_id),"
            " error = COALESCE(?, error) WHERE id = ?",
            (state, utc_now(), job_id, analysis_id, error, file_id))

    def interrupted_watched_files(self, source: str) -> list[WatchedFile]:
        """Files a stopped process had taken but not finished (to take again at start)."""
        rows = self.query(  # type: ignore[attr-defined]
            "SELECT * FROM watched_files WHERE source = ? AND state = ? ORDER BY id",
            (source, TAKEN))
        return [WatchedFile.from_row(r) for r in rows]

    def list_watched_files(self, source: str | None = None,
                           limit: int = 100) -> list[WatchedFile]:
        if source is None:
            rows = self.query("SELECT * FROM watched_files ORDER BY id DESC LIMIT ?",  # type: ignore[attr-defined]
                              (limit,))
        else:
            rows = self.query(  # type: ignore[attr-defined]
                "SELECT * FROM watched_files WHERE source = ? ORDER BY id DESC LIMIT ?",
                (source, limit))
        return [WatchedFile.from_row(r) for r in rows]

    # ---- sources added at run time (GET/POST/DELETE /api/sources) ---------------------------
    def insert_source(self, source_id: str, kind: str, location: str,
                      options: dict[str, Any]) -> SourceRow:
        self.execute(  # type: ignore[attr-defined]
            "INSERT INTO sources (id, kind, location, options_json, created_at)"
            " VALUES (?, ?, ?, ?, ?)", (source_id, kind, location, json.dumps(options), utc_now()))
        return SourceRow(source_id, kind, location, options, utc_now())

    def delete_source(self, source_id: str) -> bool:
        with self.transaction() as conn:  # type: ignore[attr-defined]
            return conn.execute("DELETE FROM sources WHERE id = ?", (source_id,)).rowcount > 0

    def list_sources(self) -> list[SourceRow]:
        rows = self.query("SELECT * FROM sources ORDER BY created_at, id")  # type: ignore[attr-defined]
        return [SourceRow(r["id"], r["kind"], r["location"], json.loads(r["options_json"]),
                          r["created_at"]) for r in rows]

"""Connection handling and the migration runner."""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

from .migrations import MIGRATIONS

log = logging.getLogger(__name__)


def utc_now() -> str:
    """Timestamps are stored as ISO-8601 UTC strings: sortable, readable in the sqlite shell."""
    return datetime.now(timezone.utc).isoformat()


class Database:
    """One SQLite connection shared by threads, writes serialised by a lock.

    WAL lets readers in other processes (a second CLI, the web server) read while we write.
    """

    def __init__(self, path: Path | str):
        self.path = Path(path)
        if str(path) != ":memory:":
            self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        # Committed write transactions through this connection: a reader in this process
        # (an SSE stream) compares it to skip a query when nothing can have changed.
        self.writes = 0
        self._conn = sqlite3.connect(str(path), check_same_thread=False, timeout=30,
                                     isolation_level=None)
        self._conn.row_factory = sqlite3.Row
        self._conn.execute("PRAGMA busy_timeout=30000")
        _use_wal(self._conn, self.path)
        self._conn.execute("PRAGMA foreign_keys=ON")
        self.migrate()

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """BEGIN IMMEDIATE … COMMIT under the lock: a read-modify-write nobody interleaves."""
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
            except BaseException:
                # SQLite rolls back by itself on some errors (SQLITE_FULL: a full disk); a
                # second ROLLBACK would raise and hide the real cause.
                if self._conn.in_transaction:
                    self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")
            self.writes += 1

    def query(self, sql: str, params: tuple | dict = ()) -> list[sqlite3.Row]:
        with self._lock:
            return self._conn.execute(sql, params).fetchall()

    def query_one(self, sql: str, params: tuple | dict = ()) -> sqlite3.Row | None:
        with self._lock:
            return self._conn.execute(sql, params).fetchone()

    def execute(self, sql: str, params: tuple | dict = ()) -> sqlite3.Cursor:
        with self.transaction() as conn:
            return conn.execute(sql, params)

    def migrate(self) -> list[str]:
        """Apply, in order, every migration not yet recorded; returns the names applied."""
        with self._lock:
            self._conn.execute(
                "CREATE TABLE IF NOT EXISTS _migrations (name TEXT PRIMARY KEY, applied_at TEXT)")
            done = {r[0] for r in self._conn.execute("SELECT name FROM _migrations")}
            applied = []
            for name, sql in MIGRATIONS:
                if name in done:
                    continue
                with self.transaction() as conn:
                    # Another process opening the same new database may have applied it since
                    # we looked: BEGIN IMMEDIATE serialises us, so look again inside.
                    if conn.execute("SELECT 1 FROM _migrations WHERE name = ?",
                                    (name,)).fetchone():
                        continue
                    for statement in sql.split(";"):
                        if statement.strip():
                            conn.execute(statement)
                    conn.execute("INSERT INTO _migrations VALUES (?, ?)", (name, utc_now()))
                applied.append(name)
            return applied


# Turning a brand-new database to WAL takes an exclusive lock. Processes opening it at the same
# moment (a server and `chronicon watch`, two workers' first start) can each hold a shared
# lock and want the exclusive one: SQLite then answers one of them "database is locked" AT
# ONCE, without its busy handler (waiting could never succeed), or leaves the mode as it was.
# The other finishes the switch within milliseconds, so asking again succeeds.
WAL_ATTEMPTS = 100
WAL_RETRY_S = 0.05


def _use_wal(conn: sqlite3.Connection, path: Path) -> None:
    if str(path) == ":memory:":
        conn.execute("PRAGMA journal_mode=WAL")
        return
    mode = "unknown"
    for attempt in range(WAL_ATTEMPTS):
        try:
            mode = str(conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]).lower()
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or attempt == WAL_ATTEMPTS - 1:
                raise
        else:
            if mode == "wal":
                return
        time.sleep(WAL_RETRY_S)
    # A filesystem without shared memory for WAL: the database still works, one writer or
    # reader at a time.
    log.warning("%s stays in %s journal mode (WAL refused)", path.name, mode)

"""The migration runner when several processes open the same brand-new database at once (a
server and a `chronicon watch`, two workers' first start): each migration is applied once."""

from __future__ import annotations

import multiprocessing
import traceback
from pathlib import Path

from chronicon.store.database import Database
from chronicon.store.migrations import MIGRATIONS


def _open(path: str, start, results) -> None:
    start.wait()
    try:
        Database(path).close()
        results.put("ok")
    except Exception:  # noqa: BLE001 - reported to the test, which fails on it
        results.put(traceback.format_exc())  # where it failed, not only what


def test_processes_racing_to_create_the_database_apply_each_migration_once(
        tmp_path: Path) -> None:
    context = multiprocessing.get_context("spawn")
    for round_ in range(6):  # the race is a matter of timing: run it several times
        path = str(tmp_path / f"race-{round_}.db")
        start, results = context.Event(), context.Queue()
        workers = [context.Process(target=_open, args=(path, start, results)) for _ in range(6)]
        for process in workers:
            process.start()
        start.set()
        for process in workers:
            process.join(120)
        assert sorted(results.get(timeout=5) for _ in workers) == ["ok"] * 6
        db = Database(path)
        try:
            names = [r[0] for r in db.query("SELECT name FROM _migrations ORDER BY name")]
        finally:
            db.close()
        assert names == sorted(name for name, _ in MIGRATIONS)

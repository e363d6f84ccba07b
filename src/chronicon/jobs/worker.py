"""The worker: ONE supervised thread that claims queued jobs and runs them, one claim at a time
(a claim is one job, or several `analyze` jobs that share forward passes: a batch).

Supervision: an exception anywhere in the loop (a locked or full disk while claiming, a job's
end that cannot be recorded) is logged and the loop starts again after a pause, so the thread
lives as long as the process. A job whose end could not be recorded is retried first, before
any new job is claimed. `health()` tells `/health` when the thread is dead after all, or when
the running job (any job of a running batch) has shown no sign of progress for `stuck_after`
seconds.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from ..store.job_records import JobRecord
from .runner import Unfinished

log = logging.getLogger(__name__)

# A job that reports nothing for this long is called stuck. Every stage, frame and text piece
# counts as progress; the longest silent step is a first model download (minutes, not tens).
STUCK_AFTER_S = 900.0
RETRY_PAUSE_S = 2.0


@dataclass
class JobRuntime:
    """What the running claim shares with `status()`: its job ids (several for a batch; the
    oldest first), when it started, when any of its jobs last moved."""

    job_ids: tuple[str, ...]
    started: float
    last_beat: float

    @property
    def job_id(self) -> str:
        """The first (oldest) job of the claim."""
        return self.job_ids[0]


class Worker:
    """`start()` the thread, `stop()` it at shutdown; `wake()` after a submit. `claim()`
    returns the jobs to run together (empty: nothing queued), `run(jobs)` runs and ends them."""

    def __init__(self, claim: Callable[[], list[JobRecord]],
                 run: Callable[[list[JobRecord]], None],
                 *, before_first: Callable[[], None] | None = None,
                 stuck_after: float = STUCK_AFTER_S, name: str = "chronicon-worker"):
        self._claim = claim
        self._run = run
        self._before_first = before_first
        self.stuck_after = stuck_after
        self.name = name
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._unfinished: Unfinished | None = None
        self.current: JobRuntime | None = None
        self.restarts = 0
        self.last_error: str | None = None

    def start(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._supervise, name=self.name, daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Stop after the current job (or batch); a job cut off here is requeued by the next
        recover()."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def wake(self) -> None:
        self._wake.set()

    def beat(self) -> None:
        """The running job (any job of a batch) made progress."""
        current = self.current
        if current is not None:
            current.last_beat = time.monotonic()

    def health(self) -> str:
        """`ok`, `dead` (started, and the thread is gone) or `stuck` (see STUCK_AFTER_S). A
        worker never started (an app without its lifespan) is `ok`: nothing has failed."""
        if self._thread is not None and not self._thread.is_alive():
            return "dead"
        current = self.current
        if current is not None and time.monotonic() - current.last_beat > self.stuck_after:
            return "stuck"
        return "ok"

    # ---- the thread ------------------------------------------------------------------------------
    def _supervise(self) -> None:
        if self._before_first is not None:
            try:
                self._before_first()
            except Exception:  # noqa: BLE001 - jobs report their own error
                log.exception("the worker's start-up step failed")
        while not self._stop.is_set():
            try:
                self._loop()
            except Exception as exc:  # noqa: BLE001 - the worker outlives any failure
                self.restarts += 1
                self.last_error = f"{type(exc).__name__}: {exc}"
                log.exception("the worker failed; restarting it in %.0fs", RETRY_PAUSE_S)
                self._stop.wait(RETRY_PAUSE_S)

    def _loop(self) -> None:
        while not self._stop.is_set():
            if self._unfinished is not None:
                self._unfinished.finish()
                self._unfinished = None
            jobs = self._claim()
            if not jobs:
                self._wake.wait(timeout=1.0)
                self._wake.clear()
                continue
            now = time.monotonic()
            self.current = JobRuntime(tuple(job.id for job in jobs), now, now)
            try:
                self._run(jobs)
            except Unfinished as exc:
                self._unfinished = exc
                raise
            finally:
                self.current = None


__all__ = ["JobRuntime", "STUCK_AFTER_S", "Worker"]

"""Progress events from a worker to the server, batched.

The model writes a token piece every few milliseconds; one HTTP request per piece would cost
more than the piece. `EventUplink` keeps the events in order in a pending list, joins
consecutive token pieces into one, and a sender thread posts whatever is pending every
`window` seconds (one request per batch). `close()` sends the rest and waits, so every event
reaches the server before the result does.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from .client import JobTaken

log = logging.getLogger(__name__)


class EventUplink:
    """Ordered, batched delivery of one job's events through `send(batch)`."""

    def __init__(self, send: Callable[[list[dict[str, Any]]], None], window: float = 0.1):
        self._send = send
        self._window = window
        self._pending: list[dict[str, Any]] = []
        self._cond = threading.Condition()
        self._closed = False
        self.taken = False  # the server gave the job to someone else: stop reporting
        self.batches = 0
        self.error: Exception | None = None
        self._thread = threading.Thread(target=self._run, name="chronicon-uplink", daemon=True)
        self._thread.start()

    def emit(self, kind: str, data: dict[str, Any]) -> None:
        with self._cond:
            last = self._pending[-1] if self._pending else None
            if kind == "token" and last is not None and last["kind"] == "token":
                last["data"] = {**last["data"], "text": last["data"]["text"] + data["text"]}
            else:
                self._pending.append({"kind": kind, "data": data})
            self._cond.notify()

    def close(self, timeout: float = 60.0) -> None:
        """Send what is pending and stop; raises JobTaken when the server refused the job."""
        with self._cond:
            self._closed = True
            self._cond.notify()
        self._thread.join(timeout)
        if self.taken:
            raise JobTaken("the server gave this job to another worker")

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._pending and not self._closed:
                    self._cond.wait()
                # Let more events arrive for `window` seconds (each emit notifies, so wait out
                # the whole window): one request carries them all.
                deadline = time.monotonic() + self._window
                while not self._closed and (left := deadline - time.monotonic()) > 0:
                    self._cond.wait(left)
                batch, self._pending = self._pending, []
                closing = self._closed
            if batch and not self.taken:
                try:
                    self._send(batch)
                    self.batches += 1
                except JobTaken:
                    self.taken = True
                except Exception as exc:  # noqa: BLE001 - progress is best effort; the result is not
                    self.error = exc
                    log.warning("could not send %d progress events: %s", len(batch), exc)
            if closing:
                with self._cond:
                    if not self._pending:
                        return

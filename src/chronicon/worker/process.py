"""`chronicon worker`: a long-lived process that keeps one model warm and runs jobs from Redis.

At start it checks its settings, says hello to the server (a heartbeat: a wrong token fails
here, before anything is loaded), loads the model ONCE, then consumes the Dramatiq queue with
`concurrency` threads and a prefetch of one message per thread. Dramatiq acknowledges a message
when the actor returns, and the actor returns only after the server has recorded the result: a
worker killed mid-job never acknowledges, so the broker delivers the job again (after the
heartbeat timeout) to another worker.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import tempfile
import threading
import uuid
from pathlib import Path
from typing import Any

from ..config import Settings
from ..errors import QueueUnavailable
from . import broker as wire
from .client import ServerClient
from .runner import RemoteJobRunner

log = logging.getLogger(__name__)


def worker_identity(name: str | None = None) -> str:
    """`<host>-<pid>-<4 hex>` unless named: unique per process, readable on the System page."""
    return name or f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:4]}"


def check_worker_settings(settings: Settings) -> None:
    """The settings a worker cannot start without, each error naming the fix."""
    if settings.queue_kind != "redis":
        raise QueueUnavailable("a worker takes its jobs from Redis: pass --queue "
                               "redis://host:6379/0 or set CHRONICON_QUEUE (the server's value)")
    wire.require_dramatiq()
    if settings.worker_token is None:
        raise QueueUnavailable("a worker needs CHRONICON_WORKER_TOKEN, the same value as the "
                               "server's, to fetch videos and report results")


class WorkerProcess:
    """One worker: its warm backend, its HTTP client, the Dramatiq consumer and heartbeats."""

    def __init__(self, settings: Settings, *, concurrency: int = 1,
                 worker_id: str | None = None, backend: Any = None):
        check_worker_settings(settings)
        self.settings = settings
        self.concurrency = max(1, concurrency)
        self.worker_id = worker_identity(worker_id)
        assert settings.worker_token is not None
        self.client = ServerClient(settings.server_url, settings.worker_token.get_secret_value(),
                                   self.worker_id)
        from ..vlm.warm import WarmBackend

        self.backends = WarmBackend(settings, backend)
        self.work_dir = Path(tempfile.mkdtemp(prefix="chronicon-worker-"))
        self.runner = RemoteJobRunner(self.client, self.backends, self.work_dir)
        self._stop = threading.Event()
        self._heartbeat_thread: threading.Thread | None = None
        self._dramatiq_worker: Any = None
        self.broker: Any = None

    # ---- lifecycle -------------------------------------------------------------------------------
    def start(self) -> None:
        """Register with the server, load the model, then start consuming."""
        self.heartbeat()  # a wrong token or an unreachable server fails here, before the load
        self.backends.preload()
        self.heartbeat()
        self.broker = wire.make_broker(self.settings)
        wire.check_broker(self.broker, self.settings.queue)
        self._declare_actor()
        import dramatiq

        # An idle consumer polls Redis every 100 ms at most: a finished job's successor is
        # fetched within that (Dramatiq's default, 1 s, showed as dispatch latency).
        worker = dramatiq.Worker(self.broker, worker_threads=self.concurrency,
                                 worker_timeout=100)
        # Prefetch one message per thread: a job waits in Redis, where any idle worker can
        # take it, rather than in this process's memory behind a long job.
        worker.queue_prefetch = self.concurrency
        worker.delay_prefetch = self.concurrency
        worker.start()
        self._dramatiq_worker = worker
        self._heartbeat_thread = threading.Thread(target=self._heartbeat_loop,
                                                  name="chronicon-heartbeat", daemon=True)
        self._heartbeat_thread.start()
        log.info("worker %s ready: %s, %d thread(s), server %s, queue %s", self.worker_id,
                 self.backends.status().get("model_id"), self.concurrency,
                 self.settings.server_url, wire.redact_url(self.settings.queue))

    def request_stop(self) -> None:
        """Ask `wait()` to return (from a signal handler)."""
        self._stop.set()

    def wait(self) -> None:
        while not self._stop.wait(1.0):
            pass

    def stop(self, timeout_ms: int = 600_000) -> None:
        """Finish the jobs in hand (their messages are acked), give back the prefetched ones."""
        self._stop.set()
        if self._dramatiq_worker is not None:
            self._dramatiq_worker.stop(timeout=timeout_ms)
            self._dramatiq_worker = None
        # A last heartbeat says "no job in hand"; the server may be gone too, then nothing to tell.
        with contextlib.suppress(Exception):
            self.heartbeat()
        self.client.close()

    # ---- the actor -------------------------------------------------------------------------------
    def _declare_actor(self) -> None:
        import dramatiq

        runner = self.runner

        def chronicon_job(job_id: str, kind: str = "analyze",
                          options: dict[str, Any] | None = None) -> None:
            outcome = runner.run(job_id, kind, options or {})
            log.info("job %s %s in %.2fs %s", job_id, outcome.status, outcome.seconds,
                     outcome.detail)

        dramatiq.actor(chronicon_job, broker=self.broker, actor_name=wire.ACTOR_NAME,
                       queue_name=wire.QUEUE_NAME, max_retries=wire.MAX_RETRIES)

    # ---- heartbeats ------------------------------------------------------------------------------
    def status(self) -> dict[str, Any]:
        model = self.backends.status()
        return {"host": socket.gethostname(), "pid": os.getpid(),
                "model": model.get("model_id") or model.get("model"),
                "device": model.get("device"), "concurrency": self.concurrency,
                "model_loads": model.get("loads", 0), **self.runner.status()}

    def heartbeat(self) -> None:
        self.client.heartbeat(self.status())

    def _heartbeat_loop(self) -> None:
        interval = max(0.5, self.settings.worker_timeout / 4)
        while not self._stop.wait(interval):
            try:
                self.heartbeat()
            except Exception as exc:  # noqa: BLE001 - keep beating; the server may come back
                log.warning("heartbeat failed: %s", exc)

"""Start real `chronicon worker` processes (remote workers on loopback) and stop them."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import httpx

from .server_process import chronicon_command


class WorkerProcess:
    """One `chronicon worker` subprocess; `kill()` is a `kill -9`."""

    def __init__(self, name: str, *, server: str, queue: str, token: str, model: str,
                 log_path: Path, extra_env: dict[str, str] | None = None,
                 args: list[str] | None = None):
        self.name = name
        self.log_path = log_path
        env = {**os.environ, "CHRONICON_WORKER_TOKEN": token, "CHRONICON_DEVICE": "cpu",
               "HF_HUB_OFFLINE": "1", "CHRONICON_LOG_LEVEL": "info", **(extra_env or {})}
        self._log = log_path.open("ab")
        self.process = subprocess.Popen(
            [*chronicon_command(), "worker", "--queue", queue, "--server", server,
             "--model", model, "--name", name, *(args or [])],
            env=env, stdout=self._log, stderr=subprocess.STDOUT)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_ready(self, base: str, timeout: float = 90) -> None:
        """Until the server lists this worker (its first heartbeat comes after the model)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"worker {self.name} exited: {self.log()[-3000:]}")
            workers = httpx.get(f"{base}/health", timeout=5).json().get("workers", [])
            if any(w["id"] == self.name for w in workers) and "ready" in self.log():
                return
            time.sleep(0.2)
        raise AssertionError(f"worker {self.name} did not start: {self.log()[-3000:]}")

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=10)

    def terminate(self) -> None:
        """SIGTERM: the worker finishes its job in hand and exits."""
        if self.process.poll() is None:
            self.process.terminate()

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill()
        self._log.close()

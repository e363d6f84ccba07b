"""Start the real `chronicon serve` in a subprocess on 127.0.0.1 and stop it again."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from .ports import free_port


def chronicon_command() -> list[str]:
    script = Path(sys.executable).parent / "chronicon"
    if script.exists():
        return [str(script)]
    found = shutil.which("chronicon")
    assert found, "the chronicon command is not installed"
    return [found]


@contextmanager
def running_server(data_dir: Path, model: str, log_path: Path,
                   extra_env: dict[str, str] | None = None,
                   args: list[str] | None = None) -> Iterator[str]:
    """Yield the base URL of a `chronicon serve` on a free loopback port; always stopped."""
    port = free_port()
    env = {**os.environ, "CHRONICON_DATA_DIR": str(data_dir), "CHRONICON_MODEL": model,
           "CHRONICON_DEVICE": "cpu", "HF_HUB_OFFLINE": "1", "CHRONICON_LOG_LEVEL": "warning",
           **(extra_env or {})}
    base = f"http://127.0.0.1:{port}"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [*chronicon_command(), "serve", "--host", "127.0.0.1", "--port", str(port),
             *(args or [])], env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 90
            while True:
                if process.poll() is not None:
                    raise AssertionError(f"server exited: {log_path.read_text()[-2000:]}")
                try:
                    if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline:
                    raise AssertionError(f"server did not start: {log_path.read_text()[-2000:]}")
                time.sleep(0.2)
            yield base
        finally:
            process.terminate()
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=5)

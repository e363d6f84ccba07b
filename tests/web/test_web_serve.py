"""`chronicon serve`: the bind warning, and the real command serving on loopback."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest

from chronicon.cli.serve_command import bind_warning, is_loopback
from support.server_process import running_server


@pytest.mark.parametrize(("host", "loopback"), [
    ("127.0.0.1", True), ("127.8.9.1", True), ("::1", True), ("[::1]", True),
    ("localhost", True), ("0.0.0.0", False), ("::", False), ("192.168.1.20", False),
    ("example.org", False),
])
def test_is_loopback(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def test_bind_warning_only_for_public_addresses_without_token() -> None:
    assert bind_warning("127.0.0.1", token_set=False) is None
    assert bind_warning("0.0.0.0", token_set=True) is None
    warning = bind_warning("0.0.0.0", token_set=False)
    assert warning and "CHRONICON_API_TOKEN" in warning and "0.0.0.0" in warning


@pytest.mark.slow
def test_serve_starts_with_the_model_warm_and_stops(tmp_path: Path,
                                                    tiny_model_dir: Path) -> None:
    log = tmp_path / "server.log"
    with running_server(tmp_path / "data", str(tiny_model_dir), log) as base:
        deadline = time.monotonic() + 30
        health = httpx.get(f"{base}/health").json()
        while not health["model_loaded"] and time.monotonic() < deadline:
            time.sleep(0.1)  # preloading happens in the worker, after the port opens
            health = httpx.get(f"{base}/health").json()
        assert health["model_loaded"] and health["model_loads"] == 1
        assert httpx.get(f"{base}/").status_code == 200
    assert (tmp_path / "data" / "chronicon.db").exists()
    assert "Traceback" not in log.read_text()

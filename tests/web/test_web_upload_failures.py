"""Uploads that fail: the server's own write failures are 5xx with the real cause, a filename
too long for a part header is named, a stalled or dragging upload is cut off, and what a
killed server left half-written is removed at the next start."""

from __future__ import annotations

import asyncio
import resource
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from chronicon.config import Settings
from chronicon.web import create_app
from support.web_client import changed, upload

BOUNDARY = "chronicon-test-boundary"


def _leftovers(settings: Settings) -> list[Path]:
    return sorted(settings.uploads_dir.glob("*")) if settings.uploads_dir.exists() else []


@pytest.fixture
def file_size_limit() -> Iterator[int]:
    """While the test runs, no file of this process may grow past 64 kB (writes past it fail
    with EFBIG, as on a full disk): a real write failure in the middle of an upload."""
    limit = 64 * 1024
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, hard))
    try:
        yield limit
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))


@pytest.mark.expect_error_logs
def test_no_room_mid_upload_is_507_with_the_cause(idle_client: TestClient,
                                                  web_settings: Settings,
                                                  file_size_limit: int) -> None:
    response = idle_client.post("/api/analyze", files={
        "file": ("big.mp4", b"\0" * (file_size_limit * 3), "video/mp4")})
    assert response.status_code == 507, response.text
    body = response.json()
    assert body["type"] == "StorageFull" and "File too large" in body["error"]
    assert "malformed" not in body["error"] and str(web_settings.data_dir) not in body["error"]
    assert _leftovers(web_settings) == []


@pytest.mark.expect_error_logs
def test_an_unwritable_uploads_folder_is_500_with_the_cause(idle_client: TestClient,
                                                            web_settings: Settings,
                                                            clip: Path) -> None:
    web_settings.data_dir.mkdir(parents=True, exist_ok=True)
    web_settings.uploads_dir.write_text("a file where the folder should be")
    response = upload(idle_client, clip)
    assert response.status_code == 500, response.text
    body = response.json()
    assert body["type"] == "StorageFailure" and "uploads/" in body["error"]
    assert "exists" in body["error"].lower() or "directory" in body["error"].lower()
    assert str(web_settings.data_dir) not in body["error"]


def test_a_very_long_filename_is_named_not_called_too_large(idle_client: TestClient) -> None:
    name = "a" * 10_000 + ".mp4"
    response = idle_client.post("/api/analyze",
                                files={"file": (name, b"\0" * 4000, "video/mp4")})
    assert response.status_code == 422, response.text
    body = response.json()
    assert body["field"] == "file" and "filename" in body["error"]
    assert "upload limit" not in body["error"]
    assert len(body["error"]) < 400


# ---- slow clients -------------------------------------------------------------------------------


def _slow_upload(app, chunks: list[bytes], gap_s: float) -> tuple[int, bytes, float]:
    """POST /api/analyze straight to the ASGI app, one chunk every `gap_s` seconds (the last
    one repeated for ever); returns status, body and seconds until the answer."""
    status, body = 0, bytearray()
    sent = 0

    async def receive() -> dict:
        nonlocal sent
        if sent:
            await asyncio.sleep(gap_s)
        chunk = chunks[min(sent, len(chunks) - 1)]
        sent += 1
        return {"type": "http.request", "body": chunk, "more_body": True}

    async def send(message: dict) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]
        elif message["type"] == "http.response.body":
            body.extend(message.get("body", b""))

    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
             "method": "POST", "scheme": "http", "path": "/api/analyze",
             "raw_path": b"/api/analyze", "query_string": b"", "root_path": "",
             "client": ("127.0.0.1", 40000), "server": ("127.0.0.1", 5000),
             "headers": [(b"host", b"127.0.0.1:5000"), (b"content-type",
                          f"multipart/form-data; boundary={BOUNDARY}".encode())]}
    started = time.monotonic()
    asyncio.run(asyncio.wait_for(app(scope, receive, send), timeout=30))
    return status, bytes(body), time.monotonic() - started


HEAD = (f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; "
        f"filename=\"slow.mp4\"\r\nContent-Type: video/mp4\r\n\r\n").encode()


def test_a_stalled_upload_is_cut_off(web_settings: Settings) -> None:
    app = create_app(changed(web_settings, upload_idle_timeout_s=0.5))
    status, body, seconds = _slow_upload(app, [HEAD, b"\0" * 1000], gap_s=3600)
    assert status == 408 and b"UploadTimeout" in body and b"stalled" in body
    assert seconds < 5
    assert _leftovers(web_settings) == []


def test_an_upload_that_drags_on_is_cut_off_at_its_deadline(web_settings: Settings) -> None:
    app = create_app(changed(web_settings, upload_timeout_s=1.0, upload_idle_timeout_s=0.5))
    status, body, seconds = _slow_upload(app, [HEAD, b"\0" * 100], gap_s=0.1)  # 1 kB/s
    assert status == 408 and b"CHRONICON_UPLOAD_TIMEOUT" in body
    assert 0.9 < seconds < 5
    assert _leftovers(web_settings) == []


# ---- a server killed mid-upload ----------------------------------------------------------------


def test_partial_uploads_are_removed_at_start(web_settings: Settings, clip: Path) -> None:
    web_settings.uploads_dir.mkdir(parents=True)
    orphan = web_settings.uploads_dir / "0123456789abcdef.mp4.partial"
    orphan.write_bytes(b"\0" * 1000)
    queued = TestClient(create_app(web_settings))
    job = upload(queued, clip).json()  # complete and queued: must survive the restart
    complete = [p for p in _leftovers(web_settings) if p != orphan]
    assert len(complete) == 1 and complete[0].suffix == ".mp4"
    with TestClient(create_app(web_settings)) as restarted:
        assert not orphan.exists()
        assert complete[0].exists()
        assert restarted.get(f"/api/jobs/{job['job_id']}").json()["state"] in (
            "queued", "running", "done")


@pytest.mark.slow
def test_a_server_killed_mid_upload_leaves_nothing_after_restart(tmp_path: Path,
                                                                 tiny_model_dir: Path) -> None:
    """kill -9 while a real `chronicon serve` receives an upload; the next start cleans up."""
    import os
    import signal
    import socket
    import subprocess

    import httpx

    from support.ports import free_port
    from support.server_process import chronicon_command, running_server

    data = tmp_path / "data"
    port = free_port()
    env = {**os.environ, "CHRONICON_DATA_DIR": str(data), "CHRONICON_MODEL": str(tiny_model_dir),
           "CHRONICON_DEVICE": "cpu", "HF_HUB_OFFLINE": "1", "CHRONICON_LOG_LEVEL": "warning"}
    with (tmp_path / "first.log").open("wb") as log:
        server = subprocess.Popen([*chronicon_command(), "serve", "--host", "127.0.0.1",
                                   "--port", str(port), "--no-preload"], env=env, stdout=log,
                                  stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline and server.poll() is None, "server did not start"
            time.sleep(0.2)
        connection = socket.create_connection(("127.0.0.1", port))
        connection.sendall(
            f"POST /api/analyze HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
            f"Content-Type: multipart/form-data; boundary={BOUNDARY}\r\n"
            f"Content-Length: 900000\r\n\r\n".encode() + HEAD + b"\0" * 100_000)
        uploads = data / "uploads"
        while not list(uploads.glob("*.partial")):
            assert time.monotonic() < deadline, "no partial file appeared"
            time.sleep(0.1)
        server.send_signal(signal.SIGKILL)
        server.wait(timeout=10)
        connection.close()
    finally:
        if server.poll() is None:
            server.kill()
            server.wait(timeout=10)
    assert len(list(uploads.glob("*.partial"))) == 1  # what the killed server left
    with running_server(data, str(tiny_model_dir), tmp_path / "second.log",
                        args=["--no-preload"]):
        assert list(uploads.glob("*")) == []

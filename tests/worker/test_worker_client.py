"""The worker's HTTP client against the real app in-process: a broken video download resumes
with a Range request, and a wrong token is a clear error."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from chronicon.config import Settings
from chronicon.errors import Unauthorized
from chronicon.web import create_app
from chronicon.worker.client import ServerClient
from support.media import write_video

TOKEN = "client-test-token"


class BrokenStream(httpx.SyncByteStream):
    def __init__(self, data: bytes):
        self.data = data

    def __iter__(self) -> Iterator[bytes]:
        yield self.data
        raise httpx.ReadError("connection reset by peer")


class BreakFirstDownload(httpx.BaseTransport):
    """Passes requests to the app; the first video download stops after `after` bytes
    (never, when None)."""

    def __init__(self, inner: httpx.BaseTransport, after: int | None = None):
        self.inner = inner
        self.after = after
        self.ranges: list[str | None] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = self.inner.handle_request(request)
        body = response.read()
        if request.url.path.endswith("/video"):
            self.ranges.append(request.headers.get("range"))
            if len(self.ranges) == 1 and self.after is not None:
                return httpx.Response(response.status_code, headers=response.headers,
                                      stream=BrokenStream(body[:self.after]))
        return httpx.Response(response.status_code, headers=response.headers, content=body)


@pytest.fixture
def app_and_job(tmp_path: Path) -> Iterator[tuple[TestClient, str, bytes]]:
    app = create_app(Settings(data_dir=tmp_path / "data", worker_token=TOKEN))
    clip = write_video(tmp_path / "clip.mp4", n_frames=30).read_bytes()
    client = TestClient(app)  # no lifespan: the job stays queued, nothing runs it
    response = client.post("/api/analyze", files={"file": ("clip.mp4", clip, "video/mp4")})
    assert response.status_code == 202, response.text
    yield client, response.json()["job_id"], clip


def test_a_broken_download_resumes_where_it_stopped(app_and_job, tmp_path: Path) -> None:
    client, job_id, clip = app_and_job
    transport = BreakFirstDownload(client._transport, after=len(clip) // 3)
    worker = ServerClient("http://testserver", TOKEN, "w1", transport=transport)
    target = worker.download_video(job_id, tmp_path / "copy.mp4")
    assert target.read_bytes() == clip
    assert transport.ranges == [None, f"bytes={len(clip) // 3}-"]


def test_a_wrong_token_names_the_setting(app_and_job) -> None:
    client, _, _ = app_and_job
    worker = ServerClient("http://testserver", "wrong", "w1",
                          transport=BreakFirstDownload(client._transport))
    with pytest.raises(Unauthorized, match="CHRONICON_WORKER_TOKEN"):
        worker.heartbeat({"model": "tiny"})

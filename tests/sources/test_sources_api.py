"""The server's sources: CHRONICON_WATCH and GET/POST/DELETE /api/sources on the real app
(TestClient with its lifespan: the job worker, the stream analyst, the watcher threads)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from chronicon.config import Settings
from chronicon.web import create_app
from support.media import write_video
from support.ports import free_port
from support.watching import wait_for

TOKEN = "sources-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
def inbox(tmp_path: Path) -> Path:
    folder = tmp_path / "inbox"
    folder.mkdir()
    return folder


@pytest.fixture
def client(tmp_path: Path, tiny_model_dir: Path, inbox: Path) -> Iterator[TestClient]:
    settings = Settings(data_dir=tmp_path / "data", model=str(tiny_model_dir), device="cpu",
                        api_token=TOKEN, watch=str(inbox), watch_settle_s=0.5,
                        stream_timeout_s=1.0, stream_backoff_max_s=1.0)
    with TestClient(create_app(settings), base_url="http://127.0.0.1") as test_client:
        yield test_client


def test_sources_need_the_token_and_mask_credentials(client: TestClient, inbox: Path) -> None:
    listed = client.get("/api/sources", headers=AUTH).json()["items"]
    assert [s["location"] for s in listed] == [str(inbox.resolve())]  # CHRONICON_WATCH
    url = f"tcp://viewer:hunter2@127.0.0.1:{free_port()}"
    assert client.post("/api/sources", json={"location": url}).status_code == 401
    added = client.post("/api/sources", json={"location": url, "window": 2}, headers=AUTH)
    assert added.status_code == 201, added.text
    body = added.json()
    assert "hunter2" not in added.text and body["location"].startswith("tcp://***@")
    assert client.post("/api/sources", json={"location": url},
                       headers=AUTH).status_code == 409
    # Nothing listens there: the state says so, and it keeps trying.
    def reconnecting() -> dict | None:
        items = client.get("/api/sources", headers=AUTH).json()["items"]
        stream = next(s for s in items if s["id"] == body["id"])
        return stream if stream["state"] == "reconnecting" else None

    stream = wait_for(reconnecting, timeout=20, what="the reconnecting state")
    assert stream["detail"].startswith("reconnecting (attempt ")
    assert "hunter2" not in client.get("/api/sources", headers=AUTH).text
    metrics = client.get("/metrics", headers=AUTH).text
    assert 'chronicon_stream_windows_total{outcome="skipped_still"}' in metrics
    system = client.get("/system", headers={**AUTH, "Accept": "text/html"}).text
    assert "reconnecting (attempt" in system and "hunter2" not in system
    assert client.delete(f"/api/sources/{body['id']}").status_code == 401
    assert client.delete(f"/api/sources/{body['id']}", headers=AUTH).status_code == 204
    assert client.delete(f"/api/sources/{body['id']}", headers=AUTH).status_code == 404
    bad = client.post("/api/sources", json={"location": "ftp://x/y"}, headers=AUTH)
    assert bad.status_code == 422 and "unsupported scheme" in bad.json()["error"]


@pytest.mark.slow
def test_a_watched_clip_goes_through_the_job_queue(client: TestClient, inbox: Path,
                                                   tmp_path: Path) -> None:
    clip = write_video(tmp_path / "clip.mp4", n_frames=30, size=(160, 120))
    shutil.copy(clip, inbox / "camera.mp4")

    def finished_job() -> dict | None:
        jobs = client.get("/api/jobs", headers=AUTH).json()
        items = jobs.get("items", jobs) if isinstance(jobs, dict) else jobs
        done = [j for j in items if j.get("state") == "done"]
        return done[0] if done else None

    job = wait_for(finished_job, timeout=240, what="the watched clip's job")
    assert job["video_filename"] == "camera.mp4"
    [analysis] = client.get("/api/analyses", headers=AUTH).json()["items"]
    assert analysis["video_filename"] == "camera.mp4"
    # The user's file stays where it is, and is never taken twice.
    assert (inbox / "camera.mp4").exists()


def test_cancelling_a_watched_clip_job_keeps_the_users_file(tmp_path: Path) -> None:
    from chronicon.analysis import AnalysisOptions

    settings = Settings(data_dir=tmp_path / "data")
    app = create_app(settings)  # no lifespan: no worker, the job stays queued
    queue = app.state.services.queue
    clip = write_video(tmp_path / "camera.mp4", n_frames=10, size=(160, 120))
    job = queue.submit(clip, clip.name, AnalysisOptions(), source="folder-abc")
    assert queue.cancel(job.id).state == "cancelled"
    assert clip.exists()

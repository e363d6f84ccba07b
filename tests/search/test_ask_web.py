"""`POST /api/analyses/{id}/ask` on the real app with its worker and the tiny model: queued as an
`ask` job, streamed over the job's SSE, stored in the thread, shown on the analysis page."""

from __future__ import annotations

import html
import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from PIL import Image

from chronicon.config import Settings
from chronicon.video.frames import Frame, save_frames
from chronicon.web import create_app
from support.web_client import parse_sse, wait_for_job

QUESTION = 'Was anyone wearing a <b>helmet</b>?'


@pytest.fixture
def client(tmp_path: Path, tiny_model_dir: Path) -> Iterator[TestClient]:
    settings = Settings(data_dir=tmp_path / "data", model=str(tiny_model_dir), device="cpu")
    with TestClient(create_app(settings)) as test_client:
        yield test_client


def _add(client: TestClient) -> str:
    services = client.app.state.services
    analysis_id = uuid.uuid4().hex
    frames_dir = services.settings.frames_dir / analysis_id
    save_frames([Frame(i, i * 0.5, Image.new("RGB", (64, 48), (30 * i, 80, 140)))
                 for i in range(2)], frames_dir)
    services.store.insert_analysis(analysis_id, {"analysis": "A street.", "video_path": "/v.mp4"},
                                   video_path="/v.mp4", video_filename="v.mp4",
                                   frames_dir=str(frames_dir))
    return analysis_id


@pytest.mark.slow
def test_ask_is_queued_streamed_stored_and_shown(client: TestClient) -> None:
    analysis_id = _add(client)
    response = client.post(f"/api/analyses/{analysis_id}/ask",
                           json={"question": QUESTION, "max_tokens": 8})
    assert response.status_code == 202, response.text
    accepted = response.json()
    assert accepted["events_url"] == f"/api/jobs/{accepted['job_id']}/events"
    job = wait_for_job(client, accepted["job_id"])
    assert job["state"] == "done", job
    events = parse_sse(client.get(accepted["events_url"]).text)
    kinds = [e["event"] for e in events]
    assert kinds[-1] == "done" and "token" in kinds
    streamed = "".join(json.loads(e["data"])["text"] for e in events if e["event"] == "token")
    assert analysis_id in events[-1]["data"]  # done names the analysis

    [stored] = client.get(f"/api/analyses/{analysis_id}/questions").json()["items"]
    assert (stored["id"], stored["question"], stored["state"], stored["job_id"]) == (
        accepted["question_id"], QUESTION, "answered", accepted["job_id"])
    assert stored["answer"] == streamed.strip()

    page = client.get(f"/history/{analysis_id}").text
    assert html.escape(QUESTION, quote=False) in page and "<b>helmet</b>" not in page
    assert f'id="question-{stored["id"]}" data-state="answered"' in page
    assert html.escape(stored["answer"], quote=False) in page


@pytest.mark.parametrize(("body", "status", "field"), [
    ({"question": "   "}, 422, "question"), ({"question": "x" * 501}, 422, "question"),
    ({}, 422, "question"), ({"question": "ok?", "max_tokens": 0}, 422, "max_tokens")])
def test_ask_rejects_bad_questions(tmp_path: Path, body: dict, status: int,
                                   field: str) -> None:
    client = TestClient(create_app(Settings(data_dir=tmp_path / "data")))
    analysis_id = _add(client)
    response = client.post(f"/api/analyses/{analysis_id}/ask", json=body)
    assert response.status_code == status
    assert response.json()["field"] == field
    assert client.get(f"/api/analyses/{analysis_id}/questions").json()["items"] == []


def test_ask_about_an_unknown_analysis_is_404(tmp_path: Path) -> None:
    client = TestClient(create_app(Settings(data_dir=tmp_path / "data")))
    assert client.post("/api/analyses/nope/ask", json={"question": "hi?"}).status_code == 404
    assert client.get("/api/analyses/nope/questions").status_code == 404


def test_a_cancelled_question_shows_as_failed(tmp_path: Path) -> None:
    client = TestClient(create_app(Settings(data_dir=tmp_path / "data")))  # no worker
    analysis_id = _add(client)
    accepted = client.post(f"/api/analyses/{analysis_id}/ask",
                           json={"question": "Anyone there?"}).json()
    [waiting] = client.get(f"/api/analyses/{analysis_id}/questions").json()["items"]
    assert waiting["state"] == "asked"
    assert client.delete(f"/api/jobs/{accepted['job_id']}").status_code == 200
    [cancelled] = client.get(f"/api/analyses/{analysis_id}/questions").json()["items"]
    assert cancelled["state"] == "failed" and "cancel" in cancelled["error"]
    assert 'data-state="failed"' in client.get(f"/history/{analysis_id}").text

"""`GET /api/search` and the History page's search box, on the real app (no worker needed)."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from chronicon.config import Settings
from chronicon.search import index_analysis
from chronicon.web import create_app

HOSTILE = 'A red van <img src=x onerror="alert(1)"> waits at the <b>gate</b>.'


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    yield TestClient(create_app(Settings(data_dir=tmp_path / "data")))


def _add(client: TestClient, text: str, *, video: str = "clip.mp4",
         timeline: list[dict[str, Any]] | None = None) -> str:
    store = client.app.state.services.store
    analysis_id = uuid.uuid4().hex
    result: dict[str, Any] = {"analysis": text, "video_path": f"/v/{video}"}
    if timeline:
        result["timeline"] = timeline
    store.insert_analysis(analysis_id, result, video_path=result["video_path"],
                          video_filename=video)
    index_analysis(store, analysis_id, result)
    return analysis_id


def test_api_search_returns_hits_with_marks_and_links(client: TestClient) -> None:
    van = _add(client, "A red van is parked near the gate.", video="gate.mp4")
    street = _add(client, "A quiet street.", video="street.mp4", timeline=[
        {"start": 95.5, "end": 125.5, "caption": "A delivery van stops briefly."}])
    _add(client, "Snow falls on an empty parking lot.")
    response = client.get("/api/search", params={"q": "red van"})
    assert response.status_code == 200
    body = response.json()
    assert body["offset"] == 0 and body["limit"] == 20 and body["has_more"] is False
    first = body["hits"][0]
    assert (first["analysis_id"], first["video"], first["start"], first["end"]) == (
        van, "gate.mp4", None, None)
    assert [first["text"][a:b] for a, b in first["marks"]] == ["red", "van"]
    assert first["url"] == f"/history/{van}"
    caption = next(h for h in body["hits"] if h["analysis_id"] == street)
    assert caption["kind"] == "caption" and caption["start"] == 95.5
    assert caption["url"] == f"/history/{street}#t=95.5"


def test_api_search_pages(client: TestClient) -> None:
    for n in range(5):
        _add(client, f"Tram {n} crosses the bridge.")
    first = client.get("/api/search", params={"q": "tram", "mode": "text", "limit": 2}).json()
    last = client.get("/api/search", params={"q": "tram", "mode": "text", "limit": 2,
                                             "offset": 4}).json()
    assert len(first["hits"]) == 2 and first["has_more"]
    assert len(last["hits"]) == 1 and not last["has_more"]


@pytest.mark.parametrize(("params", "field"), [
    ({}, "q"), ({"q": " "}, "q"), ({"q": "x", "limit": 0}, "limit"),
    ({"q": "x", "limit": 101}, "limit"), ({"q": "x", "offset": -1}, "offset"),
    ({"q": "x", "since": "someday"}, "since"), ({"q": "x", "mode": "magic"}, "mode"),
    ({"q": "x" * 501}, "q")])
def test_api_search_rejects_bad_parameters_by_name(client: TestClient, params: dict,
                                                   field: str) -> None:
    response = client.get("/api/search", params=params)
    assert response.status_code == 422
    assert response.json()["field"] == field


def test_history_page_highlights_matches_and_escapes_the_text(client: TestClient) -> None:
    van = _add(client, HOSTILE, video="<script>x</script>.mp4")
    page = client.get("/history", params={"q": "vans gate"})
    assert page.status_code == 200
    html = page.text
    assert f'href="/history/{van}"' in html
    assert "<mark>van</mark>" in html and "<mark>gate</mark>" in html
    assert "<img src=x" not in html and "<script>x" not in html
    assert "&lt;img src=x onerror=" in html
    assert re.search(r'name="q" value="vans gate"', html)


def test_history_page_without_matches_and_without_query(client: TestClient) -> None:
    _add(client, "A cat sleeps on a sofa.")
    assert "No matches." in client.get("/history", params={"q": "zeppelin",
                                                           "since": "1h"}).text
    plain = client.get("/history").text
    assert 'id="search-form"' in plain and 'id="search-results"' not in plain


@pytest.mark.slow
def test_an_uploaded_analysis_is_searchable_once_recorded(tmp_path: Path,
                                                          tiny_model_dir: Path) -> None:
    """The hook: the job worker records through history.record_analysis, which indexes."""
    from support.media import write_video
    from support.web_client import upload, wait_for_job

    settings = Settings(data_dir=tmp_path / "data", model=str(tiny_model_dir), device="cpu",
                        agent_enabled=False)
    clip = write_video(tmp_path / "clip.mp4", n_frames=30)
    with TestClient(create_app(settings)) as client:
        submitted = upload(client, clip, frames=2, max_tokens=250).json()
        # Generous: indexing loads the embedding model in the worker the first time.
        job = wait_for_job(client, submitted["job_id"], timeout=240)
        assert job["state"] == "done", job
        description = client.get(f"/api/analyses/{job['analysis_id']}").json()["result"][
            "analysis"]
        words = re.findall(r"[A-Za-z]{3,}", description)
        assert words, description  # the tiny model writes noise, but some of it is words
        hits = client.get("/api/search", params={"q": words[0], "mode": "text"}).json()["hits"]
        assert job["analysis_id"] in [h["analysis_id"] for h in hits]

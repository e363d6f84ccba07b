"""The server-rendered pages: every page answers, model text and file names are escaped, and
the pages allow only this server's scripts."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

from fastapi.testclient import TestClient

from support.web_client import upload

EVIL = "<script>alert('pwned')</script>"


def _hostile_analysis(client: TestClient) -> str:
    store = client.app.state.services.store
    store.insert_analysis("evil", {"analysis": f"A train. {EVIL}", "prompt": EVIL,
                                   "num_frames": 1, "model": "m", "device": "cpu"},
                          video_path="/x.mp4", video_filename=f"{EVIL}.mp4", model="m")
    store.insert_decision(created_at=datetime.now(timezone.utc), run_id="evil",
                          video_filename=f"{EVIL}.mp4", label="train", score=0.75,
                          reason=f"Matched: {EVIL}", rule="train", action="log",
                          analysis=f"A train. {EVIL}", matches=[])
    return "evil"


def test_every_page_answers_with_a_strict_policy(idle_client: TestClient, clip: Path) -> None:
    job_id = upload(idle_client, clip).json()["job_id"]
    analysis_id = _hostile_analysis(idle_client)
    for path in ("/", "/history", f"/history/{analysis_id}", "/agent", "/system",
                 f"/jobs/{job_id}"):
        response = idle_client.get(path)
        assert response.status_code == 200, path
        assert "text/html" in response.headers["content-type"]
        policy = response.headers["content-security-policy"]
        assert "script-src 'self'" in policy and "default-src 'self'" in policy
        assert "http://" not in response.text.replace("http://testserver", "")
        assert "https://" not in response.text  # no CDN, works offline


def test_model_text_and_file_names_are_escaped(idle_client: TestClient) -> None:
    analysis_id = _hostile_analysis(idle_client)
    for path in ("/history", f"/history/{analysis_id}"):
        html = idle_client.get(path).text
        assert EVIL not in html
        assert "&lt;script&gt;alert(&#39;pwned&#39;)&lt;/script&gt;" in html


def test_static_assets_are_served(idle_client: TestClient) -> None:
    for name in ("app.css", "common.js", "analyze.js", "live.js", "agent.js", "system.js",
                 "logo.svg"):
        assert idle_client.get(f"/static/{name}").status_code == 200, name
    assert "innerHTML" not in "".join(
        idle_client.get(f"/static/{n}").text for n in ("live.js", "agent.js", "system.js"))


def test_api_docs_are_served_locally(idle_client: TestClient) -> None:
    docs = idle_client.get("/docs")
    assert docs.status_code == 200 and "/docs-assets/swagger-ui-bundle.js" in docs.text
    assert "cdn" not in docs.text.lower()
    assert idle_client.get("/docs-assets/swagger-ui-bundle.js").status_code == 200

"""The JSON API in-process, on the real app with the tiny model and a real SQLite store."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from chronicon.config import Settings
from chronicon.web import create_app
from support.web_client import TOKEN, changed, parse_sse, upload, wait_for_job

# ---- the whole path: upload → job → events → analysis -------------------------------------------


@pytest.fixture
def finished_job(client: TestClient, clip: Path) -> dict:
    response = upload(client, clip, filename="street <b>scene & more.mp4", frames=4)
    assert response.status_code == 202, response.text
    accepted = response.json()
    assert accepted["state"] == "queued" and accepted["position"] == 1
    job = wait_for_job(client, accepted["job_id"])
    assert job["state"] == "done", job
    return job


def test_job_status_once_done(finished_job: dict) -> None:
    assert finished_job["analysis_id"] and finished_job["position"] is None
    assert finished_job["error"] is None
    assert finished_job["options"]["frames"] == 4
    assert finished_job["options"]["max_tokens"] == 250  # the web default


def test_events_replay_every_stage_frame_token_and_decision(client: TestClient,
                                                            finished_job: dict) -> None:
    response = client.get(f"/api/jobs/{finished_job['id']}/events")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    events = parse_sse(response.text)
    kinds = [e["event"] for e in events]
    started = [json.loads(e["data"])["stage"] for e in events if e["event"] == "stage_started"]
    for stage in ("probe", "sampling", "model_load", "preprocess", "generate", "agent"):
        assert stage in started, (stage, started)
    assert kinds[0] == "stage_finished" and json.loads(events[0]["data"])["stage"] == "upload"
    assert "queued" in kinds
    assert kinds.count("frame") == 4 and kinds.count("thumbnail") == 4
    assert kinds.count("token") >= 1
    assert "decision" in kinds
    assert kinds[-1] == "done"
    # Thumbnails come before the first token: the page shows frames while text streams.
    assert kinds.index("thumbnail") < kinds.index("token")
    ids = [e["id"] for e in events]
    assert ids == list(range(1, len(events) + 1))
    thumb = json.loads(next(e["data"] for e in events if e["event"] == "thumbnail"))
    image = client.get(thumb["url"])
    assert image.status_code == 200 and image.headers["content-type"] == "image/jpeg"
    assert image.content[:2] == b"\xff\xd8"


def test_last_event_id_resumes_after_that_event(client: TestClient, finished_job: dict) -> None:
    url = f"/api/jobs/{finished_job['id']}/events"
    everything = parse_sse(client.get(url).text)
    resumed = parse_sse(client.get(url, headers={"Last-Event-ID": "5"}).text)
    assert [e["id"] for e in resumed] == [e["id"] for e in everything[5:]]
    via_query = parse_sse(client.get(url, params={"last_event_id": "5"}).text)
    assert via_query == resumed
    garbage = parse_sse(client.get(url, headers={"Last-Event-ID": "not-a-number"}).text)
    assert len(garbage) == len(everything)


def test_text_of_the_tokens_is_the_stored_description(client: TestClient,
                                                      finished_job: dict) -> None:
    events = parse_sse(client.get(f"/api/jobs/{finished_job['id']}/events").text)
    streamed = "".join(json.loads(e["data"])["text"] for e in events if e["event"] == "token")
    analysis = client.get(f"/api/analyses/{finished_job['analysis_id']}").json()
    assert analysis["result"]["analysis"] == streamed.strip()


def test_analysis_history_detail_result_and_frames(client: TestClient,
                                                   finished_job: dict,
                                                   web_settings: Settings) -> None:
    analysis_id = finished_job["analysis_id"]
    page = client.get("/api/analyses").json()
    assert page["total"] == 1 and page["items"][0]["id"] == analysis_id
    item = page["items"][0]
    assert item["video_filename"] == "street <b>scene & more.mp4"
    assert item["thumbnail_url"] == f"/api/analyses/{analysis_id}/frames/0.jpg"

    detail = client.get(f"/api/analyses/{analysis_id}").json()
    assert detail["result"]["num_frames"] == 4
    assert detail["agent"] is not None
    assert [f["position"] for f in detail["frames"]] == [0, 1, 2, 3]
    assert all(f["timestamp"] is not None for f in detail["frames"])

    download = client.get(f"/api/analyses/{analysis_id}/result.json")
    assert download.status_code == 200
    assert "attachment" in download.headers["content-disposition"]
    files = list(web_settings.results_dir.glob("*.json"))
    assert len(files) == 1
    assert download.content == files[0].read_bytes()  # exactly the CLI's result file
    result = download.json()
    for name in ("video_path", "prompt", "num_frames", "resize", "max_tokens", "analysis",
                 "timestamp", "model", "device", "quantized", "timing"):
        assert name in result

    frame = client.get(f"/api/analyses/{analysis_id}/frames/3.jpg")
    assert frame.status_code == 200 and frame.content[:2] == b"\xff\xd8"
    assert client.get(f"/api/analyses/{analysis_id}/frames/4.jpg").status_code == 404


def test_history_is_newest_first_and_paged(client: TestClient, clip: Path) -> None:
    ids = []
    for name in ("first.mp4", "second.mp4"):
        job_id = upload(client, clip, filename=name, frames=1).json()["job_id"]
        ids.append(wait_for_job(client, job_id)["analysis_id"])
    page = client.get("/api/analyses", params={"limit": 1}).json()
    assert page["total"] == 2 and [i["id"] for i in page["items"]] == [ids[1]]
    page = client.get("/api/analyses", params={"limit": 1, "offset": 1}).json()
    assert [i["id"] for i in page["items"]] == [ids[0]]


# ---- the queue ----------------------------------------------------------------------------------


def test_positions_and_cancel_of_a_queued_job(idle_client: TestClient, clip: Path,
                                              web_settings: Settings) -> None:
    first = upload(idle_client, clip).json()
    second = upload(idle_client, clip).json()
    assert (first["position"], second["position"]) == (1, 2)
    assert len(list(web_settings.uploads_dir.glob("*"))) == 2
    cancelled = idle_client.delete(f"/api/jobs/{first['job_id']}")
    assert cancelled.status_code == 200 and cancelled.json()["state"] == "cancelled"
    assert len(list(web_settings.uploads_dir.glob("*"))) == 1  # its upload is removed
    assert idle_client.get(f"/api/jobs/{second['job_id']}").json()["position"] == 1
    again = idle_client.delete(f"/api/jobs/{first['job_id']}")
    assert again.status_code == 409 and "only a queued job" in again.json()["error"]
    events = parse_sse(idle_client.get(f"/api/jobs/{first['job_id']}/events").text)
    assert events[-1]["event"] == "cancelled"
    jobs = idle_client.get("/api/jobs").json()["items"]
    assert [j["state"] for j in jobs] == ["queued", "cancelled"]


def test_a_finished_job_cannot_be_cancelled(client: TestClient, finished_job: dict) -> None:
    response = client.delete(f"/api/jobs/{finished_job['id']}")
    assert response.status_code == 409


def test_restart_requeues_a_job_left_running(web_settings: Settings, clip: Path) -> None:
    """A server dies mid-job; the next one marks it interrupted, requeues it and runs it."""
    crashed = TestClient(create_app(web_settings))
    job_id = upload(crashed, clip, frames=2).json()["job_id"]
    store = crashed.app.state.services.store
    assert store.claim_next_job().id == job_id  # the dead worker had taken it
    assert crashed.get(f"/api/jobs/{job_id}").json()["state"] == "running"

    with TestClient(create_app(web_settings)) as restarted:
        job = wait_for_job(restarted, job_id)
        assert job["state"] == "done" and job["interruptions"] == 1
        kinds = [e["event"] for e in parse_sse(restarted.get(f"/api/jobs/{job_id}/events").text)]
        assert "interrupted" in kinds and kinds[-1] == "done"


def test_a_failing_job_reports_its_cause(client: TestClient, clip: Path,
                                         web_settings: Settings) -> None:
    """The upload was fine, but the file is gone when the worker gets to it."""
    client.app.state.services.queue.stop()  # hold the queue while we break the file
    job_id = upload(client, clip).json()["job_id"]
    for stored in web_settings.uploads_dir.glob("*"):
        stored.unlink()
    client.app.state.services.queue.start()
    job = wait_for_job(client, job_id)
    assert job["state"] == "failed" and job["error_type"] == "VideoNotFound"
    events = parse_sse(client.get(f"/api/jobs/{job_id}/events").text)
    assert events[-1]["event"] == "failed"
    assert "no such file" in json.loads(events[-1]["data"])["error"]


# ---- parameters ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("field", "value"), [
    ("frames", 0), ("frames", 17), ("frames", "eight"),
    ("max_tokens", 249), ("max_tokens", 501),
    ("min_tokens", 49), ("min_tokens", 201),
    ("resize", 10), ("sampling", "random"), ("model", "/etc"), ("model", "someone/else"),
])
def test_out_of_range_parameters_are_422_naming_the_field(idle_client: TestClient, clip: Path,
                                                          web_settings: Settings,
                                                          field: str, value: object) -> None:
    response = upload(idle_client, clip, **{field: value})
    assert response.status_code == 422, response.text
    body = response.json()
    assert body["field"] == field and body["error"].startswith(f"{field}:")
    assert list(web_settings.uploads_dir.glob("*")) == []


@pytest.mark.parametrize(("field", "value"), [
    ("frames", 1), ("frames", 16), ("max_tokens", 250), ("max_tokens", 500),
    ("min_tokens", 50), ("min_tokens", 200), ("sampling", "motion"), ("sampling", "scene"),
])
def test_edges_of_the_ranges_are_accepted(idle_client: TestClient, clip: Path,
                                          field: str, value: object) -> None:
    assert upload(idle_client, clip, **{field: value}).status_code == 202


def test_the_servers_model_may_be_named(idle_client: TestClient, clip: Path,
                                        web_settings: Settings) -> None:
    assert upload(idle_client, clip, model=web_settings.model).status_code == 202


def test_only_the_operators_models_may_be_chosen(web_settings: Settings, clip: Path) -> None:
    """A visitor cannot make the server unload its model or download a catalog one (2.2b)."""
    client = TestClient(create_app(web_settings))
    refused = upload(client, clip, model="2.2b")
    assert refused.status_code == 422 and refused.json()["field"] == "model"
    assert "2.2b" not in client.get("/").text  # not offered by the page either
    listed = TestClient(create_app(changed(web_settings, models="500m, 2.2b")))
    assert upload(listed, clip, model="2.2b").status_code == 202
    assert 'value="2.2b"' in listed.get("/").text


# ---- unknown ids --------------------------------------------------------------------------------


@pytest.mark.parametrize("path", [
    "/api/jobs/nope", "/api/jobs/nope/events", "/api/jobs/nope/frames/0.jpg",
    "/api/analyses/nope", "/api/analyses/nope/result.json", "/api/analyses/nope/frames/0.jpg",
    "/api/does-not-exist",
])
def test_unknown_ids_are_404(idle_client: TestClient, path: str) -> None:
    response = idle_client.get(path)
    assert response.status_code == 404
    assert response.json()["error"]


def test_delete_unknown_job_is_404(idle_client: TestClient) -> None:
    assert idle_client.delete("/api/jobs/nope").status_code == 404


def test_unknown_page_is_an_html_404(idle_client: TestClient) -> None:
    response = idle_client.get("/history/nope", headers={"Accept": "text/html"})
    assert response.status_code == 404
    assert "text/html" in response.headers["content-type"]
    assert "no analysis with id nope" in response.text


# ---- the token ----------------------------------------------------------------------------------


@pytest.fixture
def token_client(web_settings: Settings) -> TestClient:
    return TestClient(create_app(changed(web_settings, api_token=TOKEN)))


MUTATING = [
    ("POST", "/api/analyze"), ("DELETE", "/api/jobs/x"), ("PUT", "/api/rules"),
    ("POST", "/api/rules/backtest"), ("POST", "/decide_and_act"),
    ("POST", "/api/deliveries/1/retry"),
]


@pytest.mark.parametrize(("method", "path"), MUTATING)
@pytest.mark.parametrize("auth", [None, "Bearer wrong", f"Basic {TOKEN}", "Bearer"])
def test_mutating_endpoints_need_the_token(token_client: TestClient, method: str, path: str,
                                           auth: str | None) -> None:
    headers = {"Authorization": auth} if auth else {}
    response = token_client.request(method, path, headers=headers, json={})
    assert response.status_code == 401, response.text
    assert TOKEN not in response.text


def test_the_right_token_is_accepted(token_client: TestClient, clip: Path) -> None:
    headers = {"Authorization": f"Bearer {TOKEN}"}
    assert upload(token_client, clip, headers=headers).status_code == 202
    assert upload(token_client, clip).status_code == 401
    # Reads need it too (tests/web/test_web_access.py); /health stays open.
    assert token_client.get("/api/jobs", headers=headers).status_code == 200
    assert token_client.get("/api/jobs").status_code == 401
    assert token_client.get("/health").json()["auth_required"] is True


def test_no_token_configured_means_no_check(idle_client: TestClient, clip: Path) -> None:
    response = upload(idle_client, clip, headers={"Authorization": "Bearer anything"})
    assert response.status_code == 202


# ---- system -------------------------------------------------------------------------------------


def test_health(client: TestClient, finished_job: dict, web_settings: Settings) -> None:
    health = client.get("/health").json()
    assert health["status"] == "ok" and health["version"]
    assert health["model_loaded"] is True and health["model_loads"] == 1
    assert health["device"] == "cpu" and health["queue_depth"] == 0
    assert health["model"] == web_settings.model


def test_debug_masks_every_secret(web_settings: Settings) -> None:
    secrets = {"api_token": "tok-123456", "smtp_password": "pw-123456",
               "webhook_secret": "hook-123456", "webhook_token": "wt-123456",
               "remote_api_key": "key-123456"}
    app = create_app(changed(web_settings, **secrets))
    client = TestClient(app)
    response = client.get("/debug", headers={"Authorization": "Bearer tok-123456"})
    assert response.status_code == 200
    for value in secrets.values():
        assert value not in response.text
    body = response.json()
    assert body["settings"]["smtp_password"] == "***"
    assert body["python"] and "torch" in body and "memory" in body
    assert "cuda_available" in body


def test_debug_does_not_load_torch(tmp_path: Path) -> None:
    """A server on the openvino runtime never imports torch: /debug must not either."""
    code = f"""
import sys
from fastapi.testclient import TestClient
from chronicon.config import Settings
from chronicon.web import create_app
app = create_app(Settings(data_dir={str(tmp_path)!r}, backend="openvino"))
body = TestClient(app).get("/debug").json()
assert body["torch_loaded"] is False and "cuda_available" in body, body
print("torch" in sys.modules)
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip().splitlines()[-1] == "False", out.stderr[-2000:]


def test_metrics(client: TestClient, finished_job: dict) -> None:
    response = client.get("/metrics")
    assert response.headers["content-type"].startswith("text/plain")
    text = response.text
    assert 'chronicon_jobs{state="done"} 1' in text
    assert 'chronicon_stage_seconds_count{stage="generate"} 1' in text
    assert "chronicon_model_loads_total 1" in text
    assert "chronicon_model_loaded 1" in text
    assert "# TYPE chronicon_deliveries gauge" in text


def test_openapi_documents_the_api(idle_client: TestClient) -> None:
    spec = idle_client.get("/openapi.json").json()
    for path in ("/api/analyze", "/api/jobs/{job_id}", "/api/jobs/{job_id}/events",
                 "/api/analyses", "/api/analyses/{analysis_id}",
                 "/api/analyses/{analysis_id}/result.json", "/decide_and_act", "/api/rules",
                 "/api/deliveries", "/health", "/debug", "/metrics"):
        assert path in spec["paths"], path
    form = spec["paths"]["/api/analyze"]["post"]["requestBody"]["content"]["multipart/form-data"]
    props = form["schema"]["properties"]
    assert (props["frames"]["minimum"], props["frames"]["maximum"]) == (1, 16)
    assert (props["max_tokens"]["minimum"], props["max_tokens"]["maximum"]) == (250, 500)
    assert (props["min_tokens"]["minimum"], props["min_tokens"]["maximum"]) == (50, 200)
    assert idle_client.get("/docs").status_code == 200


def test_agent_can_be_switched_off(web_settings: Settings, clip: Path) -> None:
    with TestClient(create_app(changed(web_settings, agent_enabled=False))) as client:
        job = wait_for_job(client, upload(client, clip, frames=1).json()["job_id"])
        assert job["state"] == "done"
        kinds = [e["event"] for e in parse_sse(client.get(f"/api/jobs/{job['id']}/events").text)]
        assert "decision" not in kinds
        assert client.get(f"/api/analyses/{job['analysis_id']}").json()["agent"] is None
        assert client.get("/api/decisions").json()["items"] == []

"""The agent over HTTP: /decide_and_act, rules (view, save, validation), back-test, the audit
trail and retry. Real store, real rules engine; no SMTP configured, so actions are logged."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from chronicon.config import Settings
from chronicon.web import create_app
from support.web_client import TOKEN, changed

TRAIN = "A red train pulls into the railway station while people wait on the platform."


def test_decide_and_act_keeps_the_long_standing_shape(idle_client: TestClient) -> None:
    response = idle_client.post("/decide_and_act", json={
        "analysis": TRAIN, "run_id": "run-1", "video_filename": "station.mp4"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["decision"]["label"] == "train"
    assert 0 < body["decision"]["score"] <= 1
    assert "train" in body["decision"]["reason"].lower()
    assert body["action"] in ("send_email", "log", "webhook")
    assert body["email_status"] in ("sent", "queued", "failed", "skipped")

    decisions = idle_client.get("/api/decisions").json()["items"]
    assert decisions[0]["run_id"] == "run-1" and decisions[0]["label"] == "train"
    assert decisions[0]["id"] == body["decision_id"]
    deliveries = idle_client.get("/api/deliveries").json()["items"]
    assert deliveries and deliveries[0]["decision_id"] == decisions[0]["id"]
    mine = idle_client.get("/api/deliveries", params={"decision_id": body["decision_id"]})
    assert [d["id"] for d in mine.json()["items"]] == [d["id"] for d in body["deliveries"]]
    other = idle_client.get("/api/deliveries", params={"decision_id": 10**6}).json()["items"]
    assert other == []


def test_decide_and_act_negation_is_no_train(idle_client: TestClient) -> None:
    body = idle_client.post("/decide_and_act", json={
        "analysis": "An empty street; no train is visible.", "run_id": "r"}).json()
    assert body["decision"]["label"] != "train"


@pytest.mark.parametrize(("payload", "field"), [
    ({}, "analysis"),
    ({"analysis": 42}, "analysis"),
    ({"analysis": "x" * 100_001}, "analysis"),
])
def test_decide_and_act_bad_bodies_name_the_field(idle_client: TestClient, payload: dict,
                                                  field: str) -> None:
    response = idle_client.post("/decide_and_act", json=payload)
    assert response.status_code == 422
    assert response.json()["field"] == field


@pytest.mark.parametrize("path", ["/decide_and_act", "/api/rules", "/api/rules/backtest"])
def test_malformed_json_is_422(idle_client: TestClient, path: str) -> None:
    method = "PUT" if path == "/api/rules" else "POST"
    response = idle_client.request(method, path, content=b'{"analysis": "unterminated',
                                   headers={"Content-Type": "application/json"})
    assert response.status_code == 422
    body = response.json()
    assert body["field"] == "body"
    assert body["error"].startswith("body: malformed JSON at character ")


def test_rules_default_then_save_then_invalid(idle_client: TestClient,
                                             web_settings: Settings) -> None:
    rules = idle_client.get("/api/rules").json()
    assert rules["source"] == "built-in" and "train" in rules["labels"]
    target = web_settings.data_dir / "rules.yaml"
    assert rules["path"] == "rules.yaml" and not target.exists()  # relative to the data dir

    new_rules = ("rules:\n  - name: boats\n    label: boat\n    keywords: [boat, ship, ferry]\n"
                 "    actions: [log]\n")
    saved = idle_client.put("/api/rules", json={"yaml": new_rules})
    assert saved.status_code == 200, saved.text
    assert saved.json()["labels"] == ["boat"] and target.read_text() == new_rules
    decided = idle_client.post("/decide_and_act", json={"analysis": "A ferry leaves the port."})
    assert decided.json()["decision"]["label"] == "boat"

    broken = idle_client.put("/api/rules", json={"yaml": "rules:\n  - name: x\n    label: [\n"})
    assert broken.status_code == 422 and "invalid YAML" in broken.json()["error"]
    invalid = idle_client.put("/api/rules", json={"yaml": "rules:\n  - name: x\n    nope: 1\n"})
    assert invalid.status_code == 422 and "'x'" in invalid.json()["error"]
    assert target.read_text() == new_rules  # a rejected save changes nothing


def test_rules_path_setting_is_where_rules_are_saved(web_settings: Settings,
                                                     tmp_path: Path) -> None:
    path = tmp_path / "my-rules.yaml"
    client = TestClient(create_app(changed(web_settings, rules_path=path)))
    text = "rules:\n  - name: dogs\n    label: dog\n    keywords: [dog]\n    actions: [log]\n"
    assert client.put("/api/rules", json={"yaml": text}).status_code == 200
    assert path.read_text() == text
    assert client.get("/api/rules").json()["source"] == "my-rules.yaml"  # no server path


def test_backtest_on_past_descriptions(client: TestClient, clip: Path) -> None:
    store = client.app.state.services.store
    for n, text in enumerate([TRAIN, "A cat sleeps on a sofa.", "The SQL database crashed."]):
        store.insert_analysis(f"a{n}", {"analysis": text}, video_path="v.mp4",
                              video_filename=f"v{n}.mp4")
        # The label an analysis shows is its decision's (the one stored decision, by run_id).
        store.insert_decision(created_at=datetime.now(timezone.utc), run_id=f"a{n}",
                              video_filename=f"v{n}.mp4", label="train" if n == 0 else "none",
                              score=1.0, reason="", rule=None, action="log", analysis=text,
                              matches=[])
    report = client.post("/api/rules/backtest", json={}).json()
    assert report["total"] == 3
    by_id = {i["analysis_id"]: i for i in report["items"]}
    assert by_id["a0"]["label"] == "train" and by_id["a1"]["label"] == "none"
    assert report["changed"] == 1  # a2 was "none", the database rule now fires
    assert by_id["a2"]["previous_label"] == "none" and by_id["a2"]["label"] != "none"
    assert "train" in report["agreement"]["labels"]

    cats = "rules:\n  - name: cats\n    label: cat\n    keywords: [cat]\n    actions: [log]\n"
    report = client.post("/api/rules/backtest", json={"yaml": cats}).json()
    assert {i["analysis_id"]: i["label"] for i in report["items"]}["a1"] == "cat"
    bad = client.post("/api/rules/backtest", json={"yaml": "rules: 5"})
    assert bad.status_code == 422


def test_deliveries_filter_and_retry(idle_client: TestClient) -> None:
    body = idle_client.post("/decide_and_act", json={"analysis": TRAIN, "run_id": "r1"}).json()
    # No SMTP configured: the train rule's email becomes a log line, attempted before answering.
    assert body["action"] == "log" and body["email_status"] == "skipped"
    items = idle_client.get("/api/deliveries", params={"status": "sent"}).json()["items"]
    assert [d["channel"] for d in items] == ["log"]
    assert idle_client.get("/api/deliveries", params={"status": "failed"}).json()["items"] == []
    # A sent delivery is not retryable: a clear 409, not a 500.
    response = idle_client.post(f"/api/deliveries/{items[0]['id']}/retry")
    assert response.status_code == 409 and "only failed" in response.json()["error"]
    assert idle_client.post("/api/deliveries/999999/retry").status_code == 404


def test_token_protects_agent_writes(web_settings: Settings) -> None:
    client = TestClient(create_app(changed(web_settings, api_token=TOKEN)))
    assert client.post("/decide_and_act", json={"analysis": TRAIN}).status_code == 401
    ok = client.post("/decide_and_act", json={"analysis": TRAIN},
                     headers={"Authorization": f"Bearer {TOKEN}"})
    assert ok.status_code == 200
    assert client.get("/api/rules").status_code == 401  # reads need it too
    assert client.get("/api/rules", headers={"Authorization": f"Bearer {TOKEN}"}).status_code \
        == 200

"""One error shape for every failure a client can cause: `{"error": str, "type": str}` plus
`"field"` when one parameter is at fault; never a traceback, never anything else."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from chronicon.config import Settings
from chronicon.web import create_app
from support.web_client import TOKEN, changed

CASES = [
    # (method, url, kwargs, status, type, field)
    ("GET", "/api/analyses/nope", {}, 404, "NotFound", None),
    ("GET", "/api/nothing-here", {}, 404, "HTTPError", None),
    ("DELETE", "/api/analyses", {}, 405, "HTTPError", None),
    ("GET", "/api/analyses?limit=0", {}, 422, "BadParameter", "limit"),
    ("PUT", "/api/rules", {"content": b"{not json", "headers": {
        "content-type": "application/json"}}, 422, "BadParameter", "body"),
    ("PUT", "/api/rules", {"json": {"yaml": "rules: [{name: x}]"}}, 422, "RulesError", None),
    ("POST", "/api/analyze", {"data": {"frames": "99"}, "files": {
        "file": ("a.mp4", b"\0" * 100, "video/mp4")}}, 422, "BadParameter", "frames"),
    ("POST", "/api/analyze", {"content": b"x", "headers": {"content-type": "text/plain"}},
     422, "BadParameter", "file"),
    ("PUT", "/api/rules", {"content": b"{}", "headers": {
        "content-type": "application/json", "origin": "http://evil.example"}},
     403, "CrossSiteRequest", None),
    ("PUT", "/api/rules", {"content": b"[" + b"1," * 600_000 + b"1]", "headers": {
        "content-type": "application/json"}}, 413, "RequestTooLarge", None),
    ("GET", "/api/jobs", {"headers": {"host": "evil.example"}}, 400, "HostNotAllowed", None),
]


def check_shape(body: dict, status: int, error_type: str, field: str | None) -> None:
    assert set(body) <= {"error", "type", "field"}, body
    assert isinstance(body["error"], str) and body["error"].strip()
    assert body["type"] == error_type, body
    assert body.get("field") == field, body
    assert "Traceback" not in body["error"] and 'File "' not in body["error"]


@pytest.mark.parametrize(("method", "url", "kwargs", "status", "error_type", "field"), CASES)
def test_error_shape(idle_client: TestClient, method: str, url: str, kwargs: dict, status: int,
                     error_type: str, field: str | None) -> None:
    response = idle_client.request(method, url, **kwargs)
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    check_shape(response.json(), status, error_type, field)


def test_error_shape_of_a_missing_token(web_settings: Settings, tmp_path: Path) -> None:
    client = TestClient(create_app(changed(web_settings, api_token=TOKEN)))
    response = client.get("/api/analyses")
    assert response.status_code == 401
    check_shape(response.json(), 401, "Unauthorized", None)

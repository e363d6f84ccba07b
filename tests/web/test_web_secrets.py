"""Credentials inside URL settings (user:password@, ?key=) never reach a response or a log."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from fastapi.testclient import TestClient

from chronicon.config import Settings
from chronicon.redact import mask_url, mask_urls
from chronicon.web import create_app
from support.web_client import changed

SECRETS = ("hunter2", "abc123", "s3cr3t-user")


@pytest.mark.parametrize(("url", "masked"), [
    ("https://s3cr3t-user:hunter2@hooks.example/x?key=abc123&team=a#frag",
     "https://***@hooks.example/x?key=***&team=***"),
    ("https://abc123@hooks.example:8443/", "https://***@hooks.example:8443/"),
    ("http://[::1]:8000/v1", "http://[::1]:8000/v1"),
    ("http://hooks.example:99999/?key=abc123", "***"),
])
def test_mask_url(url: str, masked: str) -> None:
    assert mask_url(url) == masked
    assert mask_urls(f"POST {url} failed") == f"POST {masked} failed"


@pytest.fixture
def receiver() -> Iterator[tuple[str, list[dict]]]:
    received: list[dict] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's naming
            received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://s3cr3t-user:hunter2@127.0.0.1:{server.server_port}/hook?key=abc123", \
            received
    finally:
        server.shutdown()
        server.server_close()


def test_debug_and_health_show_url_settings_without_credentials(web_settings: Settings) -> None:
    client = TestClient(create_app(changed(
        web_settings, webhook_url="https://s3cr3t-user:hunter2@hooks.example/x?key=abc123",
        remote_url="https://abc123@models.example/v1")))
    response = client.get("/debug")
    assert not [s for s in SECRETS if s in response.text]
    assert response.json()["settings"]["webhook_url"] == \
        "https://***@hooks.example/x?key=***"


def test_a_webhook_delivery_logs_no_credentials(web_settings: Settings, receiver,
                                                caplog: pytest.LogCaptureFixture) -> None:
    url, received = receiver
    rules = web_settings.data_dir / "rules.yaml"
    rules.parent.mkdir(parents=True, exist_ok=True)
    rules.write_text("rules:\n  - name: trains\n    label: train\n    keywords: [train]\n"
                     "    actions: [webhook]\n")
    caplog.set_level(logging.DEBUG)
    client = TestClient(create_app(changed(web_settings, webhook_url=url)))
    answer = client.post("/decide_and_act", json={"analysis": "a train arrives"}).json()
    assert len(received) == 1, answer
    assert "127.0.0.1" in caplog.text  # the delivery was logged ...
    assert not [s for s in SECRETS if s in caplog.text]  # ... without its credentials
    listed = client.get("/api/deliveries").text
    assert not [s for s in SECRETS if s in listed]

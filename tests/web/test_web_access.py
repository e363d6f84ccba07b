"""Who may ask what: the token guards reads as well as writes (browsers log in once and carry
a cookie), other sites' pages cannot change anything, unknown Host names are refused (DNS
rebinding), and bodies are refused on their headers before any byte is read."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

from chronicon.config import Settings
from chronicon.web import create_app
from support.web_client import TOKEN, changed, parse_sse, upload, wait_for_job

BEARER = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
def token_app(web_settings: Settings):
    return create_app(changed(web_settings, api_token=TOKEN))


def _concrete(path: str) -> str:
    return re.sub(r"\{(\w+)\}", lambda m: "1" if m.group(1) in ("position", "delivery_id")
                  else "x", path)


def _routes(routes) -> list[APIRoute]:
    found = []
    for route in routes:
        if isinstance(route, APIRoute):
            found.append(route)
        elif hasattr(route, "original_router"):  # an included router (FastAPI >= 0.16x)
            found += _routes(route.original_router.routes)
    return found


def _reads(app) -> list[str]:
    # The worker API (/internal/) answers to CHRONICON_WORKER_TOKEN, not the API token:
    # tests/worker checks it.
    return sorted({_concrete(r.path) for r in _routes(app.routes)
                   if "GET" in r.methods and r.path not in ("/health", "/login", "/docs")
                   and not r.path.startswith("/internal/")})


def test_every_read_needs_the_token(token_app) -> None:
    client = TestClient(token_app)
    reads = _reads(token_app)
    assert {"/api/analyses", "/api/jobs/x/events", "/api/rules", "/debug", "/"} <= set(reads)
    for path in reads:
        response = client.get(path, headers={"Accept": "application/json"})
        assert response.status_code == 401, (path, response.text)
        assert response.json()["type"] == "Unauthorized"
        assert client.get(path, headers=BEARER).status_code != 401, path
    assert client.get("/health").status_code == 200
    assert client.get("/static/app.css").status_code == 200


def test_pages_send_the_browser_to_the_login_form(token_app) -> None:
    client = TestClient(token_app, follow_redirects=False)
    response = client.get("/history?page=2", headers={"Accept": "text/html"})
    assert response.status_code == 303
    assert response.headers["location"] == "/login?next=/history%3Fpage%3D2"
    form = client.get(response.headers["location"])
    assert form.status_code == 200 and 'name="token"' in form.text


def test_login_sets_a_strict_http_only_cookie(token_app) -> None:
    client = TestClient(token_app, follow_redirects=False)
    wrong = client.post("/login", data={"token": "nope", "next": "/history"})
    assert wrong.status_code == 401 and "not this server" in wrong.text
    assert "set-cookie" not in wrong.headers
    right = client.post("/login", data={"token": TOKEN, "next": "/history"})
    assert right.status_code == 303 and right.headers["location"] == "/history"
    cookie = right.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and TOKEN not in cookie
    assert client.get("/history").status_code == 200
    assert client.get("/api/analyses").status_code == 200
    assert client.post("/logout").status_code == 303
    assert client.get("/api/analyses").status_code == 401


@pytest.mark.parametrize("target", ["//evil.example/", "https://evil.example/", "/\\evil"])
def test_login_never_redirects_off_site(token_app, target: str) -> None:
    client = TestClient(token_app, follow_redirects=False)
    response = client.post("/login", data={"token": TOKEN, "next": target})
    assert response.headers["location"] == "/"


def test_the_event_stream_rides_on_the_login_cookie(web_settings: Settings, clip: Path) -> None:
    with TestClient(create_app(changed(web_settings, api_token=TOKEN))) as client:
        job = upload(client, clip, headers=BEARER, frames=2).json()
        client.post("/login", data={"token": TOKEN})
        assert wait_for_job(client, job["job_id"])["state"] == "done"
        events = parse_sse(client.get(job["events_url"]).text)
        assert events[-1]["event"] == "done"
        client.cookies.clear()
        assert client.get(job["events_url"]).status_code == 401


# ---- other sites -------------------------------------------------------------------------------

CROSS_SITE = [
    {"Origin": "http://evil.example"},
    {"Origin": "null"},
    {"Origin": "http://testserver:8080"},
    {"Sec-Fetch-Site": "cross-site"},
    {"Sec-Fetch-Site": "same-site"},
]


@pytest.mark.parametrize("headers", CROSS_SITE)
def test_another_sites_page_cannot_queue_a_job(idle_client: TestClient, clip: Path,
                                               headers: dict[str, str]) -> None:
    response = upload(idle_client, clip, headers=headers)
    assert response.status_code == 403, response.text
    assert response.json()["type"] == "CrossSiteRequest"
    assert idle_client.get("/api/jobs").json()["items"] == []


@pytest.mark.parametrize("headers", CROSS_SITE[:1] + CROSS_SITE[3:4])
def test_another_sites_form_cannot_change_the_rules_or_decide(idle_client: TestClient,
                                                              headers: dict[str, str]) -> None:
    assert idle_client.put("/api/rules", json={"yaml": "rules: []"},
                           headers=headers).status_code == 403
    assert idle_client.post("/decide_and_act", data={"analysis": "a train"},
                            headers=headers).status_code == 403


def test_own_pages_and_plain_clients_may(idle_client: TestClient, clip: Path) -> None:
    own = {"Origin": "http://testserver", "Sec-Fetch-Site": "same-origin"}
    assert upload(idle_client, clip, headers=own).status_code == 202
    assert upload(idle_client, clip).status_code == 202  # curl sends neither header


@pytest.mark.parametrize("host", ["evil.example", "evil.example:5000", "localhost.evil.example",
                                  ""])
def test_unknown_host_names_are_refused(idle_client: TestClient, host: str) -> None:
    response = idle_client.get("/api/jobs", headers={"Host": host})
    assert response.status_code == 400, response.text
    assert response.json()["type"] == "HostNotAllowed"


@pytest.mark.parametrize("host", ["127.0.0.1:5000", "localhost:5000", "[::1]:5000",
                                  "192.168.1.20", "myserver"])
def test_addresses_and_local_names_are_served(idle_client: TestClient, host: str) -> None:
    assert idle_client.get("/api/jobs", headers={"Host": host}).status_code == 200


def test_allowed_hosts_lets_an_operator_name_the_server(web_settings: Settings) -> None:
    client = TestClient(create_app(changed(web_settings, allowed_hosts="video.example.org")))
    assert client.get("/health", headers={"Host": "video.example.org"}).status_code == 200
    assert client.get("/health", headers={"Host": "other.example.org"}).status_code == 400


# ---- bodies: refused on their headers -----------------------------------------------------------


def _call(app, method: str, path: str, headers: dict[str, str],
          chunks: list[bytes]) -> tuple[int, int]:
    """Call the ASGI app directly; returns (status, how many body chunks it asked for)."""
    asked = 0
    status = 0

    async def receive() -> dict:
        nonlocal asked
        asked += 1
        if asked <= len(chunks):
            return {"type": "http.request", "body": chunks[asked - 1],
                    "more_body": asked < len(chunks)}
        await asyncio.sleep(3600)  # a client that never sends the rest
        return {"type": "http.disconnect"}

    async def send(message: dict) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]

    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
             "method": method, "scheme": "http", "path": path, "raw_path": path.encode(),
             "query_string": b"", "root_path": "", "client": ("127.0.0.1", 40000),
             "server": ("127.0.0.1", 5000),
             "headers": [(k.lower().encode(), v.encode())
                         for k, v in {"host": "127.0.0.1:5000", **headers}.items()]}

    async def run() -> None:
        await asyncio.wait_for(app(scope, receive, send), timeout=20)

    asyncio.run(run())
    return status, asked


def test_token_is_checked_before_the_body_is_read(token_app) -> None:
    headers = {"content-type": "application/json", "content-length": str(300 * 2**20)}
    for method, path in (("PUT", "/api/rules"), ("POST", "/decide_and_act")):
        status, asked = _call(token_app, method, path, headers, [b'{"yaml": "'])
        assert (status, asked) == (401, 0)


def test_json_bodies_are_capped(web_settings: Settings) -> None:
    app = create_app(web_settings)
    big = b'{"yaml": "' + b"#" * (2 * 2**20) + b'"}'
    status, asked = _call(app, "PUT", "/api/rules", {"content-type": "application/json",
                                                     "content-length": str(len(big))}, [big])
    assert (status, asked) == (413, 0)
    # Without a Content-Length (chunked), it stops reading at the cap.
    chunks = [big[i:i + 65536] for i in range(0, len(big), 65536)]
    status, asked = _call(app, "PUT", "/api/rules", {"content-type": "application/json"}, chunks)
    assert status == 413 and asked <= 17
    client = TestClient(app)
    response = client.put("/api/rules", content=big, headers={"content-type": "application/json"})
    assert response.status_code == 413
    assert response.json() == {"error": response.json()["error"], "type": "RequestTooLarge"}
    assert "1024 kB" in response.json()["error"]


def test_the_worker_api_has_its_own_token_and_is_reached_by_name(web_settings: Settings) -> None:
    """Workers on other machines call /internal with CHRONICON_WORKER_TOKEN, not the API token,
    and by the server's name; the guard leaves them to that token."""
    client = TestClient(create_app(changed(web_settings, api_token=TOKEN, worker_token="w-tok")))
    url, body = "/internal/jobs/abc/claim", {"worker_id": "w1"}
    named = {"Host": "gpu-server.example.org:5000"}
    assert client.post(url, json=body, headers=named).status_code == 401
    ok = client.post(url, json=body, headers={**named, "Authorization": "Bearer w-tok"})
    assert ok.status_code == 409, ok.text  # this server runs its jobs itself: nothing to claim
    # With an API token a named Host is fine for the API too (a rebinding page has no token).
    assert client.get("/api/jobs", headers={**named, **BEARER}).status_code == 200

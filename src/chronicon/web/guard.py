"""RequestGuard: what every request must pass before any route reads a byte of its body.

In order: the Host header names this server (DNS rebinding), a state-changing request comes
from this server's own pages or from a non-browser client (cross-site forgery), the token when
one is configured (reads included), and a cap on JSON and form bodies. Checking here, ahead of
the routes, is what makes a 300 MB body without a token cost nothing: it is refused on its
headers.
"""

from __future__ import annotations

import ipaddress
from urllib.parse import quote, urlsplit

from fastapi import Request
from fastapi.responses import RedirectResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..config import Settings
from ..errors import ChroniconError, CrossSiteRequest, HostNotAllowed, RequestTooLarge, Unauthorized
from .auth import check_credentials, is_open_path
from .responses import error_response, wants_html

# JSON and form bodies (rules, decide_and_act, backtest, login): the largest legitimate one is
# a rules file of 200,000 characters. Uploads stream under their own limit (MAX_UPLOAD_MB).
MAX_BODY_BYTES = 1024 * 1024
STREAMED_UPLOAD_PATHS = frozenset({"/api/analyze"})
WORKER_API_PREFIX = "/internal/"
STATE_CHANGING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
DEFAULT_PORTS = {"http": 80, "https": 443}


def host_allowed(host_header: str, settings: Settings) -> bool:
    """True when the Host header names this server.

    Accepted: IP addresses, `localhost`, CHRONICON_HOST, CHRONICON_ALLOWED_HOSTS (`*`: any),
    and single-label names (the machine's own name). A DNS-rebinding page is served from a
    registered domain, which always has a dot, so it is refused unless the operator listed it.
    """
    name = (urlsplit(f"//{host_header}").hostname or "").rstrip(".").lower()
    if not name:
        return False
    allowed = {h.lower().rstrip(".") for h in settings.allowed_hosts}
    if "*" in allowed or name in allowed or name in ("localhost", settings.host.lower()):
        return True
    try:
        ipaddress.ip_address(name)
        return True
    except ValueError:
        return "." not in name


def _origin_key(scheme: str, netloc: str) -> str:
    parts = urlsplit(f"//{netloc}")
    port = parts.port or DEFAULT_PORTS.get(scheme)
    return f"{(parts.hostname or '').lower()}:{port}"


def check_same_origin(request: Request) -> None:
    """Refuse a state-changing request a browser sent from another site. Clients that are not
    browsers (curl, scripts) send neither header and pass; the token is their protection."""
    site = request.headers.get("sec-fetch-site")
    if site in ("cross-site", "same-site"):
        raise CrossSiteRequest(f"refused: a {site} request (Sec-Fetch-Site) may not change "
                               "anything here; use this server's own pages or the API directly")
    origin = request.headers.get("origin")
    if origin is None:
        return
    parts = urlsplit(origin)
    host = request.headers.get("host", "")
    if origin == "null" or not parts.netloc or \
            _origin_key(parts.scheme, parts.netloc) != _origin_key(request.url.scheme, host):
        raise CrossSiteRequest(f"refused: a request from another origin ({origin[:100]}) may "
                               "not change anything here")


async def _read_capped(receive: Receive, limit: int) -> Receive:
    """Read the whole body (at most `limit` bytes, else RequestTooLarge) and return a receive
    that replays it. Raising while the route reads would not do: FastAPI turns any error
    there into a 400 "error parsing the body"."""
    body = bytearray()
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        body += message.get("body", b"")
        if len(body) > limit:
            raise RequestTooLarge(_too_large(limit))
        if not message.get("more_body", False):
            break
    replayed = False

    async def replay() -> Message:
        nonlocal replayed
        if replayed:
            return await receive()
        replayed = True
        return {"type": "http.request", "body": bytes(body), "more_body": False}

    return replay


def _too_large(limit: int) -> str:
    return (f"body: larger than the limit of {limit // 1024} kB for JSON and form bodies "
            "(videos go to /api/analyze as multipart)")


class RequestGuard:
    """ASGI middleware; see the module docstring."""

    def __init__(self, app: ASGIApp, settings: Settings, max_body_bytes: int = MAX_BODY_BYTES):
        self.app = app
        self.settings = settings
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        try:
            self.check(request)
            if request.method in STATE_CHANGING and \
                    request.url.path not in STREAMED_UPLOAD_PATHS:
                receive = await _read_capped(receive, self.max_body_bytes)
        except ChroniconError as exc:
            await self.refusal(request, exc)(scope, receive, send)
            return
        await self.app(scope, receive, send)

    def check(self, request: Request) -> None:
        """Everything decided on the request line and headers alone."""
        host = request.headers.get("host", "")
        # The worker API (/internal) has its own token (CHRONICON_WORKER_TOKEN, checked by its
        # routes) and its callers reach the server by name from other machines. With an API
        # token a rebinding page holds no credential, so only a server without one needs its
        # Host header checked.
        if request.url.path.startswith(WORKER_API_PREFIX):
            return
        if self.settings.api_token is None and not host_allowed(host, self.settings):
            raise HostNotAllowed(f"this server does not answer to the host {host[:100]!r}; "
                                 "add it to CHRONICON_ALLOWED_HOSTS if it is this server's name")
        changes_state = request.method in STATE_CHANGING
        if changes_state:
            check_same_origin(request)
        if not is_open_path(request.url.path):
            check_credentials(request, self.settings)
        length = request.headers.get("content-length", "")
        if changes_state and request.url.path not in STREAMED_UPLOAD_PATHS and \
                length.isdigit() and int(length) > self.max_body_bytes:
            raise RequestTooLarge(_too_large(self.max_body_bytes))

    def refusal(self, request: Request, exc: ChroniconError) -> Response:
        if isinstance(exc, Unauthorized) and request.method in ("GET", "HEAD") and \
                wants_html(request):
            target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            return RedirectResponse(f"/login?next={quote(target, safe='/')}", status_code=303)
        headers = {"WWW-Authenticate": "Bearer"} if isinstance(exc, Unauthorized) else None
        return error_response(request, exc.http_status, exc.message, type(exc).__name__,
                              headers=headers)

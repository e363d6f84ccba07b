"""The optional API token. With `CHRONICON_API_TOKEN` set, every request but `/health`, the
login page, static assets and the API docs needs it: API clients send
`Authorization: Bearer <token>`, browsers log in once at `/login` and then carry a session
cookie (HttpOnly, SameSite=Strict) that EventSource sends too.

The cookie holds an HMAC of the token, not the token: it cannot be turned back into the token,
and changing the token logs every browser out."""

from __future__ import annotations

import hashlib
import hmac

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import SecretStr

from ..config import Settings
from ..errors import Unauthorized

SESSION_COOKIE = "chronicon_session"
SESSION_MAX_AGE_S = 30 * 24 * 3600
# Reachable without the token: liveness, logging in, and files that hold no data. The worker
# API (/internal/) checks its own token, CHRONICON_WORKER_TOKEN, in web/routes/internal.py.
OPEN_PATHS = ("/health", "/login", "/docs", "/openapi.json")
OPEN_PREFIXES = ("/static/", "/docs-assets/", "/internal/")

bearer_scheme = HTTPBearer(auto_error=False, description="CHRONICON_API_TOKEN, when set")


def session_value(token: SecretStr) -> str:
    return hmac.new(token.get_secret_value().encode(), b"chronicon session v1",
                    hashlib.sha256).hexdigest()


def is_open_path(path: str) -> bool:
    return path in OPEN_PATHS or path.startswith(OPEN_PREFIXES)


def token_matches(presented: str, expected: SecretStr) -> bool:
    # Constant-time comparison: the token's prefix must not be guessable by timing.
    return hmac.compare_digest(presented.encode(), expected.get_secret_value().encode())


def check_credentials(request: Request, settings: Settings) -> None:
    """Raise Unauthorized unless the request carries the token (header) or a session cookie;
    a no-op when no token is configured."""
    expected = settings.api_token
    if expected is None:
        return
    scheme, _, presented = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and presented.strip():
        if token_matches(presented.strip(), expected):
            return
        raise Unauthorized("the API token is not correct")
    cookie = request.cookies.get(SESSION_COOKIE)
    if cookie and hmac.compare_digest(cookie.encode(), session_value(expected).encode()):
        return
    raise Unauthorized("this server requires an API token: send "
                       "'Authorization: Bearer <CHRONICON_API_TOKEN>' or log in at /login")


def require_token(
    request: Request,
    credentials: HTTPAuthorizationCredentials | None = Depends(bearer_scheme),
) -> None:
    """Dependency for mutating routes (RequestGuard checks every route first; this keeps the
    check next to the route and documents the scheme in the OpenAPI spec)."""
    check_credentials(request, request.app.state.settings)

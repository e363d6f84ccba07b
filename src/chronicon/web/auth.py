"""The optional API token: with `CHRONICON_API_TOKEN` set, every mutating endpoint (POST, PUT,
DELETE) needs `Authorization: Bearer <token>`. Reads stay open so EventSource (which cannot send
headers) and the pages work; nothing secret is readable (settings are masked)."""

from __future__ import annotations

import hmac

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from ..errors import Unauthorized

bearer_scheme = HTTPBearer(auto_error=False, description="CHRONICON_API_TOKEN, when set")


def require_token(
    request: Request,
    credentials: HTTPAuthorizationCredentials | None = Depends(bearer_scheme),
) -> None:
    """Dependency for mutating routes; a no-op when no token is configured."""
    expected = request.app.state.settings.api_token
    if expected is None:
        return
    if credentials is None:
        raise Unauthorized("this server requires an API token: send "
                           "'Authorization: Bearer <CHRONICON_API_TOKEN>'")
    # Constant-time comparison: the token's prefix must not be guessable by timing.
    if not hmac.compare_digest(credentials.credentials.encode(),
                               expected.get_secret_value().encode()):
        raise Unauthorized("the API token is not correct")

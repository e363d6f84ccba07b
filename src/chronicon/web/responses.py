"""Error responses in one shape: `{"error": message, "type": ErrorType, "field": name}` for API
clients (`field` only when one field is at fault), the error page for browsers."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse, Response

# Paths whose answers are data, never pages, whatever the Accept header says.
API_PREFIXES = ("/api/", "/static/", "/docs-assets/", "/health", "/debug", "/metrics",
                "/decide_and_act", "/openapi.json")


def wants_html(request: Request) -> bool:
    if request.url.path.startswith(API_PREFIXES):
        return False
    return "text/html" in request.headers.get("accept", "")


def error_response(request: Request, status: int, message: str, error_type: str,
                   field: str | None = None, headers: dict[str, str] | None = None) -> Response:
    if wants_html(request):
        return request.app.state.templates.TemplateResponse(
            request, "error.html", {"status": status, "message": message}, status_code=status,
            headers=headers)
    body: dict[str, Any] = {"error": message, "type": error_type}
    if field:
        body["field"] = field
    return JSONResponse(body, status_code=status, headers=headers)

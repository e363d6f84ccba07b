"""Logging in once: a form that takes the API token and answers with a session cookie
(HttpOnly: no script can read it; SameSite=Strict: no other site's page can send it)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from ..auth import SESSION_COOKIE, SESSION_MAX_AGE_S, session_value, token_matches
from .pages import render

router = APIRouter(include_in_schema=False)


def safe_next(target: str | None) -> str:
    """Only a path on this server: `//evil.example` or `https://...` would be an open redirect."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


@router.get("/login", response_class=HTMLResponse)
def login_page(request: Request, next: str | None = None) -> Response:
    if request.app.state.settings.api_token is None:
        return RedirectResponse(safe_next(next), status_code=303)
    return render(request, "login.html", "login", next=safe_next(next), error=None)


@router.post("/login", response_class=HTMLResponse)
async def log_in(request: Request) -> Response:
    """Form fields `token` and `next`; a wrong token renders the form again with 401."""
    expected = request.app.state.settings.api_token
    form = await request.form()
    target = safe_next(str(form.get("next") or "/"))
    if expected is None:
        return RedirectResponse(target, status_code=303)
    if not token_matches(str(form.get("token") or ""), expected):
        response = render(request, "login.html", "login", next=target,
                          error="That is not this server's token (CHRONICON_API_TOKEN).")
        response.status_code = 401
        return response
    response = RedirectResponse(target, status_code=303)
    response.set_cookie(SESSION_COOKIE, session_value(expected), max_age=SESSION_MAX_AGE_S,
                        path="/", httponly=True, samesite="strict",
                        secure=request.url.scheme == "https")
    return response


@router.post("/logout")
def log_out() -> Response:
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="strict")
    return response

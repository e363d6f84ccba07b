"""The pages: server-rendered templates (Jinja autoescapes every value, model text included)
that small vanilla scripts bring to life. No external resource: the app works offline."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse

from ...options import DEFAULT_PROMPT, WEB_LIMITS
from ...video.sampling import SAMPLERS
from .analyses import detail, get_record, summary
from .analyze import allowed_models
from .questions import thread
from .search import page_hits, run_search
from .system import debug_data, health_data

router = APIRouter(include_in_schema=False)

PAGE_SIZE = 24
SEARCH_PAGE_SIZE = 20


# Defence in depth behind the escaping: pages run only this server's scripts, so even text that
# slipped through unescaped could not execute (no inline script, no foreign origin).
PAGE_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data: blob:; "
                               "script-src 'self'; style-src 'self'; connect-src 'self'; "
                               "object-src 'none'; base-uri 'none'; frame-ancestors 'none'; "
                               "form-action 'self'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}


def render(request: Request, template: str, page: str, **context: Any) -> HTMLResponse:
    settings = request.app.state.services.settings
    return request.app.state.templates.TemplateResponse(request, template, {
        "page": page, "auth_required": settings.api_token is not None, **context},
        headers=PAGE_HEADERS)


@router.get("/", response_class=HTMLResponse)
def analyze_page(request: Request) -> HTMLResponse:
    settings = request.app.state.services.settings
    return render(request, "analyze.html", "analyze", ranges=WEB_LIMITS.ranges(),
                  sampling=list(SAMPLERS), models=allowed_models(request),
                  default_prompt=DEFAULT_PROMPT, max_upload_mb=settings.max_upload_mb)


@router.get("/jobs/{job_id}", response_class=HTMLResponse)
def job_page(request: Request, job_id: str) -> HTMLResponse:
    job = request.app.state.services.queue.get(job_id)
    return render(request, "job.html", "analyze", job=job)


@router.get("/history", response_class=HTMLResponse)
def history_page(request: Request, page: int = Query(1, ge=1, le=100_000),
                 q: str | None = Query(None, max_length=500),
                 since: str | None = Query(None, max_length=40),
                 label: str | None = Query(None, max_length=100),
                 offset: int = Query(0, ge=0, le=1000)) -> HTMLResponse:
    store = request.app.state.services.store
    total = store.count_analyses()
    search = {"q": q or "", "since": since or "", "label": label or ""}
    if q and q.strip():
        found = run_search(request, q, since, label, "hybrid", offset, SEARCH_PAGE_SIZE)
        search.update(hits=page_hits(found), offset=offset, has_more=found.has_more,
                      page_size=SEARCH_PAGE_SIZE)
        return render(request, "history.html", "history", items=[], search=search,
                      page_number=1, has_next=False, total=total)
    records = store.list_analyses(PAGE_SIZE, (page - 1) * PAGE_SIZE)
    return render(request, "history.html", "history", items=[summary(r) for r in records],
                  page_number=page, has_next=page * PAGE_SIZE < total, total=total,
                  search=search)


@router.get("/history/{analysis_id}", response_class=HTMLResponse)
def analysis_page(request: Request, analysis_id: str) -> HTMLResponse:
    store = request.app.state.services.store
    return render(request, "analysis.html", "history",
                  analysis=detail(store, get_record(request, analysis_id)),
                  questions=thread(store, analysis_id))


@router.get("/agent", response_class=HTMLResponse)
def agent_page(request: Request) -> HTMLResponse:
    return render(request, "agent.html", "agent")


@router.get("/system", response_class=HTMLResponse)
def system_page(request: Request) -> HTMLResponse:
    sources = request.app.state.services.sources
    return render(request, "system.html", "system", health=health_data(request),
                  debug=debug_data(request), sources=sources.list() if sources else [])

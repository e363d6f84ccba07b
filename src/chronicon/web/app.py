"""The app factory: one Settings, one Store, one job queue with one warm backend, the routers,
and the one place errors become HTTP responses."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from starlette.exceptions import HTTPException as StarletteHTTPException

from .. import __version__
from ..config import Settings
from ..errors import ChroniconError
from ..jobs import JobQueue, create_queue
from ..redact import install_log_masking
from ..store import Store
from ..vlm.warm import WarmBackend
from .guard import RequestGuard
from .responses import error_response
from .rules_file import make_agent_step
from .uploads import remove_partial_uploads

log = logging.getLogger(__name__)
WEB_DIR = Path(__file__).parent


@dataclass
class Services:
    """What the routes share, on `app.state.services`."""

    settings: Settings
    store: Store
    backends: WarmBackend
    queue: JobQueue
    outbox: Any = None
    sources: Any = None  # sources.service.ServerSources: watched folders and live streams


def _start_outbox(settings: Settings, store: Store) -> Any:
    """The agent's delivery outbox (retries in the background); None when not installed."""
    try:
        from ..agent.outbox import Outbox
    except ImportError:
        log.warning("agent outbox unavailable; deliveries are not sent by this server")
        return None
    outbox = Outbox(store, settings)
    outbox.start()
    return outbox


def create_app(settings: Settings, backend: Any = None, *, preload: bool = False) -> FastAPI:
    """The Chronicon web app.

    `backend`: an already-built backend to serve with (tests, benchmarks); by default one is made
    from `settings` by the worker when the first job needs it (`preload=True`: at startup).
    The worker and the outbox run while the app's lifespan runs (uvicorn, TestClient as a
    context manager); the API answers without them but jobs then stay queued.
    """
    install_log_masking()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    store = Store(settings.db_path)
    backends = WarmBackend(settings, backend)
    services = Services(settings, store, backends, queue=None)  # type: ignore[arg-type]
    agent_step = make_agent_step(settings, store, lambda: services.outbox, backends)
    services.queue = create_queue(settings, store, backends, agent_step, preload=preload)
    queue = services.queue
    from ..sources.service import ServerSources

    services.sources = ServerSources(settings, store, queue, backends)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        removed = remove_partial_uploads(settings.uploads_dir)
        if removed:
            log.warning("removed %d partial upload(s) left by a server that was stopped "
                        "mid-upload", removed)
        queue.recover()
        queue.start()
        services.outbox = _start_outbox(settings, store)
        services.sources.start()
        try:
            yield
        finally:
            services.sources.stop()
            queue.stop()
            if services.outbox is not None:
                services.outbox.stop()

    app = FastAPI(
        title="Chronicon",
        version=__version__,
        description="Local-first video analysis: upload a clip, follow the analysis live over "
                    "Server-Sent Events, browse the history, and configure the agent.",
        lifespan=lifespan,
        # FastAPI's own /docs and /redoc load their scripts from a CDN; ours are served locally.
        docs_url=None,
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.services = services
    app.state.templates = Jinja2Templates(directory=str(WEB_DIR / "templates"))
    app.mount("/static", StaticFiles(directory=str(WEB_DIR / "static")), name="static")
    app.add_middleware(RequestGuard, settings=settings)
    _install_error_handlers(app)
    _include_routers(app)
    _install_offline_docs(app)
    return app


def _install_offline_docs(app: FastAPI) -> None:
    """Swagger UI at /docs from the swagger-ui-bundle-v2 package: works without network."""
    from fastapi.openapi.docs import get_swagger_ui_html
    from fastapi.responses import HTMLResponse
    from swagger_ui_bundle import swagger_ui_path

    app.mount("/docs-assets", StaticFiles(directory=str(swagger_ui_path)), name="docs-assets")

    @app.get("/docs", include_in_schema=False)
    def swagger_ui() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=app.openapi_url or "/openapi.json", title="Chronicon API",
            swagger_js_url="/docs-assets/swagger-ui-bundle.js",
            swagger_css_url="/docs-assets/swagger-ui.css",
            swagger_favicon_url="/static/logo.svg")


def _include_routers(app: FastAPI) -> None:
    from .routes import (
        agent,
        analyses,
        analyze,
        internal,
        jobs,
        login,
        media,
        pages,
        questions,
        search,
        sources,
        system,
    )

    for module in (analyze, jobs, analyses, media, questions, search, sources, agent, system,
                   pages, login, internal):
        app.include_router(module.router)


# ---- errors: the one place they become responses -------------------------------------------------
def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ChroniconError)
    async def chronicon_error(request: Request, exc: ChroniconError) -> Response:
        if exc.http_status >= 500:
            log.error("%s: %s", type(exc).__name__, exc.message)
        message = request.app.state.settings.without_server_paths(exc.message)
        return error_response(request, exc.http_status, message, type(exc).__name__,
                               getattr(exc, "name", None))

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> Response:
        first = exc.errors()[0] if exc.errors() else {"loc": (), "msg": "invalid request"}
        if first.get("type") == "json_invalid":
            # loc is ("body", <character offset>): name the body, say where it broke.
            offset = first["loc"][-1] if first.get("loc") else "?"
            reason = (first.get("ctx") or {}).get("error", "invalid JSON")
            return error_response(request, 422, f"body: malformed JSON at character {offset} "
                                   f"({reason})", "BadParameter", "body")
        loc = [str(p) for p in first.get("loc", ()) if p not in ("body", "query", "path")]
        field = ".".join(loc) or "body"
        return error_response(request, 422, f"{field}: {first.get('msg', 'invalid')}",
                               "BadParameter", field)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        message = exc.detail if isinstance(exc.detail, str) else "request failed"
        if exc.status_code == 404 and message == "Not Found":
            message = f"nothing at {request.url.path}"
        response = error_response(request, exc.status_code, message, "HTTPError")
        for key, value in (exc.headers or {}).items():
            response.headers[key] = value
        return response

    @app.exception_handler(Exception)
    async def internal_error(request: Request, exc: Exception) -> Response:
        # The traceback goes to the log; the user gets the cause's type, never the trace.
        log.exception("internal error on %s %s", request.method, request.url.path)
        return error_response(request, 500, f"internal error ({type(exc).__name__}); "
                                             "see the server log", "InternalError")


__all__ = ["create_app", "Services"]

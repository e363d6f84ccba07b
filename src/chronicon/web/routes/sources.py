"""Watched folders and live streams at run time: list, add, remove.

Every response masks a URL's password (`rtsp://user:***@host/…`). Adding and removing need the
API token like every mutating endpoint; a source added here is remembered across restarts
(`CHRONICON_WATCH` sources are started from the environment instead and cannot be removed).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request, Response
from pydantic import BaseModel, Field

from ..auth import require_token

router = APIRouter(tags=["sources"])


class SourceRequest(BaseModel):
    location: str = Field(..., min_length=1, max_length=4096,
                          description="A folder on the server, or a stream URL (rtsp://, "
                                      "rtmp://, http(s)://….m3u8, udp://, tcp://, srt://)")
    patterns: list[str] = Field(default_factory=list, max_length=32,
                                description="file name patterns (folders), e.g. '*.mp4'")
    recursive: bool = Field(False, description="watch sub-folders too (folders)")
    timeline: bool = Field(False, description="analyse each clip as a timeline (folders)")
    window: float | None = Field(None, gt=0, le=3600,
                                 description="seconds per stream window (streams)")


class SourceList(BaseModel):
    items: list[dict[str, Any]]
    analyst: dict[str, int]


def _sources(request: Request) -> Any:
    return request.app.state.services.sources


@router.get("/api/sources", response_model=SourceList)
def list_sources(request: Request) -> SourceList:
    """Every running source with its state (`connected`, `reconnecting (attempt 3, next in
    8 s)`, the last error) and counters."""
    sources = _sources(request)
    return SourceList(items=sources.list(), analyst=sources.analyst.counters.to_dict())


@router.post("/api/sources", status_code=201, dependencies=[Depends(require_token)],
             responses={409: {}, 422: {}})
def add_source(request: Request, body: SourceRequest) -> dict[str, Any]:
    """Start watching a folder or a stream (remembered across restarts)."""
    options: dict[str, Any] = {"timeline": body.timeline}
    if body.window is not None:
        options["window"] = body.window
    running = _sources(request).add(body.location, patterns=body.patterns,
                                    recursive=body.recursive, options=options)
    return running.to_dict()


@router.delete("/api/sources/{source_id}", status_code=204,
               dependencies=[Depends(require_token)], responses={404: {}})
def remove_source(request: Request, source_id: str) -> Response:
    """Stop watching a source and forget it."""
    _sources(request).sources.remove(source_id)
    return Response(status_code=204)

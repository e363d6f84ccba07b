"""Search: `GET /api/search` (paged JSON) and the hits the History page shows for `?q=`."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel

from ...search import MODES, SearchQuery, parse_since, search, segments
from ...search.query import MAX_LIMIT, MAX_OFFSET, MAX_QUERY_CHARS, SearchHit

router = APIRouter(tags=["search"])


class SearchHitOut(BaseModel):
    analysis_id: str
    video: str | None
    text: str
    start: float | None
    end: float | None
    score: float
    kind: str
    label: str | None
    created_at: str
    matched_by: list[str]
    marks: list[tuple[int, int]]
    url: str


class SearchPage(BaseModel):
    hits: list[SearchHitOut]
    offset: int
    limit: int
    has_more: bool


def hit_url(hit: SearchHit) -> str:
    """The analysis page; for a timeline caption, at its moment in the player (`#t=` seconds,
    the media-fragment syntax a <video> understands)."""
    url = f"/history/{hit.entry.analysis_id}"
    if hit.entry.start is not None:
        url += f"#t={hit.entry.start:g}"
    return url


def hit_out(hit: SearchHit) -> SearchHitOut:
    e = hit.entry
    return SearchHitOut(**hit.to_dict(), kind=e.kind, label=e.label, created_at=e.created_at,
                        matched_by=list(hit.matched_by), marks=hit.marks, url=hit_url(hit))


def run_search(request: Request, q: str, since: str | None, label: str | None, mode: str,
               offset: int, limit: int) -> SearchPage:
    """Validate (BadParameter names the field) and search the app's store."""
    query = SearchQuery(q, since=parse_since(since) if since else None, label=label or None,
                        mode=mode, offset=offset, limit=limit).validate()
    results = search(request.app.state.services.store, query)
    return SearchPage(hits=[hit_out(h) for h in results.hits], offset=results.offset,
                      limit=results.limit, has_more=results.has_more)


def page_hits(page: SearchPage) -> list[dict[str, Any]]:
    """Hits for a template: each with its text cut into (piece, matched) for <mark>."""
    return [{**hit.model_dump(), "segments": segments(hit.text, hit.marks)} for hit in page.hits]


@router.get("/api/search", response_model=SearchPage, responses={422: {}, 503: {}})
def search_endpoint(
    request: Request,
    q: str = Query(..., max_length=MAX_QUERY_CHARS, description="what to look for"),
    since: str | None = Query(None, max_length=40,
                              description="30m, 12h, 2d, 1w or an ISO date (UTC)"),
    label: str | None = Query(None, max_length=100, description="the agent's label"),
    mode: str = Query("hybrid", description=f"one of {', '.join(MODES)}"),
    offset: int = Query(0, ge=0, le=MAX_OFFSET),
    limit: int = Query(20, ge=1, le=MAX_LIMIT),
) -> SearchPage:
    """Every description, timeline caption and summary, ranked by words (FTS5 bm25), meaning
    (sentence vectors) or both (`hybrid`: reciprocal-rank fusion). `marks` are the character
    spans of `text` that matched a query word; `url` opens the analysis (at `start` for a
    timeline caption). `has_more` says whether `offset + limit` gives another page."""
    return run_search(request, q, since, label, mode, offset, limit)

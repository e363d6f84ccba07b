"""Answering a search: full text (FTS5, bm25), meaning (cosine over sentence vectors) or both
fused by reciprocal rank, filtered by time and label, one page at a time."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

import numpy as np

from ..errors import BadParameter
from ..store.search_records import SearchEntry
from .fulltext import CLOSE_MARK, OPEN_MARK, match_expression, parse_highlight
from .fusion import reciprocal_rank_fusion
from .indexing import Embedder, default_embedder, embed_missing
from .vectors import vector_index

MODES = ("hybrid", "text", "meaning")
MAX_QUERY_CHARS = 500
MAX_LIMIT = 100
MAX_OFFSET = 1000
# How deep each ranking goes before fusion; a page deeper than this widens it.
CANDIDATES = 100
# Below this cosine a caption is not "about" the query. Measured with bench_search's labelled
# set (all-MiniLM-L6-v2): a query and its caption 0.47-0.86 (median 0.66, paraphrases included);
# the best unrelated street scene per query median 0.25, worst 0.48. The floor keeps meaning-only
# noise off short result lists; ranking, not the floor, orders what passes it.
MIN_SIMILARITY = 0.3

_SINCE = re.compile(r"^\s*(\d+)\s*([mhdw])\s*$", re.IGNORECASE)
_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_since(value: str, now: datetime | None = None) -> str:
    """`30m`, `12h`, `2d`, `1w` (that long ago) or an ISO date/time (UTC unless it says) →
    the ISO-8601 UTC instant analyses must be created at or after."""
    now = now or datetime.now(timezone.utc)
    relative = _SINCE.match(value)
    if relative:
        amount, unit = int(relative.group(1)), relative.group(2).lower()
        return (now - timedelta(**{_UNITS[unit]: amount})).isoformat()
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError:
        raise BadParameter("since", f"expected a duration like 30m, 12h, 2d, 1w or an ISO date "
                                    f"like 2026-01-05, got {value[:40]!r}") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc).isoformat()


@dataclass(frozen=True)
class SearchQuery:
    """One search as asked; `validate()` raises BadParameter naming the field.
    `since` is an ISO instant (see `parse_since`)."""

    text: str
    since: str | None = None
    label: str | None = None
    mode: str = "hybrid"
    offset: int = 0
    limit: int = 20

    def validate(self) -> SearchQuery:
        if not self.text.strip():
            raise BadParameter("q", "must not be empty; type what you are looking for")
        if len(self.text) > MAX_QUERY_CHARS:
            raise BadParameter("q", f"at most {MAX_QUERY_CHARS} characters, got {len(self.text)}")
        if self.mode not in MODES:
            raise BadParameter("mode", f"must be one of {', '.join(MODES)}, got {self.mode!r}")
        if not 1 <= self.limit <= MAX_LIMIT:
            raise BadParameter("limit", f"must be between 1 and {MAX_LIMIT}, got {self.limit}")
        if not 0 <= self.offset <= MAX_OFFSET:
            raise BadParameter("offset", f"must be between 0 and {MAX_OFFSET}, got {self.offset}")
        return self


@dataclass(frozen=True)
class SearchHit:
    """One indexed text that answers the query. `marks`: character spans of `entry.text` that
    matched a query word (stemmed); `matched_by`: "text", "meaning" or both."""

    entry: SearchEntry
    score: float
    marks: list[tuple[int, int]] = field(default_factory=list)
    matched_by: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """The hit as `chronicon search --json` prints it."""
        e = self.entry
        return {"analysis_id": e.analysis_id, "video": e.video_filename, "text": e.text,
                "start": e.start, "end": e.end, "score": round(self.score, 6)}


@dataclass(frozen=True)
class SearchResults:
    hits: list[SearchHit]
    offset: int
    limit: int
    has_more: bool


def _allowed_ids(store, query: SearchQuery) -> np.ndarray | None:
    if query.since is None and query.label is None:
        return None
    return np.array(sorted(store.search_entry_ids(since=query.since, label=query.label)),
                    dtype=np.int64)


def _by_meaning(store, query: SearchQuery, depth: int,
                embedder: Embedder | None) -> list[tuple[int, float]]:
    index = vector_index(store)
    if store.search_entry_count() > len(index):  # some entries still lack a vector
        model = embedder or default_embedder()
        embed_missing(store, model)
        index.refresh(store)
    if len(index) == 0:
        return []
    model = embedder or default_embedder()
    vector = model.encode([query.text])[0]
    return index.nearest(vector, limit=depth, min_similarity=MIN_SIMILARITY,
                         allowed=_allowed_ids(store, query))


def _rank(store, query: SearchQuery, match: str | None, depth: int,
          embedder: Embedder | None) -> tuple[list[tuple[int, float]], dict[int, tuple[str, ...]]]:
    """(entry id, score) best first, and which side found each."""
    by_text = (store.search_fulltext(match, since=query.since, label=query.label, limit=depth)
               if match and query.mode != "meaning" else [])
    by_meaning = (_by_meaning(store, query, depth, embedder)
                  if query.mode != "text" else [])
    text_ids = {i for i, _ in by_text}
    meaning_ids = {i for i, _ in by_meaning}
    found = {i: tuple(side for side, ids in (("text", text_ids), ("meaning", meaning_ids))
                      if i in ids) for i in text_ids | meaning_ids}
    if query.mode == "text":
        return [(i, -bm25) for i, bm25 in by_text], found  # bm25: lower is better
    if query.mode == "meaning":
        return by_meaning, found
    fused = reciprocal_rank_fusion([[i for i, _ in by_text], [i for i, _ in by_meaning]])
    return fused, found


def search(store, query: SearchQuery, *, embedder: Embedder | None = None) -> SearchResults:
    """One page of hits for a validated `query`. Meaning (and hybrid) search loads the
    embedding model on first use and raises ModelUnavailable when it cannot."""
    match = match_expression(query.text)
    depth = max(CANDIDATES, query.offset + query.limit + 1)
    ranked, found = _rank(store, query, match, depth, embedder)
    page = ranked[query.offset:query.offset + query.limit]
    ids = [i for i, _ in page]
    entries = store.search_entries_by_id(ids)
    highlighted = store.search_highlights(match, ids, OPEN_MARK, CLOSE_MARK) if match else {}
    hits = []
    for entry_id, score in page:
        entry = entries.get(entry_id)
        if entry is None:  # deleted since the vectors were loaded
            continue
        marks = parse_highlight(highlighted[entry_id], entry.text) \
            if entry_id in highlighted else []
        hits.append(SearchHit(entry, score, marks, found.get(entry_id, ())))
    return SearchResults(hits, query.offset, query.limit,
                         has_more=len(ranked) > query.offset + query.limit)

"""Search over everything seen: every description, timeline caption and summary, indexed when
it is stored, found by its words (SQLite FTS5, porter stemming, bm25), by its meaning (sentence
vectors, cosine) or by both fused by reciprocal rank.

    index_analysis(store, analysis_id, result)       # recording calls this
    search(store, SearchQuery("red van near the gate", since=parse_since("2d")).validate())
"""

from __future__ import annotations

from .fulltext import segments
from .indexing import embed_missing, index_analysis, index_text, texts_of_result
from .query import MODES, SearchHit, SearchQuery, SearchResults, parse_since, search

__all__ = ["MODES", "SearchHit", "SearchQuery", "SearchResults", "embed_missing",
           "index_analysis", "index_text", "parse_since", "search", "segments",
           "texts_of_result"]

"""Putting texts into the search index: the full-text row at once, the sentence vector with it
when the embedding model can be had (and later, by `embed_missing`, when it could not).

`index_analysis` is what recording an analysis calls; it never raises, so a broken index can
not lose an analysis. Its texts: the description (`kind="description"`), each timeline caption
(`kind="caption"`, with the chunk's `start`/`end` in seconds) and the timeline summary
(`kind="summary"`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from ..errors import ChroniconError
from .vectors import pack, unit_rows

log = logging.getLogger("chronicon.search")

KINDS = ("description", "caption", "summary")
EMBED_BATCH = 256


class Embedder(Protocol):
    """What the index needs of an embedding model: unit vectors, one row per text."""

    def encode(self, texts: list[str]) -> np.ndarray: ...


@dataclass(frozen=True)
class IndexedText:
    kind: str
    text: str
    start: float | None = None
    end: float | None = None


def default_embedder() -> Embedder:
    """The agent's sentence-embedding model (all-MiniLM-L6-v2, offline), loaded once per
    process and shared with the rules; raises ModelUnavailable when it cannot be loaded."""
    from ..agent.meaning import get_embedder

    return get_embedder()


def _seconds(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _timeline_chunks(result: dict[str, Any]) -> list[dict[str, Any]]:
    timeline = result.get("timeline")
    if isinstance(timeline, dict):  # {"chunks": [...], "summary": ...}
        timeline = timeline.get("chunks")
    return [c for c in timeline or [] if isinstance(c, dict)] if isinstance(timeline, list) else []


def texts_of_result(result: dict[str, Any]) -> list[IndexedText]:
    """What to index of a result JSON: its `analysis` text and, for a timeline (`timeline`: a
    list of `{"start", "end", "caption"}` chunks), each caption with its seconds; a timeline's
    `analysis` is its summary and is indexed as `kind="summary"`. Empty texts are skipped."""
    chunks = _timeline_chunks(result)
    texts = []
    for chunk in chunks:
        caption = str(chunk.get("caption") or "").strip()
        if caption:
            texts.append(IndexedText("caption", caption, _seconds(chunk.get("start")),
                                     _seconds(chunk.get("end"))))
    analysis = str(result.get("analysis") or "").strip()
    if analysis:
        texts.append(IndexedText("summary" if chunks else "description", analysis))
    timeline = result.get("timeline")
    summary = str(timeline.get("summary") or "").strip() if isinstance(timeline, dict) else ""
    if summary and summary != analysis:
        texts.append(IndexedText("summary", summary))
    return texts


def _embed_and_store(store, entries: list[tuple[int, str]], embedder: Embedder) -> None:
    vectors = unit_rows(embedder.encode([text for _, text in entries]))
    store.set_search_vectors((entry_id, pack(vector))
                             for (entry_id, _), vector in zip(entries, vectors, strict=True))


def _try_embed(store, entries: list[tuple[int, str]], embedder: Embedder | None) -> bool:
    """Embed now if possible; on failure the entries stay full-text only until
    `embed_missing` fills them in (the next search does)."""
    if not entries:
        return True
    try:
        _embed_and_store(store, entries, embedder or default_embedder())
    except ChroniconError as exc:
        log.warning("search: no sentence vectors for now (%s); full-text search still works",
                    exc.message)
        return False
    return True


def index_text(store, analysis_id: str, text: str, *, kind: str, start: float | None = None,
               end: float | None = None, embedder: Embedder | None = None) -> int | None:
    """Index one text of an analysis; returns the entry id (None for an empty text).
    Re-indexing the same analysis, kind and start replaces the earlier entry."""
    text = text.strip()
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    if not text:
        return None
    entry_id = store.add_search_entry(analysis_id, kind, text, start, end)
    _try_embed(store, [(entry_id, text)], embedder)
    return entry_id


def index_analysis(store, analysis_id: str, result: dict[str, Any], *,
                   embedder: Embedder | None = None, embed: bool = True) -> int:
    """Index every text of a stored analysis (see `texts_of_result`); returns how many.

    `embed=False` writes the full-text rows only and leaves the vectors to the next meaning
    search (`embed_missing`): a one-shot CLI run does not pay seconds to import the model.
    Never raises: a failure is logged and the analysis stays recorded, just not searchable."""
    try:
        texts = texts_of_result(result)
        ids = store.add_search_entries(analysis_id, [(t.kind, t.text, t.start, t.end)
                                                     for t in texts])
        entries = [(entry_id, t.text) for entry_id, t in zip(ids, texts, strict=True)]
        if embed:
            _try_embed(store, entries, embedder)
        return len(entries)
    except Exception:  # noqa: BLE001 - search must never lose an analysis
        log.exception("search: could not index analysis %s", analysis_id)
        return 0


def embed_missing(store, embedder: Embedder | None = None) -> int:
    """Give a vector to every entry that has none (backfilled by the migration, or indexed while
    the model was unavailable); returns how many. Raises ModelUnavailable."""
    done = 0
    model: Embedder | None = embedder
    while batch := store.unembedded_search_entries(EMBED_BATCH):
        model = model or default_embedder()
        _embed_and_store(store, batch, model)
        done += len(batch)
    return done

"""A real store with real analyses, indexed by the real FTS5 and the real embedding model."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from chronicon.search import index_analysis
from chronicon.store import Store


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    opened = Store(tmp_path / "data" / "chronicon.db")
    try:
        yield opened
    finally:
        opened.close()


AddAnalysis = Callable[..., str]


@pytest.fixture
def add_analysis(store: Store) -> AddAnalysis:
    """Insert an analysis row the way recording does, then index it; returns its id."""

    def add(text: str, *, video: str = "clip.mp4", label: str | None = None,
            created_at: str | None = None, timeline: list[dict[str, Any]] | None = None,
            embed: bool = True) -> str:
        analysis_id = uuid.uuid4().hex
        result: dict[str, Any] = {"analysis": text, "video_path": f"/videos/{video}"}
        if timeline is not None:
            result["timeline"] = timeline
        store.insert_analysis(analysis_id, result, video_path=result["video_path"],
                              video_filename=video)
        if label is not None:
            # An analysis' label is its stored decision's (decisions.run_id).
            store.insert_decision(created_at=datetime.now(timezone.utc), run_id=analysis_id,
                                  video_filename=None, label=label, score=1.0, reason="",
                                  rule=None, action="log", analysis="", matches=[])
        if created_at is not None:
            store.execute("UPDATE analyses SET created_at = ? WHERE id = ?",
                          (created_at, analysis_id))
        index_analysis(store, analysis_id, result, embed=embed)
        return analysis_id

    return add

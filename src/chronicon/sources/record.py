"""Keep a finished analysis (plain or timeline) in the history and let the agent act on it.

`record` saves the result JSON, the frames and the `analyses` row through
`history.record_analysis`. `act` runs the agent once per description: the analysis text, or
every timeline caption with its time range (so a rule that fires on the chunk at 03:20 says so).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from ..agent.verify import Verifier
from ..analysis import AnalysisResult
from ..ask import stored_frames
from ..config import Settings
from ..history import record_analysis
from ..store import Store

log = logging.getLogger(__name__)


def record(store: Store, settings: Settings, result: AnalysisResult, *,
           job_id: str | None = None, source: str | None = None,
           extra: dict[str, Any] | None = None) -> str:
    """Save `result` (+ `extra` merged into its JSON) in the history; the analysis id."""
    return record_analysis(store, settings, result, job_id=job_id, source=source, extra=extra)


def act(store: Store, settings: Settings, analysis_id: str, outbox: Any = None,
        backend: Any = None) -> dict[str, Any]:
    """Run the agent on the recorded analysis; store and return its answer. A timeline gets one
    decision per chunk; the answer is the strongest chunk's, with `chunks` listing them all.
    `backend` (the model that described it, already loaded) answers the `verify` questions of
    rules that fire, on the frames of the description they fired on; without it such firings
    stand unverified."""
    from ..agent.act import decide_and_act
    from ..agent.rules import load_current_rules

    record_ = store.get_analysis(analysis_id)
    if record_ is None:
        raise KeyError(analysis_id)
    data = record_.result
    rules = load_current_rules(settings)
    frames = _frame_positions(record_.frames_dir)
    frames_id = Path(record_.frames_dir).name if record_.frames_dir else None
    name = record_.video_filename or ""
    images: list[Any] = []  # the stored frames, read on the first verification only

    def frames_at(positions: list[int]) -> list[Any]:
        if not images:
            images.extend(stored_frames(record_))
        by_position = dict(zip(frames, images, strict=False))
        return [by_position[p] for p in positions if p in by_position]

    def decide(text: str, positions: list[int], **span: float) -> dict[str, Any]:
        # Emails read the frames by analysis when they are sent (no copies in the outbox).
        verifier = (Verifier.for_backend(backend, lambda: frames_at(positions))
                    if backend is not None else None)
        answer = decide_and_act(text, analysis_id, name, settings=settings, store=store,
                                rules=rules, frames_id=frames_id, frame_positions=positions,
                                wait=False, outbox=outbox, verifier=verifier, **span)
        return {**answer.to_dict(), **span}

    timeline = data.get("timeline")
    if not timeline:
        outcome = decide(str(data.get("analysis", "")), frames)
    else:
        chunks, offset = [], 0
        for entry in timeline:  # a chunk's frames follow the previous chunk's
            count = len(entry.get("frames", []))
            positions, offset = frames[offset:offset + count], offset + count
            chunks.append(decide(entry["caption"], positions, start=entry["start"],
                                 end=entry["end"]))
        strongest = max(chunks, key=lambda c: c["decision"]["score"])
        outcome = {**strongest, "chunks": [_chunk_summary(c) for c in chunks]}
    # The decisions are stored (run_id = analysis id); the history shows the strongest.
    return outcome


def _chunk_summary(answer: dict[str, Any]) -> dict[str, Any]:
    return {"start": answer.get("start"), "end": answer.get("end"),
            "decision": answer.get("decision"), "action": answer.get("action"),
            "decision_id": answer.get("decision_id")}


def _frame_positions(frames_dir: str | None) -> list[int]:
    if not frames_dir:
        return []
    directory = Path(frames_dir)
    listing = directory / "frames.json"
    if listing.is_file():
        return [e["position"] for e in json.loads(listing.read_text())]
    return sorted(int(p.stem) for p in directory.glob("*.jpg") if p.stem.isdigit())

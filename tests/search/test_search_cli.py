"""`chronicon search` end to end through the CLI, on a real data directory."""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timezone
from pathlib import Path

from typer.testing import CliRunner

from chronicon.cli import app
from chronicon.config import Settings
from chronicon.search import index_analysis
from chronicon.store import Store

runner = CliRunner()


def _add(store: Store, text: str, video: str, label: str | None = None) -> str:
    analysis_id = uuid.uuid4().hex
    result = {"analysis": text, "video_path": f"/v/{video}"}
    store.insert_analysis(analysis_id, result, video_path=result["video_path"],
                          video_filename=video)
    if label:
        # An analysis' label is its stored decision's (decisions.run_id).
        store.insert_decision(created_at=datetime.now(timezone.utc), run_id=analysis_id,
                              video_filename=None, label=label, score=1.0, reason="",
                              rule=None, action="log", analysis="", matches=[])
    # As `chronicon analyze` records: full text now, vectors left to the next search.
    index_analysis(store, analysis_id, result, embed=False)
    return analysis_id


def test_search_json_prints_the_documented_shape(tmp_path: Path) -> None:
    store = Store(Settings(data_dir=tmp_path / "data").db_path)
    try:
        van = _add(store, "A red van is parked near the gate.", "gate.mp4", label="vehicle")
        _add(store, "A freight train passes the station.", "station.mp4", label="train")
        _add(store, "A bus passes the stop.", "stop.mp4")
    finally:
        store.close()
    result = runner.invoke(app, ["search", "red van near the gate", "--json"])
    assert result.exit_code == 0, result.output
    hits = json.loads(result.stdout)["hits"]
    assert hits[0] == {"analysis_id": van, "video": "gate.mp4",
                       "text": "A red van is parked near the gate.", "start": None,
                       "end": None, "score": hits[0]["score"]}
    assert isinstance(hits[0]["score"], float)
    labelled = runner.invoke(app, ["search", "passes", "--label", "train", "--json",
                                   "--since", "1d"])
    assert [h["video"] for h in json.loads(labelled.stdout)["hits"]] == ["station.mp4"]


def test_search_prints_hits_and_rejects_bad_flags(tmp_path: Path) -> None:
    store = Store(Settings(data_dir=tmp_path / "data").db_path)
    try:
        _add(store, "Markup [bold]stays[/bold] text near the gate.", "g.mp4")
    finally:
        store.close()
    result = runner.invoke(app, ["search", "gate", "--mode", "text"])
    assert result.exit_code == 0
    assert "[bold]stays[/bold]" in result.stdout and "g.mp4" in result.stdout
    bad = runner.invoke(app, ["search", "gate", "--since", "soon"])
    assert bad.exit_code == 2 and "since" in bad.output
    assert runner.invoke(app, ["search", "gate", "--limit", "0"]).exit_code == 2

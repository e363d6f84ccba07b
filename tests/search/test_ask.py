"""Questions about an analysis: planned from its stored frames or timeline, answered by the tiny
SmolVLM (random weights: the text is noise, but it must be stored and printed)."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from typer.testing import CliRunner

from chronicon.ask import named_moment, plan_answer
from chronicon.cli import app
from chronicon.config import Settings
from chronicon.store import Store
from chronicon.video.frames import Frame, save_frames

runner = CliRunner()

TIMELINE = [
    {"start": 0.0, "end": 30.0, "caption": "An empty street.", "frames": [{}, {}]},
    {"start": 30.0, "end": 60.0, "caption": "A cyclist passes.", "frames": [{}, {}]},
    {"start": 60.0, "end": 75.0, "caption": "A bus stops.", "frames": [{}, {}]},
]


def add_analysis(store: Store, settings: Settings, n_frames: int = 2,
                 timeline: list[dict[str, Any]] | None = None) -> str:
    analysis_id = uuid.uuid4().hex
    frames = [Frame(i * 10, i * 1.5, Image.new("RGB", (64, 48), (40 * i, 90, 160)))
              for i in range(n_frames)]
    frames_dir = settings.frames_dir / analysis_id
    save_frames(frames, frames_dir)
    result: dict[str, Any] = {"analysis": "A street.", "video_path": "/v/street.mp4"}
    if timeline is not None:
        result["timeline"] = timeline
    store.insert_analysis(analysis_id, result, video_path="/v/street.mp4",
                          video_filename="street.mp4", frames_dir=str(frames_dir))
    return analysis_id


@pytest.fixture
def data(tmp_path: Path) -> tuple[Store, Settings]:
    settings = Settings(data_dir=tmp_path / "data")
    store = Store(settings.db_path)
    yield store, settings
    store.close()


def test_named_moment() -> None:
    assert named_moment("What happens at 00:45?", TIMELINE) == 1
    assert named_moment("who is there at 1:05", TIMELINE) == 2
    assert named_moment("In chunk 1, is it raining?", TIMELINE) == 0
    assert named_moment("part 9: anything?", TIMELINE) is None
    assert named_moment("at 05:00?", TIMELINE) is None
    assert named_moment("Was anyone wearing a helmet?", TIMELINE) is None


def test_plans_use_frames_the_named_chunk_or_all_captions(data) -> None:
    store, settings = data
    plain = store.get_analysis(add_analysis(store, settings, n_frames=3))
    plan = plan_answer(plain, "Is it day?")
    assert (len(plan.frames), plan.basis) == (3, "frames")
    assert [f.timestamp for f in plan.frames] == [0.0, 1.5, 3.0]
    timeline = store.get_analysis(add_analysis(store, settings, n_frames=6, timeline=TIMELINE))
    chunk = plan_answer(timeline, "What passes at 00:40?")
    assert chunk.basis == "chunk 2 (00:30-01:00)"
    assert [f.index for f in chunk.frames] == [20, 30]
    assert "A cyclist passes." in chunk.prompt
    everything = plan_answer(timeline, "Does a bus come?")
    assert everything.frames == [] and everything.basis == "captions"
    assert "[01:00-01:15] A bus stops." in everything.prompt


@pytest.mark.slow
def test_cli_ask_answers_stores_and_prints_json(data, tiny_model_dir: Path) -> None:
    store, settings = data
    analysis_id = add_analysis(store, settings)
    result = runner.invoke(app, ["ask", analysis_id, "Was anyone wearing a helmet?", "--json",
                                 "-m", str(tiny_model_dir), "--device", "cpu", "-t", "6"])
    assert result.exit_code == 0, result.output
    printed = json.loads(result.stdout)
    assert printed["analysis_id"] == analysis_id
    assert printed["question"] == "Was anyone wearing a helmet?"
    [stored] = store.list_questions(analysis_id)
    assert (stored.state, stored.question, stored.answer) == (
        "answered", printed["question"], printed["answer"])
    assert stored.model and stored.answered_at


@pytest.mark.slow
def test_a_timeline_question_naming_no_moment_is_answered_from_the_captions(
        data, tiny_model_dir: Path) -> None:
    store, settings = data
    analysis_id = add_analysis(store, settings, n_frames=6, timeline=TIMELINE)
    result = runner.invoke(app, ["ask", analysis_id, "Does a bus come?", "--json",
                                 "-m", str(tiny_model_dir), "--device", "cpu", "-t", "4"])
    assert result.exit_code == 0, result.output
    [stored] = store.list_questions(analysis_id)
    assert stored.state == "answered"
    assert stored.answer == json.loads(result.stdout)["answer"]


def test_cli_ask_rejects_unknown_analyses_and_empty_questions(data) -> None:
    store, settings = data
    missing = runner.invoke(app, ["ask", "nope", "Anyone there?"])
    assert missing.exit_code == 2 and "no analysis with id nope" in missing.output
    analysis_id = add_analysis(store, settings)
    empty = runner.invoke(app, ["ask", analysis_id, "   "])
    assert empty.exit_code == 2 and "question" in empty.output
    assert store.list_questions(analysis_id) == []

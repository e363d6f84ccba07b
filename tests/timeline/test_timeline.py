"""Long videos as a timeline: chunk planning, scene snapping, the real model on every chunk,
the summary, the result JSON, and WebVTT/SRT that parse back."""

from __future__ import annotations

import json
from pathlib import Path

import pysubs2
import pytest
from typer.testing import CliRunner

from chronicon.analysis import AnalysisOptions
from chronicon.cli import app
from chronicon.config import Settings
from chronicon.errors import BadParameter
from chronicon.events import ChunkProgress
from chronicon.store import Store
from chronicon.timeline import (
    MAX_CHUNKS,
    Chunk,
    TimelineOptions,
    chunk_length,
    describe_timeline,
    plan_chunks,
    to_srt,
    to_vtt,
)
from chronicon.vlm.backend import create_backend
from support.scene_clips import THREE_MINUTE_CUTS_S as CUTS_S

DURATION_S = 180

MISSION_FIELDS = ("video_path", "prompt", "num_frames", "resize", "max_tokens", "analysis",
                  "timestamp", "model", "device", "quantized", "timing")


def test_chunk_length_grows_so_two_hours_give_at_most_120_chunks() -> None:
    assert chunk_length(600) == 30
    assert chunk_length(3600) == 30
    two_hours = chunk_length(7200)
    assert two_hours == 60 and len(plan_chunks(7200, two_hours)) <= MAX_CHUNKS
    assert len(plan_chunks(10 * 3600 + 7, chunk_length(10 * 3600 + 7))) <= MAX_CHUNKS
    assert chunk_length(7200, requested=10) == 10  # an explicit length is kept


def test_boundaries_snap_to_cuts_within_twenty_percent() -> None:
    chunks = plan_chunks(120, 30, cuts=[5.0, 33.0, 52.0, 91.0])
    # 33 is 3 s from 30 (<= 6 s): snapped; 52 is 8 s from 60: not; 91 snaps 90; 5 is no boundary.
    assert [(c.start, c.end) for c in chunks] == [(0, 33), (33, 60), (60, 91), (91, 120)]


def test_a_short_tail_joins_the_chunk_before_it() -> None:
    assert plan_chunks(62, 30) == [Chunk(0, 30), Chunk(30, 62)]
    assert plan_chunks(10, 30) == [Chunk(0, 10)]


def test_bad_timeline_options_name_the_flag() -> None:
    with pytest.raises(BadParameter, match="chunk"):
        TimelineOptions(chunk_s=0.1).validate()
    with pytest.raises(BadParameter, match="frames_per_chunk"):
        TimelineOptions(frames_per_chunk=17).validate()


@pytest.fixture(scope="module")
def described(long_clip: Path, tiny_model_dir: Path):
    backend = create_backend(Settings(model=str(tiny_model_dir), device="cpu"))
    events: list = []
    result = describe_timeline(long_clip, AnalysisOptions(max_tokens=6, min_tokens=2),
                               TimelineOptions(), backend, on_event=events.append)
    return result, events


def test_chunks_snap_to_the_known_cuts(described) -> None:
    result, _ = described
    assert [round(c, 1) for c in result.cuts] == [float(c) for c in CUTS_S]
    bounds = [(e.chunk.start, e.chunk.end) for e in result.entries]
    assert [(round(a, 1), round(b, 1)) for a, b in bounds] == [
        (0, 28), (28, 65), (65, 95), (95, 120), (120, 150), (150, DURATION_S)]


def test_every_chunk_has_its_own_frames_and_a_caption(described) -> None:
    result, _ = described
    for entry in result.entries:
        assert len(entry.frames) == 4 and entry.caption
        assert all(entry.chunk.start <= f.timestamp < entry.chunk.end for f in entry.frames)
    assert result.result.analysis  # the summary, written by the same model
    assert result.summary_stats.generated_tokens >= 2
    assert result.summary_input == "text"  # a text-only prompt, no frames


def test_progress_says_chunk_k_of_n_with_an_eta(described) -> None:
    _, events = described
    progress = [e for e in events if isinstance(e, ChunkProgress)]
    assert [e.chunk for e in progress] == [1, 2, 3, 4, 5, 6, 6]
    # The tiny backend batches (CHRONICON_MAX_BATCH=4): chunks 1-4 start together, before any
    # chunk has been timed; 5 and 6 start with an estimate from the first four.
    assert all(e.eta_s is None for e in progress[:4])
    assert all(e.eta_s is not None and e.eta_s > 0 for e in progress[4:6])
    assert progress[-1].done and progress[-1].eta_s == 0


def test_chunks_described_together_read_as_when_described_one_by_one(
        described, long_clip: Path, tiny_model_dir: Path) -> None:
    batched, _ = described
    backend = create_backend(Settings(model=str(tiny_model_dir), device="cpu", max_batch=1))
    one_by_one = describe_timeline(long_clip, AnalysisOptions(max_tokens=6, min_tokens=2),
                                   TimelineOptions(), backend)
    assert [e.caption for e in one_by_one.entries] == [e.caption for e in batched.entries]
    assert [e.stats.generated_tokens for e in one_by_one.entries] == [
        e.stats.generated_tokens for e in batched.entries]


def test_result_json_keeps_every_field_and_adds_the_timeline(described) -> None:
    result, _ = described
    data = json.loads(json.dumps(result.to_dict()))
    assert all(name in data for name in MISSION_FIELDS)
    assert data["analysis"] == result.result.analysis
    assert data["num_frames"] == 24
    assert {"decode", "summary", "model_load_time", "inference_time", "total_time"} <= set(
        data["timing"])
    first = data["timeline"][0]
    assert set(first) >= {"start", "end", "caption", "frames", "timing"}
    assert set(first["frames"][0]) == {"index", "timestamp"}
    assert set(first["timing"]) >= {"decode", "generate", "total"}


def test_vtt_and_srt_parse_back_with_the_right_cues(described) -> None:
    result, _ = described
    timeline = result.to_dict()["timeline"]
    for text, fmt in ((to_vtt(timeline), "vtt"), (to_srt(timeline), "srt")):
        parsed = pysubs2.SSAFile.from_string(text, format_=fmt)
        assert [(e.start, e.end) for e in parsed] == [
            (round(t["start"] * 1000), round(t["end"] * 1000)) for t in timeline]
        assert [e.plaintext for e in parsed] == [" ".join(t["caption"].split()) or "…"
                                                 for t in timeline]
    assert to_vtt(timeline).startswith("WEBVTT")


def test_analyze_timeline_cli_saves_records_and_exports(long_clip: Path, tiny_model_dir: Path,
                                                        tmp_path: Path) -> None:
    vtt, srt = tmp_path / "out" / "t.vtt", tmp_path / "out" / "t.srt"
    result = CliRunner().invoke(app, [
        "analyze", str(long_clip), "--timeline", "--chunk", "60", "--frames-per-chunk", "2",
        "-m", str(tiny_model_dir), "-t", "4", "--min-tokens", "1", "--json",
        "--vtt", str(vtt), "--srt", str(srt)])
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    assert len(data["timeline"]) == 3 and data["timeline_options"]["chunk"] == 60
    assert all(len(t["frames"]) == 2 for t in data["timeline"])
    assert len(pysubs2.load(str(vtt))) == 3 and len(pysubs2.load(str(srt))) == 3
    store = Store(Settings().db_path)
    try:
        [row] = store.list_analyses()
    finally:
        store.close()
    assert row.result["timeline"] == data["timeline"]
    assert len(list(Path(row.frames_dir).glob("*.jpg"))) == 6


def test_a_bad_chunk_length_exits_2(long_clip: Path, tiny_model_dir: Path) -> None:
    result = CliRunner().invoke(app, ["analyze", str(long_clip), "--timeline", "--chunk", "0",
                                      "-m", str(tiny_model_dir)])
    assert result.exit_code == 2 and "chunk" in result.stderr

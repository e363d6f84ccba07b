"""analyze(): probe → sample → load → preprocess → generate on a real clip and a tiny real model."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from chronicon import __version__
from chronicon.analysis import (
    DEFAULT_PROMPT,
    AnalysisOptions,
    AnalysisResult,
    analyze,
    result_filename,
    save_result,
)
from chronicon.errors import BadParameter, NotAVideo, VideoNotFound
from chronicon.events import Event, FrameSampled, Stage, StageFinished, StageStarted, TokenGenerated
from chronicon.options import CLI_LIMITS, WEB_LIMITS, parse_options
from chronicon.video.probe import probe
from chronicon.vlm.transformers.backend import LocalBackend
from support.media import write_video

MISSION_FIELDS = ["video_path", "prompt", "num_frames", "resize", "max_tokens", "analysis",
                  "timestamp", "model", "device", "quantized", "timing"]


@pytest.fixture(scope="module")
def backend(tiny_model_dir: Path) -> Iterator[LocalBackend]:
    yield LocalBackend(model=str(tiny_model_dir), device="cpu")


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_video(tmp_path_factory.mktemp("clips") / "street.mp4", n_frames=90, fps=30)


@pytest.fixture(scope="module")
def run(backend: LocalBackend, clip: Path) -> tuple[AnalysisResult, list[Event]]:
    events: list[Event] = []
    options = AnalysisOptions(frames=4, max_tokens=12, min_tokens=12)
    return analyze(clip, options, backend, on_event=events.append), events


def test_stages_run_in_order_with_every_frame_and_token(run: tuple[AnalysisResult, list[Event]]
                                                        ) -> None:
    result, events = run
    stages = [(type(e).__name__, e.stage) for e in events
              if isinstance(e, StageStarted | StageFinished)]
    order = [Stage.PROBE, Stage.SAMPLING, Stage.MODEL_LOAD, Stage.PREPROCESS, Stage.GENERATE]
    assert stages == [(kind, s) for s in order for kind in ("StageStarted", "StageFinished")]
    sampled = [e for e in events if isinstance(e, FrameSampled)]
    assert [(e.position, e.total, e.index) for e in sampled] == [
        (k + 1, 4, f.index) for k, f in enumerate(result.frames)]
    pieces = [e.text for e in events if isinstance(e, TokenGenerated)]
    assert pieces and "".join(pieces).strip() == result.analysis
    first_token = next(i for i, e in enumerate(events) if isinstance(e, TokenGenerated))
    generate_started = next(i for i, e in enumerate(events)
                            if isinstance(e, StageStarted) and e.stage == Stage.GENERATE)
    assert generate_started < first_token


def test_result_json_has_every_field_with_the_right_type(
        run: tuple[AnalysisResult, list[Event]], clip: Path) -> None:
    result, _ = run
    data = json.loads(json.dumps(result.to_dict()))  # serialisable as is
    assert list(data)[:len(MISSION_FIELDS)] == MISSION_FIELDS
    assert data["video_path"] == str(clip)
    assert data["prompt"] == DEFAULT_PROMPT
    assert data["num_frames"] == 4 and data["frames_requested"] == 4
    assert data["resize"] == 336 and data["max_tokens"] == 12 and data["min_tokens"] == 12
    assert isinstance(data["analysis"], str) and data["analysis"] == result.analysis
    assert data["timestamp"].endswith("+00:00") and "T" in data["timestamp"]
    assert data["model"] == str(Path(result.backend.model_id))
    assert data["device"] == "cpu" and data["quantized"] is False
    timing = data["timing"]
    for key in ("model_load_time", "inference_time", "total_time", "probe", "sampling",
                "preprocess", "time_to_first_token", "generate"):
        assert isinstance(timing[key], float) and timing[key] >= 0, key
    assert timing["model_load_time"] > 0  # first analysis on this backend loaded the model
    assert timing["inference_time"] == pytest.approx(timing["preprocess"] + timing["generate"],
                                                     abs=1e-3)
    assert timing["total_time"] >= timing["model_load_time"] + timing["inference_time"] - 1e-3
    assert data["sampling"] == "uniform"
    assert data["frames"] == [{"index": f.index, "timestamp": round(f.timestamp, 3)}
                              for f in result.frames]
    assert [f["index"] for f in data["frames"]] == [11, 33, 56, 78]
    assert data["dtype"] in ("bfloat16", "float32")
    assert data["quantization"]["used"] == "none" and "CUDA" in data["quantization"]["reason"]
    assert data["compiled"] is False
    assert data["tokens"]["generated"] == 12 and data["tokens"]["prompt"] > 4 * 4
    assert isinstance(data["tokens_per_second"], float) and data["tokens_per_second"] > 0
    assert data["chronicon_version"] == __version__
    assert data["video"]["fps"] == 30.0 and data["video"]["frame_count"] == 90


def test_a_warm_backend_does_not_reload(run: tuple[AnalysisResult, list[Event]],
                                        backend: LocalBackend, clip: Path) -> None:
    result = analyze(clip, AnalysisOptions(frames=2, max_tokens=3, min_tokens=3), backend)
    assert result.to_dict()["timing"]["model_load_time"] == 0.0


def test_a_clip_shorter_than_the_frame_count(backend: LocalBackend, tmp_path: Path) -> None:
    short = write_video(tmp_path / "short.mp4", n_frames=3, fps=30)
    data = analyze(short, AnalysisOptions(frames=8, max_tokens=2, min_tokens=2),
                   backend).to_dict()
    assert (data["num_frames"], data["frames_requested"]) == (3, 8)


@pytest.mark.parametrize(("fields", "field"), [
    ({"frames": 0}, "frames"),
    ({"frames": 17}, "frames"),
    ({"resize": 8}, "resize"),
    ({"sampling": "random"}, "sampling"),
    ({"prompt": "  "}, "prompt"),
    ({"prompt": "x" * 5000}, "prompt"),
    ({"max_tokens": 0, "min_tokens": 0}, "max_tokens"),
    ({"max_tokens": 10, "min_tokens": 20}, "min_tokens"),
    ({"min_tokens": -1}, "min_tokens"),
    ({"frames": True}, "frames"),
])
def test_options_are_valid_by_construction(fields: dict, field: str) -> None:
    """An AnalysisOptions that exists is valid, so analyze() trusts it (nothing to load)."""
    with pytest.raises(BadParameter) as info:
        AnalysisOptions(**fields)
    assert info.value.name == field


def test_the_web_profile_is_narrower_and_checked_by_the_same_code() -> None:
    options = AnalysisOptions(max_tokens=100, min_tokens=50)
    assert options.validate(CLI_LIMITS) is options
    with pytest.raises(BadParameter) as info:
        options.validate(WEB_LIMITS)
    assert info.value.name == "max_tokens" and "250 to 500" in info.value.message
    parsed = parse_options({"frames": "4", "sampling": "Motion ", "model": ""}, WEB_LIMITS)
    assert parsed == AnalysisOptions(frames=4, max_tokens=250, min_tokens=50, sampling="motion")
    assert AnalysisOptions.from_dict({**parsed.to_dict(), "future": 1}) == parsed
    with pytest.raises(BadParameter) as info:
        parse_options({"model": "2.2b"}, WEB_LIMITS, allowed_models=["256m"])
    assert info.value.name == "model"


def test_a_given_probe_is_not_taken_again(backend: LocalBackend, clip: Path) -> None:
    """The web probes at upload; the job passes that probe on instead of probing again."""
    info = probe(clip)
    events: list[Event] = []
    result = analyze(clip, AnalysisOptions(frames=2, max_tokens=2, min_tokens=2), backend,
                     on_event=events.append, info=info)
    assert result.video is info  # probe() would have returned a new VideoInfo
    assert [e.stage for e in events if isinstance(e, StageFinished)][0] == Stage.PROBE


def test_bad_videos_fail_before_the_model_loads(tiny_model_dir: Path, tmp_path: Path) -> None:
    fresh = LocalBackend(model=str(tiny_model_dir), device="cpu")
    with pytest.raises(VideoNotFound):
        analyze(tmp_path / "missing.mp4", AnalysisOptions(), fresh)
    text = tmp_path / "notes.mp4"
    text.write_text("not a video at all")
    with pytest.raises(NotAVideo):
        analyze(text, AnalysisOptions(), fresh)
    assert not fresh.loaded


def test_saved_results_never_overwrite_each_other(run: tuple[AnalysisResult, list[Event]],
                                                  tmp_path: Path) -> None:
    result, _ = run
    first = save_result(result, tmp_path / "results")
    second = save_result(result, tmp_path / "results")
    assert first.name == result_filename(result) and first.name.endswith("_street.json")
    assert second.name == first.name.replace(".json", "-2.json")
    assert json.loads(first.read_text()) == json.loads(second.read_text()) == result.to_dict()


def test_sampled_frames_reach_on_frames_before_the_first_token(backend: LocalBackend,
                                                               clip: Path) -> None:
    """The web page shows the thumbnails while the text is written: frames come first."""
    timeline: list[object] = []
    result = analyze(clip, AnalysisOptions(frames=3, max_tokens=5, min_tokens=5), backend,
                     on_event=timeline.append,
                     on_frames=lambda frames: timeline.append([f.index for f in frames]))
    handed = [item for item in timeline if isinstance(item, list)]
    assert handed == [[f.index for f in result.frames]]
    first_token = next(i for i, e in enumerate(timeline) if isinstance(e, TokenGenerated))
    assert timeline.index(handed[0]) < first_token
    assert "".join(e.text for e in timeline if isinstance(e, TokenGenerated)).strip() == (
        result.analysis)

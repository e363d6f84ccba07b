"""`chronicon analyze` end to end through the real command, model and video."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from chronicon.cli import app
from chronicon.config import Settings
from chronicon.store import Store
from support.media import write_video

runner = CliRunner()


@pytest.fixture(autouse=True)
def _unwrapped_stderr(monkeypatch: pytest.MonkeyPatch) -> None:
    """Errors are one logical line; rich would hard-wrap them at 80 columns when stderr is not a
    terminal (as here), which is the shared console's rendering, not the message."""
    from chronicon.cli import common

    monkeypatch.setattr(common.err, "soft_wrap", True)


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_video(tmp_path_factory.mktemp("clips") / "clip.mp4", n_frames=60, fps=30)


def analyze(*args: str):
    return runner.invoke(app, ["analyze", *args])


def results_dir(tmp_path: Path) -> Path:
    return tmp_path / "data" / "results"  # CHRONICON_DATA_DIR is tmp_path/data (conftest)


def one_line_error(result) -> str:
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    return lines[0]


def test_json_prints_the_complete_result_and_saves_it(clip: Path, tiny_model_dir: Path,
                                                      tmp_path: Path) -> None:
    result = analyze(str(clip), "-f", "4", "-m", str(tiny_model_dir), "--json",
                     "-t", "8", "--min-tokens", "8")
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["num_frames"] == 4 and data["tokens"]["generated"] == 8
    assert data["model"] == str(tiny_model_dir.resolve())
    saved = list(results_dir(tmp_path).glob("*_clip.json"))
    assert len(saved) == 1 and json.loads(saved[0].read_text()) == data
    assert f"saved: {saved[0]}" in result.stderr
    # ... and it joins the history the web app lists, with its thumbnails.
    store = Store(Settings().db_path)
    [record] = store.list_analyses()
    store.close()
    assert record.result == data and record.result_path == str(saved[0])
    assert record.video_filename == "clip.mp4"
    assert sorted(p.name for p in Path(record.frames_dir).glob("*.jpg")) == [
        "0.jpg", "1.jpg", "2.jpg", "3.jpg"]


def test_text_mode_streams_the_description_to_stdout(clip: Path, tiny_model_dir: Path,
                                                     tmp_path: Path) -> None:
    result = analyze(str(clip), "--frames", "2", "--model", str(tiny_model_dir),
                     "--max-tokens", "10", "--output", str(tmp_path / "out" / "r.json"), "-v")
    assert result.exit_code == 0, result.stderr
    data = json.loads((tmp_path / "out" / "r.json").read_text())
    assert result.stdout.strip() == data["analysis"]
    assert data["min_tokens"] == 10  # the default 50 is lowered to --max-tokens
    assert "generate: " in result.stderr  # -v prints stage timings
    assert not results_dir(tmp_path).exists()  # --output replaces the default location


def test_no_save_writes_nothing(clip: Path, tiny_model_dir: Path, tmp_path: Path) -> None:
    before = sorted(p for p in tmp_path.rglob("*"))
    result = analyze(str(clip), "-f", "1", "-m", str(tiny_model_dir), "-t", "3", "--no-save",
                     "--json")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["num_frames"] == 1
    assert sorted(p for p in tmp_path.rglob("*")) == before
    assert "saved:" not in result.stderr


@pytest.mark.parametrize(("args", "needle"), [
    (["-f", "0"], "frames"),
    (["-f", "17"], "frames"),
    (["-r", "8"], "resize"),
    (["-t", "0"], "max_tokens"),
    (["-t", "20", "--min-tokens", "60"], "min_tokens"),
    (["--min-tokens", "-1"], "min_tokens"),
    (["--sampling", "random"], "sampling"),
    (["-p", " "], "prompt"),
    (["--device", "tpu"], "device"),
    (["--device", "cuda"], "CUDA"),
    (["-m", "./no/such/model"], "model"),
])
def test_bad_flags_exit_2_with_one_line(args: list[str], needle: str, clip: Path,
                                        tiny_model_dir: Path) -> None:
    model = [] if "-m" in args else ["-m", str(tiny_model_dir)]
    result = analyze(str(clip), *model, *args)
    assert result.exit_code == 2, result.stderr
    assert needle in one_line_error(result)
    assert result.stdout == ""


def test_a_flag_that_is_not_a_number_exits_2(clip: Path) -> None:
    result = analyze(str(clip), "-f", "many")
    assert result.exit_code == 2
    assert "--frames" in result.stderr or "-f" in result.stderr


def test_bad_videos_exit_2_with_one_line(tiny_model_dir: Path, tmp_path: Path) -> None:
    result = analyze(str(tmp_path / "missing.mp4"), "-m", str(tiny_model_dir))
    assert result.exit_code == 2 and "missing.mp4" in one_line_error(result)
    text = tmp_path / "notes.mp4"
    text.write_text("hello")
    result = analyze(str(text), "-m", str(tiny_model_dir))
    assert result.exit_code == 2
    one_line_error(result)


@pytest.mark.parametrize("model", ["nobody/no-such-vlm", "256m"])
def test_an_uncached_model_offline_exits_3_with_the_fix(model: str, clip: Path) -> None:
    result = analyze(str(clip), "-m", model, "-f", "1")
    assert result.exit_code == 3, result.stderr
    line = one_line_error(result)
    hub_id = "HuggingFaceTB/SmolVLM2-256M-Video-Instruct" if model == "256m" else model
    assert hub_id in line and f"hf download {hub_id}" in line and "--model PATH" in line
    assert "offline" in line

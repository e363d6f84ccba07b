"""`chronicon probe` and `chronicon frames`, run end to end through the real Typer app."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image
from typer.testing import CliRunner

from chronicon.cli import app
from chronicon.errors import EXIT_BAD_INPUT
from support.media import scene_frame, write_video

SIZE = (160, 120)
CUTS = [23, 61, 97]


@pytest.fixture
def clip(tmp_path: Path) -> Path:
    return write_video(tmp_path / "scenes.mp4", n_frames=120, size=SIZE,
                       frame_fn=lambda i: scene_frame(i, CUTS, SIZE))


def run(*args: str):
    return CliRunner().invoke(app, list(args))


def test_probe_prints_facts(clip: Path) -> None:
    result = run("probe", str(clip))
    assert result.exit_code == 0, result.output
    assert "h264" in result.stdout and "160x120" in result.stdout
    assert "120 (from header)" in result.stdout


def test_probe_json(clip: Path) -> None:
    result = run("probe", str(clip), "--json")
    assert result.exit_code == 0
    data = json.loads(result.stdout)
    assert (data["frame_count"], data["width"], data["display_height"]) == (120, 160, 120)
    assert data["duration"] == pytest.approx(4.0)


def test_frames_writes_jpegs_sheet_and_json(clip: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = run("frames", str(clip), "-f", "4", "--sampling", "scene", "-r", "96",
                 "--out", str(out), "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report == json.loads((out / "frames.json").read_text())
    assert [f["index"] for f in report["frames"]] == [11, 41, 78, 108]
    assert report["sampling"] == "scene" and report["resize"] == 96
    for item in report["frames"]:
        with Image.open(out / item["file"]) as image:
            assert image.format == "JPEG" and max(image.size) == 96
        assert item["timestamp"] == pytest.approx(item["index"] / 30, abs=1e-3)
    with Image.open(out / "contact_sheet.png") as sheet:
        assert sheet.format == "PNG"
        assert sheet.width > 2 * 96 and sheet.height > 2 * 72  # a 2x2 grid plus labels


def test_frames_default_output_directory(clip: Path, tmp_path: Path) -> None:
    result = run("frames", str(clip), "-f", "2")
    assert result.exit_code == 0, result.output
    # conftest runs every test in tmp_path: the default is ./<stem>-frames
    assert sorted(p.name for p in (tmp_path / "scenes-frames").iterdir()) == \
        ["contact_sheet.png", "frame_000030.jpg", "frame_000090.jpg", "frames.json"]
    assert "contact sheet:" in result.stdout


def test_frames_on_a_short_clip_says_so(tmp_path: Path) -> None:
    path = write_video(tmp_path / "three.mp4", n_frames=3, size=SIZE)
    result = run("frames", str(path), "-f", "8", "--out", str(tmp_path / "o"))
    assert result.exit_code == 0
    assert "only 3 frame(s)" in result.stderr
    assert len(json.loads((tmp_path / "o" / "frames.json").read_text())["frames"]) == 3


@pytest.mark.parametrize("args", [
    ("-f", "0"), ("-f", "17"), ("--frames", "abc"), ("-r", "10"), ("-r", "5000"),
    ("--sampling", "random"),
])
def test_frames_rejects_bad_flags_with_exit_2(clip: Path, args: tuple[str, ...]) -> None:
    result = run("frames", str(clip), *args)
    assert result.exit_code == EXIT_BAD_INPUT, result.output


@pytest.mark.parametrize("command", ["probe", "frames"])
def test_bad_video_exits_2_with_one_line(tmp_path: Path, command: str) -> None:
    (tmp_path / "notes.mp4").write_text("plain text\n" * 10)
    result = run(command, str(tmp_path / "notes.mp4"))
    assert result.exit_code == EXIT_BAD_INPUT
    assert "notes.mp4: not a video" in result.stderr
    assert "Traceback" not in result.output


def test_missing_video_exits_2(tmp_path: Path) -> None:
    result = run("probe", str(tmp_path / "gone.mkv"))
    assert result.exit_code == EXIT_BAD_INPUT
    assert "gone.mkv: no such file" in result.stderr

"""`chronicon probe` and `chronicon frames`: look at a video and at the frames we would sample."""

from __future__ import annotations

import json
from enum import Enum
from pathlib import Path
from typing import Any

import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from ..events import Event, FrameSampled, ignore_event
from ..video.contact_sheet import contact_sheet, format_timestamp
from ..video.probe import VideoInfo, probe
from ..video.sampling import (
    DEFAULT_FRAMES,
    DEFAULT_RESIZE,
    MAX_FRAMES,
    MAX_RESIZE,
    MIN_FRAMES,
    MIN_RESIZE,
    sample,
)
from .common import app, err, exit_on_error, out, settings_from_cli

CONTACT_SHEET = "contact_sheet.png"
FRAMES_JSON = "frames.json"


class Sampling(str, Enum):
    uniform = "uniform"
    motion = "motion"
    scene = "scene"


@app.command("probe")
@exit_on_error
def probe_command(
    video: Path = typer.Argument(..., help="The video file."),
    as_json: bool = typer.Option(False, "--json", help="Print the facts as JSON."),
) -> None:
    """Show a video's container, codec, size, rotation, frame rate, frame count and duration."""
    info = probe(video, max_pixels=settings_from_cli().max_pixels)
    if as_json:
        out.print_json(json.dumps(info.to_dict()))
        return
    out.print(_info_table(info))


@app.command("frames")
@exit_on_error
def frames_command(
    video: Path = typer.Argument(..., help="The video file."),
    frames: int = typer.Option(DEFAULT_FRAMES, "--frames", "-f", min=MIN_FRAMES, max=MAX_FRAMES,
                               help="Frames to sample."),
    sampling: Sampling = typer.Option(Sampling.uniform, "--sampling",
                                      help="uniform: evenly spaced; motion: where most "
                                           "changes; scene: one per scene between cuts."),
    resize: int = typer.Option(DEFAULT_RESIZE, "--resize", "-r", min=MIN_RESIZE, max=MAX_RESIZE,
                               help="Longest edge of each frame in pixels."),
    out_dir: Path = typer.Option(None, "--out", "-o",
                                 help="Output directory [default: ./<video name>-frames]."),
    as_json: bool = typer.Option(False, "--json", help="Print frames.json to stdout."),
) -> None:
    """Sample frames as the analysis would; write them as JPEG, a contact sheet and frames.json."""
    info = probe(video, max_pixels=settings_from_cli().max_pixels)
    with _progress(frames) as on_event:
        picked = sample(video, frames, sampling.value, resize, info=info, on_event=on_event)
    out_dir = out_dir or Path(f"{video.stem}-frames")
    report = write_frames(picked, out_dir, info, sampling.value, frames, resize)
    if len(picked) < frames:
        err.print(f"note: {video.name} has only {info.frame_count} frame(s); "
                  f"wrote all {len(picked)} instead of {frames}")
    if as_json:
        out.print_json(json.dumps(report))
        return
    table = Table("frame", "time", "file", box=None)
    for item in report["frames"]:
        table.add_row(str(item["index"]), format_timestamp(item["timestamp"]), item["file"])
    out.print(table)
    out.print(f"contact sheet: {out_dir / CONTACT_SHEET}")


def write_frames(picked: list, out_dir: Path, info: VideoInfo, strategy: str, requested: int,
                 resize: int) -> dict[str, Any]:
    """Write the JPEGs, the contact sheet and frames.json into out_dir; return frames.json."""
    out_dir.mkdir(parents=True, exist_ok=True)
    items = []
    for frame in picked:
        name = f"frame_{frame.index:06d}.jpg"
        frame.image.save(out_dir / name, quality=92)
        items.append({"index": frame.index, "timestamp": frame.timestamp, "file": name})
    contact_sheet(picked).save(out_dir / CONTACT_SHEET)
    report = {"video": Path(info.path).name, "sampling": strategy, "requested": requested,
              "resize": resize, "frame_count": info.frame_count, "duration": info.duration,
              "contact_sheet": CONTACT_SHEET, "frames": items}
    (out_dir / FRAMES_JSON).write_text(json.dumps(report, indent=2) + "\n")
    return report


class _progress:
    """A Rich progress bar on stderr fed by FrameSampled events (silent off a terminal)."""

    def __init__(self, total: int):
        self.total = total
        self.bar: Progress | None = None

    def __enter__(self):
        if not err.is_terminal:
            return ignore_event
        self.bar = Progress(TextColumn("sampling"), BarColumn(), TextColumn("{task.completed}/"
                            "{task.total} frames"), TimeElapsedColumn(), console=err,
                            transient=True)
        self.bar.start()
        task = self.bar.add_task("sampling", total=self.total)

        def on_event(event: Event) -> None:
            if isinstance(event, FrameSampled):
                self.bar.update(task, completed=event.position, total=event.total)

        return on_event

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.stop()


def _info_table(info: VideoInfo) -> Table:
    table = Table(box=None, show_header=False)
    size = f"{info.width}x{info.height}"
    if info.rotation:
        size += f" (rotated {info.rotation}°: shown {info.display_width}x{info.display_height})"
    rows = [
        ("file", Path(info.path).name),
        ("container", info.container),
        ("codec", f"{info.codec} ({info.pix_fmt})" if info.pix_fmt else info.codec),
        ("size", size),
        ("frame rate", f"{info.fps:.3f} fps" + (" (variable)" if info.variable_fps else "")),
        ("frames", f"{info.frame_count} (from {info.frame_count_source}), "
                   f"{info.keyframes} keyframes"),
        ("duration", f"{info.duration:.3f} s ({format_timestamp(info.duration)})"),
        ("audio", "yes" if info.has_audio else "no"),
        ("bit rate", f"{info.bit_rate / 1000:.0f} kb/s" if info.bit_rate else "unknown"),
    ]
    for key, value in rows:
        table.add_row(key, value)
    return table

"""`chronicon watch DIR|URL …`: analyse every new clip of watched folders and every moving
window of live streams, without a person, until interrupted.

Each result is saved and recorded exactly as `chronicon analyze` does (a JSON file in the
results directory and an entry in the history), then the agent acts on it. stderr shows one
line per event: a clip analysed or failed, a stream's state (connected, reconnecting with the
attempt and the wait), windows skipped by the motion gate or dropped because the model fell
behind.
"""

from __future__ import annotations

import signal
import threading
from pathlib import Path
from typing import Any

import typer

from ..analysis import DEFAULT_PROMPT, AnalysisOptions
from ..sources.analyst import Analyst
from ..sources.registry import SourceSet
from ..store import Store
from ..timeline import TimelineOptions
from ..vlm.backend import create_backend
from .common import app, err, exit_on_error, settings_from_cli, setup_logging


@app.command("watch")
@exit_on_error
def watch_command(
    targets: list[str] = typer.Argument(
        ..., help="Folders to watch and/or stream URLs (rtsp://, rtmp://, http(s)://….m3u8, "
                  "udp://, tcp://, srt://)."),
    pattern: list[str] = typer.Option(
        [], "--pattern", help="File name pattern of clips (repeatable; default: common video "
                              "extensions)."),
    recursive: bool = typer.Option(False, "--recursive", help="Watch sub-folders too."),
    timeline: bool = typer.Option(False, "--timeline",
                                  help="Describe each clip as a timeline (folders)."),
    chunk: float | None = typer.Option(None, "--chunk", show_default=False,
                                       help="Seconds per timeline chunk (default 30)."),
    frames_per_chunk: int = typer.Option(4, "--frames-per-chunk",
                                         help="Frames per timeline chunk, 1-16."),
    settle: float | None = typer.Option(
        None, "--settle", show_default=False,
        help="Seconds a clip's size must stay still before it is taken (default 2)."),
    window: float | None = typer.Option(
        None, "--window", show_default=False,
        help="Seconds of live stream per described window (default 10)."),
    motion_threshold: float | None = typer.Option(
        None, "--motion-threshold", show_default=False,
        help="Changed-pixel fraction under which a stream window is skipped (default 0.01)."),
    frames: int = typer.Option(8, "--frames", "-f", help="Frames to sample, 1-16."),
    prompt: str = typer.Option(DEFAULT_PROMPT, "--prompt", "-p", help="Custom prompt."),
    resize: int = typer.Option(336, "--resize", "-r",
                               help="Longest edge of the sampled frames, in pixels."),
    max_tokens: int = typer.Option(100, "--max-tokens", "-t", help="Maximum generated tokens."),
    min_tokens: int | None = typer.Option(None, "--min-tokens", show_default=False,
                                          help="Minimum generated tokens (default 50, never "
                                               "above --max-tokens)."),
    model: str | None = typer.Option(None, "--model", "-m", show_default=False,
                                     help="Model: short name, hub id or local directory."),
    sampling: str = typer.Option("uniform", "--sampling",
                                 help="Frame selection for clips: uniform, motion or scene."),
    device: str | None = typer.Option(None, "--device", show_default=False,
                                      help="auto, cpu, mps, cuda or cuda:N."),
    no_agent: bool = typer.Option(False, "--no-agent", help="Do not run the agent."),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Log details."),
) -> None:
    """Watch folders and live streams; analyse and act on what arrives, until Ctrl-C."""
    setup_logging(verbose)
    if min_tokens is None:
        min_tokens = min(50, max(max_tokens, 0))
    options = AnalysisOptions(frames=frames, prompt=prompt, resize=resize, max_tokens=max_tokens,
                              min_tokens=min_tokens, sampling=sampling).validate()
    timeline_options = None
    if timeline:
        timeline_options = TimelineOptions(chunk_s=chunk,
                                           frames_per_chunk=frames_per_chunk).validate()
    settings = settings_from_cli(model=model, device=device, watch_settle_s=settle,
                                 stream_window_s=window,
                                 stream_motion_threshold=motion_threshold)
    backend = create_backend(settings)
    store = Store(settings.db_path)
    stop = threading.Event()
    analyst = Analyst(settings, store, backend, options, timeline=timeline_options,
                      agent=not no_agent, window_queue_size=settings.stream_queue,
                      on_done=_print_done(store))
    sources = SourceSet(settings, store, analyst, on_state=_print_state)
    try:
        for target in targets:
            sources.add(target, patterns=pattern, recursive=recursive, persist=False)
        _stop_on_signals(stop)
        err.print(f"watching {len(targets)} source(s); Ctrl-C to stop", highlight=False,
                  markup=False, soft_wrap=True)
        analyst.run(stop)
    finally:
        stop.set()
        sources.stop_all()
        store.close()
        err.print(f"stopped: {analyst.counters.to_dict()}", highlight=False, markup=False,
                  soft_wrap=True)


def _stop_on_signals(stop: threading.Event) -> None:
    def handler(signum: int, frame: Any) -> None:
        stop.set()

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, handler)


def _print_state(source: str, state: dict[str, Any]) -> None:
    line = f"{source}: {state.get('detail') or state.get('state')}"
    if state.get("last_error"):
        line += f" ({state['last_error']})"
    err.print(line, highlight=False, markup=False, soft_wrap=True)


def _print_done(store: Store):
    def done(kind: str, analysis_id: str, outcome: dict[str, Any]) -> None:
        row = store.get_analysis(analysis_id)
        name = Path(row.video_path).name if row else "?"
        label = (outcome.get("decision") or {}).get("label") if outcome else None
        err.print(f"{kind} {name}: analysis {analysis_id}" + (f", {label}" if label else ""),
                  highlight=False, markup=False, soft_wrap=True)
    return done

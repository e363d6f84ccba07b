"""`chronicon analyze VIDEO`: sample frames, describe them, save and print the result.

stdout carries the description (streamed as it is generated) or, with `--json`, only the result
JSON; progress, logs and errors go to stderr. On a terminal a progress bar runs over the stages
before generation, then the description streams in.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import typer
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from ..analysis import analyze, write_output
from ..events import Event, FrameSampled, Stage, StageFinished, StageStarted, TokenGenerated
from ..history import record_analysis
from ..options import CLI_LIMITS, DEFAULT_PROMPT, DEFAULT_SAMPLING, AnalysisOptions
from ..store import Store
from ..video.sampling import SAMPLERS
from ..vlm.backend import create_backend
from .common import app, err, exit_on_error, out, settings_from_cli, setup_logging

_L = CLI_LIMITS
_BAR_STAGES = (Stage.PROBE, Stage.SAMPLING, Stage.MODEL_LOAD, Stage.PREPROCESS)
_STAGE_LABEL = {Stage.PROBE: "probing", Stage.SAMPLING: "sampling frames",
                Stage.MODEL_LOAD: "loading model", Stage.PREPROCESS: "preparing inputs",
                Stage.GENERATE: "generating"}


class _Display:
    """Turns progress events into a progress bar (terminal only) and streamed text."""

    def __init__(self, bar: bool, stream_text: bool, verbose: bool) -> None:
        self.stream_text = stream_text
        self.verbose = verbose
        self.wrote_text = False
        self.progress: Progress | None = None
        if bar:
            self.progress = Progress(SpinnerColumn(), TextColumn("{task.description}"),
                                     BarColumn(), TimeElapsedColumn(), console=err,
                                     transient=True)
            self.task = self.progress.add_task("starting", total=len(_BAR_STAGES))
            self.progress.start()

    def __call__(self, event: Event) -> None:
        if isinstance(event, StageStarted):
            if event.stage == Stage.GENERATE:
                self.stop()  # the streamed text takes over the terminal
            elif self.progress is not None:
                self.progress.update(self.task, description=_STAGE_LABEL.get(event.stage,
                                                                            event.stage.value))
        elif isinstance(event, FrameSampled) and self.progress is not None:
            self.progress.update(self.task, description=f"sampling frame {event.position}"
                                                        f"/{event.total}")
        elif isinstance(event, StageFinished):
            if self.progress is not None and event.stage in _BAR_STAGES:
                self.progress.advance(self.task)
            if self.verbose:
                err.print(f"{event.stage.value}: {event.seconds:.2f}s {event.detail}".rstrip(),
                          highlight=False, markup=False, soft_wrap=True)
        elif isinstance(event, TokenGenerated) and self.stream_text:
            sys.stdout.write(event.text)
            sys.stdout.flush()
            self.wrote_text = True

    def stop(self) -> None:
        if self.progress is not None:
            self.progress.stop()
            self.progress = None


@app.command("analyze")
@exit_on_error
def analyze_command(
    video: str = typer.Argument(..., help="Video file to analyse (MP4, AVI, MOV, MKV, WebM)."),
    frames: int = typer.Option(_L.frames.default, "--frames", "-f",
                               help=f"Frames to sample, {_L.frames.low}-{_L.frames.high}."),
    prompt: str = typer.Option(DEFAULT_PROMPT, "--prompt", "-p",
                               help=f"Custom prompt (at most {_L.max_prompt_chars} characters)."),
    resize: int = typer.Option(_L.resize.default, "--resize", "-r",
                               help=f"Longest edge of the sampled frames, in pixels "
                                    f"({_L.resize.low}-{_L.resize.high})."),
    max_tokens: int = typer.Option(_L.max_tokens.default, "--max-tokens", "-t",
                                   help=f"Maximum generated tokens ({_L.max_tokens.low}-"
                                        f"{_L.max_tokens.high})."),
    min_tokens: int | None = typer.Option(
        None, "--min-tokens", show_default=False,
        help=f"Minimum generated tokens (default {_L.min_tokens.default}, lowered to "
             "--max-tokens when that is smaller; never above it)."),
    model: str | None = typer.Option(
        None, "--model", "-m", show_default=False,
        help="Model: short name (256m, 500m, 2.2b), hub id or local directory "
             "(default: CHRONICON_MODEL, else 256m)."),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Log details and stage timings."),
    no_save: bool = typer.Option(False, "--no-save", help="Do not write the result file."),
    cuda_device: int = typer.Option(0, "--cuda-device", help="CUDA device id."),
    no_quant: bool = typer.Option(False, "--no-quant", help="Disable 4-bit quantization."),
    sampling: str = typer.Option(DEFAULT_SAMPLING, "--sampling",
                                 help=f"Frame selection: {', '.join(SAMPLERS)}."),
    output: Path | None = typer.Option(
        None, "--output", "-o", show_default=False,
        help="Write the result JSON here (instead of the results directory)."),
    json_out: bool = typer.Option(False, "--json", help="Print the result JSON on stdout."),
    compile: bool | None = typer.Option(
        None, "--compile/--no-compile", show_default=False,
        help="torch.compile the model; falls back when it fails (default: CHRONICON_COMPILE)."),
    device: str | None = typer.Option(
        None, "--device", show_default=False,
        help="auto, cpu, mps, cuda or cuda:N (default: CHRONICON_DEVICE, else auto)."),
    timeline: bool = typer.Option(
        False, "--timeline", help="Describe the video chunk by chunk, then summarise it."),
    chunk: float | None = typer.Option(
        None, "--chunk", show_default=False,
        help="Seconds per timeline chunk (default 30, longer for videos over an hour)."),
    frames_per_chunk: int = typer.Option(4, "--frames-per-chunk",
                                         help="Frames sampled per timeline chunk, 1-16."),
    vtt: Path | None = typer.Option(None, "--vtt", show_default=False,
                                    help="Write the timeline as WebVTT subtitles here."),
    srt: Path | None = typer.Option(None, "--srt", show_default=False,
                                    help="Write the timeline as SRT subtitles here."),
) -> None:
    """Describe a video with a vision-language model and save the result as JSON."""
    setup_logging(verbose)
    if min_tokens is None:
        min_tokens = min(_L.min_tokens.default, max(max_tokens, 0))
    options = AnalysisOptions(frames=frames, prompt=prompt, resize=resize, max_tokens=max_tokens,
                              min_tokens=min_tokens, sampling=sampling)
    settings = settings_from_cli(model=model, device=device, compile=compile)
    backend = create_backend(settings, quantize=False if no_quant else None,
                             cuda_device=cuda_device)
    if timeline or chunk is not None or vtt is not None or srt is not None:
        from ..timeline import TimelineOptions
        from .timeline_output import run_timeline

        run_timeline(video, options, TimelineOptions(chunk_s=chunk,
                                                     frames_per_chunk=frames_per_chunk),
                     backend, settings, output=output, no_save=no_save, json_out=json_out,
                     verbose=verbose, vtt=vtt, srt=srt)
        return

    display = _Display(bar=err.is_terminal, stream_text=not json_out, verbose=verbose)
    try:
        result = analyze(video, options, backend, on_event=display)
    finally:
        display.stop()
    if display.wrote_text:
        sys.stdout.write("\n")
        sys.stdout.flush()

    data = result.to_dict()
    saved: Path | None = None
    if output is not None:
        saved = write_output(data, output)
    if output is not None or not no_save:
        # A saved CLI analysis joins the history the web app shows: the same row, thumbnails
        # and result file a web job leaves (`chronicon serve` on this data directory lists it).
        store = Store(settings.db_path)
        try:
            analysis_id = record_analysis(store, settings, result, result_path=saved,
                                          embed=False)
            saved = saved or Path(store.get_analysis(analysis_id).result_path)
        finally:
            store.close()
    if json_out:
        # Plain JSON, never reflowed or coloured: scripts parse this.
        sys.stdout.write(json.dumps(data, indent=2, ensure_ascii=False) + "\n")
        sys.stdout.flush()
    elif not display.wrote_text:
        out.print(result.analysis, markup=False, highlight=False)
    _summary(data, saved)


def _summary(data: dict[str, Any], saved: Path | None) -> None:
    timing = data["timing"]
    line = (f"{data['num_frames']} frames, {data['tokens']['generated']} tokens "
            f"({data['tokens_per_second']:.1f} tok/s) in {timing['total_time']:.1f}s "
            f"on {data['device']} ({data['dtype']}, quantization {data['quantization']['used']})")
    # soft_wrap: a path must stay one line when stderr is a pipe (rich wraps at 80 columns).
    err.print(line, highlight=False, markup=False, soft_wrap=True)
    if saved is not None:
        err.print(f"saved: {saved}", highlight=False, markup=False, soft_wrap=True)

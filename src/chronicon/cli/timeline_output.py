"""`chronicon analyze VIDEO --timeline`: chunk progress with an ETA, the summary streamed, the
result saved and recorded like any analysis, and the timeline exported as WebVTT/SRT."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from ..analysis import AnalysisOptions, result_filename, write_output, write_result_json
from ..config import Settings
from ..events import ChunkProgress, Event, StageFinished, StageStarted, TokenGenerated
from ..sources.record import record
from ..store import Store
from ..timeline import TimelineOptions, clock, describe_timeline, write_subtitles
from .common import err, out


class ChunkDisplay:
    """A bar over the chunks ("chunk 3/12, 00:30-01:00, ETA 42s") on a terminal, one line per
    chunk otherwise (with -v); then the summary text streams to stdout."""

    def __init__(self, bar: bool, stream_text: bool, verbose: bool) -> None:
        self.stream_text = stream_text
        self.verbose = verbose
        self.wrote_text = False
        self.progress: Progress | None = None
        if bar:
            self.progress = Progress(SpinnerColumn(), TextColumn("{task.description}"),
                                     BarColumn(), TimeElapsedColumn(), console=err,
                                     transient=True)
            self.task = self.progress.add_task("starting", total=None)
            self.progress.start()

    def __call__(self, event: Event) -> None:
        if isinstance(event, ChunkProgress):
            self._chunk(event)
        elif isinstance(event, StageStarted) and self.progress is not None:
            self.progress.update(self.task, description=f"{event.stage.value} {event.detail}")
        elif isinstance(event, StageFinished) and self.verbose:
            err.print(f"{event.stage.value}: {event.seconds:.2f}s {event.detail}".rstrip(),
                      highlight=False, markup=False, soft_wrap=True)
        elif isinstance(event, TokenGenerated) and self.stream_text:
            self.stop()
            sys.stdout.write(event.text)
            sys.stdout.flush()
            self.wrote_text = True

    def _chunk(self, event: ChunkProgress) -> None:
        eta = "" if event.eta_s is None else f", ETA {event.eta_s:.0f}s"
        line = (f"chunk {event.chunk}/{event.total} {clock(event.start)}-{clock(event.end)}"
                f"{eta}")
        if event.done:
            line = f"{event.total} chunks described; writing the summary"
        if self.progress is not None:
            self.progress.update(self.task, total=event.total,
                                 completed=event.chunk if event.done else event.chunk - 1,
                                 description=line)
        elif self.verbose:
            err.print(line, highlight=False, markup=False, soft_wrap=True)

    def stop(self) -> None:
        if self.progress is not None:
            self.progress.stop()
            self.progress = None


def run_timeline(video: str, options: AnalysisOptions, timeline: TimelineOptions, backend,
                 settings: Settings, *, output: Path | None, no_save: bool, json_out: bool,
                 verbose: bool, vtt: Path | None, srt: Path | None) -> None:
    timeline.validate()
    display = ChunkDisplay(bar=err.is_terminal, stream_text=not json_out, verbose=verbose)
    try:
        result = describe_timeline(video, options, timeline, backend, on_event=display)
    finally:
        display.stop()
    if display.wrote_text:
        sys.stdout.write("\n")
        sys.stdout.flush()
    data = result.to_dict()
    saved: Path | None = None
    if output is not None:
        saved = write_output(data, output)
    elif not no_save:
        store = Store(settings.db_path)
        try:
            analysis_id = record(store, settings, result.result, extra=result.extra())
            row = store.get_analysis(analysis_id)
            saved = Path(row.result_path) if row and row.result_path else None
        finally:
            store.close()
        if saved is None:  # recorded without a file: keep the CLI's promise of one
            saved = write_result_json(data, settings.results_dir,
                                      result_filename(result.result))
    for path, fmt in ((vtt, "vtt"), (srt, "srt")):
        if path is not None:
            write_subtitles(data["timeline"], path, fmt)
            err.print(f"{fmt}: {path}", highlight=False, markup=False, soft_wrap=True)
    if json_out:
        sys.stdout.write(json.dumps(data, indent=2, ensure_ascii=False) + "\n")
        sys.stdout.flush()
    elif not display.wrote_text:
        out.print(result.result.analysis, markup=False, highlight=False)
    timing = data["timing"]
    err.print(f"{len(result.entries)} chunks of {result.chunk_s:g}s, {data['num_frames']} frames "
              f"in {timing['total_time']:.1f}s (decode {timing['decode']:.1f}s, model "
              f"{timing['inference_time']:.1f}s)", highlight=False, markup=False, soft_wrap=True)
    if saved is not None:
        err.print(f"saved: {saved}", highlight=False, markup=False, soft_wrap=True)

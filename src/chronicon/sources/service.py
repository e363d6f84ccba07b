"""The server's sources: the folders and streams of `CHRONICON_WATCH` plus those added through
`POST /api/sources`, running beside the job queue.

A watched folder's clip becomes a job in the same queue as uploads (so its position, live
progress and history work as for an upload; `--timeline` folders queue `timeline` jobs). Stream
windows, already decoded into frames, go to an `Analyst` thread that describes them with the
server's warm model.
"""

from __future__ import annotations

import dataclasses
import inspect
import logging
import threading
from pathlib import Path
from typing import Any

from ..config import Settings
from ..errors import ChroniconError
from ..store import Store
from ..store.source_records import FAILED, QUEUED, WatchedFile
from .analyst import Analyst
from .registry import RunningSource, SourceSet, mask_url

log = logging.getLogger(__name__)


class WarmModel:
    """The warm backend as the analyst sees it: whichever model the server has loaded for its
    default model (the job worker may swap models; this always asks for the default)."""

    def __init__(self, backends: Any) -> None:
        self.backends = backends

    def __getattr__(self, name: str) -> Any:
        return getattr(self.backends.get(), name)


class ServerSources:
    def __init__(self, settings: Settings, store: Store, queue: Any, backends: Any) -> None:
        from ..analysis import AnalysisOptions

        self.settings = settings
        self.store = store
        self.queue = queue
        self.analyst = Analyst(settings, store, WarmModel(backends), AnalysisOptions(),
                               window_queue_size=settings.stream_queue)
        self.sources = SourceSet(settings, store, on_clip=self._submit_clip,
                                 on_window=self.analyst.submit_window)
        self.sources.window_frames = self.analyst.options.frames
        self.sources.window_resize = self.analyst.options.resize
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self.analyst.run, args=(self._stop,),
                                        name="chronicon-stream-analyst", daemon=True)
        self._thread.start()
        for target in self.settings.watch_targets:
            try:
                self.sources.add(target, persist=False)
            except ChroniconError as exc:
                log.error("CHRONICON_WATCH: %s not watched: %s", mask_url(target), exc.message)
        self.sources.restore()

    def stop(self) -> None:
        self._stop.set()
        self.sources.stop_all()
        if self._thread is not None:
            self._thread.join(timeout=30)
            self._thread = None

    def add(self, target: str, **options: Any) -> RunningSource:
        return self.sources.add(target, persist=True, **options)

    def list(self) -> list[dict[str, Any]]:
        return self.sources.list()

    def metrics(self) -> dict[str, int]:
        """Totals over every stream and the analyst, for /metrics."""
        totals = {"windows": 0, "windows_skipped": 0, "windows_kept": 0, "reconnects": 0}
        for source in self.sources.list():
            if source["kind"] != "stream":
                continue
            for key in ("windows", "windows_skipped", "windows_kept"):
                totals[key] += int(source.get(key, 0))
            totals["reconnects"] += max(0, int(source.get("connects", 0)) - 1)
        counters = self.analyst.counters
        totals["windows_described"] = counters.windows_described
        totals["windows_dropped"] = counters.windows_dropped
        totals["sources"] = len(self.sources.list())
        return totals

    def _submit_clip(self, path: Path, watched: WatchedFile) -> None:
        from ..analysis import AnalysisOptions

        try:
            source = self.sources.get(watched.source)
            timeline = bool(source.options.get("timeline"))
        except ChroniconError:
            timeline = False
        options = AnalysisOptions()
        try:
            if "source" in inspect.signature(self.queue.submit).parameters:
                job = self.queue.submit(path, path.name, options, source=watched.source,
                                        kind="timeline" if timeline else "analyze")
            else:  # the queue before job kinds: plain analyses only
                job = self.queue.submit(path, path.name, None, dataclasses.asdict(options))
        except ChroniconError as exc:
            self.store.finish_watched_file(watched.id, FAILED, error=exc.message)
            return
        self.store.finish_watched_file(watched.id, QUEUED, job_id=job.id)

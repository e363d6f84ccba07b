"""The one consumer of what sources produce: clips from watched folders and stream windows.

`Analyst` owns the loaded backend (one model for every source) and works through one inbox:
clips in arrival order, stream windows from a bounded queue that drops the oldest window when
the model falls behind (counted). Each piece is described like any clip (or as a timeline),
saved and recorded exactly like `chronicon analyze` (`record.record`), then the agent acts on
it (`record.act`). `chronicon watch` runs it in the foreground.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..analysis import AnalysisOptions, analyze
from ..config import Settings
from ..errors import ChroniconError
from ..store import Store
from ..store.source_records import DONE, FAILED, WatchedFile
from ..timeline import TimelineOptions, describe_timeline
from .record import act, record

log = logging.getLogger(__name__)


@dataclass
class AnalystCounters:
    clips: int = 0
    clips_failed: int = 0
    windows_described: int = 0
    windows_dropped: int = 0

    def to_dict(self) -> dict[str, int]:
        return dict(self.__dict__)


@dataclass
class Analyst:
    """Describes, records and acts on clips and stream windows, one at a time."""

    settings: Settings
    store: Store
    backend: Any
    options: AnalysisOptions
    timeline: TimelineOptions | None = None
    agent: bool = True
    window_queue_size: int = 4
    on_done: Callable[[str, str, dict[str, Any]], None] | None = None  # (kind, id, data)
    counters: AnalystCounters = field(default_factory=AnalystCounters)

    def __post_init__(self) -> None:
        self._clips: queue.Queue[tuple[Path, WatchedFile]] = queue.Queue()
        self._windows: deque[Any] = deque()
        self._lock = threading.Lock()
        self._wake = threading.Event()

    # ---- producers ------------------------------------------------------------------------------
    def submit_clip(self, path: Path, watched: WatchedFile) -> None:
        self._clips.put((path, watched))
        self._wake.set()

    def submit_window(self, window: Any) -> None:
        """Queue a stream window; when `window_queue_size` are already waiting, the oldest is
        dropped (a live source must not let the backlog, and memory, grow without end)."""
        with self._lock:
            while len(self._windows) >= self.window_queue_size:
                self._windows.popleft()
                self.counters.windows_dropped += 1
            self._windows.append(window)
        self._wake.set()

    @property
    def pending_windows(self) -> int:
        return len(self._windows)

    # ---- the consumer ---------------------------------------------------------------------------
    def run(self, stop: threading.Event) -> None:
        while not stop.is_set():
            if not self.step():
                self._wake.wait(0.2)
                self._wake.clear()

    def step(self) -> bool:
        """Do one piece of work if there is one; False when idle."""
        try:
            path, watched = self._clips.get_nowait()
        except queue.Empty:
            pass
        else:
            self.analyse_clip(path, watched)
            return True
        with self._lock:
            window = self._windows.popleft() if self._windows else None
        if window is None:
            return False
        self.describe_window(window)
        return True

    def analyse_clip(self, path: Path, watched: WatchedFile) -> str | None:
        """Analyse a watched clip; its row ends `done` (with the analysis) or `failed`."""
        try:
            if self.timeline is not None:
                result = describe_timeline(path, self.options, self.timeline, self.backend)
                analysis_id = record(self.store, self.settings, result.result,
                                     source=watched.source, extra=result.extra())
            else:
                result = analyze(path, self.options, self.backend)
                analysis_id = record(self.store, self.settings, result, source=watched.source)
        except ChroniconError as exc:
            self._clip_failed(watched, exc.message)
            return None
        except Exception as exc:  # noqa: BLE001 - one bad clip must not end the watcher
            log.exception("analysing %s failed", path)
            self._clip_failed(watched, f"internal error: {type(exc).__name__}")
            return None
        self.store.finish_watched_file(watched.id, DONE, analysis_id=analysis_id)
        self.counters.clips += 1
        self._after_record("clip", analysis_id)
        return analysis_id

    def describe_window(self, window: Any) -> str | None:
        """Describe one stream window (frames already taken while decoding)."""
        try:
            result = window.describe(self.options, self.backend)
            analysis_id = record(self.store, self.settings, result, source=window.source,
                                 extra=window.extra())
        except ChroniconError as exc:
            log.warning("window of %s not described: %s", window.source, exc.message)
            return None
        except Exception:  # noqa: BLE001
            log.exception("describing a window of %s failed", window.source)
            return None
        self.counters.windows_described += 1
        self._after_record("window", analysis_id)
        return analysis_id

    def _after_record(self, kind: str, analysis_id: str) -> None:
        outcome: dict[str, Any] = {}
        if self.agent and self.settings.agent_enabled:
            try:
                outcome = act(self.store, self.settings, analysis_id, backend=self.backend)
            except Exception:  # noqa: BLE001 - the agent's failure does not undo the analysis
                log.exception("agent failed on analysis %s", analysis_id)
        if self.on_done is not None:
            self.on_done(kind, analysis_id, outcome)

    def _clip_failed(self, watched: WatchedFile, message: str) -> None:
        self.store.finish_watched_file(watched.id, FAILED, error=message)
        self.counters.clips_failed += 1
        log.warning("%s: %s failed: %s", watched.source, Path(watched.path).name, message)

"""Run sources for tests: a SourceSet feeding an Analyst on real threads, always stopped."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from chronicon.analysis import AnalysisOptions
from chronicon.config import Settings
from chronicon.sources.analyst import Analyst
from chronicon.sources.registry import SourceSet
from chronicon.store import Store

OPTIONS = AnalysisOptions(frames=2, max_tokens=4, min_tokens=1)


def wait_for(predicate: Callable[[], object], timeout: float = 30.0, what: str = "") -> object:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what or predicate}")


@contextmanager
def watching(settings: Settings, backend, *targets: str, **add_options) -> Iterator[tuple]:
    """A SourceSet feeding an Analyst on its own thread; everything stopped on exit."""
    store = Store(settings.db_path)
    stop = threading.Event()
    analyst = Analyst(settings, store, backend, OPTIONS, window_queue_size=settings.stream_queue)
    sources = SourceSet(settings, store, analyst)
    worker = threading.Thread(target=analyst.run, args=(stop,), daemon=True)
    worker.start()
    try:
        for target in targets:
            sources.add(target, persist=False, **add_options)
        yield store, analyst, sources
    finally:
        stop.set()
        sources.stop_all()
        worker.join(timeout=30)
        store.close()

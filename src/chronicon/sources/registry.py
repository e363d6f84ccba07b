"""The running sources: each watched folder or live stream on its own thread, its state visible.

`SourceSet.add(target)` starts a `FolderWatcher` for a folder or a `StreamWatcher` for a URL
(the kind is chosen by `source_kind`); clips go to `on_clip`, stream windows to `on_window`
(the CLI's `Analyst`, or the server's job queue and analyst). `list()` is what
`GET /api/sources` shows: id, kind, location with any password masked, state and counters.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..config import Settings
from ..errors import BadParameter, Conflict, NotFound
from ..redact import mask_url
from ..store import Store
from .folders import FolderWatcher

log = logging.getLogger(__name__)

STREAM_SCHEMES = ("rtsp", "rtsps", "rtmp", "rtmps", "http", "https", "udp", "tcp", "srt")


def source_kind(target: str) -> str:
    """`stream` for a URL of a scheme we open, `folder` for anything without a scheme."""
    if "://" not in target:
        return "folder"
    scheme = target.split("://", 1)[0].lower()
    if scheme not in STREAM_SCHEMES:
        raise BadParameter("watch", f"{mask_url(target)}: unsupported scheme {scheme!r}; use "
                                    f"a folder or one of {', '.join(STREAM_SCHEMES)}")
    return "stream"


def source_id(kind: str, location: str) -> str:
    return f"{kind}-{hashlib.sha256(location.encode()).hexdigest()[:12]}"


@dataclass
class RunningSource:
    id: str
    kind: str
    location: str
    watcher: Any
    thread: threading.Thread
    stop: threading.Event
    persisted: bool
    options: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "kind": self.kind, "location": mask_url(self.location),
                "persisted": self.persisted, "alive": self.thread.is_alive(),
                "options": self.options, **self.watcher.status.to_dict()}


class SourceSet:
    """Starts, lists and stops sources. Thread-safe."""

    def __init__(self, settings: Settings, store: Store, analyst: Any = None, *,
                 on_clip: Callable[..., None] | None = None,
                 on_window: Callable[[Any], None] | None = None,
                 on_state: Callable[[str, dict[str, Any]], None] | None = None) -> None:
        self.settings = settings
        self.store = store
        self.on_clip = on_clip or (analyst.submit_clip if analyst is not None else None)
        self.on_window = on_window or (analyst.submit_window if analyst is not None else None)
        self.on_state = on_state
        # Stream windows pick the analyst's frame count and size while decoding.
        self.window_frames = analyst.options.frames if analyst is not None else 8
        self.window_resize = analyst.options.resize if analyst is not None else 336
        self._sources: dict[str, RunningSource] = {}
        self._lock = threading.Lock()

    def add(self, target: str, *, patterns: Sequence[str] = (), recursive: bool = False,
            persist: bool = True, options: dict[str, Any] | None = None) -> RunningSource:
        """Start watching `target`; with `persist`, it is remembered across restarts."""
        kind = source_kind(target)
        try:
            location = str(Path(target).expanduser().resolve()) if kind == "folder" else target
            if kind == "folder":
                Path(location).is_dir()  # a name the OS refuses (too long, ...) fails here
        except OSError as exc:
            raise BadParameter("watch", f"{target[:80]!r}: {exc.strerror or exc}") from None
        sid = source_id(kind, location)
        options = {"patterns": list(patterns), "recursive": recursive, **(options or {})}
        with self._lock:
            if sid in self._sources:
                raise Conflict(f"{mask_url(location)} is already watched (source {sid})")
            watcher = self._make_watcher(kind, location, sid, options)
            stop = threading.Event()
            thread = threading.Thread(target=self._run, args=(sid, watcher, stop),
                                      name=f"chronicon-{sid}", daemon=True)
            running = RunningSource(sid, kind, location, watcher, thread, stop, persist, options)
            self._sources[sid] = running
        if persist and not any(row.id == sid for row in self.store.list_sources()):
            self.store.insert_source(sid, kind, location, options)
        thread.start()
        return running

    def restore(self) -> None:
        """Start the sources added at run time before the last restart."""
        for row in self.store.list_sources():
            if row.id in self._sources:
                continue
            try:
                self.add(row.location, patterns=row.options.get("patterns", ()),
                         recursive=row.options.get("recursive", False), persist=True,
                         options={k: v for k, v in row.options.items()
                                  if k not in ("patterns", "recursive")})
            except (BadParameter, Conflict) as exc:
                log.warning("source %s not restored: %s", row.id, exc)

    def remove(self, sid: str) -> None:
        with self._lock:
            running = self._sources.pop(sid, None)
        deleted = self.store.delete_source(sid)
        if running is None and not deleted:
            raise NotFound(f"no source with id {sid}")
        if running is not None:
            running.stop.set()
            running.thread.join(timeout=15)

    def list(self) -> list[dict[str, Any]]:
        with self._lock:
            return [s.to_dict() for s in self._sources.values()]

    def get(self, sid: str) -> RunningSource:
        with self._lock:
            if sid not in self._sources:
                raise NotFound(f"no source with id {sid}")
            return self._sources[sid]

    def stop_all(self, timeout: float = 15.0) -> None:
        with self._lock:
            running = list(self._sources.values())
        for source in running:
            source.stop.set()
        for source in running:
            source.thread.join(timeout=timeout)

    # ---- internals ------------------------------------------------------------------------------
    def _make_watcher(self, kind: str, location: str, sid: str, options: dict[str, Any]) -> Any:
        if kind == "folder":
            if self.on_clip is None:
                raise BadParameter("watch", "this process does not analyse folder clips")
            return FolderWatcher([Path(location)], self.store, self.on_clip, source=sid,
                                 patterns=tuple(options.get("patterns") or ()),
                                 recursive=bool(options.get("recursive")),
                                 settle_s=self.settings.watch_settle_s)
        from .streams import StreamWatcher

        if self.on_window is None:
            raise BadParameter("watch", "this process does not analyse streams")
        return StreamWatcher(location, self.on_window, source=sid,
                             window_s=float(options.get("window") or self.settings.stream_window_s),
                             motion_threshold=self.settings.stream_motion_threshold,
                             frames=self.window_frames, resize=self.window_resize,
                             timeout_s=self.settings.stream_timeout_s,
                             backoff_max_s=self.settings.stream_backoff_max_s,
                             on_state=self._state_reporter(sid))

    def _state_reporter(self, sid: str) -> Callable[[dict[str, Any]], None]:
        def report(state: dict[str, Any]) -> None:
            if self.on_state is not None:
                self.on_state(sid, state)
        return report

    def _run(self, sid: str, watcher: Any, stop: threading.Event) -> None:
        try:
            if self.on_state is not None and hasattr(watcher, "folders"):
                self.on_state(sid, {"state": f"watching {watcher.folders[0]}"})
            watcher.run(stop)
        except Exception as exc:  # noqa: BLE001 - a source's failure is shown, not raised
            log.exception("source %s stopped", sid)
            watcher.status.state = "failed"
            watcher.status.last_error = f"{type(exc).__name__}: {exc}"
            if self.on_state is not None:
                self.on_state(sid, watcher.status.to_dict())

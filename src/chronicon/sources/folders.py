"""Watched folders: every new clip is handed on once, after it is complete.

`FolderWatcher.run(stop)` scans its folders at start (clips that arrived while Chronicon was
down), then follows file events from `watchfiles`. A clip is taken when its size and mtime have
not changed for `settle_s` seconds AND it probes to the end (a file still being copied in is a
truncated video until the copy ends). Temporary names (`*.part`, `*.tmp`, `*.crdownload`,
dotfiles) are ignored until renamed.

Exactly once: each clip's identity (path, size, mtime, SHA-256 of its first and last MiB) is
claimed in SQLite before it is handed on; a restart skips every identity already claimed and
takes again only those a stopped process had taken but not finished. A file that is no video
(or stays truncated) is recorded `failed` with its cause, once: it is tried again only when it
changes.
"""

from __future__ import annotations

import fnmatch
import hashlib
import logging
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import BadParameter, BadVideo, CorruptVideo
from ..store import Store
from ..store.source_records import FAILED, WatchedFile
from ..video.probe import probe

log = logging.getLogger(__name__)

DEFAULT_PATTERNS = ("*.mp4", "*.m4v", "*.mov", "*.mkv", "*.webm", "*.avi", "*.ts")
TEMPORARY_SUFFIXES = (".part", ".tmp", ".crdownload", ".partial", ".download", "~")
HASH_SPAN = 1024 * 1024
DEFAULT_SETTLE_S = 2.0
# A settled file that still probes as truncated may be a copy that paused: it gets this many
# settle periods more before it is recorded as failed.
TRUNCATED_GRACE_SETTLES = 5

OnClip = Callable[[Path, WatchedFile], None]


@dataclass(frozen=True)
class FileIdentity:
    path: str
    size: int
    mtime_ns: int
    digest: str


def file_identity(path: Path) -> FileIdentity:
    """Path, size, mtime and SHA-256 of the first and last MiB (cheap on any file size)."""
    stat = path.stat()
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        digest.update(fh.read(HASH_SPAN))
        if stat.st_size > HASH_SPAN:
            fh.seek(max(HASH_SPAN, stat.st_size - HASH_SPAN))
            digest.update(fh.read(HASH_SPAN))
    return FileIdentity(str(path.resolve()), stat.st_size, stat.st_mtime_ns, digest.hexdigest())


def is_temporary(path: Path) -> bool:
    name = path.name
    return name.startswith(".") or name.lower().endswith(TEMPORARY_SUFFIXES)


def matches(path: Path, patterns: Sequence[str]) -> bool:
    return any(fnmatch.fnmatch(path.name.lower(), p.lower()) for p in patterns)


@dataclass
class _Pending:
    size: int
    mtime_ns: int
    stable_since: float
    first_failure: float | None = None


@dataclass
class FolderState:
    """What the watcher has done, for `GET /api/sources` and the terminal."""

    state: str = "starting"
    pending: int = 0
    taken: int = 0
    failed: int = 0
    last_error: str | None = None
    last_file: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"state": self.state, "pending": self.pending, "taken": self.taken,
                "failed": self.failed, "last_error": self.last_error,
                "last_file": self.last_file}


@dataclass
class FolderWatcher:
    """Hands every complete new clip under `folders` to `on_clip`, once (see module doc)."""

    folders: list[Path]
    store: Store
    on_clip: OnClip
    source: str
    patterns: Sequence[str] = DEFAULT_PATTERNS
    recursive: bool = False
    settle_s: float = DEFAULT_SETTLE_S
    status: FolderState = field(default_factory=FolderState)
    _pending: dict[Path, _Pending] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.folders = [Path(f).expanduser().resolve() for f in self.folders]
        for folder in self.folders:
            if not folder.is_dir():
                raise BadParameter("watch", f"{folder} is not a folder (create it, or give a "
                                            "folder or a stream URL)")
        self.patterns = tuple(self.patterns) or DEFAULT_PATTERNS

    def run(self, stop: threading.Event) -> None:
        """Scan, then follow events until `stop` is set; settles pending files as it goes."""
        import watchfiles

        self._resume_interrupted()
        self.scan()
        self.status.state = "watching"
        self.settle()
        try:
            for changes in watchfiles.watch(*self.folders, stop_event=stop,
                                            recursive=self.recursive, yield_on_timeout=True,
                                            rust_timeout=200, debounce=200, watch_filter=None):
                self.observe(change for change in changes)
                self.settle()
        finally:
            self.status.state = "stopped"

    # ---- steps (public so tests and the benchmark can drive them without threads) --------------
    def scan(self) -> None:
        """Note every candidate file already there."""
        for folder in self.folders:
            entries = folder.rglob("*") if self.recursive else folder.iterdir()
            for path in entries:
                self._note(path)

    def observe(self, changes: Iterable[tuple[Any, str]]) -> None:
        for change, raw in changes:
            path = Path(raw)
            if getattr(change, "name", "") == "deleted":
                self._pending.pop(path, None)
            elif self.recursive or path.parent in self.folders:
                self._note(path)

    def settle(self, now: float | None = None) -> None:
        """Take each pending file that has been still for `settle_s` and probes to the end."""
        now = time.monotonic() if now is None else now
        for path, pending in list(self._pending.items()):
            try:
                stat = path.stat()
            except OSError:
                self._pending.pop(path, None)  # renamed or deleted meanwhile
                continue
            if (stat.st_size, stat.st_mtime_ns) != (pending.size, pending.mtime_ns):
                self._pending[path] = _Pending(stat.st_size, stat.st_mtime_ns, now)
                continue
            if now - pending.stable_since >= self.settle_s:
                self._try_take(path, pending, now)
        self.status.pending = len(self._pending)

    # ---- internals --------------------------------------------------------------------------
    def _note(self, path: Path) -> None:
        if is_temporary(path) or not matches(path, self.patterns) or path in self._pending:
            return
        try:
            if not path.is_file():
                return
            stat = path.stat()
        except OSError:
            return
        self._pending[path] = _Pending(stat.st_size, stat.st_mtime_ns, time.monotonic())

    def _try_take(self, path: Path, pending: _Pending, now: float) -> None:
        try:
            identity = file_identity(path)
        except OSError:
            self._pending.pop(path, None)
            return
        if self.store.watched_file_known(identity.path, identity.size, identity.mtime_ns,
                                         identity.digest):
            self._pending.pop(path, None)  # analysed (or failed) before: exactly once
            return
        try:
            probe(path)
        except CorruptVideo as exc:
            # Truncated: maybe a copy that paused for longer than settle_s. Wait a while more.
            pending.first_failure = pending.first_failure or now
            if now - pending.first_failure < TRUNCATED_GRACE_SETTLES * self.settle_s:
                return
            self._fail(path, identity, exc.message)
            return
        except BadVideo as exc:
            self._fail(path, identity, exc.message)
            return
        self._pending.pop(path, None)
        claimed = self.store.claim_watched_file(identity.path, identity.size,
                                                identity.mtime_ns, identity.digest, self.source)
        if claimed is None:
            return
        self.status.taken += 1
        self.status.last_file = path.name
        log.info("%s: new clip %s", self.source, path.name)
        self.on_clip(path, claimed)

    def _fail(self, path: Path, identity: FileIdentity, message: str) -> None:
        self._pending.pop(path, None)
        claimed = self.store.claim_watched_file(identity.path, identity.size,
                                                identity.mtime_ns, identity.digest, self.source)
        if claimed is not None:
            self.store.finish_watched_file(claimed.id, FAILED, error=message)
        self.status.failed += 1
        self.status.last_error = message
        log.warning("%s: %s is not analysed: %s", self.source, path.name, message)

    def _resume_interrupted(self) -> None:
        """Files a stopped process had taken but not finished: hand them on again."""
        for row in self.store.interrupted_watched_files(self.source):
            path = Path(row.path)
            try:
                same = file_identity(path) == FileIdentity(row.path, row.size, row.mtime_ns,
                                                           row.digest)
            except OSError:
                same = False
            if same:
                self.on_clip(path, row)
            else:
                self.store.finish_watched_file(row.id, FAILED, error="the file changed or "
                                               "disappeared while Chronicon was stopped")

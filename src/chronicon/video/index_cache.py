"""The frame index kept on disk, so a new process does not demux a file it has seen before.

Building a `FrameIndex` reads the whole file (1.6-3 s cold for a 10-minute 1080p clip); a CLI
re-run, a job worker or a restarted server would otherwise pay that again for every file. One
small `.npz` file per file version holds the index (the demux pass and the calibration decode:
everything `probe` derives from reading the whole file).

Location: one process-wide directory, off until `configure(directory)` names one. The edge
does it: `config.load_settings` (every CLI command, `serve`, `worker`) points it at
`Settings.index_cache_dir` (`<data dir>/cache/index`, or `CHRONICON_INDEX_CACHE`; `off`
disables it). Library code and tests that build `Settings` themselves keep the in-memory cache
only, unless they call `configure`.

Safety:
- an entry is looked up by (resolved path, size, mtime in ns, FORMAT_VERSION) and also holds a
  digest of the file's first and last 64 KiB, checked on load: a file rewritten with the same
  size and mtime (`touch -r`, coarse clocks) is indexed again, never served a stale index;
- writes go to a temporary file renamed into place (`os.replace`), so readers see a whole entry
  or none; an unreadable, truncated or foreign entry is deleted and rebuilt;
- at most MAX_ENTRIES entries and MAX_BYTES bytes: a write prunes the least recently used
  (a hit touches its entry's mtime);
- any failure (read-only or full disk) only costs the rebuild: the cache never raises.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import tempfile
import time
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # PyAV is imported only when an index is read: `config` imports this module
    from .frame_index import FrameIndex

log = logging.getLogger(__name__)

# Bump when FrameIndex or the way it is built changes: entries of another version are ignored
# (never read: the version is part of their name) and pruned in time.
FORMAT_VERSION = 2
MAX_ENTRIES = 512
MAX_BYTES = 256 * 2**20
# Bytes digested at each end of the file (the MP4 `moov`, the first and last packets).
_EDGE_BYTES = 64 * 1024
# A temporary file older than this was left by a process that died while writing.
_STALE_TMP_S = 3600.0
_SUFFIX = ".npz"

_directory: Path | None = None
_warned: set[Path] = set()  # folders we could not write to, already reported


def configure(directory: Path | None) -> None:
    """Keep indexes in `directory` (created on first write); None: no disk cache."""
    global _directory
    _directory = Path(directory) if directory is not None else None


def directory() -> Path | None:
    """Where indexes are kept now (None: not on disk)."""
    return _directory


def entry_path(path: str, size: int, mtime_ns: int) -> Path | None:
    """The cache file for this file version, or None when the cache is off."""
    if _directory is None:
        return None
    key = json.dumps([FORMAT_VERSION, path, size, mtime_ns]).encode()
    return _directory / (hashlib.sha256(key).hexdigest()[:32] + _SUFFIX)


def load(path: str, size: int, mtime_ns: int) -> FrameIndex | None:
    """The stored index of this file version, or None (cache off, no entry, unusable entry,
    or a file whose content no longer matches it)."""
    entry = entry_path(path, size, mtime_ns)
    if entry is None or not entry.is_file():
        return None
    try:
        with np.load(entry, allow_pickle=False) as data:
            meta = json.loads(str(data["meta"]))
            if (meta["format"], meta["path"], meta["size"], meta["mtime_ns"]) != (
                    FORMAT_VERSION, path, size, mtime_ns):
                raise ValueError("entry for another file version")
            arrays = {name: data[name] for name in data.files if name != "meta"}
        index = _from_stored(meta, arrays)
    except Exception as exc:  # whatever is wrong with an entry, it is only a cache miss
        log.info("frame index cache: ignoring unreadable %s (%s)", entry.name, exc)
        with contextlib.suppress(OSError):
            entry.unlink()
        return None
    try:
        if meta["edges"] != _edge_digest(Path(path), size):
            return None  # same name, size and mtime, other bytes: the next save replaces it
    except OSError:
        return None
    with contextlib.suppress(OSError):
        os.utime(entry)  # recently used: pruned last
    return index


def save(path: str, size: int, mtime_ns: int, index: FrameIndex) -> None:
    """Store `index` for this file version (atomically); failures are logged, not raised."""
    entry = entry_path(path, size, mtime_ns)
    if entry is None:
        return
    try:
        entry.parent.mkdir(parents=True, exist_ok=True)
        meta = _meta(index) | {"format": FORMAT_VERSION, "path": path, "size": size,
                               "mtime_ns": mtime_ns, "edges": _edge_digest(Path(path), size)}
        fd, tmp = tempfile.mkstemp(dir=entry.parent, prefix=".", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as fh:
                np.savez_compressed(fh, meta=np.array(json.dumps(meta)), **_arrays(index))
            os.replace(tmp, entry)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        prune(entry.parent)
    except OSError as exc:
        # Once per folder: a read-only or full disk would otherwise warn for every new file.
        if entry.parent not in _warned:
            _warned.add(entry.parent)
            log.warning("frame index cache: cannot write to %s (%s); videos are read in full "
                        "again in every new process (CHRONICON_INDEX_CACHE=off silences this)",
                        entry.parent, exc)


def prune(folder: Path, max_entries: int = MAX_ENTRIES, max_bytes: int = MAX_BYTES) -> int:
    """Delete the least recently used entries beyond the bounds (and temporary files left by
    dead writers); return how many entries were deleted."""
    entries: list[tuple[float, int, Path]] = []
    now = time.time()
    for item in folder.iterdir():
        try:
            stat = item.stat()
        except OSError:
            continue  # deleted meanwhile by another process
        if item.suffix == ".tmp" and now - stat.st_mtime > _STALE_TMP_S:
            with contextlib.suppress(OSError):
                item.unlink()
        elif item.suffix == _SUFFIX:
            entries.append((stat.st_mtime, stat.st_size, item))
    entries.sort()  # oldest first
    total = sum(size for _, size, _ in entries)
    removed = 0
    while entries and (len(entries) > max_entries or total > max_bytes):
        _, size, item = entries.pop(0)
        with contextlib.suppress(OSError):
            item.unlink()
        total -= size
        removed += 1
    return removed


def _edge_digest(path: Path, size: int) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        digest.update(fh.read(_EDGE_BYTES))
        if size > _EDGE_BYTES:
            fh.seek(max(_EDGE_BYTES, size - _EDGE_BYTES))
            digest.update(fh.read(_EDGE_BYTES))
    return digest.hexdigest()


# ---- FrameIndex <-> npz ---------------------------------------------------------------------

# (dts, pts) of a keyframe packet may be None: stored as this value with a mask.
_NONE = np.iinfo(np.int64).min


def _meta(index: FrameIndex) -> dict:
    return {"time_base": [index.time_base.numerator, index.time_base.denominator],
            "origin": index.origin, "read_error": index.read_error, "end_time": index.end_time,
            "positioning": index.positioning, "notes": list(index.notes)}


def _arrays(index: FrameIndex) -> dict[str, np.ndarray]:
    keys = list(index.key_packets.items())
    dts = [_NONE if dts is None else dts for (dts, _), _ in keys]
    pts = [_NONE if pts is None else pts for (_, pts), _ in keys]
    return {"pts": index.pts, "keyframe": index.keyframe, "size": index.size,
            "key_dts": np.asarray(dts, dtype=np.int64),
            "key_pts": np.asarray(pts, dtype=np.int64),
            "key_frame": np.asarray([k for _, k in keys], dtype=np.int64)}


def _from_stored(meta: dict, arrays: dict[str, np.ndarray]) -> FrameIndex:
    from .frame_index import FrameIndex

    pts, keyframe, size = arrays["pts"], arrays["keyframe"], arrays["size"]
    if not (pts.dtype == np.int64 and keyframe.dtype == np.bool_ and size.dtype == np.int64
            and pts.ndim == 1 and pts.shape == keyframe.shape == size.shape):
        raise ValueError("arrays of the wrong type or length")
    key_packets = {(None if d == _NONE else int(d), None if p == _NONE else int(p)): int(k)
                   for d, p, k in zip(arrays["key_dts"].tolist(), arrays["key_pts"].tolist(),
                                      arrays["key_frame"].tolist(), strict=True)}
    numerator, denominator = meta["time_base"]
    return FrameIndex(
        pts=pts, keyframe=keyframe, size=size, time_base=Fraction(numerator, denominator),
        origin=int(meta["origin"]), read_error=meta["read_error"],
        end_time=float(meta["end_time"]), positioning=str(meta["positioning"]),
        key_packets=key_packets, notes=tuple(meta["notes"]))

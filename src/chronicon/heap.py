"""Give memory the process has freed back to the system, so its RSS follows what it holds.

glibc's malloc keeps freed memory for reuse: in the arena of the thread that freed it, and
below the top of each heap. A server generates from several threads (jobs, batches, the
embedding worker) with tensors of ever-new sizes, so freed blocks pile up in arenas where the
next request's sizes do not fit: measured on a batch of 4 descriptions of the 256M model, RSS
after each batch climbed 1398 -> 1485 MB over five batches while what was held grew by 14 MB
(1266 -> 1280 MB after `malloc_trim`). `trim_free_memory` after each generation returns it; it
walks the arenas in a few milliseconds. A no-op where the C library is not glibc.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools


@functools.cache
def _malloc_trim():  # noqa: ANN202 - a ctypes function or None
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name)
        trim = libc.malloc_trim
    except (OSError, AttributeError, TypeError):  # musl, macOS, Windows: nothing to call
        return None
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    return trim


def trim_free_memory() -> None:
    """Return freed heap memory of every arena to the system (glibc `malloc_trim(0)`)."""
    trim = _malloc_trim()
    if trim is not None:
        trim(0)

"""Drop the resident pages of a released weight that views the model file's mapping.

transformers loads a safetensors checkpoint whose dtype matches as views into one private
mapping of the file. A weight's pages become resident when first read (packing reads every
Linear weight) and count in the process's RSS until the whole file is unmapped, which happens
only when the LAST weight viewing it is freed: releasing the plain Linear weights alone frees
nothing while the embeddings and norms still view the file. `FilePages.drop` asks the kernel to
drop (madvise DONTNEED) the pages lying wholly inside a released weight, the way llama.cpp
unmaps the fragments of its model mapping it no longer needs.

Two rules keep this safe. Only pages of a file mapping are dropped: a dropped page reads back
from the file if touched again, whereas a dropped anonymous page would read back as zeros (a
weight with memory of its own is simply freed with it). And no page that a kept tensor's
storage touches is dropped: a private page written since the mapping was made would lose the
write. Linux only (/proc/self/maps); elsewhere it drops nothing and the pages go when the
file is unmapped.
"""

from __future__ import annotations

import ctypes
import logging
import mmap
from pathlib import Path

import torch

log = logging.getLogger(__name__)

_MADV_DONTNEED = 4  # the same value on every Linux architecture


def _file_mappings() -> list[tuple[int, int]]:
    """(start, end) of every mapping of a file in this process."""
    try:
        text = Path("/proc/self/maps").read_text()
    except OSError:
        return []
    ranges = []
    for line in text.splitlines():
        fields = line.split(maxsplit=5)
        if len(fields) == 6 and fields[5].startswith("/"):
            start, end = fields[0].split("-")
            ranges.append((int(start, 16), int(end, 16)))
    return ranges


def _storage_range(tensor: torch.Tensor) -> tuple[int, int]:
    storage = tensor.untyped_storage()
    return storage.data_ptr(), storage.data_ptr() + storage.nbytes()


class FilePages:
    """Drops pages of released weights; `dropped_bytes` says how much."""

    def __init__(self) -> None:
        self._mappings: list[tuple[int, int]] | None = None
        self._madvise = None
        self.dropped_bytes = 0

    def drop(self, released: torch.Tensor, keep: list[torch.Tensor]) -> int:
        """Drop the whole pages inside `released`'s bytes when they belong to a file mapping and
        no tensor in `keep` shares them; return the bytes dropped."""
        if released.device.type != "cpu" or not released.is_contiguous():
            return 0
        start = _round_up(released.data_ptr())
        end = _round_down(released.data_ptr() + released.numel() * released.element_size())
        if end <= start or not self._in_file_mapping(start, end):
            return 0
        for tensor in keep:
            if tensor.device.type != "cpu":
                continue
            low, high = _storage_range(tensor)
            if low < end and start < high:
                return 0
        if self._call_madvise(start, end - start) != 0:
            log.debug("madvise failed (errno %d); the pages stay resident", ctypes.get_errno())
            return 0
        self.dropped_bytes += end - start
        return end - start

    def _in_file_mapping(self, start: int, end: int) -> bool:
        if self._mappings is None:
            self._mappings = _file_mappings()
        return any(low <= start and end <= high for low, high in self._mappings)

    def _call_madvise(self, start: int, length: int) -> int:
        if self._madvise is None:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.madvise.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
            libc.madvise.restype = ctypes.c_int
            self._madvise = libc.madvise
        return self._madvise(start, length, _MADV_DONTNEED)


def _round_up(address: int) -> int:
    return -(-address // mmap.PAGESIZE) * mmap.PAGESIZE


def _round_down(address: int) -> int:
    return address // mmap.PAGESIZE * mmap.PAGESIZE

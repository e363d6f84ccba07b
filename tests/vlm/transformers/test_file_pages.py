"""Released weights that view a mapped model file give their resident pages back (Linux)."""

from __future__ import annotations

import mmap
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from chronicon.vlm.transformers.speedups.file_pages import FilePages

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc/self/maps")

MB = 1024 * 1024


def resident_mb(path: Path) -> float:
    """This process's resident memory in mappings of `path` (from /proc/self/smaps)."""
    total, inside = 0, False
    for line in Path("/proc/self/smaps").read_text().splitlines():
        fields = line.split()
        if "-" in fields[0] and len(fields) >= 5:
            inside = len(fields) >= 6 and fields[5] == str(path)
        elif inside and fields[0] == "Rss:":
            total += int(fields[1])
    return total / 1024


@pytest.fixture()
def mapped(tmp_path: Path) -> Iterator[tuple[Path, torch.Tensor, torch.Tensor]]:
    """Two 8 MB bf16 'weights' side by side in one private mapping of a file, as transformers
    maps a safetensors checkpoint, both read once (resident)."""
    path = tmp_path / "weights.bin"
    values = torch.arange(8 * MB, dtype=torch.int32).to(torch.bfloat16)  # 16 MB
    path.write_bytes(values.view(torch.uint8).numpy().tobytes())
    with path.open("rb") as f:
        mapping = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_COPY)
    whole = torch.frombuffer(mapping, dtype=torch.bfloat16)
    first, second = whole[: 4 * MB], whole[4 * MB:]
    assert first.float().sum() and second.float().sum()  # touch every page
    yield path, first, second
    del whole, first, second


def test_a_released_file_weight_leaves_memory_and_reads_back_from_the_file(mapped) -> None:
    path, first, second = mapped
    before = resident_mb(path)
    expected = first.clone()
    pages = FilePages()
    dropped = pages.drop(first, keep=[])
    assert dropped == pages.dropped_bytes >= 8 * MB - 2 * mmap.PAGESIZE
    assert resident_mb(path) <= before - 7.9
    assert torch.equal(first, expected)  # touched again: read back from the file


def test_pages_a_kept_tensor_touches_stay(mapped) -> None:
    path, first, second = mapped
    before = resident_mb(path)
    assert FilePages().drop(first, keep=[first[10:20]]) == 0
    assert resident_mb(path) == pytest.approx(before, abs=0.1)


def test_memory_of_its_own_is_never_dropped() -> None:
    weight = torch.randn(4 * MB).to(torch.bfloat16)
    expected = weight.clone()
    assert FilePages().drop(weight, keep=[]) == 0
    assert torch.equal(weight, expected)

"""Facts about this machine's CPU and GPU that the VLM runtimes decide on. Pure Python: no
torch, so anything may import it.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path


def read_cpu_flags(cpuinfo: Path = Path("/proc/cpuinfo")) -> set[str]:
    """The CPU feature flags Linux reports (empty elsewhere)."""
    try:
        text = cpuinfo.read_text(errors="replace")
    except OSError:
        return set()
    for line in text.splitlines():
        if line.startswith("flags"):
            return set(line.split(":", 1)[1].split())
    return set()


def has_native_bf16(cpu_flags: set[str]) -> bool:
    """bf16 matmuls in hardware (AVX512-BF16 or AMX): there bf16 beats fp32 by ~3x on the vision
    encoder; without them oneDNN emulates bf16 and fp32 is the faster choice."""
    return bool({"avx512_bf16", "amx_bf16"} & cpu_flags)


@lru_cache(maxsize=1)
def cpu_flags() -> frozenset[str]:
    """This machine's CPU flags, read once."""
    return frozenset(read_cpu_flags())


def nvidia_gpu_present(proc: Path = Path("/proc/driver/nvidia/gpus"),
                       dev: Path = Path("/dev")) -> bool:
    """An NVIDIA driver reports a GPU (Linux): asked before importing torch, which costs
    ~300 MB of memory to learn that CUDA is absent."""
    try:
        if proc.is_dir() and any(proc.iterdir()):
            return True
    except OSError:
        pass
    return (dev / "nvidia0").exists()


def usable_cores() -> int:
    """Cores this process may run on (its affinity mask, not the machine's count)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1

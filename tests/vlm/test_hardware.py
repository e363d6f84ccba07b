"""The neutral hardware facts (no torch needed)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from chronicon.hardware import has_native_bf16, nvidia_gpu_present, read_cpu_flags, usable_cores


def test_native_bf16_needs_avx512_bf16_or_amx(tmp_path: Path) -> None:
    assert has_native_bf16({"avx2", "avx512f", "avx512_bf16"})
    assert has_native_bf16({"amx_bf16", "amx_tile"})
    assert not has_native_bf16({"avx2", "avx512f", "avx512bw"})
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nflags\t\t: fpu sse2 avx2 amx_bf16\nbugs\t\t: none\n")
    assert read_cpu_flags(cpuinfo) == {"fpu", "sse2", "avx2", "amx_bf16"}
    assert read_cpu_flags(tmp_path / "missing") == set()


def test_an_nvidia_gpu_is_seen_from_the_driver_files(tmp_path: Path) -> None:
    proc, dev = tmp_path / "gpus", tmp_path / "dev"
    proc.mkdir()
    dev.mkdir()
    assert not nvidia_gpu_present(proc, dev)  # a driver loaded without a GPU
    (proc / "0000:01:00.0").mkdir()
    assert nvidia_gpu_present(proc, dev)
    assert nvidia_gpu_present(tmp_path / "absent", _with_device(dev))
    assert not nvidia_gpu_present(tmp_path / "absent", tmp_path / "absent")


def _with_device(dev: Path) -> Path:
    (dev / "nvidia0").touch()
    return dev


def test_usable_cores_is_the_affinity_mask() -> None:
    assert usable_cores() >= 1


def test_importing_hardware_and_the_registry_loads_no_torch() -> None:
    code = ("import sys, chronicon.hardware, chronicon.vlm, chronicon.config; "
            "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"

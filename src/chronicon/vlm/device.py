"""Where and at which precision a model runs: pure decisions, testable without the hardware.

Every function here takes what it needs to know about the machine as arguments (CUDA device
count, bf16 support, CPU flags, whether bitsandbytes imports), so the CUDA-only branches are
exercised by tests on a CPU-only machine. `probe_machine()` gathers those facts once.
"""

from __future__ import annotations

import importlib.util
import re
from dataclasses import dataclass
from pathlib import Path

import torch

from ..errors import BadParameter

QUANT_NONE = "none"
QUANT_4BIT = "4bit-nf4"
QUANT_8BIT = "8bit"

# On CUDA, `auto` quantizes to 4-bit from this size up: below it the weights are under ~2 GB in
# bf16, 4-bit saves little memory and bitsandbytes' dequantization slows every decode step.
AUTO_4BIT_MIN_PARAMETERS = 1_000_000_000

_DEVICE_RE = re.compile(r"^(auto|cpu|mps|cuda)(?::(\d+))?$")


@dataclass(frozen=True)
class Machine:
    """What the placement decisions need to know about this machine."""

    cuda_device_count: int
    cuda_bf16: bool
    mps_available: bool
    cpu_native_bf16: bool
    bitsandbytes_available: bool


@dataclass(frozen=True)
class QuantizationChoice:
    mode: str  # QUANT_NONE, QUANT_4BIT or QUANT_8BIT
    reason: str

    @property
    def quantized(self) -> bool:
        return self.mode != QUANT_NONE


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


def probe_machine() -> Machine:
    cuda_count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    mps = bool(getattr(torch.backends, "mps", None) and torch.backends.mps.is_available())
    return Machine(
        cuda_device_count=cuda_count,
        cuda_bf16=bool(cuda_count and torch.cuda.is_bf16_supported()),
        mps_available=mps,
        cpu_native_bf16=has_native_bf16(read_cpu_flags()),
        bitsandbytes_available=importlib.util.find_spec("bitsandbytes") is not None,
    )


def choose_device(requested: str | None, cuda_device: int | None, machine: Machine) -> str:
    """`auto` picks cuda > mps > cpu; `cuda` or `auto` on a CUDA machine means `cuda:<cuda_device>`
    (default 0); `cuda:N` is taken as given. A device that is not there is a bad parameter."""
    text = (requested or "auto").strip().lower()
    match = _DEVICE_RE.match(text)
    if not match:
        raise BadParameter("device", f"{requested!r} is not one of auto, cpu, mps, cuda, cuda:N")
    kind, index_text = match.groups()
    if index_text is not None and kind != "cuda":
        raise BadParameter("device", f"only cuda takes an index, not {requested!r}")
    if cuda_device is not None and cuda_device < 0:
        raise BadParameter("cuda_device", f"must be 0 or more, got {cuda_device}")
    if kind == "auto":
        if machine.cuda_device_count:
            kind = "cuda"
        elif machine.mps_available:
            return "mps"
        else:
            return "cpu"
    if kind == "cpu":
        return "cpu"
    if kind == "mps":
        if not machine.mps_available:
            raise BadParameter("device", "mps requested but Apple MPS is not available here")
        return "mps"
    index = int(index_text) if index_text is not None else (cuda_device or 0)
    if not machine.cuda_device_count:
        raise BadParameter("device", "CUDA requested but no CUDA GPU is available "
                                     "(use --device cpu, or install a CUDA build of torch)")
    if index >= machine.cuda_device_count:
        raise BadParameter("cuda_device", f"cuda:{index} does not exist; this machine has "
                                          f"{machine.cuda_device_count} CUDA device(s)")
    return f"cuda:{index}"


def choose_dtype(device: str, machine: Machine) -> torch.dtype:
    """One dtype for the whole model (mixing vision and text dtypes breaks `masked_scatter`)."""
    if device.startswith("cuda"):
        return torch.bfloat16 if machine.cuda_bf16 else torch.float16
    if device == "mps":
        return torch.float16
    return torch.bfloat16 if machine.cpu_native_bf16 else torch.float32


def choose_quantization(requested: str, device: str, parameters: int | None,
                        machine: Machine) -> QuantizationChoice:
    """`requested` is the setting: auto, 4bit, 8bit or none. bitsandbytes also loads on CPU, so
    the choice is made from the device, never by waiting for a load to fail."""
    if requested == "none":
        return QuantizationChoice(QUANT_NONE, "disabled (--no-quant / CHRONICON_QUANTIZATION=none)")
    if not device.startswith("cuda"):
        return QuantizationChoice(QUANT_NONE, f"bitsandbytes quantization needs CUDA; "
                                              f"running unquantized on {device}")
    if not machine.bitsandbytes_available:
        return QuantizationChoice(QUANT_NONE, "bitsandbytes is not installed "
                                              "(pip install 'chronicon[gpu]'); running unquantized")
    if requested == "4bit":
        return QuantizationChoice(QUANT_4BIT, "4-bit NF4 requested")
    if requested == "8bit":
        return QuantizationChoice(QUANT_8BIT, "8-bit requested")
    if parameters is None or parameters >= AUTO_4BIT_MIN_PARAMETERS:
        size = "unknown size" if parameters is None else f"{parameters / 1e9:.1f}B parameters"
        return QuantizationChoice(QUANT_4BIT, f"{size} on CUDA: 4-bit NF4 cuts weight memory ~4x")
    return QuantizationChoice(QUANT_NONE, f"small model ({parameters / 1e6:.0f}M parameters): "
                                          "4-bit would save little memory and slow decoding")


def dtype_name(dtype: torch.dtype) -> str:
    return {torch.float32: "float32", torch.bfloat16: "bfloat16",
            torch.float16: "float16"}.get(dtype, str(dtype).removeprefix("torch."))

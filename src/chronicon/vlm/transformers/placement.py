"""Where and at which precision a transformers model runs, and whether it will fit: pure
decisions, testable without the hardware.

Every function here takes what it needs to know about the machine as arguments (CUDA device
count, bf16 support, CPU flags, whether bitsandbytes imports), so the CUDA-only branches are
exercised by tests on a CPU-only machine. `probe_machine()` gathers those facts once.

The memory check is an estimate made before loading, against the memory free on the device,
deliberately simple and a little generous: weights at the chosen precision, a per-frame
allowance for the vision encoder's activations and the KV cache, and a fixed runtime overhead.
`plan_precision` walks down to a smaller precision when one is allowed, and raises
`InsufficientMemory` (exit 3) with the numbers when nothing fits, instead of an OOM crash.
"""

from __future__ import annotations

import importlib.util
import re
from dataclasses import dataclass

import psutil
import torch

from ...errors import BadParameter, InsufficientMemory
from ...hardware import cpu_flags, has_native_bf16

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


def probe_machine() -> Machine:
    cuda_count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    mps = bool(getattr(torch.backends, "mps", None) and torch.backends.mps.is_available())
    return Machine(
        cuda_device_count=cuda_count,
        cuda_bf16=bool(cuda_count and torch.cuda.is_bf16_supported()),
        mps_available=mps,
        cpu_native_bf16=has_native_bf16(set(cpu_flags())),
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


# ---- will it fit? ----------------------------------------------------------------------------

GIB = 1024**3
MIB = 1024**2

# Bytes per parameter at each precision; the quantized figures include bitsandbytes' scales and
# the layers it leaves unquantized (embeddings, norms, vision convolutions).
_BYTES_PER_PARAMETER = {
    "float32": 4.0, "bfloat16": 2.0, "float16": 2.0, QUANT_8BIT: 1.15, QUANT_4BIT: 0.65,
}
# A 512-px frame is 1024 vision patches; peak activations through the SigLIP encoder plus the 64
# tokens it adds to the KV cache stay well under this at bf16 for every SmolVLM2 size.
PER_FRAME_BYTES = 96 * MIB
RUNTIME_OVERHEAD_BYTES = 512 * MIB


@dataclass(frozen=True)
class MemoryEstimate:
    precision: str
    weights_bytes: int
    activation_bytes: int

    @property
    def total_bytes(self) -> int:
        return self.weights_bytes + self.activation_bytes


@dataclass(frozen=True)
class PrecisionPlan:
    dtype: torch.dtype
    quantization: QuantizationChoice
    estimate: MemoryEstimate | None


def precision_label(dtype: torch.dtype, quantization: QuantizationChoice) -> str:
    return quantization.mode if quantization.quantized else dtype_name(dtype)


def estimate_memory(parameters: int, precision: str, frames: int) -> MemoryEstimate:
    weights = int(parameters * _BYTES_PER_PARAMETER[precision])
    activations = RUNTIME_OVERHEAD_BYTES + frames * PER_FRAME_BYTES + weights // 10
    return MemoryEstimate(precision, weights, activations)


def available_memory(device: str) -> int:
    """Bytes free where the weights will live (MPS shares the system's memory)."""
    if device.startswith("cuda"):
        free, _total = torch.cuda.mem_get_info(torch.device(device))
        return int(free)
    return int(psutil.virtual_memory().available)


def _candidates(dtype: torch.dtype, quantization: QuantizationChoice, device: str,
                quantization_setting: str, bitsandbytes_available: bool
                ) -> list[tuple[torch.dtype, QuantizationChoice]]:
    """The chosen precision first, then the smaller ones we are allowed to fall back to."""
    out = [(dtype, quantization)]
    if device.startswith("cuda"):
        if quantization_setting == "auto" and bitsandbytes_available:
            for mode in (QUANT_8BIT, QUANT_4BIT):
                if _BYTES_PER_PARAMETER[mode] < _BYTES_PER_PARAMETER[precision_label(*out[-1])]:
                    out.append((dtype, QuantizationChoice(
                        mode, f"{mode}: the unquantized model would not fit in free GPU memory")))
    elif dtype == torch.float32:
        out.append((torch.bfloat16, QuantizationChoice(
            QUANT_NONE, "bfloat16: float32 weights would not fit in free memory")))
    return out


def plan_precision(parameters: int | None, frames: int, device: str, dtype: torch.dtype,
                   quantization: QuantizationChoice, quantization_setting: str,
                   bitsandbytes_available: bool, model_id: str,
                   available: int | None = None) -> PrecisionPlan:
    """Keep the chosen precision when it fits, else the first smaller allowed one that does;
    raise InsufficientMemory naming the model, what it needs and what is free."""
    if parameters is None:
        return PrecisionPlan(dtype, quantization, None)
    free = available_memory(device) if available is None else available
    tried: list[MemoryEstimate] = []
    for cand_dtype, cand_quant in _candidates(dtype, quantization, device, quantization_setting,
                                              bitsandbytes_available):
        estimate = estimate_memory(parameters, precision_label(cand_dtype, cand_quant), frames)
        if estimate.total_bytes <= free:
            return PrecisionPlan(cand_dtype, cand_quant, estimate)
        tried.append(estimate)
    needs = ", ".join(f"{e.total_bytes / GIB:.2f} GiB at {e.precision}" for e in tried)
    raise InsufficientMemory(
        f"not enough memory for {model_id} with {frames} frames on {device}: needs about "
        f"{needs}; {free / GIB:.2f} GiB free. Use fewer frames (--frames), a smaller model "
        f"(--model 256m), or free memory{_hint(device, quantization_setting)}")


def _hint(device: str, quantization_setting: str) -> str:
    if device.startswith("cuda") and quantization_setting == "none":
        return " (or allow quantization: drop --no-quant)"
    return ""


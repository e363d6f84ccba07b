"""Will the model fit? An estimate made before loading, against the memory free on the device.

The estimate is deliberately simple and a little generous: weights at the chosen precision, a
per-frame allowance for the vision encoder's activations and the KV cache, and a fixed runtime
overhead. `plan_precision` walks down to a smaller precision when one is allowed, and raises
`InsufficientMemory` (exit 3) with the numbers when nothing fits, instead of an OOM crash.
"""

from __future__ import annotations

from dataclasses import dataclass

import psutil
import torch

from ..errors import InsufficientMemory
from .device import QUANT_4BIT, QUANT_8BIT, QUANT_NONE, QuantizationChoice, dtype_name

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


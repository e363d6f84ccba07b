"""The memory check: estimate, fall back to a smaller precision, or refuse clearly."""

from __future__ import annotations

import pytest
import torch

from chronicon.errors import InsufficientMemory
from chronicon.vlm.transformers.placement import (
    GIB,
    QUANT_4BIT,
    QUANT_8BIT,
    QUANT_NONE,
    QuantizationChoice,
    available_memory,
    estimate_memory,
    plan_precision,
)

NONE = QuantizationChoice(QUANT_NONE, "chosen")
B22 = 2_250_000_000


def test_estimate_grows_with_precision_and_frames() -> None:
    fp32 = estimate_memory(B22, "float32", 8)
    bf16 = estimate_memory(B22, "bfloat16", 8)
    nf4 = estimate_memory(B22, QUANT_4BIT, 8)
    assert fp32.weights_bytes == 2 * bf16.weights_bytes == 4 * B22
    assert nf4.weights_bytes < bf16.weights_bytes / 3
    assert estimate_memory(B22, "bfloat16", 16).total_bytes > bf16.total_bytes


def test_the_chosen_precision_is_kept_when_it_fits() -> None:
    plan = plan_precision(B22, 16, "cuda:0", torch.bfloat16, NONE, "auto", True, "m",
                          available=40 * GIB)
    assert (plan.dtype, plan.quantization) == (torch.bfloat16, NONE)
    assert plan.estimate is not None and plan.estimate.precision == "bfloat16"


def test_cuda_falls_back_to_8bit_then_4bit_when_allowed() -> None:
    plan = plan_precision(B22, 16, "cuda:0", torch.bfloat16, NONE, "auto", True, "m",
                          available=5 * GIB)
    assert plan.quantization.mode == QUANT_8BIT
    assert "would not fit" in plan.quantization.reason
    plan = plan_precision(B22, 16, "cuda:0", torch.bfloat16, NONE, "auto", True, "m",
                          available=4 * GIB)
    assert plan.quantization.mode == QUANT_4BIT


def test_no_quant_or_no_bitsandbytes_means_a_clear_refusal() -> None:
    with pytest.raises(InsufficientMemory) as info:
        plan_precision(B22, 16, "cuda:0", torch.bfloat16, NONE, "none", True, "some/model",
                       available=2 * GIB)
    message = info.value.message
    assert "some/model" in message and "2.00 GiB free" in message and "--no-quant" in message
    assert info.value.exit_code == 3
    with pytest.raises(InsufficientMemory):
        plan_precision(B22, 16, "cuda:0", torch.bfloat16, NONE, "auto", False, "m",
                       available=2 * GIB)


def test_cpu_falls_back_from_float32_to_bfloat16() -> None:
    plan = plan_precision(B22, 8, "cpu", torch.float32, NONE, "auto", True, "m",
                          available=8 * GIB)
    assert plan.dtype == torch.bfloat16 and "float32 weights would not fit" in (
        plan.quantization.reason)
    with pytest.raises(InsufficientMemory, match="--frames"):
        plan_precision(B22, 8, "cpu", torch.float32, NONE, "auto", True, "m", available=GIB)


def test_unknown_size_skips_the_check() -> None:
    plan = plan_precision(None, 8, "cpu", torch.float32, NONE, "auto", True, "m", available=1)
    assert plan.estimate is None and plan.dtype == torch.float32


def test_cpu_memory_is_measured() -> None:
    assert available_memory("cpu") > 0

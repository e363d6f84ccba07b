"""Placement and precision decisions, CUDA branches included, without a GPU."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from chronicon.errors import BadParameter
from chronicon.vlm.transformers.placement import (
    QUANT_4BIT,
    QUANT_8BIT,
    QUANT_NONE,
    Machine,
    choose_device,
    choose_dtype,
    choose_quantization,
)

CPU_ONLY = Machine(cuda_device_count=0, cuda_bf16=False, mps_available=False,
                   cpu_native_bf16=False, bitsandbytes_available=True)
TWO_GPUS = replace(CPU_ONLY, cuda_device_count=2, cuda_bf16=True)
MAC = replace(CPU_ONLY, mps_available=True, bitsandbytes_available=False)


@pytest.mark.parametrize(("requested", "cuda_device", "machine", "expected"), [
    ("auto", 0, CPU_ONLY, "cpu"),
    (None, None, CPU_ONLY, "cpu"),
    ("auto", 0, MAC, "mps"),
    ("auto", 0, TWO_GPUS, "cuda:0"),
    ("auto", 1, TWO_GPUS, "cuda:1"),
    ("cuda", 1, TWO_GPUS, "cuda:1"),
    ("cuda:1", 0, TWO_GPUS, "cuda:1"),  # an explicit index wins over --cuda-device
    ("CPU", 1, TWO_GPUS, "cpu"),
    ("mps", 0, MAC, "mps"),
    ("auto", 5, CPU_ONLY, "cpu"),  # --cuda-device only matters when CUDA is used
])
def test_choose_device(requested: str | None, cuda_device: int | None, machine: Machine,
                       expected: str) -> None:
    assert choose_device(requested, cuda_device, machine) == expected


@pytest.mark.parametrize(("requested", "cuda_device", "machine", "field", "needle"), [
    ("cuda", 0, CPU_ONLY, "device", "no CUDA GPU"),
    ("cuda:2", 0, TWO_GPUS, "cuda_device", "cuda:2 does not exist"),
    ("auto", 2, TWO_GPUS, "cuda_device", "2 CUDA device"),
    ("auto", -1, TWO_GPUS, "cuda_device", "0 or more"),
    ("mps", 0, CPU_ONLY, "device", "MPS is not available"),
    ("tpu", 0, CPU_ONLY, "device", "not one of"),
    ("cpu:1", 0, CPU_ONLY, "device", "only cuda takes an index"),
])
def test_impossible_devices_are_bad_parameters(requested: str, cuda_device: int,
                                               machine: Machine, field: str,
                                               needle: str) -> None:
    with pytest.raises(BadParameter) as info:
        choose_device(requested, cuda_device, machine)
    assert info.value.name == field
    assert needle in info.value.message


def test_dtype_follows_the_hardware() -> None:
    assert choose_dtype("cuda:0", TWO_GPUS) == torch.bfloat16
    assert choose_dtype("cuda:0", replace(TWO_GPUS, cuda_bf16=False)) == torch.float16
    assert choose_dtype("mps", MAC) == torch.float16
    assert choose_dtype("cpu", CPU_ONLY) == torch.float32
    assert choose_dtype("cpu", replace(CPU_ONLY, cpu_native_bf16=True)) == torch.bfloat16


@pytest.mark.parametrize(("requested", "device", "parameters", "machine", "mode", "needle"), [
    # CPU and MPS never quantize, whatever is asked: bitsandbytes loads there but is not wanted.
    ("auto", "cpu", 2_250_000_000, CPU_ONLY, QUANT_NONE, "needs CUDA"),
    ("4bit", "cpu", 256_000_000, CPU_ONLY, QUANT_NONE, "needs CUDA"),
    ("8bit", "mps", 256_000_000, MAC, QUANT_NONE, "needs CUDA"),
    # CUDA: large models get 4-bit NF4 by default, small ones stay in bf16.
    ("auto", "cuda:0", 2_250_000_000, TWO_GPUS, QUANT_4BIT, "2.2B parameters"),
    ("auto", "cuda:0", None, TWO_GPUS, QUANT_4BIT, "unknown size"),
    ("auto", "cuda:0", 256_000_000, TWO_GPUS, QUANT_NONE, "small model"),
    ("4bit", "cuda:1", 256_000_000, TWO_GPUS, QUANT_4BIT, "requested"),
    ("8bit", "cuda:0", 256_000_000, TWO_GPUS, QUANT_8BIT, "requested"),
    ("none", "cuda:0", 2_250_000_000, TWO_GPUS, QUANT_NONE, "--no-quant"),
    # No bitsandbytes: fall back and say so.
    ("4bit", "cuda:0", 2_250_000_000, replace(TWO_GPUS, bitsandbytes_available=False),
     QUANT_NONE, "not installed"),
])
def test_quantization_choice(requested: str, device: str, parameters: int | None,
                             machine: Machine, mode: str, needle: str) -> None:
    choice = choose_quantization(requested, device, parameters, machine)
    assert choice.mode == mode
    assert choice.quantized == (mode != QUANT_NONE)
    assert needle in choice.reason

"""Prepacked bf16 Linear layers give exactly the results of plain ones."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from transformers import AutoModelForImageTextToText

from chronicon.vlm.cpu_linear import can_prepack, prepack_linears

pytestmark = pytest.mark.skipif(not can_prepack(torch.bfloat16, "cpu"),
                                reason="this torch build has no oneDNN linear prepacking")


def load(model_dir: Path):
    return AutoModelForImageTextToText.from_pretrained(model_dir, dtype=torch.bfloat16).eval()


def test_generation_is_bit_identical(tiny_model_dir: Path) -> None:
    plain, packed = load(tiny_model_dir), load(tiny_model_dir)
    n_linear = sum(type(m) is torch.nn.Linear for m in packed.modules())
    assert prepack_linears(packed) == n_linear > 0
    ids = torch.randint(0, 300, (1, 40), generator=torch.Generator().manual_seed(2))
    pixels = torch.randn(1, 2, 3, 32, 32, dtype=torch.bfloat16)
    with torch.inference_mode():
        outs = [m.generate(input_ids=ids, attention_mask=torch.ones_like(ids),
                           max_new_tokens=10, min_new_tokens=10, do_sample=False,
                           output_logits=True, return_dict_in_generate=True)
                for m in (plain, packed)]
        vision = [m.model.vision_model(pixel_values=pixels[0]).last_hidden_state
                  for m in (plain, packed)]
    assert torch.equal(outs[0].sequences, outs[1].sequences)
    for a, b in zip(outs[0].logits, outs[1].logits, strict=True):
        assert torch.equal(a, b)
    assert torch.equal(vision[0], vision[1])


def test_no_packing_when_memory_is_short(tiny_model_dir: Path) -> None:
    model = load(tiny_model_dir)
    assert prepack_linears(model, available_bytes=10 * 1024**2) == 0
    assert all("forward" not in vars(m) for m in model.modules())


def test_only_bf16_on_cpu() -> None:
    assert not can_prepack(torch.float32, "cpu")
    assert not can_prepack(torch.bfloat16, "cuda:0")

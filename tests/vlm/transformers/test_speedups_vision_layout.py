"""Contiguous vision embeddings change only the memory layout: bit-identical encoder output."""

from __future__ import annotations

from pathlib import Path

import torch
from transformers import AutoModelForImageTextToText

from chronicon.vlm.transformers.speedups.vision_layout import make_vision_embeddings_contiguous


def test_vision_output_is_bit_identical_and_embeddings_contiguous(tiny_model_dir: Path) -> None:
    plain, hooked = (AutoModelForImageTextToText.from_pretrained(tiny_model_dir,
                                                                  dtype=torch.float32).eval()
                     for _ in range(2))
    assert make_vision_embeddings_contiguous(hooked) == 1
    pixels = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(3))
    mask = torch.ones(2, 32 // plain.config.vision_config.patch_size,
                      32 // plain.config.vision_config.patch_size, dtype=torch.bool)
    with torch.inference_mode():
        embedded = hooked.model.vision_model.embeddings(pixels, mask)
        outs = [m.model.vision_model(pixel_values=pixels).last_hidden_state
                for m in (plain, hooked)]
    assert embedded.is_contiguous()
    assert torch.equal(outs[0], outs[1])


def test_a_model_without_vision_embeddings_is_left_alone() -> None:
    assert make_vision_embeddings_contiguous(torch.nn.Sequential(torch.nn.Linear(2, 2))) == 0

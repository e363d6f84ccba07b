"""Frames encoded a few per pass give the features of one pass over all of them."""

from __future__ import annotations

from pathlib import Path

import torch
from transformers import AutoModelForImageTextToText

from chronicon.vlm.transformers.speedups.vision_chunks import encode_frames_in_passes


def test_features_are_bit_identical_to_one_pass(tiny_model_dir: Path) -> None:
    def load():
        return AutoModelForImageTextToText.from_pretrained(tiny_model_dir,
                                                           dtype=torch.float32).eval()

    whole, passes = load(), load()
    assert encode_frames_in_passes(passes, frames_per_pass=2) == 1
    size = whole.config.vision_config.image_size
    pixels = torch.randn(1, 5, 3, size, size, generator=torch.Generator().manual_seed(3))
    pixels[0, 4] = 0  # a padding frame (all zeros) among them, as a batch has
    mask = torch.ones(1, 5, size, size, dtype=torch.bool)
    mask[0, 1, :, size // 2:] = False  # a frame with padded pixels
    with torch.inference_mode():
        expected = whole.model.get_image_features(pixels, mask).pooler_output
        got = passes.model.get_image_features(pixels, mask).pooler_output
        # A call asking for hidden states runs in one pass and still answers.
        states = passes.model.vision_model(pixels[0, :3], output_hidden_states=True)
    assert len(got) == len(expected) == 1
    assert torch.equal(got[0], expected[0])
    assert states.hidden_states is not None and states.last_hidden_state.shape[0] == 3

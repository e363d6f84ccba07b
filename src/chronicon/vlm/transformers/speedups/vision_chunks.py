"""Encode the frames a few at a time on CPU, so a batch does not multiply the encoder's memory.

transformers hands every frame of every request to the vision encoder in one pass. With 4
clips of 4 frames that is 16 x 1024 patches, and the encoder's activations (MLP intermediate,
attention) peaked 362 MB above the loaded 256M model here, against 149 MB for 4 frames and
44 MB for 1. Each frame is encoded on its own (attention stays within a frame, the patch mask
is per frame), so passes of `FRAMES_PER_PASS` give bit-identical features, and on this CPU at
the same speed (16 frames: 12.6 s in one pass, 12.6-12.9 s two at a time; the GEMMs of 2 x 1024
patches already fill the cores). On a GPU one big pass is what keeps the device busy, so this
is for CPU only.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn
from transformers.utils import ModelOutput

FRAMES_PER_PASS = 2


def _in_passes(forward: Callable[..., Any], frames_per_pass: int) -> Callable[..., Any]:
    def chunked(pixel_values: torch.Tensor, patch_attention_mask: torch.Tensor | None = None,
                **kwargs: Any) -> Any:
        extras = kwargs.get("output_attentions") or kwargs.get("output_hidden_states")
        if pixel_values.shape[0] <= frames_per_pass or extras or kwargs.get("return_dict") is False:
            return forward(pixel_values, patch_attention_mask, **kwargs)
        def one_pass(start: int) -> Any:
            part = slice(start, start + frames_per_pass)
            mask = None if patch_attention_mask is None else patch_attention_mask[part]
            return forward(pixel_values[part], mask, **kwargs)

        merged = one_pass(0)
        if not isinstance(merged, ModelOutput):  # a tuple: fields unknown, one pass
            return forward(pixel_values, patch_attention_mask, **kwargs)
        outputs = [merged] + [one_pass(start) for start in
                              range(frames_per_pass, pixel_values.shape[0], frames_per_pass)]
        for key in ("last_hidden_state", "pooler_output"):
            if isinstance(merged.get(key), torch.Tensor):
                merged[key] = torch.cat([out[key] for out in outputs])
        return merged

    return chunked


def encode_frames_in_passes(model: nn.Module, frames_per_pass: int = FRAMES_PER_PASS) -> int:
    """Make every vision transformer in `model` (class name ending in `VisionTransformer`, with
    `embeddings` and `encoder`) encode at most `frames_per_pass` frames per pass; return how many
    were changed. Its `last_hidden_state` and `pooler_output` are joined; a call asking for
    attentions or hidden states runs in one pass."""
    changed = 0
    for module in model.modules():
        if (type(module).__name__.endswith("VisionTransformer")
                    and hasattr(module, "embeddings") and hasattr(module, "encoder")):
            module.forward = _in_passes(module.forward, frames_per_pass)  # type: ignore[method-assign]
            changed += 1
    return changed


__all__ = ["encode_frames_in_passes", "FRAMES_PER_PASS"]

"""Keep the vision encoder's activations in plain row-major layout.

SigLIP-style embeddings end with `conv(pixels).flatten(2).transpose(1, 2)`: a (frames, patches,
hidden) view whose memory is (frames, hidden, patches). Element-wise ops keep their input's
layout, so every residual add downstream produces that transposed layout again and every
LayerNorm first copies its input to contiguous memory: 25 transposing copies of a
(patches x 768) tensor plus slow strided adds, ~0.15 s of the ~2.9 s a 4-frame encoder pass took
here. One copy right after the embeddings removes them. Only the memory layout changes, so the
results are bit-identical.
"""

from __future__ import annotations

from typing import Any

from torch import Tensor, nn


def _contiguous_output(module: nn.Module, args: Any, output: Any) -> Any:
    return output.contiguous() if isinstance(output, Tensor) else output


def make_vision_embeddings_contiguous(model: nn.Module) -> int:
    """Hook every vision-embeddings module in `model` (class name ending in
    `VisionEmbeddings`) so its output is contiguous; return how many were hooked."""
    hooked = 0
    for module in model.modules():
        if type(module).__name__.endswith("VisionEmbeddings"):
            module.register_forward_hook(_contiguous_output)
            hooked += 1
    return hooked

"""CPU speed-ups and memory savings for a loaded transformers model, behind ONE entry point.

Each trick patches transformers internals (module and attribute names, classes, the attention
registry), is checked against the plain behaviour by a test (bit-identical, or within bf16
rounding), and is documented with its measurements in its own module:

- `attention.py`: SDPA, but a cheaper single-query path for decode steps (CPU only);
- `vision_layout.py`: row-major vision activations (bit-identical; any device);
- `linear.py`: bf16 Linear weights prepacked for oneDNN, fused q/k/v and gate/up, GELU as a
  post-op (CPU, bf16, not under torch.compile or quantization); the plain weights are released
  (`file_pages.py` drops their pages of the model file's mapping);
- `vision_chunks.py`: the vision encoder takes 2 frames per pass (CPU; bit-identical, the same
  speed, a batch's activations no longer grow with its frames).

`apply_cpu_speedups` applies what fits and returns the names of what it applied; the backend
records them in `BackendInfo.speedups`. Removing this folder and that one call removes them all.
"""

from __future__ import annotations

import logging

import torch
from torch import nn

from .attention import ATTENTION_IMPLEMENTATION, use_decode_attention
from .linear import can_prepack, prepack_linears
from .vision_chunks import FRAMES_PER_PASS, encode_frames_in_passes
from .vision_layout import make_vision_embeddings_contiguous

log = logging.getLogger(__name__)

DECODE_ATTENTION = "decode-attention"
CONTIGUOUS_VISION = "contiguous-vision"
PREPACKED_LINEARS = "prepacked-linears"
VISION_IN_PASSES = f"vision-{FRAMES_PER_PASS}-frames-per-pass"


def apply_cpu_speedups(model: nn.Module, *, dtype: torch.dtype, device: str,
                       compiling: bool = False, quantized: bool = False) -> list[str]:
    """Patch `model` (loaded, in eval mode) with every speed-up that fits; what was applied."""
    applied: list[str] = []
    if device == "cpu" and use_decode_attention(model):
        applied.append(DECODE_ATTENTION)
    # Not under torch.compile: the loop over a batch's frames would be traced per frame count.
    if device == "cpu" and not compiling and encode_frames_in_passes(model):
        applied.append(VISION_IN_PASSES)
    if make_vision_embeddings_contiguous(model):  # no transposed copies per layer
        applied.append(CONTIGUOUS_VISION)
    # Not under torch.compile: inductor needs plain weights (it packs them itself).
    if can_prepack(dtype, device) and not quantized and not compiling:
        try:
            if prepack_linears(model):
                applied.append(PREPACKED_LINEARS)
        except RuntimeError as exc:  # an unusual torch build: plain F.linear still works
            log.warning("could not prepack Linear weights (%s)", str(exc).splitlines()[0])
    return applied


__all__ = ["apply_cpu_speedups", "ATTENTION_IMPLEMENTATION", "DECODE_ATTENTION",
           "CONTIGUOUS_VISION", "PREPACKED_LINEARS",
           "VISION_IN_PASSES"]

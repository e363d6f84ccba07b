"""SDPA everywhere, except single-token decode steps on CPU.

PyTorch's CPU SDPA kernel has a high fixed cost per call in bf16 (~0.3 ms for one query against
a few hundred keys, measured here, against ~0.09 ms for the plain matmul-softmax-matmul). A
decode step makes one call per layer (30 for SmolVLM2-256M), so that fixed cost alone was ~15%
of every generated token. Prefill and the vision encoder (many queries) keep SDPA, which is
where it wins by far (eager attention is ~9x slower end to end).

The decode path computes in fp32 (the cache is bf16). A bf16 `matmul` goes to oneDNN, which
builds and keeps (ideep's LRU cache, 1024 entries) a primitive for every new shape, and the
key length is new at every step: ~0.5 MB each, so a server's memory climbed by up to ~500 MB
(measured: +555 MB over 1,200 key lengths, +261 MB in one 150-token description). fp32 goes
to MKL's sgemm, which caches nothing per shape, and was faster here too (40-41 against 45-49
ms per token for 4 frames + 150 tokens, the same run).

`use_decode_attention(model)` registers it with transformers' AttentionInterface under
ATTENTION_IMPLEMENTATION (with SDPA's mask builder) and switches a loaded model to it; nothing
is registered by importing this module.
"""

from __future__ import annotations

from typing import Any

import torch
from transformers import AttentionInterface
from transformers.integrations.sdpa_attention import sdpa_attention_forward
from transformers.masking_utils import AttentionMaskInterface, sdpa_mask

ATTENTION_IMPLEMENTATION = "chronicon_sdpa"


def decode_attention(query: torch.Tensor, key: torch.Tensor, value: torch.Tensor,
                     attention_mask: torch.Tensor | None, scaling: float) -> torch.Tensor:
    """Attention for a single query position: (batch, heads, 1, dim) -> (batch, 1, heads, dim).

    Grouped KV heads are not copied: the query heads that share a KV head (transformers'
    `repeat_kv` order: heads g*G .. g*G+G-1 use KV head g) become G query rows against that one
    head, the same dot products as expanding K and V but without the two copies of the whole
    cache per layer and step (~1.5 ms per token for SmolVLM2-256M). Computed in fp32 (see the
    module doc), as SDPA's kernels accumulate, and returned in the query's dtype."""
    dtype = query.dtype
    query, key, value = query.float(), key.float(), value.float()
    batch, heads, _, dim = query.shape
    kv_heads = key.shape[1]
    mask = None if attention_mask is None else attention_mask[:, :, :, : key.shape[-2]]
    if mask is not None and mask.shape[1] != 1:  # a per-head mask: expand K/V instead
        groups = heads // kv_heads
        key = key.repeat_interleave(groups, dim=1)
        value = value.repeat_interleave(groups, dim=1)
        kv_heads = heads
    rows = query.reshape(batch, kv_heads, heads // kv_heads, dim)
    scores = torch.matmul(rows, key.transpose(2, 3)) * scaling
    if mask is not None:
        if mask.dtype == torch.bool:  # SDPA-style: True = may attend
            scores = scores.masked_fill(~mask, torch.finfo(scores.dtype).min)
        else:
            scores = scores + mask
    probs = torch.softmax(scores, dim=-1)
    out = torch.matmul(probs, value)  # (batch, kv_heads, groups, dim)
    return out.reshape(batch, 1, heads, dim).to(dtype)


def sdpa_or_decode_attention(module: torch.nn.Module, query: torch.Tensor, key: torch.Tensor,
                             value: torch.Tensor, attention_mask: torch.Tensor | None,
                             dropout: float = 0.0, scaling: float | None = None,
                             **kwargs: Any) -> tuple[torch.Tensor, None]:
    if query.shape[2] == 1 and query.device.type == "cpu" and not module.training:
        scale = scaling if scaling is not None else query.shape[-1] ** -0.5
        return decode_attention(query, key, value, attention_mask, scale), None
    return sdpa_attention_forward(module, query, key, value, attention_mask, dropout=dropout,
                                  scaling=scaling, **kwargs)


def register_attention() -> None:
    """Make ATTENTION_IMPLEMENTATION known to transformers (idempotent)."""
    AttentionInterface.register(ATTENTION_IMPLEMENTATION, sdpa_or_decode_attention)
    AttentionMaskInterface.register(ATTENTION_IMPLEMENTATION, sdpa_mask)


def use_decode_attention(model: torch.nn.Module) -> bool:
    """Switch a model loaded with SDPA to SDPA + the decode path; False if it refuses."""
    if getattr(model.config, "_attn_implementation", None) != "sdpa":
        return False
    register_attention()
    try:
        model.set_attn_implementation(ATTENTION_IMPLEMENTATION)
    except (ValueError, AttributeError):
        return False
    return True

"""The CPU decode-step attention gives SDPA's results (it only changes which kernel runs)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from transformers import AutoModelForImageTextToText

from chronicon.vlm.transformers.speedups.attention import (
    ATTENTION_IMPLEMENTATION,
    decode_attention,
    use_decode_attention,
)


def test_decode_attention_matches_sdpa_with_grouped_heads_and_masks() -> None:
    torch.manual_seed(0)
    q, k, v = torch.randn(2, 6, 1, 16), torch.randn(2, 2, 9, 16), torch.randn(2, 2, 9, 16)
    keep = torch.ones(2, 1, 1, 9, dtype=torch.bool)
    keep[1, :, :, :4] = False  # the second sequence is left-padded
    expected = torch.nn.functional.scaled_dot_product_attention(
        q, k.repeat_interleave(3, 1), v.repeat_interleave(3, 1), attn_mask=keep)
    for mask in (keep, torch.zeros(keep.shape).masked_fill(~keep, float("-inf"))):
        out = decode_attention(q, k, v, mask, scaling=16 ** -0.5)
        assert out.shape == (2, 1, 6, 16)
        torch.testing.assert_close(out, expected.transpose(1, 2), atol=1e-5, rtol=1e-5)
    # A mask with a row per head takes the expanded-K/V path; same answer.
    per_head = keep.expand(2, 6, 1, 9)
    expected = torch.nn.functional.scaled_dot_product_attention(
        q, k.repeat_interleave(3, 1), v.repeat_interleave(3, 1), attn_mask=per_head)
    out = decode_attention(q, k, v, per_head, scaling=16 ** -0.5)
    torch.testing.assert_close(out, expected.transpose(1, 2), atol=1e-5, rtol=1e-5)


def test_a_bf16_cache_is_attended_in_fp32_and_answered_in_bf16() -> None:
    torch.manual_seed(1)
    q, k, v = (torch.randn(1, 9, 1, 64), torch.randn(1, 3, 300, 64), torch.randn(1, 3, 300, 64))
    exact = torch.nn.functional.scaled_dot_product_attention(
        q, k.repeat_interleave(3, 1), v.repeat_interleave(3, 1)).transpose(1, 2)
    out = decode_attention(q.bfloat16(), k.bfloat16(), v.bfloat16(), None, scaling=64 ** -0.5)
    assert out.dtype == torch.bfloat16
    # Only the inputs' and the answer's bf16 rounding: no intermediate rounding on top.
    rounded_inputs = decode_attention(q.bfloat16().float(), k.bfloat16().float(),
                                      v.bfloat16().float(), None, scaling=64 ** -0.5)
    assert torch.equal(out, rounded_inputs.bfloat16())
    torch.testing.assert_close(out.float(), exact, atol=0.02, rtol=0.02)


@pytest.mark.parametrize("padded", [False, True])
def test_generation_is_unchanged(tiny_model_dir: Path, padded: bool) -> None:
    def load():
        return AutoModelForImageTextToText.from_pretrained(
            tiny_model_dir, dtype=torch.float32, attn_implementation="sdpa").eval()

    sdpa, ours = load(), load()
    assert use_decode_attention(ours)
    assert ours.config.text_config._attn_implementation == ATTENTION_IMPLEMENTATION
    ids = torch.randint(0, 300, (2, 30), generator=torch.Generator().manual_seed(1))
    mask = torch.ones_like(ids)
    if padded:
        mask[1, :8] = 0
    outputs = []
    with torch.inference_mode():
        for model in (sdpa, ours):
            outputs.append(model.generate(
                input_ids=ids, attention_mask=mask, max_new_tokens=12, min_new_tokens=12,
                do_sample=False, output_logits=True, return_dict_in_generate=True))
    assert torch.equal(outputs[0].sequences, outputs[1].sequences)
    for a, b in zip(outputs[0].logits, outputs[1].logits, strict=True):
        torch.testing.assert_close(a, b, atol=1e-4, rtol=1e-4)

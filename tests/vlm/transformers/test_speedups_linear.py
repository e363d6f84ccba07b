"""Prepacked bf16 Linear layers give the results of plain ones: exactly for the text model
(gate/up fused into one weight), within bf16 rounding for the vision MLP (GELU fused as a
oneDNN post-op)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from transformers import AutoModelForImageTextToText
from transformers.activations import ACT2FN

from chronicon.vlm.transformers.speedups.linear import can_prepack, prepack_linears

pytestmark = pytest.mark.skipif(not can_prepack(torch.bfloat16, "cpu"),
                                reason="this torch build has no oneDNN linear prepacking")


def load(model_dir: Path):
    return AutoModelForImageTextToText.from_pretrained(model_dir, dtype=torch.bfloat16).eval()


def test_generation_is_bit_identical(tiny_model_dir: Path) -> None:
    plain, packed = load(tiny_model_dir), load(tiny_model_dir)
    n_linear = sum(type(m) is torch.nn.Linear for m in packed.modules())
    assert prepack_linears(packed) == n_linear > 0
    # Held once: every plain weight was released for its packed copy (so a forgotten plain
    # F.linear would fail on the shape rather than read a second copy).
    assert all(m.weight.numel() == 0 for m in packed.modules() if type(m) is torch.nn.Linear)
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
    # GELU on fc1's fp32 accumulator rounds once instead of twice: bf16 noise, no more.
    torch.testing.assert_close(vision[1], vision[0], atol=0.05, rtol=0.02)
    fused = [m for m in packed.modules() if "forward" in vars(m) and type(m) is not torch.nn.Linear]
    n_layers = packed.config.text_config.num_hidden_layers
    assert len(fused) == n_layers + packed.config.vision_config.num_hidden_layers


class _ScaledMLP(torch.nn.Module):
    """Has a gated MLP's parts but computes something else: must not be fused."""

    def __init__(self) -> None:
        super().__init__()
        self.gate_proj = torch.nn.Linear(16, 32, bias=False, dtype=torch.bfloat16)
        self.up_proj = torch.nn.Linear(16, 32, bias=False, dtype=torch.bfloat16)
        self.down_proj = torch.nn.Linear(32, 16, bias=False, dtype=torch.bfloat16)
        self.act_fn = ACT2FN["silu"]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.down_proj(self.act_fn(self.gate_proj(x)) + self.up_proj(x))


def test_an_mlp_of_another_shape_is_only_packed() -> None:
    torch.manual_seed(0)
    mlp = _ScaledMLP()
    x = torch.randn(4, 16, dtype=torch.bfloat16)
    with torch.inference_mode():
        expected = mlp(x)
        assert prepack_linears(mlp, available_bytes=8 * 1024**3) == 3
        assert "forward" not in vars(mlp)
        assert torch.equal(mlp(x), expected)


def test_no_packing_when_memory_is_short(tiny_model_dir: Path) -> None:
    model = load(tiny_model_dir)
    assert prepack_linears(model, available_bytes=10 * 1024**2) == 0
    assert all("forward" not in vars(m) for m in model.modules())


def test_a_weight_shared_with_another_module_is_kept() -> None:
    """Tied embeddings: the output layer's weight is the embedding table, still read by it."""
    embed = torch.nn.Embedding(50, 16, dtype=torch.bfloat16)
    head = torch.nn.Linear(16, 50, bias=False, dtype=torch.bfloat16)
    head.weight = embed.weight
    model = torch.nn.ModuleDict({"embed": embed, "head": head})
    x = torch.randn(3, 16, dtype=torch.bfloat16)
    with torch.inference_mode():
        expected = head(x)
        assert prepack_linears(model, available_bytes=8 * 1024**3) == 1
        assert head.weight is embed.weight and embed.weight.numel() == 50 * 16
        assert torch.equal(head(x), expected)


def test_prompt_lengths_share_padded_shapes_with_identical_rows() -> None:
    """Inputs of many rows are padded to a bucket of rows; each row's result is unchanged."""
    torch.manual_seed(1)
    layer = torch.nn.Linear(64, 96, dtype=torch.bfloat16)
    plain = torch.nn.Linear(64, 96, dtype=torch.bfloat16)
    plain.load_state_dict(layer.state_dict())
    prepack_linears(layer, available_bytes=8 * 1024**3)
    with torch.inference_mode():
        for rows in (1, 4, 17, 63, 64, 65, 200):
            x = torch.randn(1, rows, 64, dtype=torch.bfloat16)
            out = layer(x)
            assert out.shape == (1, rows, 96) and out.is_contiguous()
            assert torch.equal(out, plain(x)), rows


def test_only_bf16_on_cpu() -> None:
    assert not can_prepack(torch.float32, "cpu")
    assert not can_prepack(torch.bfloat16, "cuda:0")


def test_fused_qkv_serves_k_and_v_from_the_q_call_and_falls_back_out_of_order(
        tiny_model_dir: Path) -> None:
    plain, packed = load(tiny_model_dir), load(tiny_model_dir)
    prepack_linears(packed)
    name = next(n for n, m in packed.named_modules() if hasattr(m, "q_proj"))
    ref, attn = plain.get_submodule(name), packed.get_submodule(name)
    x = torch.randn(1, 5, attn.q_proj.in_features, dtype=torch.bfloat16)
    y = torch.randn_like(x)
    with torch.inference_mode():
        expected = {p: getattr(ref, p)(x) for p in ("q_proj", "k_proj", "v_proj")}
        assert torch.equal(attn.q_proj(x), expected["q_proj"])
        assert torch.equal(attn.k_proj(x), expected["k_proj"])
        assert torch.equal(attn.v_proj(x), expected["v_proj"])
        # Out of order (no q call on y first), and a second k call: computed again.
        assert torch.equal(attn.v_proj(y), ref.v_proj(y))
        assert torch.equal(attn.k_proj(x), expected["k_proj"])

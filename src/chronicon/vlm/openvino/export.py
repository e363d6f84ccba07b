"""One-time conversion of a SmolVLM model directory to OpenVINO IR, with OpenVINO's own converter.

`chronicon convert MODEL --to openvino [--weights int8]` calls `export_openvino`. It needs torch
and transformers (the model is traced once); the backend that runs the result needs only the
`openvino` wheel. optimum-intel is not used: its release pins transformers <= 4.57, older than
ours, and its processor rejects our one-video call.

Three IR files are written beside a copy of the processor/tokenizer files:
- `vision.xml`: SigLIP encoder + connector, (frames, 3, H, W) pixels and the patch mask ->
  (frames, tokens per frame, text hidden) image features;
- `embed.xml`: token ids -> text embeddings;
- `language.xml`: the llama decoder + lm_head over input embeddings, returning the LAST
  position's logits only, stateful: the KV cache lives in the request's state (reset per
  description), so nothing is copied in or out between decode steps. Two details let the CPU
  plugin fuse each layer's cache read, append and attention into one node (its
  StatefulSDPAFusion; without it every decode step copied the whole cache and ran attention
  as separate MatMul/Softmax nodes: 61 ms a token instead of 16 on the 256M model here):
  each cache state is read through a `Gather` by a `beam_idx` input (the row order; the
  backend passes 0..batch-1), and the attention mask is additive float (0 / -inf), not
  boolean (a boolean mask also made the fused prefill 5x slower).
`chronicon_openvino.json` records the model id, the image token id, the EOS ids and the weight
format; the backend refuses a directory without it.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path
from typing import Any

from . import FORMAT_VERSION, MANIFEST

WEIGHT_FORMATS = ("fp32", "int8")
# Files a model directory carries for the processor and tokenizer (copied as they are).
_PROCESSOR_FILES = ("*.json", "*.jinja", "*.txt", "*.model", "*.tiktoken")
_SKIP = ("config.json", "model.safetensors.index.json", "generation_config.json")


def default_output_dir(model_dir: Path, weights: str) -> Path:
    return model_dir.parent / f"{model_dir.name}-openvino-{weights}"


def export_openvino(model_dir: Path, output_dir: Path, *, weights: str = "fp32",
                    model_id: str | None = None) -> dict[str, Any]:
    """Convert the model in `model_dir` into `output_dir`; returns the manifest written."""
    import openvino as ov
    import torch
    from transformers import AutoModelForImageTextToText

    if weights not in WEIGHT_FORMATS:
        raise ValueError(f"weights must be one of {WEIGHT_FORMATS}, got {weights!r}")
    start = time.perf_counter()
    model = AutoModelForImageTextToText.from_pretrained(
        model_dir, dtype=torch.float32, attn_implementation="sdpa").eval()
    output_dir.mkdir(parents=True, exist_ok=True)
    inner = model.model
    text_config = inner.text_model.config
    vision_config = inner.config.vision_config
    side, patch = vision_config.image_size, vision_config.patch_size

    with torch.no_grad():
        vision = ov.convert_model(
            _Vision(inner), example_input=(torch.zeros(2, 3, side, side),
                                           torch.ones(2, side // patch, side // patch,
                                                      dtype=torch.bool)))
        _name_ports(vision, ["pixel_values", "patch_attention_mask"], ["image_features"])
        embed = ov.convert_model(inner.text_model.embed_tokens,
                                 example_input=torch.ones(1, 4, dtype=torch.long))
        _name_ports(embed, ["input_ids"], ["inputs_embeds"])
        language, layers = _convert_language(model, text_config)
    models = {"vision": vision, "embed": embed, "language": language}
    if weights == "int8":
        models = {name: _int8_weights(m) for name, m in models.items()}
    for name, m in models.items():
        # fp32 on disk: OpenVINO picks the execution precision (bf16 on CPUs that have it).
        ov.save_model(m, output_dir / f"{name}.xml", compress_to_fp16=False)
    for pattern in _PROCESSOR_FILES:
        for path in model_dir.glob(pattern):
            if path.name not in _SKIP:
                shutil.copy2(path, output_dir / path.name)
    eos = model.generation_config.eos_token_id
    manifest = {
        "format": FORMAT_VERSION,
        "model_id": model_id or str(model_dir),
        "weights": weights,
        "image_token_id": int(inner.config.image_token_id),
        "eos_token_ids": [int(e) for e in (eos if isinstance(eos, list) else [eos])
                          if e is not None],
        "pad_token_id": model.generation_config.pad_token_id,
        "layers": layers,
        "hidden_size": int(text_config.hidden_size),
        "image_size": int(side),
        "patch_size": int(patch),
        "export_s": round(time.perf_counter() - start, 2),
    }
    (output_dir / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest


def _convert_language(model: Any, text_config: Any) -> tuple[Any, int]:
    import openvino as ov
    import torch
    from openvino._offline_transformations import apply_make_stateful_transformation

    layers = int(text_config.num_hidden_layers)
    kv_heads = int(text_config.num_key_value_heads)
    head_dim = int(getattr(text_config, "head_dim", None)
                   or text_config.hidden_size // text_config.num_attention_heads)
    past_len, new = 3, 2
    past = []
    for _ in range(layers):
        past += [torch.zeros(1, kv_heads, past_len, head_dim)] * 2
    example = (torch.zeros(1, new, text_config.hidden_size),
               torch.ones(1, past_len + new, dtype=torch.long),
               torch.arange(past_len, past_len + new)[None], *past)
    language = ov.convert_model(_LanguageStep(model, layers), example_input=example)
    past_names = [f"past.{i}.{kind}" for i in range(layers) for kind in ("key", "value")]
    present_names = [f"present.{i}.{kind}" for i in range(layers) for kind in ("key", "value")]
    _name_ports(language, ["inputs_embeds", "attention_mask", "position_ids", *past_names],
                ["logits", *present_names])
    apply_make_stateful_transformation(language, dict(zip(past_names, present_names,
                                                          strict=True)))
    _initial_state_from_batch(language, kv_heads, head_dim)
    _cache_read_by_row(language)
    return language, layers


def _name_ports(model: Any, inputs: list[str], outputs: list[str]) -> None:
    for port, name in zip(model.inputs, inputs, strict=True):
        port.get_tensor().set_names({name})
    for port, name in zip(model.outputs, outputs, strict=True):
        port.get_tensor().set_names({name})


def _initial_state_from_batch(model: Any, kv_heads: int, head_dim: int) -> None:
    """An empty KV cache whose batch is the input's: each state starts as zeros of shape
    (batch, kv heads, 0, head dim); without it a fresh state would have batch 0."""
    import numpy as np
    import openvino.opset13 as ops

    embeds = model.input("inputs_embeds")
    batch = ops.gather(ops.shape_of(embeds, output_type="i64"), ops.constant([0]),
                       ops.constant(0))
    for op in model.get_ops():
        if op.get_type_name() != "ReadValue":
            continue
        dims = [batch, ops.constant(np.array([kv_heads, 0, head_dim], dtype=np.int64))]
        zeros = ops.broadcast(ops.constant(0.0, dtype=op.get_output_element_type(0)),
                              ops.concat(dims, axis=0))
        op.set_arguments([zeros])
    model.validate_nodes_and_infer_types()


def _cache_read_by_row(model: Any) -> None:
    """Every cache state read through `Gather(state, beam_idx, axis 0)`, `beam_idx` a new i32
    input: the pattern the CPU plugin's StatefulSDPAFusion needs to fuse the cache with the
    attention (see the module docstring)."""
    import numpy as np
    import openvino as ov
    import openvino.opset13 as ops

    beam_idx = ops.parameter([-1], ov.Type.i32, name="beam_idx")
    beam_idx.output(0).get_tensor().set_names({"beam_idx"})
    for op in model.get_ops():
        if op.get_type_name() != "ReadValue":
            continue
        readers = list(op.output(0).get_target_inputs())
        by_row = ops.gather(op.output(0), beam_idx, ops.constant(np.int64(0)))
        for reader in readers:
            reader.replace_source_output(by_row.output(0))
    model.add_parameters([beam_idx])
    model.validate_nodes_and_infer_types()


def _int8_weights(model: Any) -> Any:
    """Weight-only int8 (per-channel, symmetric) through NNCF when it is installed."""
    try:
        import nncf
    except ImportError as exc:
        raise RuntimeError("--weights int8 needs NNCF: pip install nncf") from exc
    return nncf.compress_weights(model, mode=nncf.CompressWeightsMode.INT8_SYM)


def _torch_module_base() -> type:
    import torch

    return torch.nn.Module


class _Vision(_torch_module_base()):  # type: ignore[misc]
    def __init__(self, inner: Any) -> None:
        super().__init__()
        self.vision_model = inner.vision_model
        self.connector = inner.connector

    def forward(self, pixel_values: Any, patch_attention_mask: Any) -> Any:
        hidden = self.vision_model(pixel_values=pixel_values,
                                   patch_attention_mask=patch_attention_mask).last_hidden_state
        return self.connector(hidden)


class _LanguageStep(_torch_module_base()):  # type: ignore[misc]
    """Decoder over input embeddings with an explicit KV cache (flattened key, value per layer),
    returning the last position's logits and the grown cache."""

    def __init__(self, model: Any, layers: int) -> None:
        super().__init__()
        self.text_model = model.model.text_model
        self.lm_head = model.lm_head
        self.layers = layers
        self.config = model.model.text_model.config

    def forward(self, inputs_embeds: Any, attention_mask: Any, position_ids: Any,
                *past: Any) -> Any:
        import torch
        from transformers.cache_utils import DynamicCache

        cache = DynamicCache(config=self.config)
        for i, layer in enumerate(cache.layers):
            # Set the tensors directly: update() would trace a concat with an empty tensor.
            layer.lazy_initialization(past[2 * i], past[2 * i + 1])
            layer.keys, layer.values = past[2 * i], past[2 * i + 1]
        # The causal mask as tensor ops (a 4D mask is used as given), so the traced graph
        # takes any prompt and cache length: cache slot j is visible to the query in slot s
        # (the new inputs take the last slots) when j <= s and the attention mask keeps j.
        # Slots, not positions: rows of a batch are left-padded, so a row's positions
        # (`position_ids`) start after its padding while the slots are shared.
        slots = torch.ones_like(attention_mask).cumsum(-1) - 1
        query_slots = slots[:, slots.shape[-1] - inputs_embeds.shape[1]:]
        visible = ((slots[:, None, :] <= query_slots[:, :, None])
                   & attention_mask.bool()[:, None, :])
        # Additive float, not boolean: the CPU plugin's fused attention is 5x slower on a
        # boolean mask (measured on the 256M prefill).
        additive = torch.zeros(visible.shape, dtype=inputs_embeds.dtype).masked_fill(
            ~visible, float("-inf"))
        out = self.text_model(inputs_embeds=inputs_embeds, attention_mask=additive[:, None],
                              position_ids=position_ids, past_key_values=cache, use_cache=True)
        logits = self.lm_head(out.last_hidden_state[:, -1:, :])
        present = []
        for layer in out.past_key_values.layers:
            present += [layer.keys, layer.values]
        return (logits, *present)

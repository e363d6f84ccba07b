"""bf16 Linear layers on CPU with their weights prepacked for oneDNN, once, at load time.

A plain bf16 `F.linear` on CPU hands oneDNN a weight in PyTorch's layout on every call; for a
decode step (one token: matrix-vector products) that costs more than the multiplication: 61 to
88 us per 576x1536 layer here against 36 us with the weight prepacked, for bit-identical results
(prefill and vision GEMMs gain ~8%). This is what `torch.compile`'s weight freezing does, without
the compile. Once a layer's packed copy exists its plain weight is released (`_Releaser`), layer
by layer, so the weights are held once, not twice: ~430 MB of the 256M model. Packing is still
skipped when free memory could not hold a second copy of every Linear weight (the check from
before the release: conservative now).

Two MLP shapes get more than packing (`_fuse_mlp`), each checked against the plain module:
- a gated MLP (`gate_proj`, `up_proj`, `down_proj`, `act_fn`: the Llama text model) packs gate
  and up as ONE weight, so a decode step makes one matrix-vector call instead of two (same dot
  products, bit-identical here; ~25 us per layer and token).
- a GELU-tanh MLP (`fc1`, `activation_fn`, `fc2`: the SigLIP vision encoder) runs the GELU as
  oneDNN's post-op on fc1's fp32 accumulator instead of a separate bf16 pass over a
  (patches x 3072) tensor (~15 ms per layer for 4 frames). It rounds once instead of twice, so
  the result differs from the plain module within bf16 rounding.

Inputs of more than `_FEW_ROWS` rows (prefill, vision) are padded to a multiple of
`_ROWS_BUCKET` rows (`_linear`). oneDNN keeps a primitive per input shape (ideep's LRU cache,
1024 entries, ~1 MB each here: +106 MB over 100 row counts), and every prompt length is a new
one, so a server's memory grew with each new length it saw. Bucketed, a few dozen shapes cover
every prompt; a row's result does not depend on the others (bit-identical, checked), and the
padding costs at most 63 rows of a prefill. Decode steps (one row per request) are left as
they are.

An attention module's `q_proj`, `k_proj` and `v_proj` (same input, transformers calls them in
that order) share ONE packed weight too (`_QKVProjections`): q's call computes all three and k's
and v's take their slices (~55 us per layer and decode token saved). A k or v call that does not
follow q's on the same input computes all three again and takes its slice, so the order is never
assumed for correctness, only for speed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import psutil
import torch
from torch import nn
from transformers.activations import GELUTanh

from .file_pages import FilePages

log = logging.getLogger(__name__)

# Keep this much memory free after packing (activations still need room).
_HEADROOM_BYTES = 1024**3
_FEW_ROWS = 16
_ROWS_BUCKET = 64


def _linear(x: torch.Tensor, packed: torch.Tensor, bias: torch.Tensor | None,
            post_op: str = "none", algorithm: str = "") -> torch.Tensor:
    """`x @ packed.T + bias` (then `post_op`), rows padded to a bucket (see the module doc)."""
    width = x.shape[-1]
    rows = x.numel() // width
    padded = -(-rows // _ROWS_BUCKET) * _ROWS_BUCKET
    if rows <= _FEW_ROWS or padded == rows:
        return torch.ops.mkldnn._linear_pointwise(x, packed, bias, post_op, [], algorithm)
    flat = x.reshape(rows, width)
    flat = torch.cat([flat, flat.new_zeros(padded - rows, width)])
    out = torch.ops.mkldnn._linear_pointwise(flat, packed, bias, post_op, [], algorithm)
    return out[:rows].reshape(*x.shape[:-1], out.shape[-1])


def _packed_forward(layer: nn.Linear,
                    packed: torch.Tensor) -> Callable[[torch.Tensor], torch.Tensor]:
    bias = layer.bias

    def forward(x: torch.Tensor) -> torch.Tensor:
        return _linear(x, packed, bias)

    return forward


def _pack(weight: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return torch.ops.mkldnn._reorder_linear_weight(weight.detach(), 1)


def _gated_mlp_forward(mlp: nn.Module,
                       packed: torch.Tensor) -> Callable[[torch.Tensor], torch.Tensor]:
    bias = (None if mlp.gate_proj.bias is None
            else torch.cat([mlp.gate_proj.bias, mlp.up_proj.bias]).detach())
    act, down = mlp.act_fn, mlp.down_proj

    def forward(x: torch.Tensor) -> torch.Tensor:
        gate, up = _linear(x, packed, bias).chunk(2, -1)
        return down(act(gate) * up)

    return forward


def _gelu_mlp_forward(mlp: nn.Module,
                      packed_fc1: torch.Tensor) -> Callable[[torch.Tensor], torch.Tensor]:
    bias, fc2 = mlp.fc1.bias, mlp.fc2

    def forward(x: torch.Tensor) -> torch.Tensor:
        return fc2(_linear(x, packed_fc1, bias, "gelu", "tanh"))

    return forward


class _QKVProjections:
    """q, k and v of one attention module from one matrix multiplication (see the module doc)."""

    def __init__(self, q: nn.Linear, k: nn.Linear, v: nn.Linear) -> None:
        self.widths = [q.out_features, k.out_features, v.out_features]
        self.packed = _pack(torch.cat([q.weight, k.weight, v.weight]))
        self.bias = (None if q.bias is None
                     else torch.cat([q.bias, k.bias, v.bias]).detach())
        # The input of the last q call and the k and v results still to be handed out.
        self._source: torch.Tensor | None = None
        self._pending: dict[int, torch.Tensor] = {}

    def forward_of(self, which: int) -> Callable[[torch.Tensor], torch.Tensor]:
        def forward(x: torch.Tensor) -> torch.Tensor:
            if which == 0:
                q, k, v = _linear(x, self.packed, self.bias).split(self.widths, -1)
                self._source, self._pending = x, {1: k, 2: v}
                return q
            if self._source is x and which in self._pending:
                result = self._pending.pop(which)
                if not self._pending:
                    self._source = None  # hold no activations between calls
                return result
            return _linear(x, self.packed, self.bias).split(self.widths, -1)[which]

        return forward


def _fuse_qkv(module: nn.Module) -> list[nn.Linear]:
    q, k, v = (getattr(module, name, None) for name in ("q_proj", "k_proj", "v_proj"))
    if not (_is_packable(q) and _is_packable(k) and _is_packable(v)
            and q.in_features == k.in_features == v.in_features
            and (q.bias is None) == (k.bias is None) == (v.bias is None)):
        return []
    fused = _QKVProjections(q, k, v)
    for which, layer in enumerate((q, k, v)):
        layer.forward = fused.forward_of(which)  # type: ignore[method-assign]
    return [q, k, v]


def _is_packable(layer: object) -> bool:
    return (type(layer) is nn.Linear and layer.weight.dtype == torch.bfloat16
            and layer.weight.device.type == "cpu")


def _fuse_mlp(module: nn.Module) -> list[nn.Linear]:
    """Give `module` a fused forward if it is one of the two MLP shapes above and the fused
    forward reproduces its own on a probe input; the Linear layers whose work the fused forward
    took over (they need no packed copy of their own)."""
    gate, up = getattr(module, "gate_proj", None), getattr(module, "up_proj", None)
    down, act = getattr(module, "down_proj", None), getattr(module, "act_fn", None)
    fc1, fc2 = getattr(module, "fc1", None), getattr(module, "fc2", None)
    activation = getattr(module, "activation_fn", None)
    if (_is_packable(gate) and _is_packable(up) and _is_packable(down) and callable(act)
            and gate.in_features == up.in_features and gate.out_features == up.out_features
            and (gate.bias is None) == (up.bias is None)):
        fused = _gated_mlp_forward(module, _pack(torch.cat([gate.weight, up.weight])))
        replaced, width = [gate, up], gate.in_features
    elif _is_packable(fc1) and _is_packable(fc2) and type(activation) is GELUTanh:
        fused = _gelu_mlp_forward(module, _pack(fc1.weight))
        replaced, width = [fc1], fc1.in_features
    else:
        return []
    if not _same_within_bf16(module, fused, width):
        log.debug("not fusing %s: its forward is not the MLP shape assumed", type(module).__name__)
        return []
    module.forward = fused  # type: ignore[method-assign]
    return replaced


def _same_within_bf16(module: nn.Module, fused: Callable[[torch.Tensor], torch.Tensor],
                      width: int) -> bool:
    """Whether `fused` computes what `module`'s own forward does (a module with extra terms,
    another activation or another order is left alone)."""
    probe = torch.randn(3, width, generator=torch.Generator().manual_seed(0)).to(torch.bfloat16)
    with torch.inference_mode():
        expected, got = module(probe).float(), fused(probe).float()
    scale = expected.abs().max().item() + 1e-3
    return got.shape == expected.shape and (got - expected).abs().max().item() <= 0.02 * scale


def can_prepack(dtype: torch.dtype, device: str) -> bool:
    return (device == "cpu" and dtype == torch.bfloat16
            and torch.backends.mkldnn.is_available()
            and hasattr(torch.ops.mkldnn, "_reorder_linear_weight"))


def prepack_linears(model: nn.Module, available_bytes: int | None = None) -> int:
    """Give every bf16 CPU `nn.Linear` in `model` a forward over a prepacked weight and release
    its plain weight; return how many were packed (0 when memory is short)."""
    layers = [m for m in model.modules() if _is_packable(m)]
    needed = sum(m.weight.numel() * m.weight.element_size() for m in layers)
    free = psutil.virtual_memory().available if available_bytes is None else available_bytes
    if needed + _HEADROOM_BYTES > free:
        log.info("not prepacking Linear weights: %.0f MB needed, %.0f MB free",
                 needed / 1e6, free / 1e6)
        return 0
    release = _Releaser(model, layers)
    fused: set[int] = set()
    for module in model.modules():
        replaced = _fuse_mlp(module) + _fuse_qkv(module)
        fused.update(id(layer) for layer in replaced)
        release(replaced)
    for layer in layers:
        if id(layer) not in fused:
            layer.forward = _packed_forward(layer, _pack(layer.weight))  # type: ignore[method-assign]
            release([layer])
    log.debug("released the plain weights of %d Linear layers (%.0f MB of file pages dropped)",
              release.count, release.pages.dropped_bytes / 1e6)
    return len(layers)


class _Releaser:
    """Replaces a packed layer's plain weight with an empty tensor, so that a forgotten plain
    `F.linear` fails on the shape instead of reading a second copy, and frees its memory: a
    weight of its own is freed with it; a weight viewing the model file's mapping (transformers
    maps safetensors) leaves its pages resident until the whole file is unmapped, so they are
    dropped by hand (`FilePages`). A weight another module shares (tied embeddings) stays."""

    def __init__(self, model: nn.Module, layers: list[nn.Linear]) -> None:
        # Per module, not model.parameters(): that lists a tied weight once, under either owner.
        packed = {id(layer) for layer in layers}
        self.kept = [t for m in model.modules()
                     for t in [*m.parameters(recurse=False), *m.buffers(recurse=False)]
                     if id(m) not in packed or t is not m.weight]
        shared = {t.data_ptr() for t in self.kept}
        self.releasable = {id(layer) for layer in layers if layer.weight.data_ptr() not in shared}
        self.pages = FilePages()
        self.count = 0

    def __call__(self, layers: list[nn.Linear]) -> None:
        for layer in layers:
            if id(layer) not in self.releasable:
                continue
            weight = layer.weight
            layer.weight = nn.Parameter(weight.new_empty(0), requires_grad=False)
            self.pages.drop(weight, keep=self.kept)
            self.count += 1

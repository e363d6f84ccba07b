"""A BERT sentence-transformers model with mean pooling (all-MiniLM-L6-v2 is one), run with numpy.

`SentenceEncoder.load(directory)` reads a sentence-transformers directory: modules.json,
sentence_bert_config.json, 1_Pooling/config.json (or wherever modules.json puts the pooling),
config.json, tokenizer.json and model.safetensors (fp32). What it does not implement (another
architecture than BERT, pooling other than the mean, extra modules such as Dense, no safetensors
file, ...) is refused at load with `ModelUnavailable` naming the cause and the fix, never computed
wrongly. `encode(texts)` gives float32 rows, one per text, the same vectors as
sentence-transformers in fp32 (cosine >= 0.99999), unit length when modules.json has a Normalize.

Why not sentence-transformers: it imports torch, which costs a torch-free server (the OpenVINO
runtime) ~800 MB of resident memory and ~17 s on first use. Only `tokenizers`, `safetensors` and
numpy are imported here. `encode` keeps no state between calls, so concurrent calls are safe.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ModelUnavailable

# modules.json names classes by their import path, which sentence-transformers has moved between
# versions (sentence_transformers.models.Pooling, ...sentence_transformer.modules.pooling.Pooling):
# the class name is what counts.
_IMPLEMENTED_CHAINS = (["Transformer", "Pooling"], ["Transformer", "Pooling", "Normalize"])
# Pooling configs before sentence-transformers 5 say the mode with one flag per mode.
_LEGACY_POOLING_FLAGS = {"pooling_mode_cls_token": "cls", "pooling_mode_max_tokens": "max",
                         "pooling_mode_mean_tokens": "mean",
                         "pooling_mode_mean_sqrt_len_tokens": "mean_sqrt_len_tokens",
                         "pooling_mode_weightedmean_tokens": "weightedmean",
                         "pooling_mode_lasttoken": "lasttoken"}
_OTHER_MODEL = "use a BERT sentence-transformers model with mean pooling (all-MiniLM-L6-v2)"
# Padded tokens per forward pass (texts x longest text): bounds the attention scores of one pass
# (tokens x longest x heads x 4 bytes: 25 MB for 2048 tokens of 256 and 12 heads).
BATCH_TOKENS = 2048


@dataclass(frozen=True)
class EncoderSpec:
    """What the directory's JSON files say, checked: only what `encode` implements passes."""

    max_seq_length: int
    truncation_side: str  # "right" or "left", from tokenizer_config.json as transformers reads it
    lowercase: bool
    normalize: bool
    layers: int
    heads: int
    hidden: int
    layer_norm_eps: float
    transformer_dir: Path


@dataclass(frozen=True)
class _Layer:
    """One encoder layer. Dense weights are stored (in, out) and C-contiguous: `x @ w` on them
    is 10-15% faster in OpenBLAS than on the checkpoint's (out, in) through `.T` (measured
    here, 125 tokens)."""

    qkv: np.ndarray  # query, key and value side by side: (hidden, 3 * hidden), one matmul
    qkv_bias: np.ndarray
    attention_out: np.ndarray
    attention_out_bias: np.ndarray
    attention_norm: tuple[np.ndarray, np.ndarray]
    up: np.ndarray
    up_bias: np.ndarray
    down: np.ndarray
    down_bias: np.ndarray
    output_norm: tuple[np.ndarray, np.ndarray]


def _refuse(directory: Path, cause: str, fix: str) -> ModelUnavailable:
    return ModelUnavailable(f"cannot load the embedding model {str(directory)!r}: {cause}; {fix}")


def _read_json(directory: Path, path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise _refuse(directory, f"cannot read {path.name} ({exc})",
                      "point the model setting at a complete sentence-transformers "
                      "directory") from exc


def read_spec(directory: Path) -> EncoderSpec:
    """The checked description of the model in `directory`; raises ModelUnavailable for anything
    `encode` would not compute exactly as sentence-transformers does."""
    modules = _read_json(directory, directory / "modules.json")
    kinds = [str(m.get("type", "")).rsplit(".", 1)[-1] for m in modules]
    if kinds not in _IMPLEMENTED_CHAINS:
        raise _refuse(directory, f"modules.json chains {kinds}, only Transformer, Pooling and an "
                      "optional Normalize are implemented", _OTHER_MODEL)
    transformer_dir = directory / modules[0].get("path", "")
    modes = _pooling_modes(_read_json(directory, directory / modules[1]["path"] / "config.json"))
    if modes != ["mean"]:
        raise _refuse(directory, f"pooling {modes or 'none'} is not implemented, only the mean "
                      "over tokens", _OTHER_MODEL)
    config = _read_json(directory, transformer_dir / "config.json")
    _check_bert(directory, config)
    st_config = directory / "config_sentence_transformers.json"
    if st_config.exists() and _read_json(directory, st_config).get("default_prompt_name"):
        raise _refuse(directory, "a default prompt is not implemented", _OTHER_MODEL)
    sbert = _optional_json(directory, transformer_dir / "sentence_bert_config.json")
    positions = int(config["max_position_embeddings"])
    tokenizer_config = _optional_json(directory, transformer_dir / "tokenizer_config.json")
    # sentence-transformers' order: its own setting, else the tokenizer's, capped by the model.
    longest = (sbert.get("max_seq_length") or tokenizer_config.get("model_max_length")
               or positions)
    return EncoderSpec(
        max_seq_length=min(int(longest), positions),
        truncation_side=tokenizer_config.get("truncation_side", "right"),
        lowercase=bool(sbert.get("do_lower_case", False)),
        normalize=kinds[-1] == "Normalize", layers=int(config["num_hidden_layers"]),
        heads=int(config["num_attention_heads"]), hidden=int(config["hidden_size"]),
        layer_norm_eps=float(config["layer_norm_eps"]), transformer_dir=transformer_dir)


def _optional_json(directory: Path, path: Path) -> dict[str, Any]:
    return _read_json(directory, path) if path.exists() else {}


def _pooling_modes(pooling: dict[str, Any]) -> list[str]:
    """The pooling modes a Pooling config turns on, either format; a prompt left out of the
    mean (include_prompt false) counts as a mode of its own."""
    mode = pooling.get("pooling_mode")
    if mode is None:
        modes = [name for key, name in _LEGACY_POOLING_FLAGS.items() if pooling.get(key)]
    else:
        modes = [mode] if isinstance(mode, str) else list(mode)
    if pooling.get("include_prompt", True) is not True:
        modes.append("without the prompt")
    return modes


def _check_bert(directory: Path, config: dict[str, Any]) -> None:
    for key, wanted in (("model_type", "bert"), ("hidden_act", "gelu"),
                        ("position_embedding_type", "absolute")):
        found = config.get(key, "absolute" if key == "position_embedding_type" else None)
        if found != wanted:
            raise _refuse(directory, f"config.json has {key}={found!r}, only {wanted!r} is "
                          "implemented", _OTHER_MODEL)


def _load_weights(directory: Path, spec: EncoderSpec) -> dict[str, np.ndarray]:
    path = spec.transformer_dir / "model.safetensors"
    if not path.exists():
        raise _refuse(directory, "there is no model.safetensors (only that format is read, "
                      "without torch)", "convert the weights to safetensors "
                      "(safetensors.torch.save_file) or use all-MiniLM-L6-v2")
    from safetensors.numpy import load_file

    weights = load_file(str(path))
    # Checkpoints saved from BertModel name tensors "embeddings...", from a task head "bert...".
    weights = {k.removeprefix("bert."): v for k, v in weights.items()}
    if weights["embeddings.word_embeddings.weight"].dtype != np.float32:
        raise _refuse(directory, "the weights are not float32", "use fp32 safetensors weights")
    return weights


def _layer(weights: dict[str, np.ndarray], i: int) -> _Layer:
    def get(name: str) -> np.ndarray:
        return weights.pop(f"encoder.layer.{i}.{name}")

    def dense(name: str) -> np.ndarray:
        return np.ascontiguousarray(get(name).T)

    names = ("query", "key", "value")
    return _Layer(
        qkv=np.ascontiguousarray(
            np.concatenate([get(f"attention.self.{n}.weight") for n in names]).T),
        qkv_bias=np.concatenate([get(f"attention.self.{n}.bias") for n in names]),
        attention_out=dense("attention.output.dense.weight"),
        attention_out_bias=get("attention.output.dense.bias"),
        attention_norm=(get("attention.output.LayerNorm.weight"),
                        get("attention.output.LayerNorm.bias")),
        up=dense("intermediate.dense.weight"), up_bias=get("intermediate.dense.bias"),
        down=dense("output.dense.weight"), down_bias=get("output.dense.bias"),
        output_norm=(get("output.LayerNorm.weight"), get("output.LayerNorm.bias")))


def _layer_norm(x: np.ndarray, norm: tuple[np.ndarray, np.ndarray], eps: float) -> np.ndarray:
    x = x - x.mean(axis=-1, keepdims=True)
    scale = 1.0 / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + np.float32(eps))
    x *= scale
    x *= norm[0]
    x += norm[1]
    return x


# Abramowitz & Stegun 7.1.26: erfc(z) ~ t * (a1 + t * (a2 + ...)) * exp(-z^2), t = 1 / (1 + p z),
# z >= 0, |error| < 1.5e-7, about one fp32 step near 1. numpy has no erf;
# math.erf through np.vectorize took 15x as long as these array passes (71 against 4.8 ms for
# 125 x 1536 values, measured here); against float64 math.erf the GELU is within 3.3e-7.
_AS_P = np.float32(0.3275911 / math.sqrt(2.0))  # folds z = |x| / sqrt(2) into t
_AS_A = tuple(np.float32(a) for a in (1.061405429, -1.453152027, 1.421413741, -0.284496736,
                                      0.254829592))


def _gelu(x: np.ndarray) -> np.ndarray:
    """Exact (erf) GELU, in place: x * (1 + erf(x / sqrt 2)) / 2 = max(x, 0) - |x| erfc(|x| /
    sqrt 2) / 2, which needs erfc of a non-negative argument only."""
    magnitude = np.abs(x)
    t = magnitude * _AS_P
    t += np.float32(1.0)
    np.reciprocal(t, out=t)
    poly = t * _AS_A[0]
    for a in _AS_A[1:]:
        poly += a
        poly *= t
    gauss = np.square(magnitude)
    gauss *= np.float32(-0.5)
    np.exp(gauss, out=gauss)
    poly *= gauss
    poly *= magnitude
    poly *= np.float32(0.5)
    np.maximum(x, np.float32(0.0), out=x)
    x -= poly
    return x


class SentenceEncoder:
    """A loaded model: `encode` turns texts into float32 rows (see the module docstring)."""

    def __init__(self, spec: EncoderSpec, tokenizer: Any, weights: dict[str, np.ndarray]):
        self.spec = spec
        self._tokenizer = tokenizer
        self._word = weights.pop("embeddings.word_embeddings.weight")
        self._position = weights.pop("embeddings.position_embeddings.weight")
        # Single texts only, so every token has type 0.
        self._type0 = weights.pop("embeddings.token_type_embeddings.weight")[0]
        self._embedding_norm = (weights.pop("embeddings.LayerNorm.weight"),
                                weights.pop("embeddings.LayerNorm.bias"))
        self._layers = [_layer(weights, i) for i in range(spec.layers)]
        self.dimension = int(self._word.shape[1])

    @classmethod
    def load(cls, directory: str | Path) -> SentenceEncoder:
        """Reads and checks the model in `directory`; raises ModelUnavailable (see the module
        docstring) for anything it cannot compute."""
        directory = Path(directory)
        if not directory.is_dir():
            raise _refuse(directory, "no such directory (models are not downloaded)",
                          "give a local sentence-transformers directory or all-MiniLM-L6-v2")
        spec = read_spec(directory)
        tokenizer_path = spec.transformer_dir / "tokenizer.json"
        if not tokenizer_path.exists():
            raise _refuse(directory, "there is no tokenizer.json (a fast tokenizer)",
                          "save the tokenizer with a fast tokenizer (save_pretrained)")
        from tokenizers import Tokenizer

        tokenizer = Tokenizer.from_file(str(tokenizer_path))
        # tokenizer.json may carry its own limits (MiniLM's: truncate and pad to 128); the
        # model's are max_seq_length and padding per pass, done here.
        tokenizer.enable_truncation(max_length=spec.max_seq_length,
                                    direction=spec.truncation_side)
        tokenizer.no_padding()
        if spec.lowercase:  # as sentence-transformers does it: a normaliser step, not str.lower
            from tokenizers.normalizers import Lowercase
            from tokenizers.normalizers import Sequence as Normalizers

            steps = [tokenizer.normalizer] if tokenizer.normalizer is not None else []
            tokenizer.normalizer = Normalizers([Lowercase(), *steps])
        try:
            weights = _load_weights(directory, spec)
            return cls(spec, tokenizer, weights)
        except KeyError as exc:
            raise _refuse(directory, f"model.safetensors has no tensor {exc}",
                          "use a BERT sentence-transformers model") from exc

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """One float32 row of `dimension` per text, in order (unit length when the model
        normalises); texts past max_seq_length tokens are truncated, as sentence-transformers
        does. An empty input gives a (0, dimension) matrix."""
        out = np.zeros((len(texts), self.dimension), dtype=np.float32)
        if not texts:
            return out
        ids = [np.asarray(e.ids, dtype=np.intp)
               for e in self._tokenizer.encode_batch(list(texts))]
        for rows in self._passes([len(i) for i in ids]):
            out[rows] = self._forward([ids[r] for r in rows])
        if self.spec.normalize:
            out /= np.maximum(np.linalg.norm(out, axis=1, keepdims=True), np.float32(1e-12))
        return out

    @staticmethod
    def _passes(lengths: list[int]) -> list[list[int]]:
        """Text indexes grouped by length, longest first, each group at most BATCH_TOKENS
        padded tokens (one text alone may exceed it): little padding, bounded memory."""
        order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
        passes: list[list[int]] = []
        for i in order:
            if passes and (len(passes[-1]) + 1) * lengths[passes[-1][0]] <= BATCH_TOKENS:
                passes[-1].append(i)
            else:
                passes.append([i])
        return passes

    def _forward(self, ids: list[np.ndarray]) -> np.ndarray:
        """Mean-pooled last hidden states of one pass, one row per text (not yet normalised)."""
        lengths = np.array([len(i) for i in ids])
        real = np.arange(lengths.max())[None, :] < lengths[:, None]  # (texts, longest)
        # The dense layers run on the real tokens only, packed text after text; only attention
        # needs the padded (texts, longest) layout, so padding costs no matmul work there.
        positions = np.nonzero(real)[1]
        hidden = self._word[np.concatenate(ids)]
        hidden += self._position[positions]
        hidden += self._type0
        eps = self.spec.layer_norm_eps
        hidden = _layer_norm(hidden, self._embedding_norm, eps)
        for layer in self._layers:
            hidden = self._layer_forward(layer, hidden, real)
        starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
        return np.add.reduceat(hidden, starts, axis=0) / lengths[:, None].astype(np.float32)

    def _layer_forward(self, layer: _Layer, hidden: np.ndarray, real: np.ndarray) -> np.ndarray:
        eps = self.spec.layer_norm_eps
        context = self._attention(hidden @ layer.qkv + layer.qkv_bias, real)
        attended = context @ layer.attention_out
        attended += layer.attention_out_bias
        attended += hidden
        attended = _layer_norm(attended, layer.attention_norm, eps)
        up = attended @ layer.up
        up += layer.up_bias
        down = _gelu(up) @ layer.down
        down += layer.down_bias
        down += attended
        return _layer_norm(down, layer.output_norm, eps)

    def _attention(self, qkv: np.ndarray, real: np.ndarray) -> np.ndarray:
        """Multi-head self-attention of packed tokens (tokens, 3 * hidden) over the real tokens
        of their own text; gives the packed context (tokens, hidden)."""
        texts, longest = real.shape
        heads, hidden = self.spec.heads, self.spec.hidden
        if texts == 1:
            padded = qkv[None]
        else:
            padded = np.zeros((texts, longest, 3 * hidden), dtype=np.float32)
            padded[real] = qkv
        # (texts, longest, 3, heads, head) -> (3, texts, heads, longest, head): views, no copy.
        q, k, v = padded.reshape(texts, longest, 3, heads, hidden // heads).transpose(2, 0, 3, 1, 4)
        scores = (q * np.float32(1.0 / math.sqrt(hidden // heads))) @ k.transpose(0, 1, 3, 2)
        if texts > 1:  # a padded key gets no weight; every text has real keys ([CLS] at least)
            scores += np.where(real, np.float32(0.0), np.float32(-np.inf))[:, None, None, :]
        scores -= scores.max(axis=-1, keepdims=True)
        np.exp(scores, out=scores)
        scores /= scores.sum(axis=-1, keepdims=True)
        context = (scores @ v).transpose(0, 2, 1, 3).reshape(texts, longest, hidden)
        return context[0] if texts == 1 else context[real]

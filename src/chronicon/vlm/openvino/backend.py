"""The OpenVINO backend: a SmolVLM converted by `chronicon convert MODEL --to openvino`, on the CPU.

Same prompt as the transformers backend (frames as ONE video with their timestamps, built
without torch by `inputs.py`), same streaming, min/max tokens and result fields. The three IR
models (`export.py`) run as: vision encoder one frame per call -> image features put in
place of the prompt's image tokens -> the stateful language model: one prefill call, then one
call per token with only that token's embedding (the KV cache stays in the request's state).

OpenVINO picks its execution precision: bf16 on CPUs with native bf16, so the text can differ
from the transformers backend's after a few dozen tokens (the benchmark reports the token
agreement). Run time needs the `openvino` wheel, `tokenizers`, Pillow and Jinja: no torch, no
transformers (importing them only for the processor cost ~550 MB of resident memory).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import openvino as ov

from ...errors import BadParameter, ModelUnavailable
from ...events import EventCallback, ignore_event
from ...heap import trim_free_memory
from ...video.frames import Frame
from ..backend import (
    Backend,
    BackendInfo,
    GenerationParams,
    GenerationRequest,
    GenerationRun,
    GenerationStats,
    check_request,
)
from ..tokens import IncrementalText, yes_no_token_ids
from . import FORMAT_VERSION, MANIFEST, converted_dir, find_converted
from .inputs import SmolVLMInputs

if TYPE_CHECKING:
    from ...config import Settings

def convert(settings: Settings, model: str | None = None, weights: str = "fp32",
            output: Path | None = None) -> tuple[Path, dict[str, Any]]:
    """Convert `model` (catalog name, hub id or directory; default the configured one) to
    OpenVINO IR under `output` (default: where the backend looks for it); the directory and
    its manifest. Needs torch + transformers (and NNCF for int8 weights)."""
    from ..catalog import resolve_model
    from ..hub import fetch_model_dir
    from .export import WEIGHT_FORMATS, export_openvino

    if weights not in WEIGHT_FORMATS:
        raise BadParameter("weights", f"{weights!r} is not one of {', '.join(WEIGHT_FORMATS)}")
    name = model or settings.model
    ref = resolve_model(name)
    model_dir = fetch_model_dir(ref, offline=settings.hub_offline)
    target = output or converted_dir(settings, name, weights)
    try:
        manifest = export_openvino(model_dir, target, weights=weights,
                                   model_id=ref.model_id)
    except RuntimeError as exc:  # NNCF missing, or a model the converter cannot trace
        raise ModelUnavailable(f"cannot convert {name} to OpenVINO: "
                               f"{str(exc).splitlines()[0]}") from None
    return target, manifest


class OpenVINOBackend(Backend):
    """A converted model on the CPU through OpenVINO Runtime."""

    name: ClassVar[str] = "openvino"
    yes_probability_from_logits: ClassVar[bool] = True
    supports_batch: ClassVar[bool] = True

    @classmethod
    def from_settings(cls, settings: Settings, *, model: str | None = None,
                      device: str | None = None, **_: Any) -> OpenVINOBackend:
        name = model or settings.model
        if (device or settings.device) not in ("auto", "cpu"):
            raise BadParameter("device", "the openvino backend runs on the CPU "
                                         "(use CHRONICON_BACKEND=transformers for a GPU)")
        found = find_converted(settings, name)
        if found is None:
            raise ModelUnavailable(
                f"no OpenVINO conversion of {name} found (looked in {name} and under "
                f"{settings.data_dir / 'models' / 'openvino'}). Fix: run `chronicon convert "
                f"{name} --to openvino` once, or set CHRONICON_BACKEND=transformers")
        return cls(found, cache_dir=settings.data_dir / "cache" / "openvino",
                   threads=settings.threads, max_batch=settings.max_batch)

    def __init__(self, model_dir: Path, cache_dir: Path | None = None,
                 threads: int | None = None, precision: str | None = None,
                 max_batch: int = 4) -> None:
        """`precision`: OpenVINO's INFERENCE_PRECISION_HINT ("f32" for outputs that match
        the transformers backend in float32); None lets OpenVINO choose (bf16 where native).
        `max_batch`: rows `generate_batch` decodes together (CHRONICON_MAX_BATCH)."""
        if max_batch < 1:
            raise BadParameter("max_batch", f"must be 1 or more, got {max_batch}")
        self.model_dir = Path(model_dir)
        self.max_batch = max_batch
        try:
            self.manifest = json.loads((self.model_dir / MANIFEST).read_text())
        except (OSError, ValueError) as exc:
            raise ModelUnavailable(f"{self.model_dir} is not an OpenVINO conversion "
                                   f"({type(exc).__name__}). Fix: chronicon convert MODEL "
                                   "--to openvino") from None
        if self.manifest.get("format") != FORMAT_VERSION:
            raise ModelUnavailable(f"{self.model_dir} was converted by another version; "
                                   "run `chronicon convert` again")
        self.cache_dir = cache_dir
        self.threads = threads
        self.precision = precision
        self._lock = threading.Lock()
        self.loaded = False

    def info(self) -> BackendInfo:
        weights = self.manifest["weights"]
        return BackendInfo(
            model_id=self.manifest["model_id"], device="cpu", dtype="openvino-auto",
            quantization="int8-weights" if weights == "int8" else "none",
            quantization_reason=("int8 weight-only, from the conversion (--weights int8)"
                                 if weights == "int8" else "converted with fp32 weights"),
            backend=self.name)

    def load(self) -> float:
        with self._lock:
            if self.loaded:
                return 0.0
            start = time.perf_counter()
            core = ov.Core()
            config: dict[str, Any] = {"PERFORMANCE_HINT": "LATENCY"}
            if self.threads:
                config["INFERENCE_NUM_THREADS"] = self.threads
            if self.precision:
                config["INFERENCE_PRECISION_HINT"] = self.precision
            if self.cache_dir is not None:
                self.cache_dir.mkdir(parents=True, exist_ok=True)
                core.set_property({"CACHE_DIR": str(self.cache_dir)})
            try:
                self.vision = core.compile_model(self.model_dir / "vision.xml", "CPU", config)
                self.embed = core.compile_model(self.model_dir / "embed.xml", "CPU", config)
                language = core.compile_model(self.model_dir / "language.xml", "CPU", config)
                self.inputs = SmolVLMInputs.from_dir(self.model_dir)
            except (RuntimeError, OSError, ValueError) as exc:
                raise ModelUnavailable(f"cannot load the OpenVINO model in {self.model_dir}: "
                                       f"{str(exc).splitlines()[0] if str(exc) else exc}. "
                                       "Fix: run `chronicon convert` again") from None
            self.language = language.create_infer_request()
            self.image_token_id = int(self.manifest["image_token_id"])
            self.eos_ids = set(self.manifest["eos_token_ids"])
            self.loaded = True
            return time.perf_counter() - start

    # ---- inference ----------------------------------------------------------------------------

    def prepare_inputs(self, frames: list[Frame], prompt: str, video_fps: float | None = None,
                       video_duration: float | None = None) -> dict[str, np.ndarray]:
        """The transformers backend's prompt (frames as one video with real timestamps), as
        numpy arrays, built without torch (`inputs.SmolVLMInputs`)."""
        return self.inputs(frames, prompt, video_fps, video_duration)

    def _prompt_embeddings(self, inputs: dict[str, np.ndarray],
                           stats: GenerationStats) -> np.ndarray:
        ids = inputs["input_ids"].astype(np.int64)
        embeds = np.array(self.embed(ids)[0], dtype=np.float32)
        if "pixel_values" in inputs:
            start = time.perf_counter()
            pixels = inputs["pixel_values"][0].astype(np.float32)
            mask = inputs.get("pixel_attention_mask")
            patch = int(self.manifest["patch_size"])
            if mask is None:
                patches = np.ones((pixels.shape[0], pixels.shape[2] // patch,
                                   pixels.shape[3] // patch), dtype=bool)
            else:
                m = mask[0].astype(bool)
                n, h, w = m.shape
                patches = m.reshape(n, h // patch, patch, w // patch, patch).any(axis=(2, 4))
            # One frame per call: the same work, and a quarter of the activations (the
            # attention scores of 4 frames at once held ~100 MB more at the peak, 256M model).
            features = np.concatenate([np.asarray(self.vision([pixels[i:i + 1],
                                                               patches[i:i + 1]])[0])
                                       for i in range(pixels.shape[0])])
            embeds[0][ids[0] == self.image_token_id] = features.reshape(-1, embeds.shape[-1])
            stats.extra["vision_s"] = time.perf_counter() - start
        return embeds

    def _step(self, embeds: np.ndarray, mask: np.ndarray, positions: np.ndarray) -> np.ndarray:
        """One call of the stateful language model: `embeds` (rows, new, hidden) appended to
        the cache, `mask` (rows, cache + new) 1 where a slot holds a token, `positions` (rows,
        new); the logits of each row's last slot, (rows, vocabulary)."""
        outputs = self.language.infer({
            "inputs_embeds": embeds,
            "attention_mask": mask.astype(np.int64),
            "position_ids": positions.astype(np.int64),
            "beam_idx": np.arange(embeds.shape[0], dtype=np.int32)})
        return np.asarray(outputs["logits"])[:, -1]

    def generate(self, frames: list[Frame], prompt: str, params: GenerationParams,
                 on_piece: Callable[[str], None], *, video_fps: float | None = None,
                 video_duration: float | None = None,
                 on_event: EventCallback = ignore_event) -> GenerationStats:
        request = GenerationRequest(frames, prompt, params, video_fps, video_duration, on_event)
        return self.generate_batch([request], lambda row, piece: on_piece(piece))[0]

    def generate_batch(self, requests: list[GenerationRequest],
                       on_piece: Callable[[int, str], None]) -> list[GenerationStats]:
        """Up to `max_batch` requests decoded together: each row's prompt (vision included)
        prepared on its own, then the rows left-padded into ONE prefill and one decode call
        per token for all of them, each row with its own decoding rule, limits, stopping and
        streaming. Decode steps read the weights once for every row: that is the gain."""
        for r in requests:
            check_request(r.frames, r.prompt)
        self.load()
        stats: list[GenerationStats] = []
        for start in range(0, len(requests), self.max_batch):
            chunk = requests[start:start + self.max_batch]
            stats += self._generate_rows(
                chunk, lambda row, piece, first=start: on_piece(first + row, piece))
        return stats

    def _generate_rows(self, requests: list[GenerationRequest],
                       on_piece: Callable[[int, str], None]) -> list[GenerationStats]:
        runs = [GenerationRun(r.frames, r.on_event) for r in requests]
        with self._lock:
            prompts: list[tuple[dict[str, np.ndarray], GenerationRun]] = []
            for run, r in zip(runs, requests, strict=True):
                with run.preprocessing():
                    inputs = self.prepare_inputs(r.frames, r.prompt, r.video_fps,
                                                 r.video_duration)
                    run.prompt_tokens = int(inputs["input_ids"].shape[1])
                prompts.append((inputs, run))
            texts = [IncrementalText(self.inputs.tokenizer,
                                     run.generating(lambda p, row=row: on_piece(row, p),
                                                    r.params.max_tokens))
                     for row, (run, r) in enumerate(zip(runs, requests, strict=True))]
            # Vision runs inside GENERATE, as in the transformers backend (its time to first
            # token covers vision + prefill).
            embeds = [self._prompt_embeddings(inputs, run.stats)[0] for inputs, run in prompts]
            del prompts
            try:
                generated = self._decode(embeds, [r.params for r in requests], runs, texts)
            finally:
                del embeds
                trim_free_memory()
            return [run.finish(count, at=at) for run, (count, at)
                    in zip(runs, generated, strict=True)]

    def _decode(self, embeds: list[np.ndarray], params: list[GenerationParams],
                runs: list[GenerationRun], texts: list[IncrementalText]
                ) -> list[tuple[int, float]]:
        """Prefill the rows (left-padded to the longest prompt) and decode until every row
        stops; each row's (tokens generated, perf_counter time it stopped)."""
        rows = len(embeds)
        width = max(e.shape[0] for e in embeds)
        hidden = embeds[0].shape[1]
        prefill = np.zeros((rows, width, hidden), dtype=np.float32)
        mask = np.zeros((rows, width), dtype=np.int64)
        for row, e in enumerate(embeds):
            prefill[row, width - e.shape[0]:] = e
            mask[row, width - e.shape[0]:] = 1
        positions = np.maximum(mask.cumsum(axis=1) - 1, 0)
        rng = np.random.default_rng()
        self.language.reset_state()
        prefill_start = time.perf_counter()
        logits = self._step(prefill, mask, positions)
        prefill_s = time.perf_counter() - prefill_start
        for run in runs:
            run.first_token()
            run.stats.extra["prefill_s"] = prefill_s
        next_position = positions[:, -1] + 1
        generated = [0] * rows
        stopped: list[float | None] = [None] * rows
        pad = min(self.eos_ids)  # what a stopped row is fed while the others go on
        while True:
            tokens = []
            for row in range(rows):
                if stopped[row] is not None:
                    tokens.append(pad)
                    continue
                token = _choose(logits[row], params[row], generated[row], self.eos_ids, rng)
                generated[row] += 1
                if token not in self.eos_ids:
                    texts[row].add(token)
                if token in self.eos_ids or generated[row] >= params[row].max_tokens:
                    texts[row].finish()
                    stopped[row] = time.perf_counter()
                tokens.append(token)
            if all(at is not None for at in stopped):
                return [(count, at) for count, at in zip(generated, stopped, strict=True)]
            step = np.asarray(self.embed(np.asarray(tokens, dtype=np.int64)[:, None])[0])
            mask = np.concatenate([mask, np.ones((rows, 1), dtype=np.int64)], axis=1)
            logits = self._step(step, mask, next_position[:, None])
            next_position = next_position + 1

    def answer_yes_probability(self, frames: list[Frame], question: str) -> float | None:
        check_request(frames, question)
        self.load()
        yes, no = yes_no_token_ids(self.inputs.tokenizer)
        if not yes or not no:
            return None
        with self._lock:
            inputs = self.prepare_inputs(frames, question)
            embeds = self._prompt_embeddings(inputs, GenerationStats())
            self.language.reset_state()
            length = embeds.shape[1]
            probs = _softmax(self._step(embeds, np.ones((1, length)),
                                        np.arange(length)[None])[0])
        p_yes, p_no = float(probs[sorted(yes)].sum()), float(probs[sorted(no)].sum())
        return p_yes / (p_yes + p_no) if p_yes + p_no > 0 else None


def _softmax(logits: np.ndarray) -> np.ndarray:
    z = logits.astype(np.float64) - logits.max()
    e = np.exp(z)
    return e / e.sum()


def _choose(logits: np.ndarray, params: GenerationParams, generated: int, eos: set[int],
            rng: np.random.Generator) -> int:
    """The next token: greedy, or temperature + top-p sampling; never EOS under min_tokens."""
    logits = logits.astype(np.float32, copy=True)
    if generated < params.min_tokens:
        logits[list(eos)] = -np.inf
    if params.greedy:
        return int(np.argmax(logits))
    probs = _softmax(logits / params.temperature)
    order = np.argsort(-probs)
    cumulative = np.cumsum(probs[order])
    keep = order[: int(np.searchsorted(cumulative, params.top_p) + 1)]
    return int(rng.choice(keep, p=probs[keep] / probs[keep].sum()))

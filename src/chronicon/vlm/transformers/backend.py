"""The transformers backend: SmolVLM2 (or any image-text-to-text model) on this machine.

Loaded once and reused. Placement, precision and the memory check are decided before a byte of
weights is read (`placement.py`); CPU speed-ups are applied after loading (`speedups/`); a model
that cannot be had becomes ModelUnavailable (exit 3) with the fix. Frames go to the processor as
ONE video with its metadata, so the prompt carries each frame's real timestamp and the processor
never re-samples our frames.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import torch
from transformers import (
    AutoModelForImageTextToText,
    AutoProcessor,
    LogitsProcessorList,
    StoppingCriteriaList,
    TextStreamer,
)
from transformers.utils import logging as transformers_logging
from transformers.video_utils import VideoMetadata

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
from ..catalog import ModelRef, count_parameters, resolve_model
from ..hub import fetch_model_dir
from ..tokens import yes_no_token_ids
from ..video_clock import video_clock
from .batch import MaxTokensPerRow, MinTokensPerRow, RowStreamer, group_key, join_rows
from .decode_threads import DecodeOnOneThread
from .placement import (
    QUANT_4BIT,
    QUANT_8BIT,
    Machine,
    choose_device,
    choose_dtype,
    choose_quantization,
    dtype_name,
    plan_precision,
    probe_machine,
)
from .speedups import apply_cpu_speedups

if TYPE_CHECKING:
    from ...config import Settings

log = logging.getLogger(__name__)

# Rows decoded together by generate_batch (CHRONICON_MAX_BATCH).
DEFAULT_MAX_BATCH = 4
# The memory check assumes the largest request we accept, so a loaded model never runs out later.
MEMORY_CHECK_FRAMES = 16


def video_metadata(frames: list[Frame], fps: float | None,
                   duration: float | None) -> VideoMetadata:
    """Metadata that makes the processor stamp each frame with its own timestamp (see
    `video_clock`)."""
    clock = video_clock(frames, fps, duration)
    return VideoMetadata(total_num_frames=clock.total_frames, fps=clock.fps,
                         duration=clock.duration, frames_indices=clock.indices)


class _PieceStreamer(TextStreamer):
    """Hands each decoded text piece to a callback; reports the first generated token."""

    def __init__(self, tokenizer: Any, on_piece: Callable[[str], None],
                 on_first_token: Callable[[], None]) -> None:
        super().__init__(tokenizer, skip_prompt=True, skip_special_tokens=True)
        self.on_piece = on_piece
        self.on_first_token = on_first_token
        self.emitted = False

    def put(self, value: torch.Tensor) -> None:
        if not self.next_tokens_are_prompt:
            self.on_first_token()
        super().put(value)

    def on_finalized_text(self, text: str, stream_end: bool = False) -> None:
        if text:
            self.emitted = True
            self.on_piece(text)


class TransformersBackend(Backend):
    """A transformers model on this machine. Construction validates the request and decides
    device/precision (no loading); `load` fetches and loads; `generate` streams a description."""

    name: ClassVar[str] = "transformers"
    supports_batch: ClassVar[bool] = True
    yes_probability_from_logits: ClassVar[bool] = True

    @classmethod
    def from_settings(cls, settings: Settings, *, model: str | None = None,
                      device: str | None = None, quantize: bool | None = None,
                      compile: bool | None = None, cuda_device: int | None = None,
                      **_: Any) -> TransformersBackend:
        quantization = settings.quantization
        if quantize is False:
            quantization = "none"
        elif quantize is True and quantization == "none":
            quantization = "auto"
        return cls(model=model or settings.model, device=device or settings.device,
                   quantization=quantization,
                   compile=settings.compile if compile is None else compile,
                   cuda_device=cuda_device, offline=settings.hub_offline,
                   max_batch=settings.max_batch, threads=settings.threads)

    def __init__(self, model: str | None = None, device: str | None = "auto",
                 quantization: str = "auto", compile: bool = False,
                 cuda_device: int | None = None, offline: bool = False,
                 machine: Machine | None = None, max_batch: int = DEFAULT_MAX_BATCH,
                 threads: int | None = None) -> None:
        if quantization not in ("auto", "4bit", "8bit", "none"):
            raise BadParameter("quantization", f"{quantization!r} is not auto, 4bit, 8bit or none")
        self.ref: ModelRef = resolve_model(model)
        self.machine = machine or probe_machine()
        self.device = choose_device(device, cuda_device, self.machine)
        self.dtype = choose_dtype(self.device, self.machine)
        self._quantization_setting = quantization
        self.quantization = choose_quantization(quantization, self.device, self.ref.parameters,
                                                self.machine)
        self._compile_requested = compile
        if max_batch < 1:
            raise BadParameter("max_batch", f"must be 1 or more, got {max_batch}")
        self.max_batch = max_batch
        self.threads = threads
        self._compiled = False
        self._offline = offline
        self._load_lock = threading.Lock()
        self._generate_lock = threading.Lock()
        self.model: Any = None
        self.processor: Any = None
        self.model_dir: Path | None = None
        self.video_input = True
        self.speedups: tuple[str, ...] = ()
        self.loaded = False

    @property
    def _decode_on_one_thread(self) -> bool:
        """Token steps on one thread when the CPU is shared (see decode_threads.py)."""
        return self.device == "cpu"

    # ---- loading ------------------------------------------------------------------------------

    def info(self) -> BackendInfo:
        return BackendInfo(
            model_id=self.ref.model_id,
            device=self.device,
            dtype=dtype_name(self.dtype),
            quantization=self.quantization.mode,
            quantization_reason=self.quantization.reason,
            compiled=self._compiled,
            backend=self.name,
            speedups=self.speedups,
        )

    def load(self) -> float:
        with self._load_lock:
            if self.loaded:
                return 0.0
            start = time.perf_counter()
            self.model_dir = self.fetch_model_dir()
            parameters = self.ref.parameters or count_parameters(self.model_dir)
            if self.ref.parameters is None:
                # Now that the size is known, `auto` can decide for a model outside the catalog.
                self.quantization = choose_quantization(
                    self._quantization_setting, self.device, parameters, self.machine)
            plan = plan_precision(parameters, MEMORY_CHECK_FRAMES, self.device, self.dtype,
                                  self.quantization, self._quantization_setting,
                                  self.machine.bitsandbytes_available, self.ref.model_id)
            self.dtype, self.quantization = plan.dtype, plan.quantization
            if self.device.startswith("cuda"):
                self._enable_cuda_fast_paths()
            if self.threads:
                torch.set_num_threads(self.threads)  # process-wide: torch has one pool
            # transformers' per-shard "Loading weights" bar would garble our own progress display.
            transformers_logging.disable_progress_bar()
            self.processor = self._load_processor(self.model_dir)
            self.model = self._load_model(self.model_dir)
            # SmolVLM2's processor takes `videos=`; an image-only one gets a list of images.
            self.video_input = getattr(self.processor, "video_processor", None) is not None
            if self._compile_requested:
                self._try_compile()
            self.loaded = True
            seconds = time.perf_counter() - start
            info = self.info()
            log.info("loaded %s on %s (%s, quantization %s: %s, compiled %s) in %.2fs",
                     info.model_id, info.device, info.dtype, info.quantization,
                     info.quantization_reason, info.compiled, seconds)
            return seconds

    def fetch_model_dir(self) -> Path:
        """The model's directory: the given one, or the hub snapshot (downloaded once)."""
        return fetch_model_dir(self.ref, offline=self._offline)

    def _load_processor(self, model_dir: Path) -> Any:
        try:
            return AutoProcessor.from_pretrained(model_dir)
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ModelUnavailable(
                f"cannot load a processor for {self.ref.model_id}: {_first_line(exc)}. Fix: pass "
                "--model with a complete image-text-to-text model directory") from None

    def _load_model(self, model_dir: Path) -> Any:
        kwargs: dict[str, Any] = {"dtype": self.dtype, "attn_implementation": "sdpa"}
        if self.device.startswith("cuda"):
            kwargs["device_map"] = {"": self.device}  # one device: no auto-sharding
        if self.quantization.mode in (QUANT_4BIT, QUANT_8BIT):
            kwargs["quantization_config"] = self._bnb_config()
        try:
            model = AutoModelForImageTextToText.from_pretrained(model_dir, **kwargs)
        except ValueError as exc:
            if "attn" not in str(exc).lower() and "attention" not in str(exc).lower():
                raise ModelUnavailable(f"cannot load {self.ref.model_id}: "
                                       f"{_first_line(exc)}") from None
            log.warning("%s does not support SDPA attention; using its default",
                        self.ref.model_id)
            kwargs.pop("attn_implementation")
            model = AutoModelForImageTextToText.from_pretrained(model_dir, **kwargs)
        except (OSError, KeyError, TypeError) as exc:
            raise ModelUnavailable(f"cannot load {self.ref.model_id}: {_first_line(exc)}. "
                                   "Fix: pass --model with a complete model directory") from None
        if not self.device.startswith("cuda"):
            model.to(self.device)
        model.eval()
        speedups = apply_cpu_speedups(
            model, dtype=self.dtype, device=self.device, compiling=self._compile_requested,
            quantized=self.quantization.quantized)
        if self._decode_on_one_thread:
            speedups.append("decode-one-thread-when-shared")
        self.speedups = tuple(speedups)
        log.debug("speed-ups applied: %s", ", ".join(self.speedups) or "none")
        return model

    def _bnb_config(self) -> Any:
        from transformers import BitsAndBytesConfig

        if self.quantization.mode == QUANT_4BIT:
            return BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4",
                                      bnb_4bit_use_double_quant=True,
                                      bnb_4bit_compute_dtype=torch.bfloat16)
        return BitsAndBytesConfig(load_in_8bit=True)

    @staticmethod
    def _enable_cuda_fast_paths() -> None:
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
        torch.backends.cudnn.benchmark = True

    def _try_compile(self) -> None:
        try:
            self._eager_forward = self.model.forward
            self.model.forward = torch.compile(self.model.forward, dynamic=True)
            self._compiled = True
        except Exception as exc:  # noqa: BLE001 - compile is an optional speed-up
            log.warning("torch.compile unavailable (%s); running eagerly", _first_line(exc))
            self._compiled = False

    def _uncompile(self, exc: BaseException) -> None:
        log.warning("compiled model failed (%s); falling back to eager", _first_line(exc))
        self.model.forward = self._eager_forward
        self._compiled = False

    # ---- inference ----------------------------------------------------------------------------

    def prepare_inputs(self, frames: list[Frame], prompt: str, video_fps: float | None = None,
                       video_duration: float | None = None) -> Any:
        """Chat-templated prompt + pixel values, on the model's device and in its dtype.
        No frames: a text-only prompt."""
        images = [f.image.convert("RGB") for f in frames]
        if not images:
            inputs = self.processor(text=self._chat_text([], prompt), return_tensors="pt")
        elif self.video_input:
            return self.prepare_video_batch([GenerationRequest(frames, prompt,
                                                               video_fps=video_fps,
                                                               video_duration=video_duration)])
        else:
            inputs = self.processor(text=self._chat_text([{"type": "image"} for _ in images],
                                                         prompt),
                                    images=[images], return_tensors="pt")
        return self._to_model(inputs)

    def prepare_video_batch(self, requests: list[GenerationRequest]) -> Any:
        """Every request's frames as ONE video with its own metadata; prompts left-padded to
        one length (a single request is not padded).

        The processor runs once per request and the rows are joined as its own batch call
        would join them (`join_rows`, checked equal by a test): its fp32 working copies for 16
        frames at once peaked 246 MB above the model here, against 62 MB for 4."""
        rows = [self._video_row(r) for r in requests]
        if len(rows) == 1:
            return self._to_model(rows[0])
        return self._to_model(join_rows(rows, self.processor.tokenizer.pad_token_id))

    def _video_row(self, request: GenerationRequest) -> Any:
        return self.processor(text=[self._chat_text([{"type": "video"}], request.prompt)],
                              videos=[[f.image.convert("RGB") for f in request.frames]],
                              video_metadata=[video_metadata(request.frames, request.video_fps,
                                                             request.video_duration)],
                              do_sample_frames=False, return_tensors="pt")

    def _chat_text(self, media: list[dict[str, str]], prompt: str) -> str:
        messages = [{"role": "user", "content": [*media, {"type": "text", "text": prompt}]}]
        return self.processor.apply_chat_template(messages, add_generation_prompt=True)

    def _to_model(self, inputs: Any) -> Any:
        compute_dtype = torch.bfloat16 if self.quantization.quantized else self.dtype
        # The processor's pixel mask is int64, 8 bytes per pixel (134 MB for 16 frames) held
        # through the whole generation; the model only asks which pixels are set.
        if "pixel_attention_mask" in inputs:
            inputs["pixel_attention_mask"] = inputs["pixel_attention_mask"].bool()
        # Floating tensors (pixel values) take the model's dtype, every tensor its device.
        return inputs.to(self.model.device).to(compute_dtype)

    def generate(self, frames: list[Frame], prompt: str, params: GenerationParams,
                 on_piece: Callable[[str], None], *, video_fps: float | None = None,
                 video_duration: float | None = None,
                 on_event: EventCallback = ignore_event) -> GenerationStats:
        run = self.start_run(frames, prompt, on_event)
        with self._generate_lock:
            try:
                return self._generate(run, prompt, params, video_fps, video_duration, on_piece,
                                      allow_retry=True)
            finally:
                trim_free_memory()

    def _generate(self, run: GenerationRun, prompt: str, params: GenerationParams,
                  video_fps: float | None, video_duration: float | None,
                  on_piece: Callable[[str], None], allow_retry: bool) -> GenerationStats:
        with run.preprocessing():
            inputs = self.prepare_inputs(run.frames, prompt, video_fps, video_duration)
            run.prompt_tokens = int(inputs["input_ids"].shape[1])
        threads = DecodeOnOneThread(self._decode_on_one_thread)

        def first_token() -> None:
            run.first_token()
            threads.prefill_done()

        streamer = _PieceStreamer(self.processor.tokenizer,
                                  run.generating(on_piece, params.max_tokens), first_token)
        gen_kwargs = dict(inputs, streamer=streamer, max_new_tokens=params.max_tokens,
                          min_new_tokens=params.min_tokens, **sampling_kwargs(params))
        try:
            with torch.inference_mode(), threads:
                ids = self.model.generate(**gen_kwargs)
        except Exception as exc:
            if self._compiled and allow_retry and not streamer.emitted:
                self._uncompile(exc)
                return self._generate(GenerationRun(run.frames, ignore_event), prompt, params,
                                      video_fps, video_duration, on_piece, allow_retry=False)
            raise
        if threads.decode_threads is not None:
            run.stats.extra["decode_threads"] = threads.decode_threads
        if threads.share is not None:
            run.stats.extra["prefill_cpu_share"] = round(threads.share, 3)
        return run.finish(int(ids.shape[1]) - run.prompt_tokens)

    def generate_batch(self, requests: list[GenerationRequest],
                       on_piece: Callable[[int, str], None]) -> list[GenerationStats]:
        """Requests with the same decoding rule share forward passes, up to
        `max_batch` rows at a time: one vision pass over all their frames, one decode loop
        with per-row stopping and streaming. Text-only requests and image-only processors
        run one after another."""
        for r in requests:
            check_request(r.frames, r.prompt)
        self.load()
        results: list[GenerationStats | None] = [None] * len(requests)
        # Rows share a batch when they decode by the same rule. Frame counts may differ: each
        # row is prepared on its own (`prepare_video_batch`), so its prompt states its own.
        groups: dict[tuple[float, float], list[int]] = {}
        for i, r in enumerate(requests):
            if r.frames and self.video_input:
                groups.setdefault(group_key(r.params), []).append(i)
            else:
                results[i] = self._generate_one(r, lambda piece, i=i: on_piece(i, piece))
        for indices in groups.values():
            for start in range(0, len(indices), self.max_batch):
                chunk = indices[start:start + self.max_batch]
                if len(chunk) == 1:
                    results[chunk[0]] = self._generate_one(
                        requests[chunk[0]], lambda piece, i=chunk[0]: on_piece(i, piece))
                    continue
                rows = self._generate_rows([requests[i] for i in chunk],
                                           lambda row, piece, c=chunk: on_piece(c[row], piece))
                for i, stats in zip(chunk, rows, strict=True):
                    results[i] = stats
        return [s for s in results if s is not None]

    def _generate_one(self, r: GenerationRequest,
                      on_piece: Callable[[str], None]) -> GenerationStats:
        return self.generate(r.frames, r.prompt, r.params, on_piece, video_fps=r.video_fps,
                             video_duration=r.video_duration, on_event=r.on_event)

    def _generate_rows(self, requests: list[GenerationRequest],
                       on_piece: Callable[[int, str], None]) -> list[GenerationStats]:
        runs = [GenerationRun(r.frames, r.on_event) for r in requests]
        with self._generate_lock:
            with ExitStack() as stages:
                for run in runs:
                    stages.enter_context(run.preprocessing())
                inputs = self.prepare_video_batch(requests)
                for run, mask in zip(runs, inputs["attention_mask"], strict=True):
                    run.prompt_tokens = int(mask.sum())
            emit = [run.generating(lambda p, row=row: on_piece(row, p), r.params.max_tokens)
                    for row, (run, r) in enumerate(zip(runs, requests, strict=True))]
            eos = _eos_ids(self.model.generation_config)
            max_tokens = [r.params.max_tokens for r in requests]
            prompt_length = int(inputs["input_ids"].shape[1])
            threads = DecodeOnOneThread(self._decode_on_one_thread)
            streamer = RowStreamer(self.processor.tokenizer, len(requests), max_tokens, eos,
                                   lambda row, piece: emit[row](piece),
                                   on_first_token=threads.prefill_done)
            params = requests[0].params
            with torch.inference_mode(), threads:
                self.model.generate(
                    **inputs, streamer=streamer, max_new_tokens=max(max_tokens),
                    min_new_tokens=0, **sampling_kwargs(params),
                    logits_processor=LogitsProcessorList([MinTokensPerRow(
                        prompt_length, [r.params.min_tokens for r in requests], eos)]),
                    stopping_criteria=StoppingCriteriaList([MaxTokensPerRow(prompt_length,
                                                                            max_tokens)]))
            del inputs
            trim_free_memory()
        stats = []
        for row, run in enumerate(runs):
            run.first_token(streamer.first_token_at)
            stats.append(run.finish(streamer.generated(row), at=streamer.finished_at[row]))
        return stats

    def answer_yes_probability(self, frames: list[Frame], question: str) -> float | None:
        """Softmax over the first answer token's logits: P(yes) / (P(yes) + P(no)), each the
        sum over the tokenizer's first tokens of "Yes", " Yes", "yes", " yes" (and "No"...)."""
        check_request(frames, question)
        self.load()
        yes, no = yes_no_token_ids(self.processor.tokenizer)
        if not yes or not no:
            return None
        with self._generate_lock, torch.inference_mode():
            inputs = self.prepare_inputs(frames, question)
            logits = self.model(**inputs).logits[0, -1].float()
        probs = torch.softmax(logits, dim=-1)
        p_yes, p_no = float(probs[sorted(yes)].sum()), float(probs[sorted(no)].sum())
        total = p_yes + p_no
        return p_yes / total if total > 0 else None


def sampling_kwargs(params: GenerationParams) -> dict[str, Any]:
    """generate()'s sampling arguments for `params`."""
    if not params.greedy:
        return {"do_sample": True, "temperature": params.temperature, "top_p": params.top_p}
    # Clear sampling knobs a model's generation_config may carry, so greedy stays quiet.
    return {"do_sample": False, "temperature": None, "top_p": None, "top_k": None}


def _eos_ids(generation_config: Any) -> list[int]:
    eos = generation_config.eos_token_id
    return [] if eos is None else [int(eos)] if isinstance(eos, int) else [int(e) for e in eos]


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


LocalBackend = TransformersBackend  # the name before the registry ("local" stays an alias)

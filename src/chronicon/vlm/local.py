"""The local backend: SmolVLM2 (or any image-text-to-text model) through transformers.

Loaded once and reused. Placement, precision and the memory check are decided before a byte of
weights is read (`device.py`, `memory.py`); a model that cannot be had becomes ModelUnavailable
(exit 3) with the fix. Frames go to the processor as ONE video with its metadata, so the prompt
carries each frame's real timestamp and the processor never re-samples our frames.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import torch
from transformers import (
    AutoModelForImageTextToText,
    AutoProcessor,
    StoppingCriteria,
    StoppingCriteriaList,
    TextStreamer,
)
from transformers.utils import logging as transformers_logging
from transformers.video_utils import VideoMetadata

from ..errors import BadParameter, ModelUnavailable
from ..events import EventCallback, Stage, StageFinished, StageStarted, ignore_event
from ..video.frames import Frame
from .attention import ATTENTION_IMPLEMENTATION
from .backend import BackendInfo, GenerationParams, GenerationStats
from .catalog import ModelRef, count_parameters, resolve_model
from .cpu_linear import can_prepack, prepack_linears
from .device import (
    QUANT_4BIT,
    QUANT_8BIT,
    Machine,
    choose_device,
    choose_dtype,
    choose_quantization,
    dtype_name,
    probe_machine,
)
from .memory import plan_precision
from .vision_layout import make_vision_embeddings_contiguous

log = logging.getLogger(__name__)

# The memory check assumes the largest request we accept, so a loaded model never runs out later.
MEMORY_CHECK_FRAMES = 16
# What a model directory needs; weights in other formats (onnx, gguf) are never downloaded.
_HUB_FILES = ["*.json", "*.safetensors", "*.jinja", "*.txt", "*.model", "*.tiktoken"]
# A millisecond clock for frames whose indices do not match the stream's nominal rate (VFR).
_MS_CLOCK_FPS = 1000.0


def video_metadata(frames: list[Frame], fps: float | None,
                   duration: float | None) -> VideoMetadata:
    """Metadata that makes the processor stamp each frame with its own timestamp.

    The processor computes a timestamp as index / fps. With the stream's fps and our frame
    indices that is exact for constant-rate video; when the indices and timestamps disagree
    (variable frame rate, or no fps known) the frames are placed on a millisecond clock instead.
    """
    last = max(f.timestamp for f in frames)
    duration = duration if duration and duration > 0 else last
    consistent = bool(fps) and fps > 0 and all(
        abs(f.index / fps - f.timestamp) <= 1.0 / fps for f in frames)
    if consistent:
        indices = [f.index for f in frames]
        total = max(int(round(duration * fps)), max(indices) + 1)
        return VideoMetadata(total_num_frames=total, fps=float(fps), duration=duration,
                             frames_indices=indices)
    indices = [int(round(f.timestamp * _MS_CLOCK_FPS)) for f in frames]
    total = max(int(round(duration * _MS_CLOCK_FPS)), max(indices) + 1)
    return VideoMetadata(total_num_frames=total, fps=_MS_CLOCK_FPS, duration=duration,
                         frames_indices=indices)


class _PieceStreamer(TextStreamer):
    """Hands each decoded text piece to a callback; notes when the first generated token came."""

    def __init__(self, tokenizer: Any, on_piece: Callable[[str], None]) -> None:
        super().__init__(tokenizer, skip_prompt=True, skip_special_tokens=True)
        self.on_piece = on_piece
        self.first_token_at: float | None = None
        self.emitted = False

    def put(self, value: torch.Tensor) -> None:
        if not self.next_tokens_are_prompt and self.first_token_at is None:
            self.first_token_at = time.perf_counter()
        super().put(value)

    def on_finalized_text(self, text: str, stream_end: bool = False) -> None:
        if text:
            self.emitted = True
            self.on_piece(text)


class _Cancelled(StoppingCriteria):
    """Stops generation at the next token once `event` is set (the consumer stopped reading)."""

    def __init__(self, event: threading.Event) -> None:
        self.event = event

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor,
                 **kwargs: Any) -> torch.BoolTensor:
        return torch.full((input_ids.shape[0],), self.event.is_set(), dtype=torch.bool,
                          device=input_ids.device)


class LocalBackend:
    """A transformers model on this machine. Construction validates the request and decides
    device/precision (no loading); `load` fetches and loads; `describe` streams a description."""

    def __init__(self, model: str | None = None, device: str | None = "auto",
                 quantization: str = "auto", compile: bool = False,
                 cuda_device: int | None = None, offline: bool = False,
                 machine: Machine | None = None) -> None:
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
        self._compiled = False
        self._offline = offline
        self._load_lock = threading.Lock()
        self._generate_lock = threading.Lock()
        self.model: Any = None
        self.processor: Any = None
        self.model_dir: Path | None = None
        self.video_input = True
        self.loaded = False
        self.last_stats = GenerationStats()

    # ---- loading ------------------------------------------------------------------------------

    def info(self) -> BackendInfo:
        return BackendInfo(
            model_id=self.ref.model_id,
            device=self.device,
            dtype=dtype_name(self.dtype),
            quantization=self.quantization.mode,
            quantization_reason=self.quantization.reason,
            compiled=self._compiled,
        )

    def load(self) -> float:
        with self._load_lock:
            if self.loaded:
                return 0.0
            start = time.perf_counter()
            self.model_dir = self._fetch()
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

    def _fetch(self) -> Path:
        """The model's directory: the given one, or the hub snapshot (downloaded once, then
        read from the cache)."""
        if self.ref.local_dir is not None:
            return self.ref.local_dir
        from huggingface_hub import snapshot_download
        from huggingface_hub.errors import (
            GatedRepoError,
            HFValidationError,
            LocalEntryNotFoundError,
            RepositoryNotFoundError,
        )

        model_id = self.ref.model_id
        fix = (f"download it once with `hf download {model_id}` (or `huggingface-cli download "
               f"{model_id}`) while online, or pass --model PATH to a local model directory")
        try:
            return Path(snapshot_download(model_id, allow_patterns=_HUB_FILES,
                                          local_files_only=self._offline))
        except GatedRepoError:
            why = "it is gated: accept its licence on huggingface.co and run `hf auth login`"
        except RepositoryNotFoundError:
            why = "no such model on the Hugging Face Hub (short names: 256m, 500m, 2.2b)"
        except HFValidationError:
            why = "that is not a valid Hugging Face model id"
        except LocalEntryNotFoundError:
            why = ("offline mode is on (HF_HUB_OFFLINE) and it is not in the local cache"
                   if self._offline else
                   "the Hugging Face Hub cannot be reached and it is not in the local cache")
        except (OSError, httpx.HTTPError) as exc:  # HfHubHTTPError, connection, timeouts
            why = f"the download failed ({type(exc).__name__})"
        raise ModelUnavailable(f"model {model_id} is not available: {why}. Fix: {fix}")

    def _load_processor(self, model_dir: Path) -> Any:
        try:
            return AutoProcessor.from_pretrained(model_dir)
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ModelUnavailable(
                f"cannot load a processor for {self.ref.model_id}: {_first_line(exc)}. Fix: pass "
                "--model with a complete image-text-to-text model directory") from None

    def _load_model(self, model_dir: Path) -> Any:
        # SDPA; on CPU with the cheaper single-query path for decode steps (attention.py).
        attention = ATTENTION_IMPLEMENTATION if self.device == "cpu" else "sdpa"
        kwargs: dict[str, Any] = {"dtype": self.dtype, "attn_implementation": attention}
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
            log.warning("%s does not support %s attention; using its default",
                        self.ref.model_id, attention)
            kwargs.pop("attn_implementation")
            model = AutoModelForImageTextToText.from_pretrained(model_dir, **kwargs)
        except (OSError, KeyError, TypeError) as exc:
            raise ModelUnavailable(f"cannot load {self.ref.model_id}: {_first_line(exc)}. "
                                   "Fix: pass --model with a complete model directory") from None
        if not self.device.startswith("cuda"):
            model.to(self.device)
        model.eval()
        make_vision_embeddings_contiguous(model)  # no transposed copies per layer (bit-identical)
        # Not under torch.compile: inductor needs plain weights (it packs them itself).
        if (can_prepack(self.dtype, self.device) and not self.quantization.quantized
                and not self._compile_requested):
            try:
                packed = prepack_linears(model)
                log.debug("prepacked %d Linear layers for oneDNN", packed)
            except RuntimeError as exc:  # an unusual torch build: plain F.linear still works
                log.warning("could not prepack Linear weights (%s)", _first_line(exc))
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
        """Chat-templated prompt + pixel values, on the model's device and in its dtype."""
        images = [f.image.convert("RGB") for f in frames]
        if self.video_input:
            messages = [{"role": "user", "content": [{"type": "video"},
                                                      {"type": "text", "text": prompt}]}]
            text = self.processor.apply_chat_template(messages, add_generation_prompt=True)
            metadata = video_metadata(frames, video_fps, video_duration)
            inputs = self.processor(text=text, videos=[images], video_metadata=[metadata],
                                    do_sample_frames=False, return_tensors="pt")
        else:
            content = [{"type": "image"} for _ in images] + [{"type": "text", "text": prompt}]
            text = self.processor.apply_chat_template([{"role": "user", "content": content}],
                                                      add_generation_prompt=True)
            inputs = self.processor(text=text, images=[images], return_tensors="pt")
        compute_dtype = torch.bfloat16 if self.quantization.quantized else self.dtype
        # Floating tensors (pixel values) take the model's dtype, every tensor its device.
        return inputs.to(self.model.device).to(compute_dtype)

    def describe(self, frames: list[Frame], prompt: str, params: GenerationParams,
                 video_fps: float | None = None, video_duration: float | None = None,
                 on_event: EventCallback = ignore_event) -> Iterator[str]:
        """The Backend protocol's iterator: generation runs in a helper thread and its pieces
        come through a queue. Closing the iterator early stops the generation."""
        self._check_request(frames, prompt)
        self.load()
        pieces: queue.Queue[tuple[str, Any]] = queue.Queue()
        cancel = threading.Event()

        def run() -> None:
            try:
                self.describe_to(frames, prompt, params, lambda p: pieces.put(("piece", p)),
                                 video_fps, video_duration, on_event, cancel=cancel)
                pieces.put(("done", None))
            except BaseException as exc:  # noqa: BLE001 - re-raised in the consumer's thread
                pieces.put(("error", exc))

        thread = threading.Thread(target=run, name="chronicon-generate", daemon=True)
        thread.start()
        try:
            while True:
                kind, value = pieces.get()
                if kind == "piece":
                    yield value
                elif kind == "error":
                    raise value
                else:
                    return
        finally:
            cancel.set()  # a consumer that stopped reading stops the generation too
            thread.join()

    def describe_to(self, frames: list[Frame], prompt: str, params: GenerationParams,
                    on_piece: Callable[[str], None], video_fps: float | None = None,
                    video_duration: float | None = None,
                    on_event: EventCallback = ignore_event,
                    cancel: threading.Event | None = None) -> None:
        """Generate in the calling thread, handing each text piece to `on_piece` as it decodes.

        Preferred over `describe` where a callback will do (`analyze` uses it): on a 2-core
        machine OpenMP throttles its spin-waiting as soon as a second thread runs torch work,
        which made every decode step ~40% slower when generation ran in a helper thread.
        An exception raised by `on_piece` stops the generation and propagates.
        """
        self._check_request(frames, prompt)
        self.load()
        with self._generate_lock:
            self._generate(frames, prompt, params, video_fps, video_duration, on_event,
                           on_piece, cancel or threading.Event(), allow_retry=True)

    @staticmethod
    def _check_request(frames: list[Frame], prompt: str) -> None:
        if not frames:
            raise BadParameter("frames", "no frames to describe")
        if not prompt or not prompt.strip():
            raise BadParameter("prompt", "must not be empty")

    def _generate(self, frames: list[Frame], prompt: str, params: GenerationParams,
                  video_fps: float | None, video_duration: float | None,
                  on_event: EventCallback, on_piece: Callable[[str], None],
                  cancel: threading.Event, allow_retry: bool) -> None:
        stats = GenerationStats()
        self.last_stats = stats
        on_event(StageStarted(Stage.PREPROCESS, f"{len(frames)} frames"))
        start = time.perf_counter()
        inputs = self.prepare_inputs(frames, prompt, video_fps, video_duration)
        stats.preprocess_s = time.perf_counter() - start
        stats.prompt_tokens = int(inputs["input_ids"].shape[1])
        on_event(StageFinished(Stage.PREPROCESS, stats.preprocess_s,
                               f"{stats.prompt_tokens} prompt tokens"))
        on_event(StageStarted(Stage.GENERATE, f"up to {params.max_tokens} tokens"))

        streamer = _PieceStreamer(self.processor.tokenizer, on_piece)
        gen_kwargs = dict(inputs, streamer=streamer, max_new_tokens=params.max_tokens,
                          min_new_tokens=params.min_tokens, do_sample=not params.greedy,
                          stopping_criteria=StoppingCriteriaList([_Cancelled(cancel)]))
        if not params.greedy:
            gen_kwargs.update(temperature=params.temperature, top_p=params.top_p)
        else:
            # Clear sampling knobs a model's generation_config may carry, so greedy stays quiet.
            gen_kwargs.update(temperature=None, top_p=None, top_k=None)
        gen_start = time.perf_counter()
        try:
            with torch.inference_mode():
                ids = self.model.generate(**gen_kwargs)
        except Exception as exc:
            if self._compiled and allow_retry and not streamer.emitted:
                self._uncompile(exc)
                self._generate(frames, prompt, params, video_fps, video_duration, on_event,
                               on_piece, cancel, allow_retry=False)
                return
            raise
        stats.generate_s = time.perf_counter() - gen_start
        first = streamer.first_token_at
        stats.time_to_first_token_s = (first - gen_start) if first else stats.generate_s
        stats.generated_tokens = int(ids.shape[1]) - stats.prompt_tokens
        on_event(StageFinished(Stage.GENERATE, stats.generate_s,
                               f"{stats.generated_tokens} tokens"))


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__

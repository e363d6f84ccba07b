"""The one interface every model backend offers: an abstract base class with one required method.

A backend is loaded once (`load`) and then generates any number of descriptions. The one method
an implementation must write is `generate`: it runs in the CALLING thread, hands each decoded
text piece to `on_piece`, and returns the `GenerationStats` of that call (there is no shared
`last_stats`, so one warm backend can serve several callers). Everything else has a default
here: the iterator form `describe` (a helper thread and a queue), text-only prompts
(`generate_text`), several requests (`generate_batch`, one after another unless a backend
batches), and `answer_yes_probability` (None: the backend cannot tell).

`GenerationRun` holds what every `generate` needs once: the request check, loading, the
PREPROCESS and GENERATE stage events and their timing, and time to first token.

Which class a name means lives in `registry.py`; `create_backend` is the factory.
"""

from __future__ import annotations

import queue
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from ..errors import BadParameter
from ..events import EventCallback, Stage, StageFinished, StageStarted, ignore_event
from ..video.frames import Frame

if TYPE_CHECKING:
    from ..config import Settings

MAX_TOKENS_LIMIT = 4096


@dataclass(frozen=True)
class GenerationParams:
    """How much to generate and how. Greedy (temperature 0) unless a temperature is given."""

    max_tokens: int = 100
    min_tokens: int = 50
    temperature: float = 0.0
    top_p: float = 1.0

    def __post_init__(self) -> None:
        if not 1 <= self.max_tokens <= MAX_TOKENS_LIMIT:
            raise BadParameter("max_tokens", f"must be from 1 to {MAX_TOKENS_LIMIT}, "
                                             f"got {self.max_tokens}")
        if self.min_tokens < 0:
            raise BadParameter("min_tokens", f"must be 0 or more, got {self.min_tokens}")
        if self.min_tokens > self.max_tokens:
            raise BadParameter("min_tokens", f"{self.min_tokens} is above max_tokens "
                                             f"{self.max_tokens} (min must not exceed max)")
        if self.temperature < 0:
            raise BadParameter("temperature", f"must be 0 or more, got {self.temperature}")
        if not 0 < self.top_p <= 1:
            raise BadParameter("top_p", f"must be in (0, 1], got {self.top_p}")

    @property
    def greedy(self) -> bool:
        return self.temperature == 0


@dataclass(frozen=True)
class GenerationRequest:
    """One description to generate: what `generate` takes, as a value (for `generate_batch`)."""

    frames: list[Frame]
    prompt: str
    params: GenerationParams = field(default_factory=GenerationParams)
    video_fps: float | None = None
    video_duration: float | None = None
    on_event: EventCallback = ignore_event


@dataclass(frozen=True)
class BackendInfo:
    """What is (or will be) loaded, and how: recorded in every result."""

    model_id: str
    device: str
    dtype: str
    quantization: str  # "none", "4bit-nf4", "8bit" (bitsandbytes), "int8-weights" (openvino)
    quantization_reason: str
    compiled: bool = False
    backend: str = ""  # the registry name ("transformers", "remote", "openvino")
    speedups: tuple[str, ...] = ()  # runtime patches applied at load (transformers on CPU)

    @property
    def quantized(self) -> bool:
        return self.quantization != "none"


@dataclass
class GenerationStats:
    """Measured during one `generate` call (seconds and token counts)."""

    prompt_tokens: int = 0
    generated_tokens: int = 0
    preprocess_s: float = 0.0
    time_to_first_token_s: float = 0.0
    generate_s: float = 0.0
    extra: dict[str, float] = field(default_factory=dict)

    @property
    def tokens_per_second(self) -> float:
        """Generated tokens per second of generation, prefill included (the result's figure)."""
        return self.generated_tokens / self.generate_s if self.generate_s > 0 else 0.0

    @property
    def decode_tokens_per_second(self) -> float:
        """Decode rate after the first token (prefill excluded)."""
        decode_s = self.generate_s - self.time_to_first_token_s
        if self.generated_tokens <= 1 or decode_s <= 0:
            return 0.0
        return (self.generated_tokens - 1) / decode_s


def check_request(frames: list[Frame], prompt: str) -> None:
    """The checks every backend makes before any model work (frames may be empty: text only)."""
    if not isinstance(prompt, str) or not prompt.strip():
        raise BadParameter("prompt", "must not be empty")
    if not all(isinstance(f, Frame) for f in frames):
        raise BadParameter("frames", "every frame must be a chronicon.video.frames.Frame")


class GenerationRun:
    """The bookkeeping of one `generate` call, shared by every backend.

    Use it in order: `preprocessing()` around input preparation, `prompt_tokens = N`,
    `generating(on_piece, max_tokens)` (returns the callback to stream through; it notes the
    first piece's time), then `finish(generated_tokens)`, which reports GENERATE's end and
    returns the stats. Events go to `on_event` as StageStarted/StageFinished."""

    def __init__(self, frames: list[Frame], on_event: EventCallback) -> None:
        self.frames = frames
        self.on_event = on_event
        self.stats = GenerationStats()
        self._gen_start = 0.0
        self._first_piece_at: float | None = None

    def preprocessing(self, detail: str | None = None) -> _Stage:
        return _Stage(self, detail or f"{len(self.frames)} frames")

    @property
    def prompt_tokens(self) -> int:
        return self.stats.prompt_tokens

    @prompt_tokens.setter
    def prompt_tokens(self, value: int) -> None:
        self.stats.prompt_tokens = int(value)

    def generating(self, on_piece: Callable[[str], None],
                   max_tokens: int) -> Callable[[str], None]:
        self.on_event(StageStarted(Stage.GENERATE, f"up to {max_tokens} tokens"))
        self._gen_start = time.perf_counter()

        def timed(piece: str) -> None:
            if self._first_piece_at is None:
                self._first_piece_at = time.perf_counter()
            on_piece(piece)

        return timed

    def first_token(self, at: float | None = None) -> None:
        """Mark the first generated token (now, or at perf_counter time `at`): a backend that
        knows it before any text is handed out."""
        if self._first_piece_at is None or (at is not None and at < self._first_piece_at):
            self._first_piece_at = at if at is not None else time.perf_counter()

    def finish(self, generated_tokens: int, at: float | None = None) -> GenerationStats:
        """End GENERATE (now, or at perf_counter time `at` for a batch row that finished
        earlier) and return the stats."""
        stats = self.stats
        stats.generate_s = (at if at is not None else time.perf_counter()) - self._gen_start
        first = self._first_piece_at
        stats.time_to_first_token_s = (first - self._gen_start) if first else stats.generate_s
        stats.generated_tokens = int(generated_tokens)
        self.on_event(StageFinished(Stage.GENERATE, stats.generate_s,
                                    f"{stats.generated_tokens} tokens"))
        return stats


class _Stage:
    def __init__(self, run: GenerationRun, detail: str) -> None:
        self.run, self.detail = run, detail
        self.finished_detail: str | None = None

    def __enter__(self) -> _Stage:
        self.run.on_event(StageStarted(Stage.PREPROCESS, self.detail))
        self._start = time.perf_counter()
        return self

    def __exit__(self, kind: Any, value: Any, traceback: Any) -> None:
        if kind is not None:
            return
        self.run.stats.preprocess_s = time.perf_counter() - self._start
        detail = self.finished_detail or f"{self.run.stats.prompt_tokens} prompt tokens"
        self.run.on_event(StageFinished(Stage.PREPROCESS, self.run.stats.preprocess_s, detail))


class _Stop(Exception):
    """Raised from `on_piece` inside `describe`'s helper thread once its reader went away."""


class Backend(ABC):
    """A model that describes frames. Subclasses set `name` and write `generate`."""

    name: ClassVar[str]
    supports_batch: ClassVar[bool] = False
    # Whether answer_yes_probability reads real token probabilities (False: a parsed answer).
    yes_probability_from_logits: ClassVar[bool] = False

    @classmethod
    def from_settings(cls, settings: Settings, **overrides: Any) -> Backend:
        """Build from Settings plus create_backend's per-call overrides (None = the setting).
        Backends that take no settings need not override it."""
        return cls()

    def load(self) -> float:
        """Load the model if needed; seconds it took (0.0 when already loaded)."""
        self._loaded = True
        return 0.0

    @property
    def loaded(self) -> bool:
        return bool(getattr(self, "_loaded", False))

    @loaded.setter
    def loaded(self, value: bool) -> None:
        self._loaded = bool(value)

    @abstractmethod
    def info(self) -> BackendInfo:
        """What is (or will be) loaded; cheap, never loads."""

    def start_run(self, frames: list[Frame], prompt: str,
                  on_event: EventCallback) -> GenerationRun:
        """Check the request, load if needed, and start the bookkeeping of one call."""
        check_request(frames, prompt)
        self.load()
        return GenerationRun(frames, on_event)

    @abstractmethod
    def generate(self, frames: list[Frame], prompt: str, params: GenerationParams,
                 on_piece: Callable[[str], None], *, video_fps: float | None = None,
                 video_duration: float | None = None,
                 on_event: EventCallback = ignore_event) -> GenerationStats:
        """Describe `frames` in the calling thread, handing each decoded text piece to
        `on_piece`; return this call's stats. An exception raised by `on_piece` stops the
        generation and propagates. `video_fps`/`video_duration` give the prompt real
        timestamps. Reports StageStarted/StageFinished for PREPROCESS and GENERATE (through
        `start_run`'s GenerationRun). `frames` may be empty: a text-only prompt."""

    def generate_text(self, prompt: str, params: GenerationParams,
                      on_piece: Callable[[str], None],
                      on_event: EventCallback = ignore_event) -> GenerationStats:
        """A text-only prompt (a timeline summary): no frames."""
        return self.generate([], prompt, params, on_piece, on_event=on_event)

    def generate_batch(self, requests: list[GenerationRequest],
                       on_piece: Callable[[int, str], None]) -> list[GenerationStats]:
        """Several requests; `on_piece(i, piece)` streams request i. Default: one after another
        (a backend with `supports_batch` shares forward passes between them)."""
        return [self.generate(r.frames, r.prompt, r.params,
                              lambda piece, i=i: on_piece(i, piece), video_fps=r.video_fps,
                              video_duration=r.video_duration, on_event=r.on_event)
                for i, r in enumerate(requests)]

    def answer_yes_probability(self, frames: list[Frame], question: str) -> float | None:
        """P("yes") for a yes/no `question` about `frames`, from the first answer token's
        probabilities (P(yes) / (P(yes) + P(no))); None when the backend cannot tell."""
        return None

    def describe(self, frames: list[Frame], prompt: str, params: GenerationParams,
                 video_fps: float | None = None, video_duration: float | None = None,
                 on_event: EventCallback = ignore_event) -> Iterator[str]:
        """The iterator form of `generate`: generation runs in a helper thread and its pieces
        come through a queue. Closing the iterator early stops the generation. Prefer
        `generate` where a callback will do: on a 2-core machine OpenMP throttles its
        spin-waiting as soon as a second thread runs torch work (~40% slower decode)."""
        if not frames:
            raise BadParameter("frames", "no frames to describe")
        check_request(frames, prompt)
        pieces: queue.Queue[tuple[str, Any]] = queue.Queue()
        cancel = threading.Event()

        def on_piece(piece: str) -> None:
            if cancel.is_set():
                raise _Stop
            pieces.put(("piece", piece))

        def run() -> None:
            try:
                self.generate(frames, prompt, params, on_piece, video_fps=video_fps,
                              video_duration=video_duration, on_event=on_event)
                pieces.put(("done", None))
            except _Stop:
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


def create_backend(settings: Settings, model: str | None = None, device: str | None = None,
                   quantize: bool | None = None, compile: bool | None = None,
                   cuda_device: int | None = None) -> Backend:
    """The backend the settings ask for (`settings.backend`, a registry name), with per-call
    overrides (None = use the setting). `quantize=False` forces no quantization; True keeps the
    setting unless it is `none`. `cuda_device` is the GPU index used when the device is `auto`
    or `cuda` on a CUDA machine. Raises BadParameter for a device or model name that cannot be
    right, ModelUnavailable (with the `pip install`) for a backend whose extra is missing;
    nothing is loaded."""
    from .registry import AUTO, backend_class, canonical_name, choose_auto

    name = canonical_name(settings.backend)
    if name == AUTO:
        name = choose_auto(settings, model, device)
    cls = backend_class(name)
    return cls.from_settings(settings, model=model, device=device, quantize=quantize,
                             compile=compile, cuda_device=cuda_device)

"""The one interface every model backend offers, and the factory that picks one from Settings.

A backend is loaded once (`load`) and then describes any number of frame sets (`describe`),
yielding text pieces as they are generated. The interface is small so that an OpenAI-compatible
remote backend fits beside the local transformers one.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from ..config import Settings
from ..errors import BadParameter
from ..events import EventCallback, ignore_event
from ..video.frames import Frame

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
class BackendInfo:
    """What is (or will be) loaded, and how: recorded in every result."""

    model_id: str
    device: str
    dtype: str
    quantization: str  # "none", "4bit-nf4" or "8bit"
    quantization_reason: str
    compiled: bool = False

    @property
    def quantized(self) -> bool:
        return self.quantization != "none"


@dataclass
class GenerationStats:
    """Measured during the last `describe` call (seconds and token counts)."""

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


@runtime_checkable
class Backend(Protocol):
    loaded: bool
    last_stats: GenerationStats

    def load(self) -> float:
        """Load the model if needed; seconds it took (0.0 when already loaded)."""
        ...

    def describe(self, frames: list[Frame], prompt: str, params: GenerationParams,
                 video_fps: float | None = None, video_duration: float | None = None,
                 on_event: EventCallback = ignore_event) -> Iterator[str]:
        """Yield the description of `frames` piece by piece; `last_stats` is complete once the
        iterator is exhausted. `video_fps`/`video_duration` give the prompt real timestamps.
        Reports StageStarted/StageFinished for PREPROCESS and GENERATE through `on_event`
        (TokenGenerated is the caller's: it sees every piece)."""
        ...

    def info(self) -> BackendInfo:
        ...


def create_backend(settings: Settings, model: str | None = None, device: str | None = None,
                   quantize: bool | None = None, compile: bool | None = None,
                   cuda_device: int | None = None) -> Backend:
    """The backend the settings ask for, with per-call overrides (None = use the setting).
    `quantize=False` forces no quantization; True keeps the setting unless it is `none`.
    `cuda_device` is the GPU index used when the device is `auto` or `cuda` on a CUDA machine.
    Raises BadParameter for a device or model name that cannot be right; nothing is loaded."""
    if settings.backend == "remote":
        if not settings.remote_url:
            raise BadParameter("remote_url", "CHRONICON_BACKEND=remote needs CHRONICON_REMOTE_URL "
                                             "(an OpenAI-compatible server's /v1 URL)")
        from .remote import RemoteBackend

        key = settings.remote_api_key.get_secret_value() if settings.remote_api_key else None
        return RemoteBackend(settings.remote_url, model=model or settings.model, api_key=key,
                             timeout=settings.remote_timeout)
    from .local import LocalBackend  # torch/transformers load only when a backend is made

    quantization = settings.quantization
    if quantize is False:
        quantization = "none"
    elif quantize is True and quantization == "none":
        quantization = "auto"
    return LocalBackend(
        model=model or settings.model,
        device=device or settings.device,
        quantization=quantization,
        compile=settings.compile if compile is None else compile,
        cuda_device=cuda_device,
        offline=settings.hub_offline,
    )

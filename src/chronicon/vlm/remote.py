"""A backend that asks an OpenAI-compatible server (vLLM, llama.cpp server, Ollama) over HTTP.

For scale: GPU workers run the model behind `/v1/chat/completions`; Chronicon sends the sampled
frames as JPEG data URLs, each preceded by its timestamp (the same "Frame from mm:ss" cue the
local SmolVLM prompt carries), and streams the answer back as Server-Sent Events.
"""

from __future__ import annotations

import base64
import io
import json
import logging
import math
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, ClassVar

import httpx

from ..errors import BadParameter, ModelUnavailable
from ..events import EventCallback, ignore_event
from ..redact import mask_url
from ..video.frames import Frame
from .backend import Backend, BackendInfo, GenerationParams, GenerationStats, check_request
from .catalog import PRESETS

if TYPE_CHECKING:
    from ..config import Settings

log = logging.getLogger(__name__)

JPEG_QUALITY = 90


def frame_timestamp(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes:02d}:{secs:02d}"


def encode_frame(frame: Frame) -> str:
    """The frame as a `data:image/jpeg;base64,…` URL, the one image form every server accepts."""
    buffer = io.BytesIO()
    frame.image.convert("RGB").save(buffer, format="JPEG", quality=JPEG_QUALITY)
    return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def chat_messages(frames: list[Frame], prompt: str) -> list[dict[str, Any]]:
    content: list[dict[str, Any]] = []
    for frame in frames:
        content.append({"type": "text", "text": f"Frame from {frame_timestamp(frame.timestamp)}:"})
        content.append({"type": "image_url", "image_url": {"url": encode_frame(frame)}})
    content.append({"type": "text", "text": prompt})
    return [{"role": "user", "content": content}]


class RemoteBackend(Backend):
    """A model served elsewhere. `load` only checks the server answers; nothing is downloaded."""

    name: ClassVar[str] = "remote"
    yes_probability_from_logits: ClassVar[bool] = True  # when the server returns logprobs

    @classmethod
    def from_settings(cls, settings: Settings, *, model: str | None = None,
                      **_: Any) -> RemoteBackend:
        if not settings.remote_url:
            raise BadParameter("remote_url", "CHRONICON_BACKEND=remote needs CHRONICON_REMOTE_URL "
                                             "(an OpenAI-compatible server's /v1 URL)")
        key = settings.remote_api_key.get_secret_value() if settings.remote_api_key else None
        return cls(settings.remote_url, model=model or settings.model, api_key=key,
                   timeout=settings.remote_timeout)

    def __init__(self, base_url: str, model: str | None = None, api_key: str | None = None,
                 timeout: float = 120.0, transport: httpx.BaseTransport | None = None) -> None:
        if not base_url.startswith(("http://", "https://")):
            raise BadParameter("remote_url", f"{mask_url(base_url)!r} is not an http(s) URL")
        self.base_url = base_url.rstrip("/")
        self.display_url = mask_url(self.base_url)  # the URL may hold a credential
        name = model or "256m"
        preset = PRESETS.get(name.lower())
        self.model_id = preset.hub_id if preset else name
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._client = httpx.Client(base_url=self.base_url, headers=headers,
                                    timeout=httpx.Timeout(timeout, connect=10.0),
                                    transport=transport)
        self.loaded = False

    def info(self) -> BackendInfo:
        return BackendInfo(model_id=self.model_id, device=f"remote:{self.display_url}",
                           dtype="server", quantization="none",
                           quantization_reason="decided by the remote server",
                           backend=self.name)

    def load(self) -> float:
        if self.loaded:
            return 0.0
        start = time.perf_counter()
        try:
            response = self._client.get("/models")
        except httpx.HTTPError as exc:
            raise ModelUnavailable(
                f"the model server at {self.display_url} cannot be reached "
                f"({type(exc).__name__}); "
                "start it, or set CHRONICON_BACKEND=local to run the model here") from None
        if response.status_code in (401, 403):
            raise ModelUnavailable(f"the model server at {self.display_url} refused the API key "
                                   f"(HTTP {response.status_code}); check CHRONICON_REMOTE_API_KEY")
        if response.status_code >= 400 and response.status_code != 404:
            # Some servers (llama.cpp's older builds) have no /models; only errors count.
            raise ModelUnavailable(f"the model server at {self.display_url} answered HTTP "
                                   f"{response.status_code} to /models")
        self.loaded = True
        return time.perf_counter() - start

    def generate(self, frames: list[Frame], prompt: str, params: GenerationParams,
                 on_piece: Callable[[str], None], *, video_fps: float | None = None,
                 video_duration: float | None = None,
                 on_event: EventCallback = ignore_event) -> GenerationStats:
        run = self.start_run(frames, prompt, on_event)
        with run.preprocessing() as stage:
            body = self._request_body(frames, prompt, params)
            stage.finished_detail = "frames encoded as JPEG"
        emit = run.generating(on_piece, params.max_tokens)
        pieces = 0
        generated = 0
        for piece, usage in self._stream(body):
            if usage:
                run.prompt_tokens = int(usage.get("prompt_tokens") or 0)
                generated = int(usage.get("completion_tokens") or 0)
            if piece:
                pieces += 1
                emit(piece)
        # Servers that send no usage: one piece is about one token.
        return run.finish(generated or pieces)

    def answer_yes_probability(self, frames: list[Frame], question: str) -> float | None:
        """From the first answer token's log-probabilities when the server returns them
        (`logprobs`/`top_logprobs`, as vLLM and llama.cpp do); otherwise from the answer's text:
        1.0 for yes, 0.0 for no, None for anything else. Which one was used is logged."""
        check_request(frames, question)
        self.load()
        body = self._request_body(frames, question, GenerationParams(max_tokens=1, min_tokens=0))
        body.update(stream=False, logprobs=True, top_logprobs=10)
        body.pop("stream_options", None)
        try:
            response = self._client.post("/chat/completions", json=body)
        except httpx.HTTPError as exc:
            raise ModelUnavailable(f"the model server at {self.display_url} failed "
                                   f"({type(exc).__name__})") from None
        if response.status_code >= 400:
            raise ModelUnavailable(f"the model server at {self.display_url} answered HTTP "
                                   f"{response.status_code}: {_error_text(response)}")
        choice = (response.json().get("choices") or [{}])[0]
        from_logprobs = _yes_from_logprobs(choice.get("logprobs"))
        if from_logprobs is not None:
            log.debug("yes probability from the server's logprobs: %.3f", from_logprobs)
            return from_logprobs
        text = ((choice.get("message") or {}).get("content") or "").strip().lower()
        word = text.split()[0].strip(".,!:") if text else ""
        log.info("the model server returned no logprobs: yes/no parsed from the answer %r", text)
        return {"yes": 1.0, "no": 0.0}.get(word)

    def _request_body(self, frames: list[Frame], prompt: str,
                      params: GenerationParams) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": self.model_id,
            "messages": chat_messages(frames, prompt),
            "max_tokens": params.max_tokens,
            "temperature": params.temperature,
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        if params.min_tokens:
            body["min_tokens"] = params.min_tokens  # vLLM honours it; others ignore it
        if not params.greedy:
            body["top_p"] = params.top_p
        return body

    def _stream(self, body: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any] | None]]:
        """(text piece, usage or None) for each streamed chunk, until `[DONE]`."""
        try:
            with self._client.stream("POST", "/chat/completions", json=body) as response:
                if response.status_code >= 400:
                    response.read()
                    raise ModelUnavailable(
                        f"the model server at {self.display_url} answered HTTP "
                        f"{response.status_code}: {_error_text(response)}")
                for line in response.iter_lines():
                    if not line.startswith("data:"):
                        continue
                    data = line[len("data:"):].strip()
                    if data == "[DONE]":
                        return
                    chunk = json.loads(data)
                    choices = chunk.get("choices") or []
                    delta = (choices[0].get("delta") or {}) if choices else {}
                    yield delta.get("content") or "", chunk.get("usage")
        except httpx.HTTPError as exc:
            raise ModelUnavailable(f"the model server at {self.display_url} failed mid-answer "
                                   f"({type(exc).__name__})") from None
        except json.JSONDecodeError:
            raise ModelUnavailable(f"the model server at {self.display_url} sent a stream that is "
                                   "not OpenAI-compatible JSON") from None

    def close(self) -> None:
        self._client.close()


def _yes_from_logprobs(logprobs: Any) -> float | None:
    """P(yes) / (P(yes) + P(no)) over the first token's top log-probabilities."""
    try:
        top = logprobs["content"][0]["top_logprobs"]
    except (TypeError, KeyError, IndexError):
        return None
    p = {"yes": 0.0, "no": 0.0}
    for entry in top or []:
        word = str(entry.get("token", "")).strip().lower()
        if word in p:
            p[word] += math.exp(float(entry.get("logprob", -math.inf)))
    total = p["yes"] + p["no"]
    return p["yes"] / total if total > 0 else None


def _error_text(response: httpx.Response) -> str:
    try:
        message = response.json().get("error", {})
        return str(message.get("message") if isinstance(message, dict) else message)[:200]
    except (ValueError, AttributeError):
        return response.text[:200]

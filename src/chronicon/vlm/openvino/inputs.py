"""SmolVLM's model inputs built without torch: the prompt token ids (frames as ONE video, each
stamped with its time) and the pixel values, as transformers' SmolVLM processor builds them.

Why not the transformers processor: its video path needs torch + torchvision, which cost the
OpenVINO runtime ~550 MB of resident memory for nothing else (the peak at batch 4 went over
1.5 GB). Here the tokenizer is the model's own `tokenizer.json` (the `tokenizers` library), the
chat template is rendered with Jinja as transformers does, and frames are resized with Pillow's
Lanczos filter (transformers uses torchvision's port of the same filter: values differ by at
most 2 levels in a few pixels in a thousand; tests bound it). The token ids are identical;
tests compare both against the transformers processor.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
from jinja2.ext import loopcontrols
from jinja2.sandbox import ImmutableSandboxedEnvironment
from num2words import num2words
from PIL import Image
from tokenizers import Tokenizer

from ...video.frames import Frame
from ..video_clock import video_clock

# SmolVLM's chat format with a video part: transformers' processor renders video prompts with a
# template of its own (the models' templates know images and text only), so this one says the
# same: "<|im_start|>User: <video>{text}<end_of_utterance>\nAssistant:".
VIDEO_CHAT_TEMPLATE = (
    "<|im_start|>{% for message in messages %}{{ message['role'] | capitalize }}"
    "{% if message['content'] is string %}{{ ': ' + message['content'] }}{% else %}"
    "{% if message['content'][0]['type'] == 'image' %}{{ ':' }}{% else %}{{ ': ' }}{% endif %}"
    "{% for part in message['content'] %}{% if part['type'] == 'text' %}{{ part['text'] }}"
    "{% elif part['type'] == 'image' %}{{ '<image>' }}{% elif part['type'] == 'video' %}"
    "{{ '<video>' }}{% endif %}{% endfor %}{% endif %}<end_of_utterance>\n{% endfor %}"
    "{% if add_generation_prompt %}{{ 'Assistant:' }}{% endif %}")

# What replaces the <video> placeholder (SmolVLM's processor): an intro naming the frame count
# in words and the duration, then each frame's time and its image tokens, then a blank line.
_VIDEO_INTRO = ("You are provided the following series of {count} frames from a {duration} "
                "[H:MM:SS] video.\n")
_FRAME_INTRO = "\nFrame from {minutes:02d}:{seconds:02d}:"
_VIDEO_OUTRO = "\n\n"


class TextTokenizer:
    """The model's tokenizer (tokenizer.json) with the two calls the runtimes make of it."""

    def __init__(self, path: Path) -> None:
        self._tokenizer = Tokenizer.from_file(str(path))

    def encode(self, text: str, add_special_tokens: bool = True) -> list[int]:
        return self._tokenizer.encode(text, add_special_tokens=add_special_tokens).ids

    def decode(self, ids: list[int], skip_special_tokens: bool = True) -> str:
        return self._tokenizer.decode(ids, skip_special_tokens=skip_special_tokens)

    def token_id(self, token: str) -> int:
        found = self._tokenizer.token_to_id(token)
        if found is None:
            raise ValueError(f"the tokenizer has no {token!r} token")
        return int(found)


@dataclass(frozen=True)
class FrameShape:
    """How frames become pixel values: resized so the longest edge is `longest_edge` (the
    aspect ratio kept, an odd short side rounded up), then squeezed to `square` x `square`
    (SmolVLM video frames are never split into tiles), then (x * rescale - mean) / std."""

    longest_edge: int
    square: int
    rescale: float
    mean: tuple[float, float, float]
    std: tuple[float, float, float]

    def resized_size(self, width: int, height: int) -> tuple[int, int]:
        """(width, height) after the first, aspect-keeping resize."""
        edge = self.longest_edge
        if width >= height:
            short = int(edge / (width / height))
            return edge, max(short + short % 2, 1)
        short = int(edge * (width / height))
        return max(short + short % 2, 1), edge

    def pixels(self, image: Image.Image) -> np.ndarray:
        """One frame as (3, square, square) float32."""
        image = image.convert("RGB")
        image = image.resize(self.resized_size(*image.size), Image.Resampling.LANCZOS)
        image = image.resize((self.square, self.square), Image.Resampling.LANCZOS)
        values = np.asarray(image, dtype=np.float32) * np.float32(self.rescale)
        values = (values - np.asarray(self.mean, dtype=np.float32)) / np.asarray(
            self.std, dtype=np.float32)
        return values.transpose(2, 0, 1)


class SmolVLMInputs:
    """Builds `input_ids` (1, tokens) int64 and, with frames, `pixel_values` (1, frames, 3,
    size, size) float32 from a model directory's processor files."""

    def __init__(self, tokenizer: TextTokenizer, text_template: str, shape: FrameShape,
                 image_seq_len: int, special: dict[str, str]) -> None:
        self.tokenizer = tokenizer
        self.shape = shape
        self.image_seq_len = image_seq_len
        self.special = special
        environment = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True,
                                                    extensions=[loopcontrols])
        self._text_template = environment.from_string(text_template)
        self._video_template = environment.from_string(VIDEO_CHAT_TEMPLATE)
        self.image_token_id = tokenizer.token_id(special["image_token"])

    @classmethod
    def from_dir(cls, model_dir: Path) -> SmolVLMInputs:
        """Read processor_config.json, tokenizer.json, tokenizer_config.json and the chat
        template (chat_template.jinja, chat_template.json or tokenizer_config.json)."""
        config = json.loads((model_dir / "processor_config.json").read_text())
        video = config.get("video_processor", config)
        tokenizer_config = _read_json(model_dir / "tokenizer_config.json")
        sampling = video.get("video_sampling", {}).get("video_size") or video["size"]
        shape = FrameShape(
            longest_edge=int(sampling["longest_edge"]),
            square=int(video["max_image_size"]["longest_edge"]),
            rescale=float(video.get("rescale_factor", 1 / 255)),
            mean=tuple(video.get("image_mean", (0.5, 0.5, 0.5))),
            std=tuple(video.get("image_std", (0.5, 0.5, 0.5))))
        special = {
            "bos_token": str(tokenizer_config.get("bos_token") or ""),
            "eos_token": str(tokenizer_config.get("eos_token") or ""),
            "image_token": str(tokenizer_config.get("image_token") or "<image>"),
            "fake_image_token": str(tokenizer_config.get("fake_image_token")
                                    or "<fake_token_around_image>"),
            "global_image_token": str(tokenizer_config.get("global_image_token")
                                      or "<global-img>"),
        }
        return cls(TextTokenizer(model_dir / "tokenizer.json"),
                   _chat_template(model_dir, tokenizer_config), shape,
                   int(config.get("image_seq_len", 64)), special)

    def __call__(self, frames: list[Frame], prompt: str, video_fps: float | None = None,
                 video_duration: float | None = None) -> dict[str, np.ndarray]:
        if not frames:
            text = self._render(self._text_template, [{"type": "text", "text": prompt}])
            return {"input_ids": self._ids(text)}
        text = self._render(self._video_template,
                            [{"type": "video"}, {"type": "text", "text": prompt}])
        text = text.replace("<video>", self.video_text(frames, video_fps, video_duration), 1)
        pixels = np.stack([self.shape.pixels(f.image) for f in frames])[None]
        return {"input_ids": self._ids(text), "pixel_values": pixels}

    def video_text(self, frames: list[Frame], fps: float | None,
                   duration: float | None) -> str:
        """What stands for the video in the prompt: the intro, then per frame its time
        (MM:SS) and its image tokens."""
        clock = video_clock(frames, fps, duration)
        image = (self.special["fake_image_token"] + self.special["global_image_token"]
                 + self.special["image_token"] * self.image_seq_len
                 + self.special["fake_image_token"])
        text = _VIDEO_INTRO.format(count=num2words(len(frames)),
                                   duration=timedelta(seconds=int(clock.duration)))
        for second in clock.timestamps:
            text += _FRAME_INTRO.format(minutes=int(second // 60),
                                        seconds=int(second % 60)) + image
        return text + _VIDEO_OUTRO

    def _render(self, template: Any, content: list[dict[str, str]]) -> str:
        messages = [{"role": "user", "content": content}]
        return template.render(messages=messages, add_generation_prompt=True,
                               bos_token=self.special["bos_token"],
                               eos_token=self.special["eos_token"])

    def _ids(self, text: str) -> np.ndarray:
        return np.asarray([self.tokenizer.encode(text)], dtype=np.int64)


def _read_json(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text()) if path.exists() else {}


def _chat_template(model_dir: Path, tokenizer_config: dict[str, Any]) -> str:
    """The model's own chat template (used for text-only prompts)."""
    if (model_dir / "chat_template.jinja").exists():
        return (model_dir / "chat_template.jinja").read_text()
    stored = _read_json(model_dir / "chat_template.json").get("chat_template")
    template = stored or tokenizer_config.get("chat_template")
    if not isinstance(template, str):
        raise ValueError(f"{model_dir} holds no chat template")
    return template

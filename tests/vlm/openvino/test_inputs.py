"""The OpenVINO runtime's torch-free inputs against transformers' SmolVLM processor: the same
token ids for every prompt shape, pixel values within two levels, the same decoded text."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from transformers import AutoProcessor

from chronicon.video.frames import Frame
from chronicon.vlm.openvino.inputs import SmolVLMInputs
from chronicon.vlm.transformers.backend import video_metadata
from support.tiny_model import save_processor

# One level of 0..255 after (x / 255 - 0.5) / 0.5.
LEVEL = 2 / 255


@pytest.fixture(scope="module", params=["tiny", "256m-sized"])
def processors(request: pytest.FixtureRequest, tiny_model_dir: Path,
               tmp_path_factory: pytest.TempPathFactory) -> tuple[object, SmolVLMInputs]:
    if request.param == "tiny":
        model_dir = tiny_model_dir
    else:  # the released 256M model's frame size and image tokens per frame
        model_dir = save_processor(tmp_path_factory.mktemp("processor-512"), 512, 64)
    return AutoProcessor.from_pretrained(model_dir), SmolVLMInputs.from_dir(model_dir)


def photo_like(width: int, height: int, seed: int) -> Image.Image:
    """Smooth gradients with fine noise and a hard edge: what a resize filter can disagree on."""
    rng = np.random.default_rng(seed)
    x = np.linspace(0, 255, width)[None, :, None]
    y = np.linspace(0, 255, height)[:, None, None]
    values = (0.6 * x + 0.4 * y) * np.ones((1, 1, 3)) + rng.normal(0, 25, (height, width, 3))
    values[:, width // 3: width // 3 + 4] = 255
    return Image.fromarray(values.clip(0, 255).astype(np.uint8))


def frames_at(sizes: list[tuple[int, int]], indices: list[int],
              timestamps: list[float]) -> list[Frame]:
    return [Frame(index=i, timestamp=t, image=photo_like(w, h, seed=i))
            for (w, h), i, t in zip(sizes, indices, timestamps, strict=True)]


def reference(processor, frames: list[Frame], prompt: str, fps: float | None,
              duration: float | None) -> dict[str, np.ndarray]:
    messages = [{"role": "user", "content": [{"type": "video"}, {"type": "text", "text": prompt}]}]
    text = processor.apply_chat_template(messages, add_generation_prompt=True)
    inputs = processor(text=text, videos=[[f.image for f in frames]],
                       video_metadata=[video_metadata(frames, fps, duration)],
                       do_sample_frames=False, return_tensors="np")
    return {k: np.asarray(v) for k, v in inputs.items()}


CASES = [
    # landscape at the stream's rate, minutes past the hour mark in the duration
    ([(640, 360)] * 3, [0, 450, 3900], [0.0, 15.0, 130.0], 30.0, 3725.0, "Describe the video."),
    # portrait, one frame, no fps or duration known (a millisecond clock)
    ([(360, 640)], [7], [0.37], None, None, "Hello  world \n ünïcode ✓"),
    # odd sizes, variable frame rate (indices and timestamps disagree)
    ([(333, 201), (333, 201)], [5, 9], [0.2, 4.75], 25.0, 6.0, "x"),
    # smaller than the model's frames: upscaled
    ([(20, 14)] * 4, [0, 1, 2, 3], [0.0, 0.04, 0.08, 0.12], 25.0, 0.16, "Is it red?"),
]


@pytest.mark.parametrize(("sizes", "indices", "timestamps", "fps", "duration", "prompt"), CASES)
def test_same_token_ids_and_pixels_as_transformers(processors, sizes, indices, timestamps, fps,
                                                   duration, prompt) -> None:
    processor, ours = processors
    frames = frames_at(sizes, indices, timestamps)
    expected = reference(processor, frames, prompt, fps, duration)
    built = ours(frames, prompt, fps, duration)
    assert built["input_ids"].dtype == np.int64
    np.testing.assert_array_equal(built["input_ids"], expected["input_ids"])
    assert built["pixel_values"].shape == expected["pixel_values"].shape
    assert built["pixel_values"].dtype == np.float32
    difference = np.abs(built["pixel_values"] - expected["pixel_values"])
    # Pillow's Lanczos and torchvision's port of it round a few values differently.
    assert difference.max() <= 2 * LEVEL + 1e-6
    assert (difference > 1e-6).mean() < 0.02


def test_text_only_prompt_uses_the_models_template(processors) -> None:
    processor, ours = processors
    messages = [{"role": "user", "content": [{"type": "text", "text": "Summarise: a car."}]}]
    text = processor.apply_chat_template(messages, add_generation_prompt=True)
    expected = np.asarray(processor(text=text, return_tensors="np")["input_ids"])
    built = ours([], "Summarise: a car.")
    assert set(built) == {"input_ids"}
    np.testing.assert_array_equal(built["input_ids"], expected)


def test_decoding_matches_the_transformers_tokenizer(processors) -> None:
    processor, ours = processors
    rng = np.random.default_rng(3)
    vocabulary = processor.tokenizer.vocab_size
    for _ in range(20):
        ids = [int(i) for i in rng.integers(0, vocabulary, 40)]
        assert ours.tokenizer.decode(ids) == processor.tokenizer.decode(
            ids, skip_special_tokens=True)
    assert ours.tokenizer.encode(" yes", add_special_tokens=False) == processor.tokenizer.encode(
        " yes", add_special_tokens=False)
    assert ours.image_token_id == processor.image_token_id

"""The local backend on a tiny real SmolVLM (random weights), loaded like a hub model."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from PIL import Image

from chronicon.config import Settings
from chronicon.errors import BadParameter, ModelUnavailable
from chronicon.events import Event, Stage, StageFinished, StageStarted
from chronicon.video.frames import Frame
from chronicon.vlm.backend import (
    Backend,
    GenerationParams,
    GenerationRequest,
    GenerationStats,
    create_backend,
)
from chronicon.vlm.transformers.backend import LocalBackend, TransformersBackend, video_metadata
from chronicon.vlm.transformers.speedups import ATTENTION_IMPLEMENTATION
from support.tiny_model import TINY_IMAGE_SEQ_LEN

PROMPT = "Describe the main events in this video."


@pytest.fixture(scope="module")
def backend(tiny_model_dir: Path) -> Iterator[LocalBackend]:
    b = LocalBackend(model=str(tiny_model_dir), device="cpu")
    b.load()
    yield b


def make_frames(indices: list[int], fps: float = 30.0,
                timestamps: list[float] | None = None) -> list[Frame]:
    stamps = timestamps if timestamps is not None else [i / fps for i in indices]
    return [Frame(index=i, timestamp=t, image=Image.new("RGB", (336, 252), (40 * k, 90, 200)))
            for k, (i, t) in enumerate(zip(indices, stamps, strict=True))]


def prompt_text(backend: LocalBackend, frames: list[Frame], fps: float | None,
                duration: float | None) -> str:
    inputs = backend.prepare_inputs(frames, PROMPT, fps, duration)
    return backend.processor.tokenizer.decode(inputs["input_ids"][0])


def reference_generation(backend: LocalBackend, frames: list[Frame], n: int) -> str:
    """Plain `generate` on the same inputs, without our streaming machinery."""
    inputs = backend.prepare_inputs(frames, PROMPT, 30.0, 10.0)
    with torch.inference_mode():
        ids = backend.model.generate(**inputs, max_new_tokens=n, min_new_tokens=n,
                                     do_sample=False)
    return backend.processor.tokenizer.decode(ids[0, inputs["input_ids"].shape[1]:],
                                              skip_special_tokens=True)


def generate(backend: Backend, frames: list[Frame], params: GenerationParams,
             **kwargs) -> tuple[list[str], GenerationStats]:
    pieces: list[str] = []
    stats = backend.generate(frames, PROMPT, params, pieces.append, **kwargs)
    return pieces, stats


def test_is_the_transformers_backend(backend: LocalBackend) -> None:
    assert isinstance(backend, Backend) and backend.name == "transformers"
    assert LocalBackend is TransformersBackend
    assert backend.loaded and backend.load() == 0.0  # loaded once, then reused
    info = backend.info()
    assert (info.device, info.quantization, info.quantized, info.compiled) == (
        "cpu", "none", False, False)
    assert info.dtype in ("bfloat16", "float32")
    assert next(backend.model.parameters()).dtype == backend.dtype
    assert backend.model.config._attn_implementation == ATTENTION_IMPLEMENTATION
    assert "decode-attention" in info.speedups and "contiguous-vision" in info.speedups
    assert ("prepacked-linears" in info.speedups) == (info.dtype == "bfloat16")


def test_one_image_block_per_frame_with_real_timestamps(backend: LocalBackend) -> None:
    frames = make_frames([0, 75, 150, 225])  # 0 s, 2.5 s, 5 s, 7.5 s at 30 fps
    text = prompt_text(backend, frames, 30.0, 10.0)
    assert "four frames from a 0:00:10" in text
    stamps = [line.split("Frame from ")[1][:5] for line in text.splitlines()
              if "Frame from" in line]
    assert stamps == ["00:00", "00:02", "00:05", "00:07"]
    assert text.count("<global-img>") == 4
    assert text.count("<image>") == 4 * TINY_IMAGE_SEQ_LEN
    inputs = backend.prepare_inputs(frames, PROMPT, 30.0, 10.0)
    assert inputs["pixel_values"].shape[:2] == (1, 4)  # one video of 4 frames, not re-sampled
    assert inputs["pixel_values"].dtype == backend.dtype


def test_variable_frame_rate_uses_the_frames_own_timestamps(backend: LocalBackend) -> None:
    frames = make_frames([0, 1, 2], timestamps=[0.0, 3.2, 65.0])  # index/fps would say 0-0.07 s
    text = prompt_text(backend, frames, 30.0, 70.0)
    assert [line.split("Frame from ")[1][:5] for line in text.splitlines()
            if "Frame from" in line] == ["00:00", "00:03", "01:05"]
    assert "0:01:10" in text


def test_video_metadata_without_fps_or_duration() -> None:
    frames = make_frames([10, 20], timestamps=[1.5, 4.25])
    meta = video_metadata(frames, None, None)
    assert meta.timestamps == [1.5, 4.25] and meta.duration == 4.25
    meta = video_metadata(make_frames([30, 60]), 30.0, 3.0)
    assert (meta.fps, meta.frames_indices, meta.total_num_frames) == (30.0, [30, 60], 90)


def test_streamed_pieces_are_the_generated_text(backend: LocalBackend) -> None:
    frames = make_frames([0, 150, 299])
    params = GenerationParams(max_tokens=24, min_tokens=24)
    pieces = list(backend.describe(frames, PROMPT, params, video_fps=30.0, video_duration=10.0))
    assert len(pieces) > 1
    assert "".join(pieces) == reference_generation(backend, frames, 24)


@pytest.mark.parametrize("n", [1, 7, 30])
def test_min_equal_max_yields_exactly_that_many_tokens(backend: LocalBackend, n: int) -> None:
    _, stats = generate(backend, make_frames([0, 30]), GenerationParams(max_tokens=n,
                                                                         min_tokens=n))
    assert stats.generated_tokens == n
    assert stats.prompt_tokens > 2 * TINY_IMAGE_SEQ_LEN
    assert 0 < stats.time_to_first_token_s <= stats.generate_s
    assert stats.preprocess_s > 0 and stats.tokens_per_second > 0


def test_max_tokens_caps_generation(backend: LocalBackend) -> None:
    _, stats = generate(backend, make_frames([0]), GenerationParams(max_tokens=5, min_tokens=0))
    assert 1 <= stats.generated_tokens <= 5


def test_sampling_with_a_temperature(backend: LocalBackend) -> None:
    params = GenerationParams(max_tokens=6, min_tokens=6, temperature=0.8, top_p=0.9)
    assert generate(backend, make_frames([0, 30]), params)[1].generated_tokens == 6


def test_stage_events_around_the_model_work(backend: LocalBackend) -> None:
    events: list[Event] = []
    list(backend.describe(make_frames([0, 30]), PROMPT, GenerationParams(8, 8),
                          on_event=events.append))
    assert [(type(e).__name__, e.stage) for e in events] == [
        ("StageStarted", Stage.PREPROCESS), ("StageFinished", Stage.PREPROCESS),
        ("StageStarted", Stage.GENERATE), ("StageFinished", Stage.GENERATE)]
    assert isinstance(events[0], StageStarted) and isinstance(events[-1], StageFinished)
    assert "8 tokens" in events[-1].detail


def test_a_consumer_that_stops_reading_stops_generation(backend: LocalBackend) -> None:
    stream = backend.describe(make_frames([0, 30]), PROMPT,
                              GenerationParams(max_tokens=4000, min_tokens=4000))
    next(stream)
    start = time.perf_counter()
    stream.close()
    assert time.perf_counter() - start < 5  # 4000 tokens would take far longer
    assert generate(backend, make_frames([0]), GenerationParams(3, 3))[1].generated_tokens == 3


def test_processors_without_video_support_get_images(tiny_model_dir: Path) -> None:
    b = LocalBackend(model=str(tiny_model_dir), device="cpu")
    b.load()
    b.video_input = False  # what load() decides for a processor without a video processor
    text = b.processor.tokenizer.decode(b.prepare_inputs(make_frames([0, 30, 60]), PROMPT)
                                        ["input_ids"][0])
    assert text.count("<global-img>") == 3 and "Frame from" not in text
    assert generate(b, make_frames([0, 30, 60]), GenerationParams(4, 4))[1].generated_tokens == 4


def test_bad_requests_fail_before_the_model_runs(backend: LocalBackend) -> None:
    with pytest.raises(BadParameter, match="frames"):
        list(backend.describe([], PROMPT, GenerationParams()))
    with pytest.raises(BadParameter, match="prompt"):
        list(backend.describe(make_frames([0]), "   ", GenerationParams()))


@pytest.mark.parametrize(("kwargs", "field"), [
    ({"max_tokens": 10, "min_tokens": 11}, "min_tokens"),
    ({"max_tokens": 0, "min_tokens": 0}, "max_tokens"),
    ({"max_tokens": 10, "min_tokens": -1}, "min_tokens"),
    ({"temperature": -0.1}, "temperature"),
    ({"top_p": 0.0}, "top_p"),
])
def test_generation_params_are_checked(kwargs: dict, field: str) -> None:
    with pytest.raises(BadParameter) as info:
        GenerationParams(**kwargs)
    assert info.value.name == field


def test_an_uncached_model_offline_names_the_model_and_the_fix() -> None:
    b = LocalBackend(model="nobody/no-such-vlm", device="cpu", offline=True)
    with pytest.raises(ModelUnavailable) as info:
        b.load()
    message = info.value.message
    assert "nobody/no-such-vlm" in message and "offline" in message
    assert "hf download nobody/no-such-vlm" in message and "--model PATH" in message
    assert info.value.exit_code == 3 and not b.loaded


def test_a_directory_without_a_model_is_unavailable(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(ModelUnavailable, match="cannot load"):
        LocalBackend(model=str(tmp_path), device="cpu").load()


def test_create_backend_applies_settings_and_overrides(tmp_path: Path,
                                                       tiny_model_dir: Path) -> None:
    settings = Settings(data_dir=tmp_path, model=str(tiny_model_dir), device="cpu",
                        quantization="4bit")
    b = create_backend(settings)
    assert isinstance(b, LocalBackend) and not b.loaded  # creating loads nothing
    assert b.info().model_id == str(tiny_model_dir.resolve())
    assert "needs CUDA" in b.info().quantization_reason
    assert "--no-quant" in create_backend(settings, quantize=False).info().quantization_reason
    with pytest.raises(BadParameter, match="device"):
        create_backend(settings, device="cuda")
    with pytest.raises(BadParameter, match="remote_url"):
        create_backend(Settings(data_dir=tmp_path, backend="remote"))
    alias = create_backend(Settings(data_dir=tmp_path, backend="local",
                                    model=str(tiny_model_dir), device="cpu"))
    assert alias.info().backend == "transformers"


def test_generate_streams_the_same_pieces_in_the_calling_thread(backend: LocalBackend) -> None:
    frames = make_frames([0, 150, 299])
    params = GenerationParams(max_tokens=16, min_tokens=16)
    via_iterator = list(backend.describe(frames, PROMPT, params, 30.0, 10.0))
    threads: set[str] = set()
    pieces: list[str] = []

    def on_piece(piece: str) -> None:
        threads.add(threading.current_thread().name)
        pieces.append(piece)

    stats = backend.generate(frames, PROMPT, params, on_piece, video_fps=30.0,
                             video_duration=10.0)
    assert pieces == via_iterator
    assert stats.generated_tokens == 16
    assert threads == {threading.current_thread().name}


def test_a_failing_piece_callback_stops_generation(backend: LocalBackend) -> None:
    class Enough(Exception):
        pass

    def on_piece(piece: str) -> None:
        raise Enough(piece)

    with pytest.raises(Enough):
        backend.generate(make_frames([0]), PROMPT, GenerationParams(4000, 4000), on_piece)
    list(backend.describe(make_frames([0]), PROMPT, GenerationParams(2, 2)))  # lock released


@pytest.mark.slow
def test_compile_runs_the_model_through_torch_compile(tiny_model_dir: Path) -> None:
    b = LocalBackend(model=str(tiny_model_dir), device="cpu", compile=True)
    b.load()
    assert b.info().compiled
    assert all("forward" not in vars(m) for m in b.model.modules()
               if type(m) is torch.nn.Linear)  # inductor packs weights itself
    assert generate(b, make_frames([0, 30]), GenerationParams(3, 3))[1].generated_tokens == 3
    assert b.info().compiled  # it ran compiled, no fallback


def test_text_only_prompt(backend: LocalBackend) -> None:
    pieces: list[str] = []
    stats = backend.generate_text("Summarise: a car stops, a dog runs.", GenerationParams(5, 5),
                                  pieces.append)
    assert stats.generated_tokens == 5 and stats.prompt_tokens > 5
    assert "<image>" not in backend.processor.tokenizer.decode(
        backend.prepare_inputs([], PROMPT)["input_ids"][0])


def test_generate_batch_default_runs_each_request(backend: LocalBackend) -> None:
    requests = [GenerationRequest(make_frames([0, 30]), PROMPT, GenerationParams(n, n))
                for n in (3, 5)]
    streamed: dict[int, list[str]] = {0: [], 1: []}
    stats = backend.generate_batch(requests, lambda i, piece: streamed[i].append(piece))
    assert [s.generated_tokens for s in stats] == [3, 5]
    for i, request in enumerate(requests):
        assert "".join(streamed[i]) == "".join(generate(backend, request.frames,
                                                        request.params)[0])


def test_yes_probability_from_the_first_answer_token(backend: LocalBackend) -> None:
    p = backend.answer_yes_probability(make_frames([0, 30]), "Is there a car?")
    assert p is not None and 0.0 < p < 1.0
    assert p == backend.answer_yes_probability(make_frames([0, 30]), "Is there a car?")


def test_threads_setting_sizes_torchs_pool(tmp_path: Path, tiny_model_dir: Path) -> None:
    before = torch.get_num_threads()
    try:
        b = create_backend(Settings(data_dir=tmp_path, model=str(tiny_model_dir), device="cpu",
                                    threads=1))
        b.load()
        assert b.threads == 1 and torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)

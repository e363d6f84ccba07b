"""generate_batch on the tiny SmolVLM: shared forward passes, per-row limits and streaming."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from PIL import Image

from chronicon.events import Event, Stage, StageFinished
from chronicon.video.frames import Frame
from chronicon.vlm.backend import GenerationParams, GenerationRequest
from chronicon.vlm.transformers.backend import TransformersBackend, video_metadata

PROMPT = "Describe the main events in this video."


@pytest.fixture(scope="module")
def backend(tiny_model_dir: Path) -> Iterator[TransformersBackend]:
    b = TransformersBackend(model=str(tiny_model_dir), device="cpu", max_batch=4)
    b.load()
    yield b


def frames(n: int, shade: int) -> list[Frame]:
    return [Frame(index=i * 30, timestamp=float(i),
                  image=Image.new("RGB", (64, 48), ((shade * 50 + i * 30) % 256, 90, 200)))
            for i in range(n)]


def one_by_one(backend: TransformersBackend, request: GenerationRequest) -> tuple[str, int, int]:
    pieces: list[str] = []
    stats = backend.generate(request.frames, request.prompt, request.params, pieces.append,
                             video_fps=request.video_fps, video_duration=request.video_duration)
    return "".join(pieces), stats.generated_tokens, stats.prompt_tokens


def test_rows_give_the_text_of_one_by_one_generation(backend: TransformersBackend) -> None:
    requests = [GenerationRequest(frames(2 + k % 2, k), PROMPT if k % 2 else "What happens?",
                                  GenerationParams(12, 12), video_fps=30.0, video_duration=4.0)
                for k in range(3)]
    streamed: dict[int, list[str]] = {i: [] for i in range(3)}
    batches: list[int] = []
    prepare = backend.prepare_video_batch
    backend.prepare_video_batch = lambda rs: batches.append(len(rs)) or prepare(rs)
    try:
        stats = backend.generate_batch(requests, lambda i, piece: streamed[i].append(piece))
    finally:
        del backend.prepare_video_batch
    assert batches == [3]  # 2 and 3 frames in one batch
    for i, request in enumerate(requests):
        text, count, prompt_tokens = one_by_one(backend, request)
        assert "".join(streamed[i]) == text  # padded rows decode like unpadded ones
        assert stats[i].generated_tokens == count == 12
        # The same prompt as alone, its own "series of N frames" (each row is prepared on its
        # own: transformers' processor would write the batch's largest count into every row).
        assert stats[i].prompt_tokens == prompt_tokens
        assert stats[i].prompt_tokens > 0 and stats[i].time_to_first_token_s > 0
        assert stats[i].time_to_first_token_s <= stats[i].generate_s
    assert stats[0].prompt_tokens != stats[1].prompt_tokens  # own prompt, not the padded one


def test_each_row_stops_at_its_own_limits(backend: TransformersBackend) -> None:
    limits = [(3, 3), (9, 9), (6, 6), (1, 1), (5, 5)]  # five rows: batches of 4 then 1
    requests = [GenerationRequest(frames(2, k), PROMPT, GenerationParams(hi, lo))
                for k, (hi, lo) in enumerate(limits)]
    counts: dict[int, int] = {}
    stats = backend.generate_batch(
        requests, lambda i, piece: counts.__setitem__(i, counts.get(i, 0) + 1))
    assert [s.generated_tokens for s in stats] == [hi for hi, _ in limits]
    assert stats[0].generate_s <= stats[1].generate_s  # a short row finishes first


def test_events_per_request_and_mixed_sampling(backend: TransformersBackend) -> None:
    events: list[Event] = []
    requests = [GenerationRequest(frames(2, 0), PROMPT, GenerationParams(4, 4),
                                  on_event=events.append),
                GenerationRequest(frames(2, 1), PROMPT,
                                  GenerationParams(4, 4, temperature=0.7, top_p=0.9)),
                GenerationRequest([], "Summarise: a car stops.", GenerationParams(3, 3))]
    stats = backend.generate_batch(requests, lambda i, piece: None)
    assert [s.generated_tokens for s in stats] == [4, 4, 3]
    assert [e.stage for e in events if isinstance(e, StageFinished)] == [
        Stage.PREPROCESS, Stage.GENERATE]


def test_rows_prepared_one_at_a_time_join_into_one_padded_batch(
        backend: TransformersBackend) -> None:
    """The processor runs per request (less memory). Each joined row is that request prepared
    alone, prompt left-padded and frames zero-padded; the pixel values equal the processor's own
    batch call. (Its text is not compared: a batch call states the longest video's frame count in
    every prompt, "three frames" for a one-frame video, which per-request preparation fixes.)"""
    requests = [GenerationRequest(frames(3, 1), PROMPT, video_fps=30.0, video_duration=3.0),
                GenerationRequest(frames(1, 2), "What happens here, in detail?", video_fps=2.0,
                                  video_duration=0.5),
                GenerationRequest([Frame(index=0, timestamp=0.0,
                                         image=Image.new("RGB", (40, 90), (9, 9, 9)))],
                                  "Who?", video_fps=None, video_duration=None)]
    joined = backend.prepare_video_batch(requests)
    width = joined["input_ids"].shape[1]
    for row, request in enumerate(requests):
        alone = backend.prepare_video_batch([request])
        length, n_frames = alone["input_ids"].shape[1], len(request.frames)
        assert torch.equal(joined["input_ids"][row, width - length:], alone["input_ids"][0])
        assert (joined["input_ids"][row, :width - length]
                == backend.processor.tokenizer.pad_token_id).all()
        assert joined["attention_mask"][row].tolist() == [0] * (width - length) + [1] * length
        for key in ("pixel_values", "pixel_attention_mask"):
            assert torch.equal(joined[key][row, :n_frames], alone[key][0])
            assert not joined[key][row, n_frames:].any()
    own = backend._to_model(backend.processor(
        text=[backend._chat_text([{"type": "video"}], r.prompt) for r in requests],
        videos=[[f.image for f in r.frames] for r in requests],
        video_metadata=[video_metadata(r.frames, r.video_fps, r.video_duration)
                        for r in requests],
        do_sample_frames=False, padding=True, padding_side="left", return_tensors="pt"))
    assert sorted(joined) == sorted(own)
    # (Its pixel mask marks a padding frame's pixels as set; the model drops all-zero frames
    # before reading the mask, so only the real frames' masks matter, compared above.)
    assert torch.equal(joined["pixel_values"], own["pixel_values"])

"""generate_batch on the tiny SmolVLM: shared forward passes, per-row limits and streaming."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image

from chronicon.events import Event, Stage, StageFinished
from chronicon.video.frames import Frame
from chronicon.vlm.backend import GenerationParams, GenerationRequest
from chronicon.vlm.transformers.backend import TransformersBackend

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
    stats = backend.generate_batch(requests, lambda i, piece: streamed[i].append(piece))
    for i, request in enumerate(requests):
        text, count, prompt_tokens = one_by_one(backend, request)
        assert "".join(streamed[i]) == text  # padded rows decode like unpadded ones
        assert stats[i].generated_tokens == count == 12
        # The same prompt as alone: transformers' processor writes a batch's largest frame
        # count into every row's "series of N frames", so rows are batched by frame count.
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

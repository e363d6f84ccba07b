"""Concurrent generate() calls coalesced into generate_batch, on the tiny SmolVLM (real
transformers backend, float32 so batched and single texts are comparable)."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from PIL import Image

from chronicon.errors import BadParameter
from chronicon.events import Event, Stage, StageFinished
from chronicon.video.frames import Frame
from chronicon.vlm.backend import GenerationParams
from chronicon.vlm.coalesce import CoalescingBackend
from chronicon.vlm.transformers.backend import TransformersBackend
from chronicon.vlm.transformers.placement import Machine

PROMPTS = ["Describe the video.", "What moves?", "Is anyone there?", "List the colours."]


@pytest.fixture(scope="module")
def backend(tiny_model_dir: Path) -> TransformersBackend:
    fp32_cpu = Machine(cuda_device_count=0, cuda_bf16=False, mps_available=False,
                       cpu_native_bf16=False, bitsandbytes_available=False)
    backend = TransformersBackend(model=str(tiny_model_dir), device="cpu", machine=fp32_cpu)
    backend.load()
    return backend


def frames(shade: int) -> list[Frame]:
    return [Frame(index=i * 30, timestamp=float(i),
                  image=Image.new("RGB", (64, 48), (shade, 40 * i, 200))) for i in range(2)]


class Caller(threading.Thread):
    """One job's thread: generate() through the coalescer, keeping its pieces and events."""

    def __init__(self, coalescer: CoalescingBackend, row: int, prompt: str,
                 gate: threading.Event | None = None) -> None:
        super().__init__(daemon=True)
        self.coalescer, self.row, self.prompt, self.gate = coalescer, row, prompt, gate
        self.pieces: list[str] = []
        self.events: list[Event] = []
        self.stats = None
        self.error: BaseException | None = None

    def on_piece(self, piece: str) -> None:
        if self.gate is not None:
            self.gate.wait(30)  # hold the model busy until the others queue up
        self.pieces.append(piece)

    def run(self) -> None:
        try:
            self.stats = self.coalescer.generate(
                frames(50 * self.row), self.prompt, GenerationParams(10, 10), self.on_piece,
                video_fps=30.0, video_duration=2.0, on_event=self.events.append)
        except BaseException as exc:  # noqa: BLE001 - the test reads it
            self.error = exc


def wait_until(condition, seconds: float = 30.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def alone(backend: TransformersBackend, row: int, prompt: str) -> str:
    pieces: list[str] = []
    backend.generate(frames(50 * row), prompt, GenerationParams(10, 10), pieces.append,
                     video_fps=30.0, video_duration=2.0)
    return "".join(pieces)


def run_while_busy(coalescer: CoalescingBackend, prompts: list[str]) -> list[Caller]:
    """The first call holds the model; the others arrive meanwhile, then it is let go."""
    gate = threading.Event()
    first = Caller(coalescer, 0, prompts[0], gate)
    first.start()
    wait_until(lambda: first.events)  # it has the model
    others = [Caller(coalescer, row, prompt) for row, prompt in enumerate(prompts[1:], 1)]
    for caller in others:
        caller.start()
    wait_until(lambda: coalescer.waiting == len(others))
    gate.set()
    for caller in [first, *others]:
        caller.join(60)
        assert not caller.is_alive()
    return [first, *others]


def test_calls_waiting_together_run_as_one_batch(backend: TransformersBackend) -> None:
    expected = [alone(backend, row, prompt) for row, prompt in enumerate(PROMPTS)]
    coalescer = CoalescingBackend(backend, max_batch=4)
    callers = run_while_busy(coalescer, PROMPTS)
    assert coalescer.stats.batch_sizes == [1, 3]  # the first alone, no wait; then the rest
    for caller, text in zip(callers, expected, strict=True):
        assert caller.error is None
        assert "".join(caller.pieces) == text  # its own text, streamed to its own caller
        assert caller.stats.generated_tokens == 10
        assert [e.stage for e in caller.events if isinstance(e, StageFinished)] == [
            Stage.PREPROCESS, Stage.GENERATE]


def test_the_batch_size_is_capped(backend: TransformersBackend) -> None:
    coalescer = CoalescingBackend(backend, max_batch=2)
    callers = run_while_busy(coalescer, PROMPTS)
    assert all(c.error is None for c in callers)
    assert coalescer.stats.batch_sizes == [1, 2, 1]


def test_a_call_the_model_refuses_fails_alone(backend: TransformersBackend) -> None:
    coalescer = CoalescingBackend(backend, max_batch=4)
    callers = run_while_busy(coalescer, [PROMPTS[0], PROMPTS[1], "   ", PROMPTS[3]])
    assert isinstance(callers[2].error, BadParameter)
    assert [c.error for c in callers if c is not callers[2]] == [None, None, None]
    # the batch of 3 was refused before any piece went out, then each ran alone
    assert coalescer.stats.batch_sizes == [1, 3, 1, 1, 1]


def test_everything_else_is_the_backend_s(backend: TransformersBackend) -> None:
    coalescer = CoalescingBackend(backend, max_batch=4)
    assert coalescer.info() == backend.info() and coalescer.loaded
    assert coalescer.supports_batch

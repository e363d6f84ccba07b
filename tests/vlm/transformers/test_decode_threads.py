"""Token steps run on one thread when the CPU was shared during the prefill, on all of them
otherwise, and the pool is restored after."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from PIL import Image

from chronicon.video.frames import Frame
from chronicon.vlm.backend import GenerationParams, GenerationRequest
from chronicon.vlm.transformers import decode_threads
from chronicon.vlm.transformers.backend import TransformersBackend


@pytest.fixture()
def two_threads():
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(before)


def frames(n: int) -> list[Frame]:
    return [Frame(index=i, timestamp=float(i), image=Image.new("RGB", (64, 48), (i * 70, 90, 9)))
            for i in range(n)]


def test_a_shared_cpu_decodes_on_one_thread_then_restores(tiny_model_dir: Path, two_threads,
                                                          monkeypatch) -> None:
    monkeypatch.setattr(decode_threads, "CONTENDED_SHARE", 10.0)  # any share counts as shared
    backend = TransformersBackend(model=str(tiny_model_dir), device="cpu")
    backend.load()
    assert "decode-one-thread-when-shared" in backend.info().speedups
    seen: list[int] = []
    stats = backend.generate(frames(2), "Describe.", GenerationParams(6, 6),
                             lambda piece: seen.append(torch.get_num_threads()))
    assert seen and set(seen) == {1}  # every piece comes out of a token step
    assert stats.extra["decode_threads"] == 1
    assert torch.get_num_threads() == 2

    rows: list[int] = []
    backend.generate_batch([GenerationRequest(frames(2), "Describe.", GenerationParams(5, 5))
                            for _ in range(2)],
                           lambda row, piece: rows.append(torch.get_num_threads()))
    assert rows and set(rows) == {1}
    assert torch.get_num_threads() == 2


def test_a_cpu_of_its_own_keeps_every_thread(tiny_model_dir: Path, two_threads,
                                             monkeypatch) -> None:
    monkeypatch.setattr(decode_threads, "CONTENDED_SHARE", 0.0)  # never shared
    backend = TransformersBackend(model=str(tiny_model_dir), device="cpu")
    seen: list[int] = []
    stats = backend.generate(frames(2), "Describe.", GenerationParams(6, 6),
                             lambda piece: seen.append(torch.get_num_threads()))
    assert set(seen) == {2} and stats.extra["decode_threads"] == 2


def test_the_pool_is_restored_when_generation_fails(tiny_model_dir: Path, two_threads,
                                                    monkeypatch) -> None:
    monkeypatch.setattr(decode_threads, "CONTENDED_SHARE", 10.0)
    backend = TransformersBackend(model=str(tiny_model_dir), device="cpu")

    def stop(piece: str) -> None:
        raise RuntimeError("the reader went away")

    with pytest.raises(RuntimeError, match="went away"):
        backend.generate(frames(1), "Describe.", GenerationParams(6, 6), stop)
    assert torch.get_num_threads() == 2

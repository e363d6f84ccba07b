"""Concurrent `generate` calls on one backend, run together through `generate_batch`.

A remote worker (`chronicon worker --concurrency N`) runs N jobs in threads: each downloads and
samples its own video, then asks the model. One model cannot run two generations at once, so
the calls used to queue behind a lock, one after another. Here the calls that wait while the
model is busy become the next batch: the rows share the decode's forward passes
(`Backend.generate_batch`, up to `max_batch` rows), and each caller still gets its own pieces,
events and stats. A call that finds the model idle starts at once, alone: batching never adds
waiting.

Whichever waiting thread finds the model free runs the next batch, for itself or for others
(a leader/follower hand-off under one condition variable; no extra thread to manage).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..events import EventCallback, ignore_event
from ..video.frames import Frame
from .backend import Backend, GenerationParams, GenerationRequest, GenerationStats

log = logging.getLogger(__name__)


@dataclass
class _Call:
    request: GenerationRequest
    on_piece: Callable[[str], None]
    done: bool = False
    streamed: bool = False  # a piece went out: the call cannot be run again from the start
    stats: GenerationStats | None = None
    error: BaseException | None = None


@dataclass
class CoalescingStats:
    """How the calls were grouped: the size of each batch run, in order (a batch refused as a
    whole is listed, then each of its calls run alone)."""

    batch_sizes: list[int] = field(default_factory=list)

    @property
    def calls(self) -> int:
        return sum(self.batch_sizes)


class CoalescingBackend:
    """Wraps `backend`: `generate` may be called from many threads at once; everything else
    is the wrapped backend's own (attribute access passes through)."""

    def __init__(self, backend: Backend, max_batch: int) -> None:
        self.backend = backend
        self.max_batch = max(1, max_batch) if backend.supports_batch else 1
        self.stats = CoalescingStats()
        self._ready = threading.Condition()
        self._waiting: list[_Call] = []
        self._busy = False

    @property
    def waiting(self) -> int:
        """Calls waiting for the model now."""
        with self._ready:
            return len(self._waiting)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.backend, name)

    def generate(self, frames: list[Frame], prompt: str, params: GenerationParams,
                 on_piece: Callable[[str], None], *, video_fps: float | None = None,
                 video_duration: float | None = None,
                 on_event: EventCallback = ignore_event) -> GenerationStats:
        call = _Call(GenerationRequest(frames, prompt, params, video_fps, video_duration,
                                       on_event), on_piece)
        with self._ready:
            self._waiting.append(call)
            while not call.done:
                if self._busy:
                    self._ready.wait()
                    continue
                batch = self._waiting[:self.max_batch]
                del self._waiting[:self.max_batch]
                self._busy = True
                self._ready.release()
                try:
                    self._run(batch)
                except BaseException as exc:  # an interrupt: no caller may wait forever
                    for other in batch:
                        if not other.done:
                            other.error, other.done = exc, True
                    raise
                finally:
                    self._ready.acquire()
                    self._busy = False
                    self._ready.notify_all()
        if call.error is not None:
            raise call.error
        assert call.stats is not None
        return call.stats

    def generate_text(self, prompt: str, params: GenerationParams,
                      on_piece: Callable[[str], None],
                      on_event: EventCallback = ignore_event) -> GenerationStats:
        return self.generate([], prompt, params, on_piece, on_event=on_event)

    def _run(self, batch: list[_Call]) -> None:
        """Run `batch` together; when the batch as a whole is refused before any piece went
        out (one row the model rejects), each call runs alone so only that one fails."""
        self.stats.batch_sizes.append(len(batch))

        def on_piece(row: int, piece: str) -> None:
            batch[row].streamed = True
            batch[row].on_piece(piece)

        try:
            if len(batch) == 1:
                r = batch[0].request
                results = [self.backend.generate(
                    r.frames, r.prompt, r.params, lambda piece: on_piece(0, piece),
                    video_fps=r.video_fps, video_duration=r.video_duration,
                    on_event=r.on_event)]
            else:
                log.info("%d waiting descriptions run as one batch", len(batch))
                results = self.backend.generate_batch([c.request for c in batch], on_piece)
        except Exception as exc:  # noqa: BLE001 - handed to the callers, each raises it
            if len(batch) > 1 and not any(c.streamed for c in batch):
                for call in batch:
                    self._run([call])
                return
            for call in batch:
                call.error, call.done = exc, True
            return
        for call, stats in zip(batch, results, strict=True):
            call.stats, call.done = stats, True

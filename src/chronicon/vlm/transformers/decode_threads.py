"""Token steps on one thread when the CPU is shared: the decode after the prefill runs with
torch's pool cut to 1 thread if the process did not get its cores during vision + prefill.

A token step reads every weight once for a handful of multiply-adds: it is bound by memory
bandwidth more than by cores, yet each op of a step is an OpenMP parallel region whose
barrier waits for every thread. Measured on the 256M model, 2-core CPU (4 frames + 100 tokens):
- quiet machine: 39-41 ms/token on 2 threads, 47-54 on 1: keep every thread;
- a competing 2-thread process on the same cores: 254 ms/token on 2 threads (a partner thread
  is descheduled while the others spin at the barrier), 74 on 1.
So the switch measures instead of guessing: the share of its threads' time the process got
while it ran vision and prefill (CPU seconds / (wall seconds x threads)). Below
CONTENDED_SHARE, other work holds the cores, and the decode runs on one thread. Vision and
prefill are compute-bound, long regions, and keep every thread either way.

torch.set_num_threads sets the calling thread's OpenMP team size; `generate()` runs the steps
in the thread that called it, which is where the first-token hook fires and where the count is
restored afterwards.
"""

from __future__ import annotations

import time
from types import TracebackType

import torch

DECODE_THREADS = 1
# The share of `threads x wall` the process ran during vision + prefill under which the CPU
# counts as shared: ~0.95 measured alone on 2 cores, ~0.5 beside a 2-thread competitor.
CONTENDED_SHARE = 0.75


class DecodeOnOneThread:
    """`with DecodeOnOneThread(enabled) as switch:` around generate(); call
    `switch.prefill_done()` when the first token is out. `decode_threads` then says what the
    token steps ran on. Restores the thread count on the way out, whatever happened."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.decode_threads: int | None = None
        self.share: float | None = None
        self._before: int | None = None
        self._wall = self._cpu = 0.0

    def __enter__(self) -> DecodeOnOneThread:
        self._before = torch.get_num_threads()
        self._wall, self._cpu = time.perf_counter(), time.process_time()
        return self

    def prefill_done(self) -> None:
        if self.decode_threads is not None or self._before is None:
            return
        self.decode_threads = self._before
        if not self.enabled or self._before <= DECODE_THREADS:
            return
        wall = time.perf_counter() - self._wall
        share = (time.process_time() - self._cpu) / max(wall * self._before, 1e-9)
        self.share = share
        if share < CONTENDED_SHARE:
            torch.set_num_threads(DECODE_THREADS)
            self.decode_threads = DECODE_THREADS

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 traceback: TracebackType | None) -> None:
        if self._before is not None and torch.get_num_threads() != self._before:
            torch.set_num_threads(self._before)

"""Progress events that flow out of every stage of the data path, and the job events around them.

A stage reports through a plain callback `on_event(event)`; the CLI turns events into a progress
bar, the web layer into Server-Sent Events. Events are small frozen dataclasses so they can be
serialised (`to_dict`) and replayed; `kind` is the SSE event name. This module is the whole
vocabulary: the analysis events (stage_started, stage_finished, frame, token) and the job events
(queued, position, thumbnail, decision, interrupted, done, failed, cancelled). Nothing here knows
URLs: the web layer adds them when it sends an event.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from enum import Enum
from typing import Any


class Stage(str, Enum):
    UPLOAD = "upload"
    QUEUED = "queued"
    PROBE = "probe"
    SAMPLING = "sampling"
    MODEL_LOAD = "model_load"
    PREPROCESS = "preprocess"
    GENERATE = "generate"
    AGENT = "agent"


@dataclass(frozen=True)
class StageStarted:
    stage: Stage
    detail: str = ""
    kind: str = field(default="stage_started", init=False)


@dataclass(frozen=True)
class StageFinished:
    stage: Stage
    seconds: float
    detail: str = ""
    kind: str = field(default="stage_finished", init=False)


@dataclass(frozen=True)
class FrameSampled:
    """One frame was picked: `position` of `total`, frame `index` at `timestamp` seconds."""

    position: int
    total: int
    index: int
    timestamp: float
    kind: str = field(default="frame", init=False)


@dataclass(frozen=True)
class TokenGenerated:
    text: str
    kind: str = field(default="token", init=False)


@dataclass(frozen=True)
class ChunkProgress:
    """A timeline reached chunk `chunk` of `total`, spanning [start, end) seconds of the video;
    `eta_s` is the estimated time left (None until one chunk has been timed); `done` once the
    last chunk is described."""

    chunk: int
    total: int
    start: float
    end: float
    eta_s: float | None = None
    done: bool = False
    kind: str = field(default="chunk", init=False)


@dataclass(frozen=True)
class Done:
    summary: dict[str, Any] = field(default_factory=dict)
    kind: str = field(default="done", init=False)


@dataclass(frozen=True)
class Failed:
    error: str
    error_type: str = "ChroniconError"
    kind: str = field(default="failed", init=False)


# ---- job events: the queue's side of a job's history -------------------------------------------

@dataclass(frozen=True)
class Queued:
    """The job entered the queue (or re-entered it after a restart) at `position` (1 = next)."""

    position: int | None
    kind: str = field(default="queued", init=False)


@dataclass(frozen=True)
class Position:
    """The job's queue position changed; computed live, never persisted."""

    position: int | None
    kind: str = field(default="position", init=False)


@dataclass(frozen=True)
class Thumbnail:
    """Sampled frame `position` (0-based) is saved and can be shown; the web adds its URL."""

    position: int
    index: int
    timestamp: float
    kind: str = field(default="thumbnail", init=False)


@dataclass(frozen=True)
class Decision:
    """The agent's answer for the job's analysis (`decide_and_act`'s dict), or `error` when the
    agent step failed (the analysis itself still succeeded)."""

    answer: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    kind: str = field(default="decision", init=False)

    def to_data(self) -> dict[str, Any]:
        # The long-standing wire shape: the answer's own keys at the top level.
        return {"error": self.error} if self.error is not None else dict(self.answer)


@dataclass(frozen=True)
class Interrupted:
    """The process stopped during the job; it was requeued."""

    detail: str = "the server stopped during this job; requeued"
    kind: str = field(default="interrupted", init=False)


@dataclass(frozen=True)
class Cancelled:
    detail: str = "cancelled by request"
    kind: str = field(default="cancelled", init=False)


Event = (StageStarted | StageFinished | FrameSampled | TokenGenerated | ChunkProgress | Done
         | Failed | Queued | Position | Thumbnail | Decision | Interrupted | Cancelled)
EventCallback = Callable[[Event], None]
TERMINAL_EVENT_KINDS = frozenset({"done", "failed", "cancelled"})


def ignore_event(event: Event) -> None:
    """The default callback: progress is optional for every caller."""


@contextmanager
def stage(on_event: EventCallback, which: Stage, detail: str = "") -> Iterator[StageTiming]:
    """Time one stage: StageStarted on entry, StageFinished with the seconds on a normal exit
    (set `timing.detail` inside the block to report what was done). An exception skips
    StageFinished: the stage did not finish."""
    on_event(StageStarted(which, detail))
    timing = StageTiming()
    started = time.perf_counter()
    yield timing
    timing.seconds = time.perf_counter() - started
    on_event(StageFinished(which, timing.seconds, timing.detail))


@dataclass
class StageTiming:
    """Filled in by `stage()`: `seconds` once the block ends; `detail` is the caller's."""

    seconds: float = 0.0
    detail: str = ""


def to_dict(event: Event) -> dict[str, Any]:
    """The event's SSE data (what is persisted in `job_events` and sent to browsers)."""
    if isinstance(event, Decision):
        return event.to_data()
    data = asdict(event)
    if "stage" in data:
        data["stage"] = event.stage.value  # type: ignore[union-attr]
    return data

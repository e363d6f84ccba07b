"""Progress events that flow out of every stage of the data path.

A stage reports through a plain callback `on_event(event)`; the CLI turns events into a progress
bar, the web layer into Server-Sent Events. Events are small frozen dataclasses so they can be
serialised (`to_dict`) and replayed.
"""

from __future__ import annotations

from collections.abc import Callable
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


Event = (StageStarted | StageFinished | FrameSampled | TokenGenerated | ChunkProgress | Done
         | Failed)
EventCallback = Callable[[Event], None]


def ignore_event(event: Event) -> None:
    """The default callback: progress is optional for every caller."""


def to_dict(event: Event) -> dict[str, Any]:
    data = asdict(event)
    if "stage" in data:
        data["stage"] = event.stage.value  # type: ignore[union-attr]
    return data

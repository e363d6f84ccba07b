"""The registry of job kinds: what a queued job does is looked up by its `kind` name.

A job kind is one function, `run(job, context) -> analysis id | None`, that does the work and
reports progress through `context.emit`; the runner around it owns the job's states, its
terminal event and every failure. `"analyze"` is built in; `"timeline"` and `"ask"` join by
adding a line to `_BUILTIN` (imported lazily, so a kind's heavy imports load only when a job of
that kind runs) or by calling `register_job_kind` at import time.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from ..config import Settings
from ..errors import BadParameter
from ..events import EventCallback
from ..store import Store
from ..store.job_records import JobRecord
from ..vlm.warm import WarmBackend

# The agent step, given (analysis_id, description, video_filename) → its answer (the
# `decide_and_act` dict). Built by the app so the worker knows nothing of rules files; the
# agent reads the frames by analysis id.
AgentStep = Callable[[str, str, str], dict[str, Any]]


@dataclass
class JobContext:
    """What a running job may use. `emit` persists one event in the job's history (text pieces
    are batched; the stored file name is shown as the user's); `beat()` says the job is alive
    without an event (for `JobQueue.health`)."""

    settings: Settings
    store: Store
    backends: WarmBackend
    emit: EventCallback
    beat: Callable[[], None]
    agent_step: AgentStep | None = None


class JobKind(Protocol):
    def __call__(self, job: JobRecord, context: JobContext) -> str | None:
        """Run `job`; return the id of the analysis it recorded (None if it recorded none).
        Raise a ChroniconError for a failure the user should read; anything else is an
        internal error."""
        ...


# name -> "module:function", imported on first use.
_BUILTIN: dict[str, str] = {
    "analyze": "chronicon.jobs.analyze_job:run_analyze_job",
    "ask": "chronicon.ask:run_ask_job",
    "timeline": "chronicon.jobs.timeline_job:run_timeline_job",
}
JOB_KINDS: dict[str, JobKind] = {}


def register_job_kind(name: str, run: JobKind) -> None:
    JOB_KINDS[name] = run


def job_kind_names() -> list[str]:
    return sorted({*JOB_KINDS, *_BUILTIN})


def get_job_kind(name: str) -> JobKind:
    """The function for `name`; BadParameter for a kind nobody registered."""
    if name not in JOB_KINDS and name in _BUILTIN:
        module, _, function = _BUILTIN[name].partition(":")
        register_job_kind(name, getattr(importlib.import_module(module), function))
    if name not in JOB_KINDS:
        raise BadParameter("kind", f"unknown job kind {name!r}; known: "
                                   f"{', '.join(job_kind_names())}")
    return JOB_KINDS[name]


__all__ = ["AgentStep", "JOB_KINDS", "JobContext", "JobKind", "get_job_kind", "job_kind_names",
           "register_job_kind"]

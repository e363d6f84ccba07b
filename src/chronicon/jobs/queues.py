"""The registry of queue kinds: where jobs wait and who runs them, chosen by CHRONICON_QUEUE.

`sqlite` (the default) is the embedded queue: jobs in SQLite, run by the server's own worker
thread. `redis` keeps the jobs in SQLite too but hands them to `chronicon worker` processes
through Redis (Dramatiq); its module is imported only when asked for, and a missing extra
raises QueueUnavailable naming the `pip install` to run.
"""

from __future__ import annotations

import importlib
from typing import Any

from ..config import Settings
from ..store import Store
from ..vlm.warm import WarmBackend
from .kinds import AgentStep
from .queue import JobQueue

# kind (`Settings.queue_kind`) -> "module:class", imported on first use.
QUEUE_KINDS: dict[str, str] = {
    "sqlite": "chronicon.jobs.queue:JobQueue",
    "redis": "chronicon.jobs.redis_queue:RedisJobQueue",
}


def create_queue(settings: Settings, store: Store, backends: WarmBackend,
                 agent_step: AgentStep | None = None, **options: Any) -> JobQueue:
    """The job queue `settings.queue` asks for (options: JobQueue's, e.g. `preload`)."""
    module, _, name = QUEUE_KINDS[settings.queue_kind].partition(":")
    queue_class = getattr(importlib.import_module(module), name)
    return queue_class(settings, store, backends, agent_step, **options)


__all__ = ["QUEUE_KINDS", "create_queue"]

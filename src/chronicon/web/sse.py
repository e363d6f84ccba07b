"""Server-Sent Events for one job: the persisted events after `Last-Event-ID`, then new ones as
the worker writes them, until the job ends.

Persisted events carry `id:` (their per-job sequence number) so a reconnecting EventSource
resumes exactly where it stopped. Queue-position updates are computed live and sent without an
id: they are not history, only the current state.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

from ..jobs import TERMINAL_EVENT_KINDS
from ..store import Store
from ..store.job_records import QUEUED

POLL_SECONDS = 0.1
HEARTBEAT_SECONDS = 15.0


def format_event(kind: str, data: dict[str, Any], event_id: int | None = None) -> str:
    lines = [f"id: {event_id}"] if event_id is not None else []
    lines.append(f"event: {kind}")
    # json.dumps never emits a raw newline, so the data fits on one `data:` line.
    lines.append(f"data: {json.dumps(data, ensure_ascii=False)}")
    return "\n".join(lines) + "\n\n"


def parse_last_event_id(header: str | None, query: str | None) -> int:
    """The id to resume after: the header a reconnecting EventSource sends, else `?last_event_id`.
    Anything that is not a non-negative integer means 'from the start'."""
    for raw in (header, query):
        if raw and raw.strip().isdigit():
            return int(raw.strip())
    return 0


async def job_event_stream(store: Store, job_id: str, after: int,
                           is_disconnected: Callable[[], Any]) -> AsyncIterator[str]:
    """Yield SSE text for `job_id`, starting after event `after`, until a terminal event."""
    yield "retry: 2000\n\n"
    last_position: int | None = None
    last_sent = time.monotonic()
    while True:
        for event in store.job_events_after(job_id, after):
            after = event.seq
            last_sent = time.monotonic()
            yield format_event(event.kind, event.data, event.seq)
            if event.kind in TERMINAL_EVENT_KINDS:
                return
        job = store.get_job(job_id)
        if job is None:
            return
        if job.finished and not store.job_events_after(job_id, after):
            # Jobs finish together with their terminal event, so this is only a job whose
            # history was cut short (an older database); do not wait for it forever.
            return
        if job.state == QUEUED:
            position = store.queue_position(job_id)
            if position != last_position:
                last_position = position
                yield format_event("position", {"position": position})
        if time.monotonic() - last_sent > HEARTBEAT_SECONDS:
            last_sent = time.monotonic()
            yield ": keep-alive\n\n"
        if await is_disconnected():
            return
        await asyncio.sleep(POLL_SECONDS)

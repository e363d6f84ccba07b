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

from starlette.concurrency import run_in_threadpool

from ..events import TERMINAL_EVENT_KINDS, Position, to_dict
from ..store import Store
from ..store.job_records import QUEUED, JobEvent, JobRecord

POLL_SECONDS = 0.1
# Without a write through this server's store the stream skips the query (nothing can have
# changed); it still reads at least this often, for writes by another process.
FULL_POLL_SECONDS = 2.0
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


def event_data(job_id: str, event: JobEvent) -> dict[str, Any]:
    """What the browser gets for a stored event: the web adds the URLs (the worker knows none)."""
    if event.kind == "thumbnail" and "position" in event.data:
        return {**event.data, "url": f"/api/jobs/{job_id}/frames/{event.data['position']}.jpg"}
    return event.data


def _poll(store: Store, job_id: str, after: int
          ) -> tuple[list[JobEvent], JobRecord | None, bool, int | None]:
    """One poll, all reads together, run in a worker thread (never on the event loop): the new
    events, the job, whether anything came after them, its queue position."""
    events = store.job_events_after(job_id, after)
    job = store.get_job(job_id)
    if job is None:
        return events, None, False, None
    last = events[-1].seq if events else after
    more = bool(store.job_events_after(job_id, last)) if job.finished else False
    position = store.queue_position(job_id) if job.state == QUEUED else None
    return events, job, more, position


async def job_event_stream(store: Store, job_id: str, after: int,
                           is_disconnected: Callable[[], Any]) -> AsyncIterator[str]:
    """Yield SSE text for `job_id`, starting after event `after`, until a terminal event.
    Store reads run in the threadpool, and only after a write (or every FULL_POLL_SECONDS):
    200 open streams must not stall the API."""
    yield "retry: 2000\n\n"
    last_position: int | None = None
    last_sent = time.monotonic()
    seen_writes, last_poll = -1, 0.0
    while True:
        if store.writes == seen_writes and time.monotonic() - last_poll < FULL_POLL_SECONDS:
            if await is_disconnected():
                return
            await asyncio.sleep(POLL_SECONDS)
            continue
        # Read the counter before the query: a write during it makes the next round query.
        seen_writes, last_poll = store.writes, time.monotonic()
        events, job, more, position = await run_in_threadpool(_poll, store, job_id, after)
        for event in events:
            after = event.seq
            last_sent = time.monotonic()
            yield format_event(event.kind, event_data(job_id, event), event.seq)
            if event.kind in TERMINAL_EVENT_KINDS:
                return
        if job is None:
            return
        if job.finished and not more:
            # Jobs finish together with their terminal event, so this is only a job whose
            # history was cut short (an older database); do not wait for it forever.
            return
        if job.state == QUEUED and position != last_position:
            last_position = position
            update = Position(position)
            yield format_event(update.kind, to_dict(update))
        if time.monotonic() - last_sent > HEARTBEAT_SECONDS:
            last_sent = time.monotonic()
            yield ": keep-alive\n\n"
        if await is_disconnected():
            return
        await asyncio.sleep(POLL_SECONDS)

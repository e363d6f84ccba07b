"""The job queue's store and its token batching, on a real SQLite file."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from chronicon.jobs.runner import TokenBatcher
from chronicon.store import Store


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return Store(tmp_path / "jobs.db")


def _job(store: Store, name: str) -> str:
    return store.insert_job(name, f"/v/{name}.mp4", f"{name}.mp4", {"frames": 1}).id


def test_fifo_order_positions_and_claims(store: Store) -> None:
    for name in ("a", "b", "c"):
        _job(store, name)
    assert [store.queue_position(n) for n in "abc"] == [1, 2, 3]
    assert store.claim_next_job().id == "a"
    assert store.queue_position("a") is None
    assert [store.queue_position(n) for n in "bc"] == [1, 2]
    assert store.count_jobs_by_state()["running"] == 1


def test_first_events_and_queued_position_are_written_with_the_job(store: Store) -> None:
    _job(store, "a")
    job = store.insert_job("b", "/v/b.mp4", "b.mp4", {},
                           first_events=[("stage_finished", {"stage": "upload"})])
    events = store.job_events_after(job.id)
    assert [(e.seq, e.kind) for e in events] == [(1, "stage_finished"), (2, "queued")]
    assert events[1].data == {"position": 2}
    assert store.append_job_event(job.id, "token", {"text": "x"}) == 3
    assert [e.seq for e in store.job_events_after(job.id, 2)] == [3]


def test_requeue_keeps_the_old_order_and_counts_interruptions(store: Store) -> None:
    for name in ("a", "b", "c"):
        _job(store, name)
    store.claim_next_job()
    assert store.requeue_running_jobs() == ["a"]
    assert store.get_job("a").state == "queued" and store.get_job("a").interruptions == 1
    assert store.claim_next_job().id == "a"  # still first in line


def test_only_queued_jobs_can_be_cancelled(store: Store) -> None:
    _job(store, "a")
    _job(store, "b")
    store.claim_next_job()
    event = ("cancelled", {"detail": "test"})
    assert store.cancel_queued_job("a", event) is False
    assert store.cancel_queued_job("b", event) is True
    assert store.get_job("b").state == "cancelled" and store.claim_next_job() is None
    assert [e.kind for e in store.job_events_after("a")] == ["queued"]
    assert [e.kind for e in store.job_events_after("b")] == ["queued", "cancelled"]


def test_finishing_writes_the_state_and_the_terminal_event_together(store: Store) -> None:
    _job(store, "a")
    store.claim_next_job()
    store.finish_job("a", "failed", ("failed", {"error": "boom"}), error="boom",
                     error_type="CorruptVideo")
    job = store.get_job("a")
    assert (job.state, job.error, job.error_type) == ("failed", "boom", "CorruptVideo")
    assert store.job_events_after("a")[-1].kind == "failed"


def test_stage_totals_for_metrics(store: Store) -> None:
    _job(store, "a")
    for seconds in (0.5, 1.5):
        store.append_job_event("a", "stage_finished", {"stage": "generate", "seconds": seconds})
    assert store.stage_duration_totals() == {"generate": (2, 2.0)}


def test_token_batcher_joins_fast_pieces_and_sends_slow_ones_at_once() -> None:
    sent: list[str] = []
    batcher = TokenBatcher(sent.append, window=0.2)
    batcher.add("A")  # after a quiet spell: at once
    assert sent == ["A"]
    for piece in ("b", "c", "d"):
        batcher.add(piece)  # within the window: held
    assert sent == ["A"]
    time.sleep(0.25)
    batcher.add("e")
    assert sent == ["A", "bcde"]
    batcher.add("f")
    batcher.flush()
    assert "".join(sent) == "Abcdef"  # nothing lost

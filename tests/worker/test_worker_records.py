"""Worker heartbeats and job claims in the real SQLite store (migration 008)."""

from __future__ import annotations

from pathlib import Path

import pytest

from chronicon.store import Store, utc_now
from chronicon.store.worker_records import INTERRUPTED, seconds_ago


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return Store(tmp_path / "chronicon.db")


def _job(store: Store, job_id: str = "j1") -> str:
    store.execute("INSERT INTO jobs (id, seq, state, created_at, video_path, video_filename,"
                  " options_json) VALUES (?, 1, 'queued', ?, '/videos/a.mp4', 'a.mp4', '{}')",
                  (job_id, utc_now()))
    return job_id


def test_heartbeat_upserts_and_lists_newest_first(store: Store) -> None:
    store.record_heartbeat("w1", model="tiny", device="cpu", model_loads=1)
    store.record_heartbeat("w2", model="tiny", device="cuda:0")
    store.record_heartbeat("w1", model="tiny", device="cpu", current_job="j1", jobs_done=3)
    workers = store.list_workers()
    assert [w.id for w in workers] == ["w1", "w2"]
    assert workers[0].current_job == "j1" and workers[0].jobs_done == 3
    assert workers[0].alive(seconds_ago(5))
    assert not workers[0].alive(seconds_ago(-5))


def test_a_job_is_claimed_once_while_its_worker_lives(store: Store) -> None:
    job_id = _job(store)
    store.record_heartbeat("w1")
    store.record_heartbeat("w2")
    alive_after = seconds_ago(30)
    first = store.claim_job(job_id, "w1", alive_after)
    assert first.granted and first.job.state == "running"
    assert store.claim_job(job_id, "w1", alive_after).granted  # its own retry
    second = store.claim_job(job_id, "w2", alive_after)
    assert not second.granted and second.reason == "elsewhere" and second.holder == "w1"
    assert store.job_holder(job_id) == "w1"
    assert not store.claim_job("nope", "w2", alive_after).granted


def test_a_vanished_workers_job_is_interrupted_then_taken_over(store: Store) -> None:
    job_id = _job(store)
    store.record_heartbeat("w1")
    assert store.claim_job(job_id, "w1", seconds_ago(30)).granted
    # w1 says nothing more; "alive after" moves past its last heartbeat.
    future = seconds_ago(-1)
    assert store.interrupt_orphaned_jobs(future) == [(job_id, "w1")]
    job = store.get_job(job_id)
    assert job.state == INTERRUPTED and job.interruptions == 1
    assert [j.id for j in store.jobs_awaiting_worker()] == [job_id]
    store.record_heartbeat("w2")
    assert store.claim_job(job_id, "w2", seconds_ago(30)).granted
    assert store.job_holder(job_id) == "w2"
    assert store.jobs_awaiting_worker() == []


def test_a_finished_job_is_not_claimed_again(store: Store) -> None:
    job_id = _job(store)
    store.record_heartbeat("w1")
    store.claim_job(job_id, "w1", seconds_ago(30))
    store.finish_job(job_id, "done", ("done", {}))
    claim = store.claim_job(job_id, "w2", seconds_ago(30))
    assert not claim.granted and claim.reason == "finished"


def test_a_dead_holders_job_is_taken_over_before_the_sweep_sees_it(store: Store) -> None:
    job_id = _job(store)
    store.record_heartbeat("w1")
    assert store.claim_job(job_id, "w1", seconds_ago(30)).granted
    store.record_heartbeat("w2")
    # The broker re-delivered first: w2 claims while the job still says running on w1.
    claim = store.claim_job(job_id, "w2", seconds_ago(-1))
    assert claim.granted and claim.reason == "taken over" and claim.previous == "w1"
    assert store.get_job(job_id).interruptions == 1 and store.job_holder(job_id) == "w2"

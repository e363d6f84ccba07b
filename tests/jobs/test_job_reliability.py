"""The job worker against what breaks it: a process killed mid-job, a full disk, a dead thread.

Each test reproduces a defect found by trying to break the server (issue 12, reliability 1 and 7)
on the real app, the real store and the tiny real model.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from chronicon.config import Settings
from chronicon.web import create_app
from support.web_client import upload, wait_for_job


class Killed(BaseException):
    """Stands in for `kill -9`: no handler in the worker runs, nothing after it happens."""


def die(*args: object) -> dict:
    raise Killed


def wait_until(check: Callable[[], object], what: str, timeout: float = 180.0) -> object:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.mark.slow
@pytest.mark.expect_error_logs
@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
def test_a_job_killed_during_the_agent_step_is_recorded_once(web_settings: Settings,
                                                              clip: Path) -> None:
    """Reliability 7: the process dies after the analysis is recorded, before the job is done.
    The next server requeues the job and runs it again; the history keeps ONE analysis. And
    while the worker thread is dead, /health says so (503)."""
    with TestClient(create_app(web_settings)) as dying:
        services = dying.app.state.services
        services.queue.runner.agent_step = die
        job_id = upload(dying, clip, frames=2).json()["job_id"]
        wait_until(lambda: dying.get("/health").status_code == 503, "the dead worker on /health")
        health = dying.get("/health").json()
        assert (health["status"], health["worker"]) == ("degraded", "dead")
        assert services.store.get_job(job_id).state == "running"
        first = services.store.list_analyses()
        assert len(first) == 1 and first[0].job_id == job_id

    with TestClient(create_app(web_settings)) as restarted:
        job = wait_for_job(restarted, job_id, timeout=180)
        assert job["state"] == "done" and job["interruptions"] == 1
        history = restarted.get("/api/analyses").json()
        assert history["total"] == 1
        assert job["analysis_id"] == history["items"][0]["id"] == first[0].id
        assert restarted.get("/health").json()["worker"] == "ok"


@pytest.mark.slow
@pytest.mark.expect_error_logs
def test_a_full_disk_fails_the_job_and_the_worker_carries_on(web_settings: Settings,
                                                             clip: Path) -> None:
    """Reliability 1: the database's disk fills up during a job (SQLite's own SQLITE_FULL,
    through max_page_count). The job must end `failed` with the cause once space is back, the
    worker must survive and run the next job."""
    with TestClient(create_app(web_settings)) as client:
        services = client.app.state.services
        store, queue = services.store, services.queue
        first = upload(client, clip, frames=2).json()["job_id"]
        # The disk fills once the job runs (a full disk before the claim only delays the job).
        wait_until(lambda: store.get_job(first).state == "running", "the job to start")
        store.query_one("VACUUM")  # no free pages left to absorb the job's next rows
        pages = store.query_one("PRAGMA page_count")[0]
        store.query_one(f"PRAGMA max_page_count = {pages}")
        # The job fails on the full disk; if even its end cannot be written, the worker keeps
        # retrying that (and says so) until there is space again.
        wait_until(lambda: store.get_job(first).state == "failed"
                   or "full" in (queue.worker.last_error or ""), "the job to hit the full disk")
        store.query_one("PRAGMA max_page_count = 1073741823")  # space is freed

        job = wait_for_job(client, first, timeout=180)
        assert job["state"] == "failed" and "database or disk is full" in job["error"]
        second = upload(client, clip, frames=1).json()["job_id"]
        assert wait_for_job(client, second, timeout=180)["state"] == "done"
        health = client.get("/health")
        assert health.status_code == 200 and health.json()["worker"] == "ok"


@pytest.mark.slow
@pytest.mark.expect_error_logs
def test_an_exception_escaping_a_job_fails_it_with_its_cause(web_settings: Settings,
                                                             clip: Path) -> None:
    """Any failure inside a job (here the results directory cannot be written) fails that
    job with its cause and leaves the worker running."""
    web_settings.data_dir.mkdir(parents=True, exist_ok=True)
    web_settings.results_dir.parent.mkdir(parents=True, exist_ok=True)
    web_settings.results_dir.write_text("a file where the results directory should be")
    with TestClient(create_app(web_settings)) as client:
        job = wait_for_job(client, upload(client, clip, frames=1).json()["job_id"], timeout=180)
        assert job["state"] == "failed"
        assert job["error"].startswith("the server could not write or read its files")
        assert client.app.state.services.store.count_analyses() == 0
        web_settings.results_dir.unlink()
        again = wait_for_job(client, upload(client, clip, frames=1).json()["job_id"], timeout=180)
        assert again["state"] == "done"
        assert client.get("/health").json()["worker"] == "ok"

"""Queued analyze jobs for one model share forward passes (issue 13 §2), on the real app, the
real store, real clips and the tiny real SmolVLM behind the real transformers backend (a
subclass that only counts how it is called)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from chronicon.config import Settings
from chronicon.jobs.runner import Unfinished
from chronicon.options import AnalysisOptions
from chronicon.store import Store
from chronicon.vlm.backend import GenerationRequest, GenerationStats
from chronicon.vlm.transformers.backend import TransformersBackend
from chronicon.web import create_app
from support.web_client import wait_for_job

FAILS_IN_THE_MODEL = "this prompt fails in the model"


class CountingBackend(TransformersBackend):
    """The real transformers backend; it notes the rows of each `generate_batch` call and the
    single `generate` calls, and runs `on_batch` as a batch starts. A request whose prompt is
    FAILS_IN_THE_MODEL fails (alone, or the whole batch it is in)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.batches: list[int] = []
        self.singles = 0
        self.on_batch: Callable[[], None] = lambda: None

    def generate_batch(self, requests: list[GenerationRequest],
                       on_piece: Callable[[int, str], None]) -> list[GenerationStats]:
        self.batches.append(len(requests))
        self.on_batch()
        if any(r.prompt == FAILS_IN_THE_MODEL for r in requests):
            raise RuntimeError("the batch could not be described")
        return super().generate_batch(requests, on_piece)

    def generate(self, frames: Any, prompt: str, *args: Any, **kwargs: Any) -> GenerationStats:
        self.singles += 1
        if prompt == FAILS_IN_THE_MODEL:
            raise RuntimeError("this clip could not be described")
        return super().generate(frames, prompt, *args, **kwargs)


class NonBatchingBackend(CountingBackend):
    supports_batch = False


def _backend(cls: type[CountingBackend], settings: Settings, max_batch: int = 4
             ) -> CountingBackend:
    return cls(model=settings.model, device="cpu", max_batch=max_batch)


def _submit(queue: Any, video: Path, copy: Path, **options: Any) -> str:
    """Queue an analyze job on a copy of `video` with a short description (the web's
    ranges ask for 250 tokens at least; the queue takes the library's)."""
    shutil.copyfile(video, copy)
    options = {"frames": 2, "max_tokens": 12, "min_tokens": 4, **options}
    return queue.submit(copy, copy.name, AnalysisOptions(**options)).id


def _events(store: Store, job_id: str) -> list[Any]:
    return store.job_events_after(job_id)


def _streamed_text(store: Store, job_id: str) -> str:
    return "".join(e.data["text"] for e in _events(store, job_id) if e.kind == "token")


def _generate_seconds(store: Store, job_id: str) -> list[float]:
    return [e.data["seconds"] for e in _events(store, job_id)
            if e.kind == "stage_finished" and e.data["stage"] == "generate"]


def _job(store: Store, name: str, kind: str = "analyze", model: str | None = None) -> str:
    return store.insert_job(name, f"/v/{name}.mp4", f"{name}.mp4", {"model": model},
                            kind=kind).id


def test_a_batch_claims_queued_jobs_of_the_same_kind_and_model(tmp_path: Path) -> None:
    store = Store(tmp_path / "jobs.db")
    _job(store, "a")
    _job(store, "t", kind="timeline")
    _job(store, "b", model="256m")  # the default model, named
    _job(store, "other", model="500m")
    _job(store, "c")
    _job(store, "d")
    store.cancel_queued_job("c", ("cancelled", {}))
    first = store.claim_next_job()
    assert first.id == "a"
    more = store.claim_more_jobs("analyze", "256m", "256m", 2, after_seq=first.seq)
    assert [j.id for j in more] == ["b", "d"] and {j.state for j in more} == {"running"}
    assert store.get_job("c").state == "cancelled"
    # The skipped jobs kept their place: the timeline job is next, then the other model's.
    assert [store.queue_position(n) for n in ("t", "other")] == [1, 2]
    assert store.claim_more_jobs("analyze", "256m", "256m", 3, after_seq=first.seq) == []
    assert store.claim_next_job().id == "t"


def test_queued_jobs_run_as_one_batch_and_each_ends_on_its_own(web_settings: Settings,
                                                                clip: Path,
                                                                tmp_path: Path) -> None:
    """Five jobs queued while the worker is paused: one is cancelled, one's video is corrupt.
    The worker claims the other four together; the corrupt one fails alone in its probe, the
    three others are described by ONE generate_batch call of 3 rows, each with its own
    text streamed to its own events, its own analysis and its own timing. A job submitted
    alone afterwards runs alone."""
    backend = _backend(CountingBackend, web_settings)
    client = TestClient(create_app(web_settings, backend=backend))
    services = client.app.state.services
    store = services.store
    corrupt = tmp_path / "corrupt.mp4"
    corrupt.write_bytes(b"\x00\x00\x00\x18ftypmp42" + os.urandom(4096))
    ids = [_submit(services.queue, corrupt if n == 2 else clip, tmp_path / f"clip{n}.mp4")
           for n in range(5)]
    good, broken, cancelled = [ids[0], ids[1], ids[4]], ids[2], ids[3]
    assert client.delete(f"/api/jobs/{cancelled}").json()["state"] == "cancelled"

    seen: dict[str, str] = {}

    def note_states() -> None:  # while the batch runs, in the worker thread
        current = services.queue.current
        seen.update({job_id: store.get_job(job_id).state for job_id in current.job_ids})

    backend.on_batch = note_states
    with client:  # the lifespan starts the worker
        jobs = {job_id: wait_for_job(client, job_id, timeout=180) for job_id in ids}
        assert backend.batches == [3] and backend.singles == 0
        assert list(seen) == [*ids[:3], ids[4]]  # claimed together, oldest first
        assert seen == {**dict.fromkeys(good, "running"), broken: "failed"}

        assert jobs[cancelled]["state"] == "cancelled" and jobs[cancelled]["analysis_id"] is None
        assert jobs[broken]["state"] == "failed" and jobs[broken]["analysis_id"] is None
        assert jobs[broken]["error_type"] == "CorruptVideo"
        assert _streamed_text(store, broken) == ""
        texts, prompt_tokens = set(), []
        for job_id in good:
            job = jobs[job_id]
            assert job["state"] == "done" and job["analysis_id"] == job_id
            result = client.get(f"/api/analyses/{job_id}").json()["result"]
            assert result["analysis"] == _streamed_text(store, job_id).strip() != ""
            assert result["video_path"] == job["video_filename"]
            timing = result["timing"]
            assert timing["time_to_first_token"] > 0 and timing["generate"] > 0
            # Its timing is its own row's: the GENERATE stage its own events reported.
            assert [round(s, 4) for s in _generate_seconds(store, job_id)] == \
                [timing["generate"]]
            assert len(client.get(f"/api/jobs/{job_id}/frames/1.jpg").content) > 0
            texts.add(result["analysis"])
            prompt_tokens.append(result["tokens"]["prompt"])
        assert len(set(prompt_tokens)) == 1  # the same clip and prompt: the same input

        alone = _submit(services.queue, clip, tmp_path / "alone.mp4")
        assert wait_for_job(client, alone, timeout=180)["state"] == "done"
        assert backend.batches == [3] and backend.singles == 1
        assert client.get("/health").json()["running_jobs"] == []


@pytest.mark.expect_error_logs  # an internal error fails the job, with its traceback logged
def test_a_job_that_fails_in_the_model_fails_alone(web_settings: Settings, clip: Path,
                                                   tmp_path: Path) -> None:
    """The batch call fails; its jobs are described again one at a time, and only the one the
    model cannot describe fails."""
    backend = _backend(CountingBackend, web_settings)
    client = TestClient(create_app(web_settings, backend=backend))
    ids = [_submit(client.app.state.services.queue, clip, tmp_path / f"clip{n}.mp4",
                   **({"prompt": FAILS_IN_THE_MODEL} if n == 1 else {})) for n in range(3)]
    with client:
        jobs = [wait_for_job(client, job_id, timeout=180) for job_id in ids]
    assert backend.batches == [3] and backend.singles == 3
    assert [j["state"] for j in jobs] == ["done", "failed", "done"]
    assert jobs[1]["error"] == "internal error: RuntimeError: this clip could not be described"


def test_a_backend_that_does_not_batch_runs_one_job_at_a_time(web_settings: Settings,
                                                               clip: Path,
                                                               tmp_path: Path) -> None:
    backend = _backend(NonBatchingBackend, web_settings)
    client = TestClient(create_app(web_settings, backend=backend))
    ids = [_submit(client.app.state.services.queue, clip, tmp_path / f"clip{n}.mp4")
           for n in range(2)]
    with client:
        jobs = [wait_for_job(client, job_id, timeout=180) for job_id in ids]
    assert [j["state"] for j in jobs] == ["done", "done"]
    assert backend.batches == [] and backend.singles == 2
    assert jobs[1]["started_at"] >= jobs[0]["finished_at"]  # the second waited for the first


def test_the_unrecorded_ends_of_a_batch_are_retried_once_each() -> None:
    """Several jobs' ends that could not be recorded (a full disk): a retry records each one
    still missing, never one twice."""
    recorded: list[str] = []
    disk_full = [True]

    def end(name: str) -> Callable[[], None]:
        def finish() -> None:
            if name == "b" and disk_full[0]:
                raise OSError("database or disk is full")
            recorded.append(name)
        return finish

    unfinished = Unfinished.of_all([end("a"), end("b"), end("c")])
    with pytest.raises(OSError):
        unfinished.finish()
    disk_full[0] = False
    unfinished.finish()
    unfinished.finish()
    assert recorded == ["a", "b", "c"]

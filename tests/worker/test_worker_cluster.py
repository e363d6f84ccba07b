"""A real cluster on loopback: redis-server, `chronicon serve` with CHRONICON_QUEUE=redis://…,
and `chronicon worker` processes with the tiny test model."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from support.media import write_video
from support.redis_server import RedisProcess, running_redis
from support.server_process import running_server
from support.worker_process import WorkerProcess

TOKEN = "test-worker-token"
API_TOKEN = "test-api-token"  # the public API's token: workers never need it
WORKER_TIMEOUT = "3"  # seconds: a killed worker is noticed quickly

pytestmark = pytest.mark.slow


@dataclass
class Cluster:
    base: str
    redis: RedisProcess
    workers: list[WorkerProcess]
    model: str
    tmp: Path
    http: httpx.Client  # the public API, with the API token

    def add_worker(self, name: str) -> WorkerProcess:
        worker = WorkerProcess(name, server=self.base, queue=self.redis.url, token=TOKEN,
                               model=self.model, log_path=self.tmp / f"{name}.log",
                               extra_env={"CHRONICON_WORKER_TIMEOUT": WORKER_TIMEOUT})
        self.workers.append(worker)
        return worker

    def health(self) -> dict:
        return self.http.get("/health").json()

    def submit(self, clip: Path, name: str = "clip.mp4", **fields: str) -> str:
        response = self.http.post("/api/analyze",
                                  files={"file": (name, clip.read_bytes(), "video/mp4")},
                                  data={"frames": "4", **fields})
        assert response.status_code == 202, response.text
        return response.json()["job_id"]

    def job(self, job_id: str) -> dict:
        return self.http.get(f"/api/jobs/{job_id}").json()

    def wait_done(self, ids: list[str], timeout: float = 180) -> list[dict]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            jobs = [self.job(i) for i in ids]
            if all(j["state"] in ("done", "failed", "cancelled") for j in jobs):
                return jobs
            time.sleep(0.3)
        logs = "\n".join(w.log()[-1500:] for w in self.workers)
        raise AssertionError(f"jobs not finished: {[self.job(i)['state'] for i in ids]}\n{logs}")


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_video(tmp_path_factory.mktemp("clips") / "clip.mp4", n_frames=30)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> str:
    from support.tiny_model import build_tiny_smolvlm

    return str(build_tiny_smolvlm(tmp_path_factory.mktemp("tiny-smolvlm")))


@contextmanager
def make_cluster(tmp: Path, model: str, workers: int) -> Iterator[Cluster]:
    with running_redis(tmp / "redis") as redis:
        env = {"CHRONICON_QUEUE": redis.url, "CHRONICON_WORKER_TOKEN": TOKEN,
               "CHRONICON_API_TOKEN": API_TOKEN,
               "CHRONICON_WORKER_TIMEOUT": WORKER_TIMEOUT, "MAX_UPLOAD_MB": "20"}
        with running_server(tmp / "data", model, tmp / "server.log", extra_env=env) as base:
            http = httpx.Client(base_url=base, timeout=60,
                                headers={"Authorization": f"Bearer {API_TOKEN}"})
            cluster = Cluster(base, redis, [], model, tmp, http)
            try:
                for n in range(workers):
                    cluster.add_worker(f"w{n + 1}")
                for worker in cluster.workers:
                    worker.wait_ready(base)
                yield cluster
            finally:
                for worker in cluster.workers:
                    worker.terminate()  # all at once: each finishes its job in hand
                for worker in cluster.workers:
                    worker.stop()
                http.close()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory, model_dir: str) -> Iterator[Cluster]:
    """A server and two workers, shared by the tests that do not break anything."""
    with make_cluster(tmp_path_factory.mktemp("cluster"), model_dir, workers=2) as cluster:
        yield cluster


def _sse(cluster: Cluster, job_id: str) -> list[tuple[str, dict]]:
    events = []
    kind = None
    with cluster.http.stream("GET", f"/api/jobs/{job_id}/events") as stream:
        for line in stream.iter_lines():
            if line.startswith("event: "):
                kind = line[7:]
            elif line.startswith("data: ") and kind is not None:
                events.append((kind, json.loads(line[6:])))
                if kind in ("done", "failed", "cancelled"):
                    break
    return events


def test_twenty_uploads_through_two_workers(cluster: Cluster, clip: Path) -> None:
    ids = [cluster.submit(clip, f"clip-{n:02d}.mp4") for n in range(20)]
    jobs = cluster.wait_done(ids)
    assert [j["state"] for j in jobs] == ["done"] * 20
    analyses = cluster.http.get("/api/analyses", params={"limit": 100}).json()
    recorded = [a for a in analyses["items"] if a.get("job_id") in ids or a["id"] in ids]
    assert len(recorded) == 20  # each job recorded once
    assert {j["analysis_id"] for j in jobs} == {a["id"] for a in recorded}
    health = cluster.health()
    workers = {w["id"]: w for w in health["workers"]}
    assert set(workers) >= {"w1", "w2"}
    assert all(workers[name]["jobs_done"] > 0 for name in ("w1", "w2")), workers  # both used
    assert all(workers[name]["model_loads"] == 1 for name in ("w1", "w2"))  # loaded once each
    assert health["model_loads"] == 0  # the server itself loads no model
    assert health["queue"]["kind"] == "redis"
    page = cluster.http.get("/system", headers={"Accept": "text/html"})
    assert page.status_code == 200 and "w1" in page.text and "w2" in page.text
    metrics = cluster.http.get("/metrics").text
    assert 'chronicon_workers{state="alive"} 2' in metrics


def test_sse_of_a_worker_job_carries_frames_tokens_and_decision(cluster: Cluster,
                                                               clip: Path) -> None:
    job_id = cluster.submit(clip, "watched.mp4")
    events = _sse(cluster, job_id)
    kinds = [kind for kind, _ in events]
    assert kinds[-1] == "done", events[-3:]
    for expected in ("stage_started", "frame", "thumbnail", "token", "decision"):
        assert expected in kinds, f"no {expected} event in {kinds}"
    stages = {d["stage"] for k, d in events if k == "stage_finished"}
    assert {"upload", "probe", "sampling", "generate", "agent"} <= stages
    thumbnails = [d for k, d in events if k == "thumbnail"]
    assert len(thumbnails) == 4
    frame = cluster.http.get(f"/api/jobs/{job_id}/frames/0.jpg")
    assert frame.status_code == 200 and frame.content.startswith(b"\xff\xd8")
    text = "".join(d["text"] for k, d in events if k == "token")
    done = dict(events)["done"]["summary"]
    record = cluster.http.get(f"/api/analyses/{done['analysis_id']}").json()
    assert text.strip() == record["result"]["analysis"]
    assert "watched.mp4" in json.dumps(events)  # the user's file name, not the worker's copy


def test_workers_need_the_token(cluster: Cluster, clip: Path, model_dir: str) -> None:
    job_id = cluster.submit(clip)
    cluster.wait_done([job_id])
    url = f"{cluster.base}/internal/jobs/{job_id}/video"
    assert httpx.get(url).status_code == 401
    assert httpx.get(url, headers={"Authorization": "Bearer wrong"}).status_code == 401
    # The public API's token is not a worker's.
    assert httpx.get(url, headers={"Authorization": f"Bearer {API_TOKEN}"}).status_code == 401
    ok = httpx.get(url, headers={"Authorization": f"Bearer {TOKEN}",
                                 "Range": "bytes=10-19"})
    assert ok.status_code == 206 and ok.content == clip.read_bytes()[10:20]
    intruder = WorkerProcess("intruder", server=cluster.base, queue=cluster.redis.url,
                             token="wrong", model=model_dir,
                             log_path=cluster.tmp / "intruder.log")
    try:
        assert intruder.process.wait(timeout=120) != 0
    finally:
        intruder.stop()
    assert "CHRONICON_WORKER_TOKEN" in intruder.log()
    assert "intruder" not in {w["id"] for w in cluster.health()["workers"]}


def test_a_worker_killed_mid_job_loses_nothing(cluster: Cluster, tmp_path: Path) -> None:
    long_clip = write_video(tmp_path / "long.mp4", n_frames=240, size=(640, 480))
    for _attempt in range(3):
        job_id = cluster.submit(long_clip, "long.mp4", frames="16", max_tokens="500",
                                min_tokens="200", resize="768")
        holder = _wait_holder(cluster, job_id)
        victim = next(w for w in cluster.workers if w.name == holder)
        victim.kill()  # kill -9: no goodbye, no ack
        cluster.workers.remove(victim)
        if cluster.job(job_id)["state"] != "done":
            break  # killed mid-job
        cluster.add_worker(f"{victim.name}-again").wait_ready(cluster.base)
    else:
        pytest.fail("the jobs always finished before the kill")
    cluster.wait_done([job_id])
    job = cluster.job(job_id)
    assert job["state"] == "done"
    assert job["interruptions"] >= 1 and job["worker_id"] != holder
    kinds = [k for k, _ in _sse(cluster, job_id)]
    interrupted_at = kinds.index("interrupted")
    assert "stage_started" in kinds[interrupted_at:]  # running again after the interruption
    assert kinds.count("done") == 1
    analyses = cluster.http.get("/api/analyses", params={"limit": 200}).json()
    assert [a["job_id"] for a in analyses["items"]].count(job_id) == 1  # recorded once
    done_jobs = [j for j in _all_jobs(cluster) if j["state"] == "done"]
    assert analyses["total"] == len(done_jobs)  # no job lost, none recorded twice


def test_redis_restarted_empty_loses_no_job(cluster: Cluster, clip: Path) -> None:
    ids = [cluster.submit(clip, f"queued-{n}.mp4") for n in range(6)]
    cluster.redis.restart_empty()  # the waiting messages are gone; SQLite still says queued
    jobs = cluster.wait_done(ids, timeout=180)
    assert [j["state"] for j in jobs] == ["done"] * 6
    metrics = cluster.http.get("/metrics").text
    line = next(x for x in metrics.splitlines()
                if x.startswith("chronicon_queue_reenqueued_total"))
    assert float(line.split()[-1]) >= 1
    analyses = cluster.http.get("/api/analyses", params={"limit": 200}).json()
    assert sorted(a["job_id"] for a in analyses["items"] if a["job_id"] in ids) == sorted(ids)


def test_an_upload_while_redis_is_down_runs_when_it_is_back(cluster: Cluster,
                                                             clip: Path) -> None:
    cluster.redis.stop()
    job_id = cluster.submit(clip, "while-down.mp4")  # accepted and kept in SQLite
    assert cluster.job(job_id)["state"] == "queued"
    cluster.redis.start()  # empty: the message was never written
    [job] = cluster.wait_done([job_id], timeout=120)
    assert job["state"] == "done"


def _wait_holder(cluster: Cluster, job_id: str, timeout: float = 60) -> str:
    """The worker that claimed the job, as soon as it has."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        response = cluster.job(job_id)
        if response.get("worker_id"):
            return response["worker_id"]
        time.sleep(0.02)
    raise AssertionError("no worker claimed the job")


def _all_jobs(cluster: Cluster) -> list[dict]:
    return cluster.http.get("/api/jobs", params={"limit": 500}).json()["items"]


def test_a_worker_with_concurrency_batches_the_jobs_waiting_for_its_model(
        tmp_path: Path, model_dir: str, clip: Path) -> None:
    """Jobs in flight on one worker (`--concurrency 4`) that wait for the model while it
    describes another run as one batch; each job still gets its own complete result."""
    with make_cluster(tmp_path, model_dir, workers=0) as cluster:
        worker = WorkerProcess("wide", server=cluster.base, queue=cluster.redis.url,
                               token=TOKEN, model=model_dir, log_path=tmp_path / "wide.log",
                               args=["--concurrency", "4"])
        cluster.workers.append(worker)
        worker.wait_ready(cluster.base)
        # Long enough generations that the jobs sampled meanwhile find the model busy.
        ids = [cluster.submit(clip, f"clip{n}.mp4", max_tokens="300", min_tokens="200")
               for n in range(6)]
        jobs = cluster.wait_done(ids)
        assert [j["state"] for j in jobs] == ["done"] * 6
        for job in jobs:
            analysis = cluster.http.get(f"/api/analyses/{job['analysis_id']}").json()["result"]
            assert analysis["tokens"]["generated"] >= 200 and analysis["analysis"]
        assert "run as one batch" in worker.log()

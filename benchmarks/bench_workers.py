"""Remote workers: 20 jobs through 1 worker, then through 2, behind a real Redis and server.

Each round starts a fresh `chronicon serve` with CHRONICON_QUEUE=redis://… (the server loads no
model) and N `chronicon worker` processes, submits the jobs at once and waits for every one.
Reported per round: throughput, job latency p50/p95 (submitted → done), and the per-job
overhead of going through the queue and HTTP, measured from the job records:

- dispatch gap: a worker's previous job done → its next job claimed, while jobs were waiting
  (ack, Redis fetch, claim);
- remote overhead: claimed → done, minus the analysis' own time on the worker (download the
  video, send frames and events, post the result, record it, agent step).

From those, what N GPU workers would give: each job costs a worker `gpu_job_s + overhead`, so
N workers do N / (gpu_job_s + overhead) jobs a second until the server's own share of each job
(recording and the agent, serial on the server) is the limit.

    python benchmarks/bench_workers.py --quick          # tiny model (a minute on 2 cores)
    python benchmarks/bench_workers.py                  # + the real-size random 256M model
    python benchmarks/bench_workers.py --real-only      # the real-size model alone

Prints a table and writes benchmarks/results/workers.json (workers-real.json with --real-only).
On a 2-core machine two CPU workers share the same cores, so the 1 → 2 ratio is bounded by the
cores, not by the queue.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # tests.support: model builders, clips, loopback processes

from tests.support.media import write_video  # noqa: E402
from tests.support.redis_server import RedisProcess  # noqa: E402
from tests.support.server_process import running_server  # noqa: E402
from tests.support.tiny_model import build_tiny_smolvlm  # noqa: E402
from tests.support.worker_process import WorkerProcess  # noqa: E402

CACHE = Path.home() / ".cache" / "chronicon" / "bench-tiny-smolvlm"
RESULTS = ROOT / "benchmarks" / "results" / "workers.json"
TOKEN = "bench-worker-token"
GPU_WORKERS = (1, 2, 4, 8, 16, 32)


def tiny_model() -> Path:
    if not (CACHE / "config.json").exists():
        build_tiny_smolvlm(CACHE)
    return CACHE


def real_size_model() -> Path:
    from benchmarks.bench_inference import ensure_model

    return ensure_model()[0]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    k = (len(ordered) - 1) * q
    low, high = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (k - low)


def _t(stamp: str) -> float:
    return datetime.fromisoformat(stamp).timestamp()


def submit_all(base: str, clip: bytes, jobs: int, frames: int, tokens: int) -> list[str]:
    def one(n: int) -> str:
        response = httpx.post(f"{base}/api/analyze", timeout=60,
                              files={"file": (f"clip-{n:02d}.mp4", clip, "video/mp4")},
                              data={"frames": str(frames), "max_tokens": str(tokens),
                                    "min_tokens": "200"})
        response.raise_for_status()
        return response.json()["job_id"]

    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        return list(pool.map(one, range(jobs)))


def wait_all(base: str, ids: list[str], timeout: float) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        jobs = [httpx.get(f"{base}/api/jobs/{i}", timeout=10).json() for i in ids]
        if all(j["state"] in ("done", "failed", "cancelled") for j in jobs):
            return jobs
        time.sleep(0.5)
    raise TimeoutError("the jobs did not finish in time")


def job_timings(base: str, jobs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per job: created/claimed/done times, its worker, and the analysis' own seconds."""
    rows = []
    for job in jobs:
        analysis = httpx.get(f"{base}/api/analyses/{job['analysis_id']}", timeout=10).json()
        result = analysis.get("result", analysis)
        rows.append({"id": job["id"], "created": _t(job["created_at"]),
                     "claimed": _t(job["started_at"]), "done": _t(job["finished_at"]),
                     "analysis_s": float(result["timing"]["total_time"])})
    return rows


def round_with(model: Path, workers: int, redis: RedisProcess, work: Path, clip: bytes,
               jobs: int, frames: int, tokens: int) -> dict[str, Any]:
    redis.restart_empty()
    data_dir = work / f"data-{model.name}-{workers}"
    env = {"CHRONICON_QUEUE": redis.url, "CHRONICON_WORKER_TOKEN": TOKEN,
           "CHRONICON_AGENT": "false", "CHRONICON_LOG_LEVEL": "warning",
           "MAX_UPLOAD_MB": "50"}
    with running_server(data_dir, str(model), work / f"server-{workers}.log",
                        extra_env=env) as base:
        procs = [WorkerProcess(f"bench-w{n}", server=base, queue=redis.url, token=TOKEN,
                               model=str(model), log_path=work / f"worker-{workers}-{n}.log")
                 for n in range(workers)]
        try:
            for proc in procs:
                proc.wait_ready(base, timeout=600)
            # One job first, alone, so each worker's first-job costs are out of the way.
            warm = submit_all(base, clip, workers, frames, tokens)
            wait_all(base, warm, 600)
            started = time.time()
            ids = submit_all(base, clip, jobs, frames, tokens)
            finished = wait_all(base, ids, 3600)
            wall = time.time() - started
            health = httpx.get(f"{base}/health", timeout=10).json()
            timings = job_timings(base, finished)
        finally:
            for proc in procs:
                proc.stop()
    holders: dict[str, int] = {}
    for job in finished:
        holders[job["worker_id"]] = holders.get(job["worker_id"], 0) + 1
    return {"workers": workers, "wall_s": wall, "timings": timings, "health": health,
            "jobs_per_worker": holders,
            "done": sum(1 for j in finished if j["state"] == "done")}


def overheads(timings: list[dict[str, Any]], workers: int) -> tuple[float, float]:
    """(median dispatch gap, median remote overhead) in seconds. Gaps are taken per worker
    slot: jobs sorted by claim time, each claim matched to the done before it."""
    remote = [t["done"] - t["claimed"] - t["analysis_s"] for t in timings]
    ordered = sorted(timings, key=lambda t: t["claimed"])
    gaps = []
    for n, job in enumerate(ordered[workers:], start=workers):
        previous_done = sorted(t["done"] for t in ordered[:n])[-workers:]
        earliest_free = min(d for d in previous_done)
        if job["created"] < earliest_free:  # it was waiting for a worker
            gaps.append(max(0.0, job["claimed"] - earliest_free))
    return (statistics.median(gaps) if gaps else 0.0, statistics.median(remote))


def summarise(name: str, rounds: list[dict[str, Any]], jobs: int,
              gpu_job_s: float) -> dict[str, Any]:
    out: dict[str, Any] = {"model": name, "rounds": []}
    for r in rounds:
        latencies = [t["done"] - t["created"] for t in r["timings"]]
        gap, remote = overheads(r["timings"], r["workers"])
        out["rounds"].append({
            "workers": r["workers"], "done": r["done"], "wall_s": round(r["wall_s"], 2),
            "throughput_jobs_per_s": round(jobs / r["wall_s"], 3),
            "latency_p50_s": round(statistics.median(latencies), 2),
            "latency_p95_s": round(percentile(latencies, 0.95), 2),
            "analysis_p50_s": round(statistics.median(t["analysis_s"] for t in r["timings"]), 3),
            "dispatch_gap_p50_s": round(gap, 3), "remote_overhead_p50_s": round(remote, 3),
            "jobs_per_worker": r["jobs_per_worker"],
            "model_loads": [w["model_loads"] for w in r["health"].get("workers", [])]})
    one, two = out["rounds"][0], out["rounds"][-1]
    out["throughput_ratio_2_vs_1"] = round(two["throughput_jobs_per_s"]
                                           / one["throughput_jobs_per_s"], 2)
    overhead = one["dispatch_gap_p50_s"] + one["remote_overhead_p50_s"]
    # The server's serial share of a job is at most the remote overhead it takes part in.
    server_cap = 1.0 / max(one["remote_overhead_p50_s"], 1e-3)
    out["per_job_overhead_s"] = round(overhead, 3)
    out["projection"] = {"gpu_job_s": gpu_job_s, "rows": [
        {"gpu_workers": n,
         "jobs_per_s": round(min(n / (gpu_job_s + overhead), server_cap), 2),
         "overhead_share": round(overhead / (gpu_job_s + overhead), 3)}
        for n in GPU_WORKERS]}
    return out


def print_table(summary: dict[str, Any], jobs: int) -> None:
    print(f"\n{summary['model']}: {jobs} jobs")
    print(f"  {'workers':>7}  {'done':>4}  {'wall s':>7}  {'jobs/s':>6}  {'p50 s':>6}  "
          f"{'p95 s':>6}  {'analysis s':>10}  {'dispatch s':>10}  {'remote s':>8}  per worker")
    for r in summary["rounds"]:
        print(f"  {r['workers']:>7}  {r['done']:>4}  {r['wall_s']:>7.2f}  "
              f"{r['throughput_jobs_per_s']:>6.2f}  {r['latency_p50_s']:>6.2f}  "
              f"{r['latency_p95_s']:>6.2f}  {r['analysis_p50_s']:>10.3f}  "
              f"{r['dispatch_gap_p50_s']:>10.3f}  {r['remote_overhead_p50_s']:>8.3f}  "
              f"{sorted(r['jobs_per_worker'].values())}")
    print(f"  throughput 2 workers / 1 worker: {summary['throughput_ratio_2_vs_1']:.2f}x; "
          f"queue + HTTP overhead per job: {summary['per_job_overhead_s']:.3f} s")
    projection = summary["projection"]
    print(f"  N GPU workers at {projection['gpu_job_s']} s of GPU time per job: " + ", ".join(
        f"{p['gpu_workers']} → {p['jobs_per_s']}/s" for p in projection["rows"]))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=20)
    parser.add_argument("--frames", type=int, default=4)
    parser.add_argument("--tokens", type=int, default=250, help="max_tokens per job (web: 250-500)")
    parser.add_argument("--gpu-job-seconds", type=float, default=0.5,
                        help="GPU time per job for the projection (256M, 4 frames)")
    parser.add_argument("--quick", action="store_true", help="tiny model only")
    parser.add_argument("--real-only", action="store_true", help="the real-size model only")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="chronicon-bench-workers-"))
    clip = write_video(work / "clip.mp4", n_frames=60, size=(320, 240)).read_bytes()
    models = []
    if not args.real_only:
        models.append(("tiny test model", tiny_model()))
    if not args.quick:
        models.append(("SmolVLM2-256M architecture, random weights", real_size_model()))
    redis = RedisProcess(work / "redis")
    redis.start()
    summaries = []
    report = {"jobs": args.jobs, "frames": args.frames, "tokens": args.tokens,
              "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                          "platform": platform.platform(), "load_avg": os.getloadavg()},
              "models": summaries}
    results = RESULTS.with_name("workers-real.json") if args.real_only else RESULTS
    results.parent.mkdir(parents=True, exist_ok=True)
    try:
        for name, model in models:
            rounds = [round_with(model, n, redis, work, clip, args.jobs, args.frames,
                                 args.tokens) for n in (1, 2)]
            summaries.append(summarise(name, rounds, args.jobs, args.gpu_job_seconds))
            # Written after each model: a long real-size run never loses the tiny figures.
            results.write_text(json.dumps(report, indent=2) + "\n")
            print_table(summaries[-1], args.jobs)
    finally:
        redis.stop()
    print(f"\nwrote {results.relative_to(ROOT)}")
    ok = all(r["done"] == args.jobs and all(m == 1 for m in r["model_loads"])
             for s in summaries for r in s["rounds"])
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())

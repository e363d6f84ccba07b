"""Server under load: 20 concurrent uploads against a real `chronicon serve` with the tiny model.

Checks that every job completes (none lost) and that the model was loaded exactly once; measures
job latency (upload start → done event, p50/p95), time from upload start to the first streamed
token, throughput and the server's peak RSS. The baseline, in the same run, is one job alone on
the same warm server: the ratios say what queueing costs.

    python benchmarks/bench_server.py [--jobs 20] [--frames 4]

Prints a table and writes benchmarks/results/server.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import httpx
import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # tests.support: the tiny model builder, the clip writer

from tests.support.media import write_video  # noqa: E402
from tests.support.ports import free_port  # noqa: E402
from tests.support.tiny_model import build_tiny_smolvlm  # noqa: E402

CACHE = Path.home() / ".cache" / "chronicon" / "bench-tiny-smolvlm"
RESULTS = ROOT / "benchmarks" / "results" / "server.json"


@dataclass
class JobTiming:
    job_id: str
    state: str
    latency_s: float
    first_token_s: float | None
    upload_s: float


def tiny_model() -> Path:
    if not (CACHE / "config.json").exists():
        build_tiny_smolvlm(CACHE)
    return CACHE




class RssSampler(threading.Thread):
    """Peak resident memory of the server process tree, sampled every 50 ms."""

    def __init__(self, pid: int):
        super().__init__(daemon=True)
        self.process = psutil.Process(pid)
        self.peak = 0
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                procs = [self.process, *self.process.children(recursive=True)]
                self.peak = max(self.peak, sum(p.memory_info().rss for p in procs))
            except psutil.Error:
                pass
            time.sleep(0.05)


async def run_job(client: httpx.AsyncClient, clip: bytes, frames: int, name: str) -> JobTiming:
    start = time.perf_counter()
    response = await client.post("/api/analyze", files={"file": (name, clip, "video/mp4")},
                                 data={"frames": str(frames)})
    response.raise_for_status()
    upload_s = time.perf_counter() - start
    job_id = response.json()["job_id"]
    first_token = None
    state = "lost"
    async with client.stream("GET", f"/api/jobs/{job_id}/events") as stream:
        async for line in stream.aiter_lines():
            if line == "event: token" and first_token is None:
                first_token = time.perf_counter() - start
            elif line in ("event: done", "event: failed", "event: cancelled"):
                state = line.split(": ")[1]
                break
    return JobTiming(job_id, state, time.perf_counter() - start, first_token, upload_s)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    k = (len(ordered) - 1) * q
    low, high = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (k - low)


async def measure(base: str, clip: bytes, jobs: int, frames: int) -> dict:
    timeout = httpx.Timeout(600.0)
    async with httpx.AsyncClient(base_url=base, timeout=timeout) as client:
        baseline = await run_job(client, clip, frames, "baseline.mp4")
        started = time.perf_counter()
        results = await asyncio.gather(*(run_job(client, clip, frames, f"clip-{i:02d}.mp4")
                                         for i in range(jobs)))
        wall = time.perf_counter() - started
        health = (await client.get("/health")).json()
        analyses = (await client.get("/api/analyses", params={"limit": 1})).json()["total"]
        job_states = health["jobs"]
    return {"baseline": baseline, "results": results, "wall": wall, "health": health,
            "analyses": analyses, "job_states": job_states}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=20)
    parser.add_argument("--frames", type=int, default=4)
    args = parser.parse_args()

    model = tiny_model()
    work = Path(tempfile.mkdtemp(prefix="chronicon-bench-server-"))
    clip_path = write_video(work / "clip.mp4", n_frames=60, size=(320, 240))
    clip = clip_path.read_bytes()
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {**os.environ, "CHRONICON_DATA_DIR": str(work / "data"), "CHRONICON_MODEL": str(model),
           "CHRONICON_DEVICE": "cpu", "HF_HUB_OFFLINE": "1", "CHRONICON_LOG_LEVEL": "warning"}
    env.pop("CHRONICON_API_TOKEN", None)
    command = [str(Path(sys.executable).parent / "chronicon"), "serve", "--host", "127.0.0.1",
               "--port", str(port)]
    log = (work / "server.log").open("wb")
    server = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
    sampler = RssSampler(server.pid)
    sampler.start()
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(f"{base}/health", timeout=1).json()["model_loaded"]:
                    break
            except (httpx.HTTPError, ValueError):
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                print((work / "server.log").read_text()[-3000:], file=sys.stderr)
                return 1
            time.sleep(0.2)
        data = asyncio.run(measure(base, clip, args.jobs, args.frames))
    finally:
        sampler.stop.set()
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()

    results: list[JobTiming] = data["results"]
    baseline: JobTiming = data["baseline"]
    latencies = [r.latency_s for r in results]
    first_tokens = [r.first_token_s for r in results if r.first_token_s is not None]
    completed = sum(1 for r in results if r.state == "done")
    report = {
        "jobs": args.jobs,
        "frames": args.frames,
        "completed": completed,
        "lost": args.jobs - completed,
        "analyses_stored": data["analyses"],
        "model_loads": data["health"]["model_loads"],
        "job_states": data["job_states"],
        "baseline_single_job_latency_s": round(baseline.latency_s, 3),
        "baseline_first_token_s": round(baseline.first_token_s or 0, 3),
        "latency_p50_s": round(statistics.median(latencies), 3),
        "latency_p95_s": round(percentile(latencies, 0.95), 3),
        "latency_max_s": round(max(latencies), 3),
        "first_token_p50_s": round(statistics.median(first_tokens), 3) if first_tokens else None,
        "first_token_p95_s": round(percentile(first_tokens, 0.95), 3) if first_tokens else None,
        "upload_p50_s": round(statistics.median(r.upload_s for r in results), 4),
        "wall_s": round(data["wall"], 3),
        "throughput_jobs_per_s": round(args.jobs / data["wall"], 3),
        "p50_vs_single_job": round(statistics.median(latencies) / baseline.latency_s, 2),
        "peak_rss_mb": round(sampler.peak / 2**20, 1),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "platform": platform.platform()},
        "per_job": [asdict(r) for r in results],
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2) + "\n")

    rows = [
        ("jobs completed / submitted", f"{completed} / {args.jobs}"),
        ("analyses stored", data["analyses"]),
        ("model loads", report["model_loads"]),
        ("single job alone (baseline)", f"{report['baseline_single_job_latency_s']:.2f} s"),
        ("job latency p50 / p95", f"{report['latency_p50_s']:.2f} / "
                                  f"{report['latency_p95_s']:.2f} s"),
        ("p50 / baseline", f"{report['p50_vs_single_job']:.1f}x"),
        ("upload → first token p50 / p95", f"{report['first_token_p50_s']:.2f} / "
                                           f"{report['first_token_p95_s']:.2f} s"),
        ("baseline upload → first token", f"{report['baseline_first_token_s']:.2f} s"),
        ("throughput", f"{report['throughput_jobs_per_s']:.2f} jobs/s"),
        ("peak server RSS", f"{report['peak_rss_mb']:.0f} MB"),
    ]
    width = max(len(r[0]) for r in rows)
    print(f"\nchronicon server: {args.jobs} concurrent uploads, tiny model, {args.frames} frames")
    for name, value in rows:
        print(f"  {name:<{width}}  {value}")
    print(f"\nwrote {RESULTS.relative_to(ROOT)}")
    ok = (completed == args.jobs and report["model_loads"] == 1
          and data["job_states"]["done"] == args.jobs + 1 and data["analyses"] == args.jobs + 1)
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())

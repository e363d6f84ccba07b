"""Open SSE streams vs the API: does /health stay fast while 200 browsers follow a job?

A real server (uvicorn, the real app, the tiny model) runs in a subprocess with its worker held,
so one uploaded job stays queued and every stream keeps following it (a queued job's stream
also computes its queue position). The script measures /health latency with no stream open,
then with N streams open, in three servers started one after the other in the same run:

- `shipped`: SSE reads the store in the threadpool, and only after a write (or every 2 s);
- `threadpool`: the same reads in the threadpool, every 0.1 s per stream;
- `on-loop`: the old way, every 0.1 s per stream, called directly on the event loop.

    python benchmarks/bench_sse.py [--streams 200] [--requests 40]

Prints a table and writes benchmarks/results/sse.json. Ratios within one run are what count
(the machine may be shared).
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
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # tests.support: the tiny model builder, the clip writer

from tests.support.media import write_video  # noqa: E402
from tests.support.ports import free_port  # noqa: E402
from tests.support.tiny_model import build_tiny_smolvlm  # noqa: E402

CACHE = Path.home() / ".cache" / "chronicon" / "bench-tiny-smolvlm"
RESULTS = ROOT / "benchmarks" / "results" / "sse.json"


def serve(port: int, data_dir: str, model: str, mode: str) -> None:
    """The server process: the real app, its worker held (jobs stay queued)."""
    # Imported here: only the server process needs the app (the client stays light).
    import uvicorn

    from chronicon.config import Settings
    from chronicon.web import create_app, sse

    if mode != "shipped":
        sse.FULL_POLL_SECONDS = 0.0  # query on every poll, as before issue 12
    if mode == "on-loop":
        async def call_on_loop(function, *args, **kwargs):  # the pre-issue-12 behaviour
            return function(*args, **kwargs)

        sse.run_in_threadpool = call_on_loop
    app = create_app(Settings(data_dir=Path(data_dir), model=model, device="cpu"))
    app.state.services.queue.start = lambda: None  # hold the worker: the job stays queued
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")


def health_latencies(base: str, n: int) -> list[float]:
    found = []
    with httpx.Client(base_url=base, timeout=60) as client:
        for _ in range(n):
            started = time.perf_counter()
            client.get("/health").raise_for_status()
            found.append(time.perf_counter() - started)
            time.sleep(0.05)
    return found


async def hold_streams(base: str, job_id: str, n: int, ready: asyncio.Event,
                       stop: asyncio.Event) -> int:
    """Open n SSE streams and keep reading them until `stop`; returns how many opened."""
    opened = 0
    limits = httpx.Limits(max_connections=n + 10, max_keepalive_connections=n + 10)
    async with httpx.AsyncClient(base_url=base, timeout=None, limits=limits) as client:
        async def one() -> None:
            nonlocal opened
            async with client.stream("GET", f"/api/jobs/{job_id}/events") as response:
                opened += 1
                if opened == n:
                    ready.set()
                async for _ in response.aiter_bytes():
                    if stop.is_set():
                        return

        tasks = [asyncio.create_task(one()) for _ in range(n)]
        await stop.wait()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    return opened


def measure(mode: str, model: Path, clip: Path, streams: int, requests: int) -> dict:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory() as data_dir:
        process = subprocess.Popen(
            [sys.executable, __file__, "--serve", str(port), data_dir, str(model), mode],
            env={**os.environ, "HF_HUB_OFFLINE": "1"})
        try:
            deadline = time.monotonic() + 120
            while True:
                try:
                    if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline or process.poll() is not None:
                    raise SystemExit(f"the {mode} server did not start")
                time.sleep(0.2)
            with clip.open("rb") as fh:
                job_id = httpx.post(f"{base}/api/analyze", files={"file": ("c.mp4", fh)},
                                    timeout=60).json()["job_id"]
            idle = health_latencies(base, requests)

            async def under_load() -> tuple[list[float], int]:
                ready, stop = asyncio.Event(), asyncio.Event()
                holder = asyncio.create_task(hold_streams(base, job_id, streams, ready, stop))
                await asyncio.wait_for(ready.wait(), 120)
                await asyncio.sleep(1.0)  # every stream is polling now
                loaded = await asyncio.to_thread(health_latencies, base, requests)
                stop.set()
                return loaded, await holder

            loaded, opened = asyncio.run(under_load())
        finally:
            process.terminate()
            process.wait(timeout=20)
    return {"mode": mode, "streams": opened,
            "idle_p50_ms": 1000 * statistics.median(idle),
            "idle_p95_ms": 1000 * sorted(idle)[int(0.95 * (len(idle) - 1))],
            "loaded_p50_ms": 1000 * statistics.median(loaded),
            "loaded_p95_ms": 1000 * sorted(loaded)[int(0.95 * (len(loaded) - 1))]}


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--serve":
        serve(int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5])
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--streams", type=int, default=200)
    parser.add_argument("--requests", type=int, default=40, help="/health calls per phase")
    args = parser.parse_args()
    if not (CACHE / "config.json").exists():
        build_tiny_smolvlm(CACHE)
    with tempfile.TemporaryDirectory() as tmp:
        clip = write_video(Path(tmp) / "clip.mp4", n_frames=30)
        rows = [measure(mode, CACHE, clip, args.streams, args.requests)
                for mode in ("shipped", "threadpool", "on-loop")]
    print(f"{'mode':<11} {'streams':>7} {'idle p50':>9} {'idle p95':>9} {'loaded p50':>11} "
          f"{'loaded p95':>11} {'p50 ratio':>9}")
    for r in rows:
        print(f"{r['mode']:<11} {r['streams']:>7} {r['idle_p50_ms']:>8.1f}ms "
              f"{r['idle_p95_ms']:>8.1f}ms {r['loaded_p50_ms']:>10.1f}ms "
              f"{r['loaded_p95_ms']:>10.1f}ms {r['loaded_p50_ms'] / r['idle_p50_ms']:>9.1f}")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps({"machine": platform.platform(), "cpus": os.cpu_count(),
                                   "rows": rows}, indent=2) + "\n")
    print(f"wrote {RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()

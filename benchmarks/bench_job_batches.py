"""Queued analyze jobs batched vs one after another, through the real job queue.

    python benchmarks/bench_job_batches.py [--jobs 4] [--frames 4] [--tokens 100] [--repeats 2]
                                           [--model DIR]

`--jobs` analyze jobs (copies of one clip) are queued while the worker is stopped; then the
worker starts and the clock runs until every job is done. Two modes on the same warm backend,
interleaved `--repeats` times: `batched` (max_batch = --jobs: the worker claims them together
and describes them with one `generate_batch` call) and `one by one` (max_batch 1: the queue as
it was). Every job generates exactly `--tokens` tokens (min = max), so both modes do the same
work. Reported per mode (median over repeats): wall seconds until all are done, jobs per
second, median job latency (worker start → job done), mean time to first token and generate
seconds as each job's result records them, and the rows of each generate_batch call.

The default model is the tiny random-weight SmolVLM of the tests (cached in
~/.cache/chronicon/bench-tiny-smolvlm): it shows the queue's overhead and that batching
works end to end, not the model's speed-up; `--model DIR` takes any local model directory.
Prints a table; writes benchmarks/results/job_batches.json.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # tests.support: the tiny model builder, the clip writer

from tests.support.media import write_video  # noqa: E402
from tests.support.tiny_model import build_tiny_smolvlm  # noqa: E402

CACHE = Path.home() / ".cache" / "chronicon" / "bench-tiny-smolvlm"
RESULTS = ROOT / "benchmarks" / "results" / "job_batches.json"


def tiny_model() -> Path:
    if not (CACHE / "config.json").exists():
        build_tiny_smolvlm(CACHE)
    return CACHE


def counting_backend(model: Path) -> Any:
    from chronicon.vlm.transformers.backend import TransformersBackend

    class Counting(TransformersBackend):
        """The real backend, noting the rows of each generate_batch call."""

        def __init__(self, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self.rows: list[int] = []

        def generate_batch(self, requests: list[Any], on_piece: Any) -> list[Any]:
            self.rows.append(len(requests))
            return super().generate_batch(requests, on_piece)

    return Counting(model=str(model), device="cpu")


def run_queue(backend: Any, model: Path, clip: Path, jobs: int, frames: int, tokens: int,
              max_batch: int) -> dict[str, Any]:
    """Queue `jobs` analyze jobs, start the worker, wait for all; the figures of that run."""
    from chronicon.config import Settings
    from chronicon.jobs import JobQueue
    from chronicon.options import AnalysisOptions
    from chronicon.store import Store
    from chronicon.vlm.warm import WarmBackend

    backend.max_batch = max_batch
    backend.rows = []
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(data_dir=Path(tmp) / "data", model=str(model), device="cpu",
                            agent_enabled=False)
        settings.data_dir.mkdir(parents=True)
        store = Store(settings.db_path)
        queue = JobQueue(settings, store, WarmBackend(settings, backend))
        options = AnalysisOptions(frames=frames, max_tokens=tokens, min_tokens=tokens)
        ids = []
        for n in range(jobs):
            copy = Path(tmp) / f"clip{n}.mp4"
            shutil.copyfile(clip, copy)
            ids.append(queue.submit(copy, copy.name, options).id)
        done_at: dict[str, float] = {}
        started = time.perf_counter()
        queue.start()
        try:
            while len(done_at) < jobs:
                for job_id in ids:
                    if job_id not in done_at and store.get_job(job_id).finished:
                        done_at[job_id] = time.perf_counter() - started
                time.sleep(0.01)
        finally:
            queue.stop()
        wall = max(done_at.values())
        states = [store.get_job(job_id).state for job_id in ids]
        if states != ["done"] * jobs:
            raise SystemExit(f"not every job is done: {states}")
        timings = [json.loads(Path(store.get_analysis(job_id).result_path).read_text())["timing"]
                   for job_id in ids]
    return {"wall_s": wall, "jobs_per_s": jobs / wall,
            "latency_p50_s": statistics.median(done_at.values()),
            "ttft_mean_s": statistics.mean(t["time_to_first_token"] for t in timings),
            "generate_mean_s": statistics.mean(t["generate"] for t in timings),
            "batch_rows": list(backend.rows)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--jobs", type=int, default=4)
    parser.add_argument("--frames", type=int, default=4)
    parser.add_argument("--tokens", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--model", type=Path, default=None,
                        help="a local model directory (default: the tiny test model)")
    args = parser.parse_args()

    model = args.model or tiny_model()
    work = Path(tempfile.mkdtemp(prefix="bench-job-batches-"))
    clip = write_video(work / "clip.mp4", n_frames=90, size=(640, 360))
    backend = counting_backend(model)
    load_s = backend.load()
    modes = {"one by one": 1, "batched": args.jobs}
    # A warm-up run of each mode (first-call costs), then the measured runs, interleaved.
    for max_batch in modes.values():
        run_queue(backend, model, clip, 2, args.frames, min(args.tokens, 8), max_batch)
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in modes}
    for _ in range(args.repeats):
        for name, max_batch in modes.items():
            runs[name].append(run_queue(backend, model, clip, args.jobs, args.frames,
                                        args.tokens, max_batch))
    shutil.rmtree(work, ignore_errors=True)

    keys = ("wall_s", "jobs_per_s", "latency_p50_s", "ttft_mean_s", "generate_mean_s")
    summary = {name: {k: statistics.median(r[k] for r in rs) for k in keys}
               | {"batch_rows": rs[-1]["batch_rows"]} for name, rs in runs.items()}
    speedup = summary["batched"]["jobs_per_s"] / summary["one by one"]["jobs_per_s"]
    print(f"{args.jobs} queued analyze jobs, {args.frames} frames + {args.tokens} tokens each, "
          f"model {model.name} (loaded in {load_s:.1f}s), median of {args.repeats}")
    print(f"{'mode':<11} {'wall s':>7} {'jobs/s':>7} {'p50 latency':>12} {'TTFT':>6} "
          f"{'generate':>9}  generate_batch rows")
    for name, s in summary.items():
        print(f"{name:<11} {s['wall_s']:>7.2f} {s['jobs_per_s']:>7.2f} "
              f"{s['latency_p50_s']:>12.2f} {s['ttft_mean_s']:>6.2f} "
              f"{s['generate_mean_s']:>9.2f}  {s['batch_rows'] or '-'}")
    print(f"throughput batched / one by one: {speedup:.2f}x")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps({"jobs": args.jobs, "frames": args.frames,
                                   "tokens": args.tokens, "model": str(model),
                                   "repeats": args.repeats, "summary": summary, "runs": runs,
                                   "speedup": speedup}, indent=2))
    print(f"wrote {RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()

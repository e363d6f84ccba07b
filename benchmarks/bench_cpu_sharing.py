"""How each CPU runtime slows down when another process shares the cores, per thread-wait
policy, in one run (issue 13 §3: "keep the slowdown proportional").

    python benchmarks/bench_cpu_sharing.py            # tuned transformers and ov-int8
    python benchmarks/bench_cpu_sharing.py --runtimes tuned

Each cell is a fresh process (libgomp reads OMP_WAIT_POLICY once, when torch is imported)
that loads one runtime, warms it up and times one description (4 frames + 100 tokens, the
bench_inference.py case), first alone, then while a competing process keeps 2 threads busy
with matmuls (a server's other work: the embedding model, uploads, another program). On 2
cores a fair share is half the machine, so a proportional slowdown is about 2x; a runtime
whose threads spin at barriers while a partner thread is descheduled does far worse.

Policies (`--policies`): `default` (OMP_WAIT_POLICY unset: libgomp spins ~300k iterations at
each barrier before sleeping), `PASSIVE` (threads sleep at once), `spin=N` (GOMP_SPINCOUNT=N
with the default policy). Chronicon leaves the policy alone: PASSIVE made a quiet machine's
decode 1.7x slower (many small parallel regions per token), and the stalls it avoids under
load are gone anyway because the transformers backend decodes on one thread
(`vlm/transformers/decode_threads.py`); vision and prefill keep every thread.
The competing process always runs with libgomp's default. Prints a table; writes
benchmarks/results/cpu_sharing.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.bench_inference import (  # noqa: E402
    CACHE,
    MODEL_DIR,
    RESULTS,
    competing_load,
    ensure_model,
    ensure_openvino,
)

OUT = RESULTS.with_name("cpu_sharing.json")
POLICIES = "default,PASSIVE"
PROPORTIONAL = 2.0  # half of 2 cores

CHILD = """
import json, sys, time
sys.path[:0] = {paths!r}
from benchmarks.bench_inference import Chronicon, make_frames, one_runtime
runner = Chronicon({runtime!r}, one_runtime({runtime!r}, {conversion!r}))
frames = make_frames(4)
runner.run(frames)
print("READY", flush=True)
sys.stdin.readline()  # the parent starts (or not) the competing load, then says go
row = runner.run(frames)
print(json.dumps({{k: row[k] for k in ("e2e_s", "ttft_s", "decode_ms")}}), flush=True)
"""


def measure(runtime: str, policy: str, loaded: bool, conversion: str | None) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")}
    if policy.startswith("spin="):  # libgomp's default policy with a shorter spin
        env["GOMP_SPINCOUNT"] = policy.removeprefix("spin=")
    elif policy != "default":
        env["OMP_WAIT_POLICY"] = policy
    code = CHILD.format(paths=[str(ROOT), str(ROOT / "src")], runtime=runtime,
                        conversion=conversion)
    child = subprocess.Popen([sys.executable, "-c", code], env=env, stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True)
    assert child.stdin and child.stdout
    while (line := child.stdout.readline()) and line.strip() != "READY":
        pass
    competitor = competing_load() if loaded else None
    try:
        if competitor:
            time.sleep(1.0)  # let it reach its loop
        child.stdin.write("go\n")
        child.stdin.flush()
        result = json.loads(child.stdout.readline())
    finally:
        if competitor:
            competitor.kill()
        child.wait(timeout=60)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runtimes", default="tuned,ov-int8",
                        help="comma-separated: tuned, ov-int8 (default both)")
    parser.add_argument("--policies", default=POLICIES,
                        help="comma-separated: default, PASSIVE, ACTIVE, spin=N (libgomp's "
                             "GOMP_SPINCOUNT with the default policy)")
    args = parser.parse_args()
    ensure_model()
    runtimes = [r.strip() for r in args.runtimes.split(",") if r.strip()]
    conversion = ensure_openvino("int8") if "ov-int8" in runtimes else None
    if "ov-int8" in runtimes and conversion is None:
        runtimes.remove("ov-int8")
    load_before = os.getloadavg()
    rows: list[dict[str, Any]] = []
    for runtime in runtimes:
        for policy in [p.strip() for p in args.policies.split(",") if p.strip()]:
            alone = measure(runtime, policy, False, str(conversion) if conversion else None)
            shared = measure(runtime, policy, True, str(conversion) if conversion else None)
            row = {"runtime": runtime, "policy": policy, "alone_s": round(alone["e2e_s"], 2),
                   "shared_s": round(shared["e2e_s"], 2),
                   "alone_decode_ms": round(alone["decode_ms"], 1),
                   "shared_decode_ms": round(shared["decode_ms"], 1),
                   "slowdown": round(shared["e2e_s"] / alone["e2e_s"], 2)}
            rows.append(row)
            print(f"  {runtime} {policy}: alone {row['alone_s']}s, shared {row['shared_s']}s",
                  flush=True)
    load_after = os.getloadavg()
    print()
    print(f"{'runtime':<8} {'policy':<12} {'alone s':>8} {'shared s':>9} {'slowdown':>9} "
          f"{'ms/token alone':>15} {'shared':>7}")
    for r in rows:
        print(f"{r['runtime']:<8} {r['policy']:<12} {r['alone_s']:>8.2f} {r['shared_s']:>9.2f} "
              f"{r['slowdown']:>8.2f}x {r['alone_decode_ms']:>15.1f} {r['shared_decode_ms']:>7.1f}")
    print(f"proportional: about {PROPORTIONAL:.0f}x (a 2-thread competitor on "
          f"{os.cpu_count()} cores); load average {load_before[0]:.2f} before, "
          f"{load_after[0]:.2f} after")
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps({
        "benchmark": "cpu_sharing", "rows": rows, "proportional": PROPORTIONAL,
        "model": str(MODEL_DIR.relative_to(CACHE)), "case": "4 frames + 100 tokens",
        "machine": {"python": platform.python_version(), "cpu_count": os.cpu_count(),
                    "load_average_before": load_before, "load_average_after": load_after},
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}, indent=2) + "\n")
    print(f"wrote {OUT.relative_to(ROOT)}")


if __name__ == "__main__":
    main()

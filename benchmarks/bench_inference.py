"""Inference speed of every CPU runtime behind the backend seam, on the real SmolVLM2-256M
architecture, as ratios measured in ONE run (the machine is shared; runtimes are interleaved).

    python benchmarks/bench_inference.py            # 3 measured runs per runtime (median)
    python benchmarks/bench_inference.py --quick    # 1 measured run per runtime
    python benchmarks/bench_inference.py --quick --competing-load   # a 2-thread matmul loop
                                                                    # runs alongside

The model has the real SmolVLM2-256M architecture (text: llama, hidden 576, 30 layers, 9 heads,
3 KV heads, vocab 49280; vision: SigLIP hidden 768, 12 layers, patch 16 at 512 px; pixel
shuffle 4, 64 tokens per frame) with random weights, built offline once and cached in
~/.cache/chronicon-bench/ (its OpenVINO conversions too). Every run describes 4 frames
(640x480) and generates exactly 100 tokens (min = max), greedy.

Runtimes (each loaded once, one warm-up call, then the measured calls):
- baseline:   plain transformers, bf16 + SDPA + `model.generate()`: what a user writes;
- tuned:      `TransformersBackend` as `chronicon analyze` runs it (speed-ups applied);
- openvino:   `OpenVINOBackend` on the fp32-weight conversion (OpenVINO executes bf16 here);
- ov-int8:    `OpenVINOBackend` on the int8 weight-only conversion;
- batch 4:    `generate_batch` of 4 different clips on `tuned` and on `ov-int8`, each against 4
              x the same runtime one after another (its median single run, same run).
Token agreement with the baseline (bf16 transformers) is teacher-forced: each runtime is fed the
baseline's 100 tokens and scored on how often its top-1 next token is the baseline's (and how
often the baseline's is in its top 5). Random weights give near-tied logits, so a trained
model agrees more; the rate compares runtimes, it does not certify text quality.
Peak RSS: a fresh process per runtime loads only that runtime (what a server holds) and runs
batch 4 (`--no-rss` skips it).

Prints a table; writes benchmarks/results/inference.json (inference-competing-load.json with
`--competing-load`).

Targets (issue 13): 4 frames + 100 tokens >= 2x the baseline with decode <= 20 ms/token;
batch 4 >= 2x the throughput of one after another; peak RSS <= 1.5 GB at batch 4.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # tests.support.tiny_model builds the architecture
sys.path.insert(0, str(ROOT / "src"))

CACHE = Path.home() / ".cache" / "chronicon-bench"
MODEL_DIR = CACHE / "smolvlm2-256m-arch-v1"
RESULTS = ROOT / "benchmarks" / "results" / "inference.json"
TOKENS = 100
FRAMES = 4
BATCH = 4
PROMPT = "Describe the main events in this video."
FRAME_SIZE = (640, 480)
TARGET_SPEEDUP = 2.0
TARGET_DECODE_MS = 20.0
TARGET_BATCH_GAIN = 2.0
TARGET_RSS_MB = 1536
TARGET_TTFT_REST_S = 0.050  # time to first token <= vision + prefill + 50 ms

TEXT_256M = {"hidden_size": 576, "intermediate_size": 1536, "num_hidden_layers": 30,
             "num_attention_heads": 9, "num_key_value_heads": 3, "rope_theta": 100000.0,
             "max_position_embeddings": 8192, "rms_norm_eps": 1e-5}
VISION_256M = {"hidden_size": 768, "intermediate_size": 3072, "num_hidden_layers": 12,
               "num_attention_heads": 12, "patch_size": 16, "image_size": 512}
SCALE_FACTOR_256M = 4
VOCAB_256M = 49280


# ---- the model, its conversions and the inputs ------------------------------------------------


def ensure_model() -> tuple[Path, float]:
    """Build the random-weight 256M-architecture model once; seconds spent building (0 cached)."""
    if (MODEL_DIR / "model.safetensors").exists():
        return MODEL_DIR, 0.0
    import torch
    from tests.support.tiny_model import build_smolvlm

    start = time.perf_counter()
    tmp = MODEL_DIR.with_name(MODEL_DIR.name + ".tmp")
    build_smolvlm(tmp, text=TEXT_256M, vision=VISION_256M, scale_factor=SCALE_FACTOR_256M,
                  vocab_size=VOCAB_256M, dtype=torch.bfloat16)  # bf16 on disk, like the hub's
    tmp.rename(MODEL_DIR)
    return MODEL_DIR, time.perf_counter() - start


def ensure_openvino(weights: str) -> Path | None:
    """The model converted with `weights` (converted once, cached); None without openvino."""
    try:
        import openvino  # noqa: F401
    except ImportError:
        return None
    from chronicon.vlm.openvino.export import FORMAT_VERSION, export_openvino

    target = CACHE / f"{MODEL_DIR.name}-openvino-{weights}"
    manifest = target / "chronicon_openvino.json"
    if manifest.exists() and json.loads(manifest.read_text()).get("format") != FORMAT_VERSION:
        shutil.rmtree(target)  # converted by an older exporter: convert again
    if not manifest.exists():
        print(f"  converting to OpenVINO ({weights} weights), once", flush=True)
        try:
            export_openvino(MODEL_DIR, target, weights=weights)
        except RuntimeError as exc:  # int8 without NNCF
            print(f"  no {weights} conversion: {exc}", flush=True)
            return None
    return target


def make_frames(n: int, clip: int = 0) -> list[Any]:
    """n distinct 640x480 frames, one per second of a 30 fps clip; `clip` varies the content."""
    import numpy as np
    from PIL import Image

    from chronicon.video.frames import Frame

    w, h = FRAME_SIZE
    frames = []
    for i in range(n):
        img = np.zeros((h, w, 3), dtype=np.uint8)
        img[..., 0] = (np.arange(w)[None, :] * 255 // (w - 1)).astype(np.uint8)
        img[..., 1] = (i * 37 + clip * 71) % 256
        img[..., 2] = (np.arange(h)[:, None] * 255 // (h - 1)).astype(np.uint8)
        x = (i * 61 + clip * 113) % (w - 40)
        img[:, x:x + 40] = 255
        frames.append(Frame(index=i * 30, timestamp=float(i), image=Image.fromarray(img)))
    return frames


# ---- the runtimes -------------------------------------------------------------------------------


class Baseline:
    """Plain transformers as a user writes it: bf16, SDPA, processor + `generate()`."""

    name = "baseline"

    def __init__(self, model_dir: Path) -> None:
        import torch
        from transformers import AutoModelForImageTextToText, AutoProcessor

        self.torch = torch
        self.processor = AutoProcessor.from_pretrained(model_dir)
        self.model = AutoModelForImageTextToText.from_pretrained(
            model_dir, dtype=torch.bfloat16, attn_implementation="sdpa").eval()

    def run(self, frames: list[Any]) -> dict[str, Any]:
        from transformers import TextStreamer

        from chronicon.vlm.transformers.backend import video_metadata

        start = time.perf_counter()
        messages = [{"role": "user", "content": [{"type": "video"},
                                                  {"type": "text", "text": PROMPT}]}]
        text = self.processor.apply_chat_template(messages, add_generation_prompt=True)
        inputs = self.processor(text=text, videos=[[f.image for f in frames]],
                                video_metadata=[video_metadata(frames, 30.0, float(len(frames)))],
                                do_sample_frames=False, return_tensors="pt")
        inputs = inputs.to(self.torch.bfloat16)
        first: list[float] = []

        class FirstToken(TextStreamer):
            def put(self, value: Any) -> None:
                if not self.next_tokens_are_prompt and not first:
                    first.append(time.perf_counter())
                super().put(value)

            def on_finalized_text(self, text: str, stream_end: bool = False) -> None:
                pass

        gen_start = time.perf_counter()
        with self.torch.inference_mode():
            ids = self.model.generate(**inputs, max_new_tokens=TOKENS, min_new_tokens=TOKENS,
                                      do_sample=False,
                                      streamer=FirstToken(self.processor.tokenizer,
                                                          skip_prompt=True))
        end = time.perf_counter()
        new = ids[0, inputs["input_ids"].shape[1]:]
        assert len(new) == TOKENS
        return {"e2e_s": end - start, "ttft_s": first[0] - gen_start,
                "decode_ms": 1000 * (end - first[0]) / (TOKENS - 1),
                "text": self.processor.tokenizer.decode(new, skip_special_tokens=True),
                "ids": new.tolist()}


class Chronicon:
    """One of our backends through `Backend.generate`, as `analyze` calls it."""

    def __init__(self, name: str, backend: Any) -> None:
        self.name = name
        self.backend = backend
        backend.load()

    def run(self, frames: list[Any]) -> dict[str, Any]:
        from chronicon.vlm.backend import GenerationParams

        pieces: list[str] = []
        start = time.perf_counter()
        s = self.backend.generate(frames, PROMPT, GenerationParams(TOKENS, TOKENS),
                                  pieces.append, video_fps=30.0, video_duration=float(len(frames)))
        end = time.perf_counter()
        assert s.generated_tokens == TOKENS, s
        row = {"e2e_s": end - start, "ttft_s": s.time_to_first_token_s,
               "preprocess_s": s.preprocess_s,
               "decode_ms": 1000 * (s.generate_s - s.time_to_first_token_s) / (TOKENS - 1),
               "text": "".join(pieces)}
        row.update({k: v for k, v in s.extra.items()})
        return row


def run_batch_on(backend: Any) -> dict[str, Any]:
    from chronicon.vlm.backend import GenerationParams, GenerationRequest

    requests = [GenerationRequest(make_frames(FRAMES, clip), PROMPT,
                                  GenerationParams(TOKENS, TOKENS), video_fps=30.0,
                                  video_duration=float(FRAMES)) for clip in range(BATCH)]
    start = time.perf_counter()
    stats = backend.generate_batch(requests, lambda row, piece: None)
    wall = time.perf_counter() - start
    assert [s.generated_tokens for s in stats] == [TOKENS] * BATCH, stats
    return {"e2e_s": wall, "ttft_s": max(s.time_to_first_token_s for s in stats),
            "decode_ms": statistics.mean(1000 * (s.generate_s - s.time_to_first_token_s)
                                         / (TOKENS - 1) for s in stats)}


def teacher_forced_agreement(backend: Any, frames: list[Any], reference: list[int]
                             ) -> dict[str, float]:
    """Share of positions where `backend` picks the baseline's next token when fed the
    baseline's own tokens (teacher forcing): each position is judged on its own, so one early
    difference does not turn every later token into a mismatch as comparing free-running
    texts does. Also the share of the baseline's tokens that are `backend`'s top-5."""
    import numpy as np

    name = getattr(backend, "name", "")
    if name == "openvino":
        from chronicon.vlm.backend import GenerationStats

        inputs = backend.prepare_inputs(frames, PROMPT, 30.0, float(len(frames)))
        embeds = backend._prompt_embeddings(inputs, GenerationStats())
        backend.language.reset_state()
        length = embeds.shape[1]
        rows = [backend._step(embeds, np.ones((1, length)), np.arange(length)[None])[0]]
        for token in reference[:-1]:
            length += 1
            step = np.asarray(backend.embed(np.array([[token]], dtype=np.int64))[0])
            rows.append(backend._step(step, np.ones((1, length)),
                                      np.array([[length - 1]]))[0])
        logits = np.stack(rows).astype(np.float32)
    else:
        import torch

        inputs = backend.prepare_inputs(frames, PROMPT, 30.0, float(len(frames)))
        prompt_length = int(inputs["input_ids"].shape[1])
        forced = torch.tensor([reference[:-1]], dtype=inputs["input_ids"].dtype)
        inputs["input_ids"] = torch.cat([inputs["input_ids"], forced], dim=1)
        inputs["attention_mask"] = torch.cat(
            [inputs["attention_mask"], torch.ones_like(forced)], dim=1)
        with torch.inference_mode():
            out = backend.model(**inputs).logits[0, prompt_length - 1:]
        logits = out.float().numpy()
    ref = np.asarray(reference)
    top1 = logits.argmax(axis=1)
    top5 = np.argsort(-logits, axis=1)[:, :5]
    return {"top1": round(float((top1 == ref).mean()), 3),
            "in_top5": round(float((top5 == ref[:, None]).any(axis=1).mean()), 3)}


def rss_probe(runtime: str, conversion: str | None) -> dict[str, Any]:
    """In a fresh process: load ONE runtime (what a server holds), run batch 4, and report the
    process's peak RSS (MB, the kernel's VmHWM: getrusage's maxrss would include this
    parent's, which Linux carries across fork and exec) after loading and after the batch."""
    code = f"""
import json, sys
sys.path[:0] = {[str(ROOT), str(ROOT / "src")]!r}
from benchmarks.bench_inference import (Chronicon, make_frames, one_runtime, peak_rss_mb,
                                        run_batch_on)
backend = one_runtime({runtime!r}, {conversion!r})
backend.load()
loaded = peak_rss_mb()
Chronicon("probe", backend).run(make_frames(4))
single = peak_rss_mb()
run_batch_on(backend)
print(json.dumps({{"loaded_mb": loaded, "peak_mb_single": single,
                  "peak_mb_batch4": peak_rss_mb()}}))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def one_runtime(runtime: str, conversion: str | None) -> Any:
    """A backend of its own for a child process: "tuned" transformers on the benchmark model,
    or OpenVINO on `conversion`."""
    if runtime == "tuned":
        from chronicon.vlm.transformers.backend import TransformersBackend

        return TransformersBackend(model=str(MODEL_DIR), device="cpu")
    from chronicon.vlm.openvino.backend import OpenVINOBackend

    return OpenVINOBackend(conversion)


def peak_rss_mb() -> int:
    """This process's peak resident memory so far (VmHWM), MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return round(int(line.split()[1]) / 1024)
    raise RuntimeError("no VmHWM in /proc/self/status (Linux only)")


def competing_load() -> subprocess.Popen:
    """Another process keeping 2 threads busy with matmuls (a server's other work)."""
    code = ("import torch; torch.set_num_threads(2); a = torch.randn(1024, 1024)\n"
            "while True: a @ a")
    return subprocess.Popen([sys.executable, "-c", code])


def vision_encoder_s(backend: Any) -> float:
    """The transformers SigLIP encoder + connector alone on the frames (one call)."""
    import torch

    inputs = backend.prepare_inputs(make_frames(FRAMES), PROMPT, 30.0, float(FRAMES))
    with torch.inference_mode():
        start = time.perf_counter()
        backend.model.model.get_image_features(
            pixel_values=inputs["pixel_values"],
            pixel_attention_mask=inputs["pixel_attention_mask"])
        return time.perf_counter() - start


# ---- main --------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="1 measured run per runtime")
    parser.add_argument("--reps", type=int, default=None, help="measured runs per runtime")
    parser.add_argument("--competing-load", action="store_true",
                        help="run a 2-thread matmul process alongside")
    parser.add_argument("--no-batch", action="store_true", help="skip batch 4")
    parser.add_argument("--no-rss", action="store_true",
                        help="skip the one-runtime peak-RSS processes")
    parser.add_argument("--threads", type=int, default=None,
                        help="threads for every runtime (default: torch's and OpenVINO's own); "
                             "1 keeps an oversubscribed machine from stalling thread barriers")
    args = parser.parse_args()
    reps = args.reps or (1 if args.quick else 3)

    load_before = os.getloadavg()
    model_dir, build_s = ensure_model()
    conversions = {w: ensure_openvino(w) for w in ("fp32", "int8")}
    import torch

    from chronicon.vlm.transformers.backend import TransformersBackend

    if args.threads:
        torch.set_num_threads(args.threads)
    runtimes: list[Any] = [Baseline(model_dir)]
    tuned = TransformersBackend(model=str(model_dir), device="cpu")
    runtimes.append(Chronicon("tuned", tuned))
    if conversions["fp32"] or conversions["int8"]:
        from chronicon.vlm.openvino.backend import OpenVINOBackend

        for weights, label in (("fp32", "openvino"), ("int8", "ov-int8")):
            if conversions[weights]:
                runtimes.append(Chronicon(label, OpenVINOBackend(conversions[weights],
                                                                 threads=args.threads)))
    # Batch 4 on the tuned transformers path and on the fastest OpenVINO conversion.
    batching = {r.name: r.backend for r in runtimes[1:] if r.name in ("tuned", "ov-int8")}
    if "ov-int8" not in batching and conversions["fp32"]:
        batching["openvino"] = next(r.backend for r in runtimes if r.name == "openvino")
    if args.no_batch:
        batching = {}
    competitor = competing_load() if args.competing_load else None
    print(f"model {model_dir} ({f'built in {build_s:.1f}s' if build_s else 'cached'}); "
          f"tuned speed-ups {', '.join(tuned.info().speedups)}; {torch.get_num_threads()} "
          f"torch threads; load average {load_before[0]:.2f}"
          f"{'; competing 2-thread load running' if competitor else ''}", flush=True)

    frames = make_frames(FRAMES)
    measured: dict[str, list[dict[str, Any]]] = {r.name: [] for r in runtimes}
    batch_runs: dict[str, list[dict[str, Any]]] = {name: [] for name in batching}
    try:
        for r in runtimes:
            r.run(frames)  # warm-up: oneDNN/OpenVINO pick and cache their kernels
            print(f"  {r.name} warmed up", flush=True)
        for name, backend in batching.items():
            run_batch_on(backend)
            print(f"  batch {BATCH} ({name}) warmed up", flush=True)
        for _ in range(reps):  # interleaved, so a change in machine load hits all alike
            for r in runtimes:
                measured[r.name].append(r.run(frames))
                print(f"  {r.name}: {measured[r.name][-1]['e2e_s']:.2f}s", flush=True)
            for name, backend in batching.items():
                batch_runs[name].append(run_batch_on(backend))
                print(f"  batch {BATCH} ({name}): {batch_runs[name][-1]['e2e_s']:.2f}s",
                      flush=True)
        vision_s = vision_encoder_s(tuned)
    finally:
        if competitor:
            competitor.kill()
    load_after = os.getloadavg()
    reference = measured["baseline"][0]["ids"]
    agreement = {r.name: teacher_forced_agreement(r.backend, frames, reference)
                 for r in runtimes[1:]}

    def median(rows: list[dict[str, Any]], key: str) -> float:
        return statistics.median(row[key] for row in rows)

    base_e2e = median(measured["baseline"], "e2e_s")
    table: list[dict[str, Any]] = []
    for name, rows in measured.items():
        entry = {"runtime": name, "e2e_s": round(median(rows, "e2e_s"), 3),
                 "ttft_s": round(median(rows, "ttft_s"), 3),
                 "decode_ms_per_token": round(median(rows, "decode_ms"), 1),
                 "speedup_vs_baseline": round(base_e2e / median(rows, "e2e_s"), 2),
                 "clips_per_minute": round(60 / median(rows, "e2e_s"), 2),
                 "e2e_runs_s": [round(row["e2e_s"], 3) for row in rows]}
        if "vision_s" in rows[0]:
            entry["vision_s"] = round(median(rows, "vision_s"), 3)
            entry["prefill_s"] = round(median(rows, "prefill_s"), 3)
            # Per run, then the median: medians of different runs do not add up.
            entry["ttft_rest_s"] = round(statistics.median(
                row["ttft_s"] - row["vision_s"] - row["prefill_s"] for row in rows), 4)
        if name in agreement:
            entry["token_agreement_vs_baseline"] = agreement[name]
        table.append(entry)
    for name, rows in batch_runs.items():
        b = median(rows, "e2e_s")
        single = median(measured[name], "e2e_s")
        table.append({"runtime": f"batch {BATCH} ({name})", "e2e_s": round(b, 3),
                      "ttft_s": round(median(rows, "ttft_s"), 3),
                      "decode_ms_per_token": round(median(rows, "decode_ms"), 1),
                      "speedup_vs_baseline": round(BATCH * base_e2e / b, 2),
                      "clips_per_minute": round(60 * BATCH / b, 2),
                      "throughput_vs_sequential_same_runtime": round(BATCH * single / b, 2),
                      "e2e_runs_s": [round(r["e2e_s"], 3) for r in rows]})

    rss: dict[str, dict[str, Any]] = {}
    if not args.no_rss:
        rss["tuned"] = rss_probe("tuned", None)
        best_ov = conversions["int8"] or conversions["fp32"]
        if best_ov:
            rss["ov-int8" if conversions["int8"] else "openvino"] = rss_probe("openvino",
                                                                            str(best_ov))

    print()
    print(f"{'runtime':<20} {'e2e s':>7} {'TTFT s':>7} {'ms/token':>9} {'x baseline':>10} "
          f"{'clips/min':>9} {'top-1 agree':>11}")
    for e in table:
        agree = e.get("token_agreement_vs_baseline", {}).get("top1")
        print(f"{e['runtime']:<20} {e['e2e_s']:>7.2f} {e['ttft_s']:>7.2f} "
              f"{e['decode_ms_per_token']:>9.1f} {e['speedup_vs_baseline']:>9.2f}x "
              f"{e['clips_per_minute']:>9.2f} {'-' if agree is None else f'{agree:.0%}':>11}")
    for e in table:
        if "vision_s" in e:
            print(f"{e['runtime']}: TTFT {e['ttft_s']:.2f}s = vision {e['vision_s']:.2f}s + "
                  f"prefill {e['prefill_s']:.2f}s + {e['ttft_rest_s'] * 1000:.0f} ms "
                  "(embedding, sampling; the median over runs of each run's remainder)")
    for e in table:
        if "throughput_vs_sequential_same_runtime" in e:
            print(f"{e['runtime']}: {e['throughput_vs_sequential_same_runtime']:.2f}x the "
                  f"throughput of {BATCH} one after another on the same runtime (same run)")
    for name, probe_rss in rss.items():
        print(f"peak RSS, a process holding only {name}: {probe_rss['loaded_mb']} MB loaded, "
              f"{probe_rss['peak_mb_single']} MB after one clip, "
              f"{probe_rss['peak_mb_batch4']} MB after batch {BATCH}")
    print("token agreement: teacher-forced top-1 on the baseline's 100 tokens (random weights: "
          "near-tied logits; see the docstring)")
    print(f"tuned vision encoder alone: {vision_s:.2f}s")
    print(f"load average {load_before[0]:.2f} before, {load_after[0]:.2f} after "
          "(2 shared cores; compare ratios, not seconds)")

    singles = [e for e in table if e["runtime"] != "baseline" and "batch" not in e["runtime"]]
    best = min(singles, key=lambda e: e["e2e_s"])
    batches = [e for e in table if "throughput_vs_sequential_same_runtime" in e]
    best_batch = max(batches, key=lambda e: e["clips_per_minute"], default=None)
    summary = {
        "best_single": best["runtime"], "best_speedup_vs_baseline": best["speedup_vs_baseline"],
        "best_decode_ms_per_token": best["decode_ms_per_token"],
        "meets_speedup_target": best["speedup_vs_baseline"] >= TARGET_SPEEDUP,
        "meets_decode_target": best["decode_ms_per_token"] <= TARGET_DECODE_MS,
        "best_batch": best_batch["runtime"] if best_batch else None,
        "batch_throughput_vs_sequential": (best_batch["throughput_vs_sequential_same_runtime"]
                                           if best_batch else None),
        "meets_batch_target": bool(best_batch) and best_batch[
            "throughput_vs_sequential_same_runtime"] >= TARGET_BATCH_GAIN,
        "peak_rss_mb_batch4": {name: r["peak_mb_batch4"] for name, r in rss.items()},
        # Per runtime: the server's figure is the runtime it runs (OpenVINO when converted).
        "meets_rss_target": {name: r["peak_mb_batch4"] <= TARGET_RSS_MB
                             for name, r in rss.items()},
        "meets_ttft_target": {e["runtime"]: e["ttft_rest_s"] <= TARGET_TTFT_REST_S
                              for e in table if "ttft_rest_s" in e},
    }
    result = {
        "benchmark": "inference", "quick": args.quick, "reps": reps, "tokens": TOKENS,
        "frames": FRAMES, "frame_size": list(FRAME_SIZE),
        "model": "random weights, SmolVLM2-256M architecture",
        "competing_load": args.competing_load, "threads": args.threads or "default",
        "table": table, "summary": summary, "rss": rss,
        "tuned_speedups": list(tuned.info().speedups), "tuned_vision_encoder_s": vision_s,
        "machine": {"python": platform.python_version(), "torch": torch.__version__,
                    "cpu_count": os.cpu_count(), "load_average_before": load_before,
                    "load_average_after": load_after},
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    out = RESULTS.with_name("inference-competing-load.json") if args.competing_load else RESULTS
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out.relative_to(ROOT)}; summary: {json.dumps(summary)}")


if __name__ == "__main__":
    main()

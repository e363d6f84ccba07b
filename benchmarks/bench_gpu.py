"""The GPU path, proved on a CUDA machine in one unattended run (< 8 minutes).

    python benchmarks/bench_gpu.py                   # 256m, 500m, 2.2b; every precision
    python benchmarks/bench_gpu.py --models 256m --cuda-device 0

For each model (the hub snapshot when it is in the local cache, else a random-weight model with
the real architecture, built once in ~/.cache/chronicon-bench/: speed does not depend on the
weights) and each precision (bf16, NF4 4-bit, 8-bit; bitsandbytes), with and without
`torch.compile` (bf16 only: compiling every variant would not fit the time budget), it loads
`TransformersBackend` on `cuda:N` and measures 4 frames + exactly 100 tokens at batch 1 and 4
(`generate_batch`). Before any timing it checks, and FAILS LOUDLY (exit 1) on a mismatch:
- placement: every parameter on `cuda:N`, the whole model (no CPU or other-GPU shards);
- inputs: every tensor `prepare_inputs` returns on the model's device, floats in its dtype;
- TF32 enabled for matmuls and cuDNN;
- the memory check: the pre-load estimate (placement.plan_precision) against
  `torch.cuda.mem_get_info` before loading, and against the memory the loaded model holds.
Prints one table and writes benchmarks/results/gpu.json. Combinations left when the time
budget (7.5 min) runs out are listed as skipped, never silently dropped.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_inference import (  # noqa: E402
    CACHE,
    FRAMES,
    PROMPT,
    SCALE_FACTOR_256M,
    TEXT_256M,
    TOKENS,
    VISION_256M,
    VOCAB_256M,
    make_frames,
)

BUDGET_S = 450.0
RESULTS = ROOT / "benchmarks" / "results" / "gpu.json"
# The released architectures (config.json of each hub model), for random-weight stand-ins.
ARCHITECTURES: dict[str, dict[str, Any]] = {
    "256m": {"text": TEXT_256M, "vision": VISION_256M, "scale_factor": SCALE_FACTOR_256M,
             "vocab": VOCAB_256M},
    "500m": {"text": {"hidden_size": 960, "intermediate_size": 2560, "num_hidden_layers": 32,
                      "num_attention_heads": 15, "num_key_value_heads": 5,
                      "rope_theta": 100000.0, "max_position_embeddings": 8192,
                      "rms_norm_eps": 1e-5},
             "vision": VISION_256M, "scale_factor": 4, "vocab": 49280},
    "2.2b": {"text": {"hidden_size": 2048, "intermediate_size": 8192, "num_hidden_layers": 24,
                      "num_attention_heads": 32, "num_key_value_heads": 32,
                      "rope_theta": 130000.0, "max_position_embeddings": 16384,
                      "rms_norm_eps": 1e-5},
             "vision": {"hidden_size": 1152, "intermediate_size": 4304, "num_hidden_layers": 27,
                        "num_attention_heads": 16, "patch_size": 14, "image_size": 384},
             "scale_factor": 3, "vocab": 49280},
}
PRECISIONS = {"bf16": "none", "nf4": "4bit", "8bit": "8bit"}


class Mismatch(SystemExit):
    def __init__(self, message: str) -> None:
        print(f"FAIL: {message}", file=sys.stderr, flush=True)
        super().__init__(1)


def model_source(name: str) -> tuple[str, str]:
    """(what to pass as --model, "hub" or "random-arch")."""
    from huggingface_hub import snapshot_download

    from chronicon.vlm.catalog import PRESETS

    try:
        snapshot_download(PRESETS[name].hub_id, local_files_only=True)
        return name, "hub"
    except Exception:  # noqa: BLE001 - not cached: build the architecture
        pass
    import torch
    from tests.support.tiny_model import build_smolvlm

    target = CACHE / f"smolvlm2-{name}-arch-v1"
    if not (target / "config.json").exists():
        arch = ARCHITECTURES[name]
        tmp = target.with_name(target.name + ".tmp")
        build_smolvlm(tmp, text=arch["text"], vision=arch["vision"],
                      scale_factor=arch["scale_factor"], vocab_size=arch["vocab"],
                      dtype=torch.bfloat16)
        tmp.rename(target)
    return str(target), "random-arch"


def check_placement(backend: Any, index: int) -> None:
    import torch

    want = torch.device(f"cuda:{index}")
    devices = {p.device for p in backend.model.parameters()} | {
        b.device for b in backend.model.buffers()}
    if devices != {want}:
        raise Mismatch(f"model not wholly on {want}: {sorted(map(str, devices))}")
    inputs = backend.prepare_inputs(make_frames(FRAMES), PROMPT, 30.0, float(FRAMES))
    dtype = torch.bfloat16 if backend.quantization.quantized else backend.dtype
    for key, value in inputs.items():
        if value.device != want:
            raise Mismatch(f"input {key} on {value.device}, model on {want}")
        if value.is_floating_point() and value.dtype != dtype:
            raise Mismatch(f"input {key} is {value.dtype}, model computes in {dtype}")
    if not (torch.backends.cuda.matmul.allow_tf32 and torch.backends.cudnn.allow_tf32):
        raise Mismatch("TF32 is not enabled after loading on CUDA")


def measure(backend: Any, batch: int, reps: int) -> dict[str, float]:
    import torch

    from chronicon.vlm.backend import GenerationParams, GenerationRequest

    params = GenerationParams(TOKENS, TOKENS)
    requests = [GenerationRequest(make_frames(FRAMES, clip), PROMPT, params, video_fps=30.0,
                                  video_duration=float(FRAMES)) for clip in range(batch)]
    times, ttft, decode = [], [], []
    for rep in range(reps + 1):  # the first call warms kernels (and compiles)
        torch.cuda.synchronize()
        start = time.perf_counter()
        stats = backend.generate_batch(requests, lambda row, piece: None)
        torch.cuda.synchronize()
        if any(s.generated_tokens != TOKENS for s in stats):
            raise Mismatch(f"expected {TOKENS} tokens per row, got "
                           f"{[s.generated_tokens for s in stats]}")
        if rep:
            times.append(time.perf_counter() - start)
            ttft.append(max(s.time_to_first_token_s for s in stats))
            decode.append(statistics.mean((s.generate_s - s.time_to_first_token_s)
                                          / (TOKENS - 1) for s in stats))
    e2e = statistics.median(times)
    return {"e2e_s": round(e2e, 3), "ttft_s": round(statistics.median(ttft), 3),
            "decode_ms_per_token": round(1000 * statistics.median(decode), 2),
            "clips_per_s": round(batch / e2e, 2)}


def run_one(model: str, source: str, precision: str, compile_: bool, index: int,
            reps: int) -> dict[str, Any]:
    import gc

    import torch

    from chronicon.vlm.transformers.backend import TransformersBackend
    from chronicon.vlm.transformers.placement import estimate_memory, precision_label

    row: dict[str, Any] = {"model": model, "source": source, "precision": precision,
                           "compile": compile_}
    torch.cuda.empty_cache()
    free_before, total = torch.cuda.mem_get_info(index)
    backend = TransformersBackend(model=model, device=f"cuda:{index}",
                                  quantization=PRECISIONS[precision], compile=compile_,
                                  cuda_device=index)
    row["load_s"] = round(backend.load(), 2)
    info = backend.info()
    if not info.device == f"cuda:{index}":
        raise Mismatch(f"backend placed on {info.device}, asked for cuda:{index}")
    if precision != "bf16" and info.quantization == "none":
        row["skipped"] = f"no quantization ({info.quantization_reason})"
        return row
    check_placement(backend, index)
    used = free_before - torch.cuda.mem_get_info(index)[0]
    parameters = sum(p.numel() for p in backend.model.parameters())
    estimate = estimate_memory(parameters if source != "hub" else (backend.ref.parameters or
                                                                   parameters),
                               precision_label(backend.dtype, backend.quantization), 16)
    row["memory"] = {"free_before_gib": round(free_before / 2**30, 2),
                     "total_gib": round(total / 2**30, 2),
                     "estimate_gib": round(estimate.total_bytes / 2**30, 2),
                     "estimate_weights_gib": round(estimate.weights_bytes / 2**30, 2),
                     "loaded_gib": round(used / 2**30, 2)}
    if used > estimate.total_bytes:
        raise Mismatch(f"{model} {precision}: the loaded model holds {used / 2**30:.2f} GiB, "
                       f"more than the memory check's estimate {estimate.total_bytes / 2**30:.2f}")
    for batch in (1, 4):
        row[f"batch{batch}"] = measure(backend, batch, reps)
    row["compiled"] = backend.info().compiled
    row["peak_gib"] = round(torch.cuda.max_memory_allocated(index) / 2**30, 2)
    del backend
    gc.collect()
    torch.cuda.reset_peak_memory_stats(index)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", default="256m,500m,2.2b")
    parser.add_argument("--cuda-device", type=int, default=0)
    parser.add_argument("--reps", type=int, default=1)
    args = parser.parse_args()
    import torch

    if not torch.cuda.is_available():
        raise Mismatch("no CUDA device: this benchmark runs on a GPU machine only")
    start = time.perf_counter()
    plan = [(m, p, c) for m in args.models.split(",") for p in PRECISIONS
            for c in ((False, True) if p == "bf16" else (False,))]
    rows: list[dict[str, Any]] = []
    sources: dict[str, tuple[str, str]] = {}
    for model, precision, compile_ in plan:
        if time.perf_counter() - start > BUDGET_S:
            rows.append({"model": model, "precision": precision, "compile": compile_,
                         "skipped": "time budget"})
            continue
        if model not in sources:
            sources[model] = model_source(model)
        path, source = sources[model]
        print(f"{model} {precision}{' compiled' if compile_ else ''} ...", flush=True)
        rows.append(run_one(path, source, precision, compile_, args.cuda_device, args.reps))
        rows[-1]["model"] = model

    print(f"\n{torch.cuda.get_device_name(args.cuda_device)}, torch {torch.__version__}")
    print(f"{'model':<6} {'prec':<5} {'compile':<7} {'load s':>6} {'b1 e2e':>7} {'b1 ms/tok':>9} "
          f"{'b4 e2e':>7} {'b4 clips/s':>10} {'mem est/used GiB':>16}  note")
    for r in rows:
        if "skipped" in r:
            print(f"{r['model']:<6} {r['precision']:<5} {str(r['compile']):<7} "
                  f"{'-':>6} {'-':>7} {'-':>9} {'-':>7} {'-':>10} {'-':>16}  {r['skipped']}")
            continue
        b1, b4, m = r["batch1"], r["batch4"], r["memory"]
        print(f"{r['model']:<6} {r['precision']:<5} {str(r['compile']):<7} {r['load_s']:>6.1f} "
              f"{b1['e2e_s']:>7.2f} {b1['decode_ms_per_token']:>9.1f} {b4['e2e_s']:>7.2f} "
              f"{b4['clips_per_s']:>10.2f} {m['estimate_gib']:>7.2f}/{m['loaded_gib']:<8.2f}  "
              f"{r['source']}{'' if r['compiled'] == r['compile'] else ' (compile fell back)'}")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps({"benchmark": "gpu", "rows": rows,
                                   "device": torch.cuda.get_device_name(args.cuda_device),
                                   "wall_s": round(time.perf_counter() - start, 1)}, indent=2))
    print(f"wrote {RESULTS.relative_to(ROOT)} in {time.perf_counter() - start:.0f}s")


if __name__ == "__main__":
    main()

"""Timeline speed: a 10-minute clip at 30-s chunks on the real SmolVLM2-256M architecture.

    python benchmarks/bench_timeline.py              # 20 chunks; 4 separate runs, extrapolated
    python benchmarks/bench_timeline.py --separate 20 --tokens 100   # the full comparison

- timeline: `chronicon.timeline.describe_timeline` in one process, model loaded once: 20 chunks
  of 30 s, 4 frames each, then the text-only summary. Reported: seconds per chunk and in all,
  and where they go: decoding the chunks' frames (seeks into a 10-minute file) against the model.
- separate: the same 20 chunks as separate `chronicon analyze` runs (one process each, so the
  model is loaded every time), each on that chunk cut out as its own file (stream copy), 4
  frames. Running all 20 costs minutes on a shared 2-core machine, so by default 4 are run and
  the total is extrapolated (`--separate 20` runs them all); the table says which.

The model has random weights (built once by bench_inference's `ensure_model`); every generation
is exactly `--tokens` tokens (min = max) so the two paths do the same work. The clip is 640x360
H.264 at 15 fps with a scene cut every 47 s (cached in ~/.cache/chronicon-bench/).
Prints a table; writes benchmarks/results/timeline.json.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.bench_inference import CACHE, ensure_model  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "timeline.json"
DURATION_S = 600
FPS = 15
SIZE = (640, 360)
CUT_EVERY_S = 47
CHUNK_S = 30.0
FRAMES_PER_CHUNK = 4


def ensure_clip() -> Path:
    path = CACHE / f"timeline-{DURATION_S}s-{SIZE[0]}x{SIZE[1]}-{FPS}fps.mp4"
    if path.exists():
        return path
    from tests.support.scene_clips import write_scene_clip

    CACHE.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name("tmp-" + path.name)
    cuts = tuple(range(CUT_EVERY_S, DURATION_S, CUT_EVERY_S))
    write_scene_clip(tmp, duration_s=DURATION_S, fps=FPS, cuts_s=cuts, size=SIZE)
    tmp.rename(path)
    return path


def run_timeline(clip: Path, model_dir: Path, tokens: int) -> dict[str, Any]:
    from chronicon.analysis import AnalysisOptions
    from chronicon.config import Settings
    from chronicon.timeline import TimelineOptions, describe_timeline
    from chronicon.vlm.backend import create_backend

    backend = create_backend(Settings(model=str(model_dir), device="cpu", hub_offline=True))
    started = time.perf_counter()
    result = describe_timeline(clip, AnalysisOptions(max_tokens=tokens, min_tokens=tokens),
                               TimelineOptions(chunk_s=CHUNK_S), backend)
    total = time.perf_counter() - started
    entries = result.entries
    per_chunk = [e.decode_s + e.stats.preprocess_s + e.stats.generate_s for e in entries]
    decode = sum(e.decode_s for e in entries)
    model = sum(e.stats.preprocess_s + e.stats.generate_s for e in entries)
    return {
        "chunks": len(entries), "total_s": round(total, 2),
        "model_load_s": round(result.result.times.model_load, 2),
        "scene_cuts_found": len(result.cuts),
        "per_chunk_s": {"median": round(statistics.median(per_chunk), 3),
                        "min": round(min(per_chunk), 3), "max": round(max(per_chunk), 3)},
        "decode_s": round(decode, 3), "model_s": round(model, 3),
        "decode_share": round(decode / (decode + model), 4),
        "summary_s": round(result.summary_stats.preprocess_s
                           + result.summary_stats.generate_s, 3),
        "bounds": [[round(e.chunk.start, 2), round(e.chunk.end, 2)] for e in entries],
    }


def cut_chunk(clip: Path, start: float, end: float, out: Path) -> Path:
    """The span as its own file (stream copy from the keyframe at or before `start`)."""
    import av

    with av.open(str(clip)) as source, av.open(str(out), "w") as target:
        stream = source.streams.video[0]
        copy = target.add_stream_from_template(stream)
        source.seek(int(start / stream.time_base), stream=stream, backward=True)
        first = None
        for packet in source.demux(stream):
            if packet.pts is None:
                continue
            t = float(packet.pts * stream.time_base)
            if t >= end:
                break
            first = packet.pts if first is None else first
            packet.pts -= first
            packet.dts = packet.dts - first if packet.dts is not None else None
            packet.stream = copy
            target.mux(packet)
    return out


def run_separate(clip: Path, model_dir: Path, tokens: int, bounds: list[list[float]],
                 count: int, workdir: Path) -> dict[str, Any]:
    chronicon = Path(sys.executable).parent / "chronicon"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "CHRONICON_DATA_DIR": str(workdir / "data")}
    picks = bounds if count >= len(bounds) else [bounds[round(i * (len(bounds) - 1)
                                                               / max(1, count - 1))]
                                                 for i in range(count)]
    walls = []
    for k, (start, end) in enumerate(picks):
        part = cut_chunk(clip, start, end, workdir / f"chunk-{k}.mp4")
        began = time.perf_counter()
        subprocess.run([str(chronicon), "analyze", str(part), "-f", str(FRAMES_PER_CHUNK),
                        "-m", str(model_dir), "--device", "cpu", "-t", str(tokens),
                        "--min-tokens", str(tokens), "--no-save", "--json"],
                       env=env, check=True, capture_output=True)
        walls.append(time.perf_counter() - began)
        print(f"  separate run {k + 1}/{len(picks)}: {walls[-1]:.1f}s", flush=True)
    per_run = statistics.mean(walls)
    return {"runs_measured": len(walls), "per_run_s": round(per_run, 2),
            "total_s": round(per_run * len(bounds), 1),
            "extrapolated": len(walls) < len(bounds)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tokens", type=int, default=30, help="tokens per generation")
    parser.add_argument("--separate", type=int, default=4,
                        help="separate `chronicon analyze` runs to measure (20 = all)")
    args = parser.parse_args()
    load_before = os.getloadavg()
    model_dir, _ = ensure_model()
    clip = ensure_clip()
    timeline = run_timeline(clip, model_dir, args.tokens)
    print(f"timeline: {timeline['chunks']} chunks in {timeline['total_s']}s", flush=True)
    workdir = CACHE / "timeline-separate"
    workdir.mkdir(parents=True, exist_ok=True)
    separate = run_separate(clip, model_dir, args.tokens, timeline["bounds"], args.separate,
                            workdir)
    speedup = separate["total_s"] / timeline["total_s"]
    data = {"clip": {"duration_s": DURATION_S, "fps": FPS, "size": list(SIZE)},
            "chunk_s": CHUNK_S, "frames_per_chunk": FRAMES_PER_CHUNK, "tokens": args.tokens,
            "timeline": timeline, "separate": separate,
            "speedup": round(speedup, 2), "load_average": [round(load_before[0], 2),
                                                           round(os.getloadavg()[0], 2)]}
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(data, indent=2) + "\n")
    t = timeline
    print()
    print("| path | chunks | per chunk (median) | total | decode | model | decode share |")
    print("|---|---|---|---|---|---|---|")
    print(f"| timeline (1 process, model loaded once: {t['model_load_s']} s) | {t['chunks']} | "
          f"{t['per_chunk_s']['median']} s | {t['total_s']} s | {t['decode_s']} s | "
          f"{t['model_s']} s | {t['decode_share']:.1%} |")
    note = (f"{separate['runs_measured']} measured, x{t['chunks']} extrapolated"
            if separate["extrapolated"] else "all measured")
    print(f"| {t['chunks']} separate `chronicon analyze` runs ({note}) | {t['chunks']} | "
          f"{separate['per_run_s']} s | {separate['total_s']} s | | | |")
    print(f"\ntimeline is {speedup:.1f}x faster; summary {t['summary_s']} s; "
          f"{t['scene_cuts_found']} scene cuts; load average {data['load_average']}")
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()

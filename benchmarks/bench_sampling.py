"""Sampling speed and memory against the naive read-every-frame loop.

    python benchmarks/bench_sampling.py          # 10-min 1080p30, 2-min 720p30, 1-min 1080p30
    python benchmarks/bench_sampling.py --quick  # 1-min 1080p30, 20-s 720p30
    python benchmarks/bench_sampling.py --clip reel.mp4 --modes probe,uniform  # any file

Clips are generated once (H.264, x264 superfast: CABAC, B-frames, 250-frame GOPs) and cached
in ~/.cache/chronicon-bench/: a panning, grainy gradient scene that changes every 45 s (hard
cuts at known frames) with a box that moves only in three known windows. Every measurement
runs in a fresh subprocess so its peak RSS is its own and nothing is cached in memory between
runs. `probe`, `uniform`, `motion`, `scene` and `cuts` run without the on-disk frame index
(`index_cache`): they read the file end to end, as the first look at a file does. The `_warm`
rows run in a fresh process against the index the cold `probe` row left in a temporary
cache folder: what a re-analysis, a second strategy in a new process, a worker or a restarted
server pays. Prints a table; writes benchmarks/results/sampling.json.

Targets (issue 2): uniform 8 frames >= 15x faster than the naive loop on the 10-min clip;
motion and scene <= 5 s there; peak memory independent of the clip's length. Issue 11 asks
for uniform >= 25x.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
import tracemalloc
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

CACHE = Path.home() / ".cache" / "chronicon-bench"
RESULTS = Path(__file__).resolve().parent / "results" / "sampling.json"
FPS = 30
SCENE_SECONDS = 45
# The box moves only inside these windows (fractions of the clip).
ACTIVE = ((0.17, 0.22), (0.50, 0.53), (0.75, 0.83))
# superfast keeps CABAC and B-frames (decoding cost like ordinary H.264) and encodes quickly.
PRESET = "superfast"
CLIP_VERSION = "v1"  # bump when the pattern changes, so cached clips are made again
N_FRAMES = 8
RESIZE = 336

CLIPS = {
    "full": [("10min_1080p", 600, (1920, 1080)), ("2min_720p", 120, (1280, 720)),
             ("1min_1080p", 60, (1920, 1080))],
    "quick": [("1min_1080p", 60, (1920, 1080)), ("20s_720p", 20, (1280, 720))],
}


# ---- clip generation --------------------------------------------------------------------------


def known_cuts(seconds: int) -> list[int]:
    return [s * FPS for s in range(SCENE_SECONDS, seconds, SCENE_SECONDS)]


def active_frames(total: int) -> list[tuple[int, int]]:
    return [(int(a * total), int(b * total)) for a, b in ACTIVE]


def _scene_planes(scene: int, size: tuple[int, int]) -> tuple[np.ndarray, int, int]:
    """A luma plane (gradient + checker + fixed grain, so keyframes cost real work to decode)
    and the scene's flat chroma values."""
    w, h = size
    yy, xx = np.mgrid[0:h, 0:w]
    angle = scene * 0.9
    luma = (np.cos(angle) * xx / w + np.sin(angle) * yy / h) * 110 + 60
    luma += 12 * ((xx // 48 + yy // 48) % 2)
    luma += np.random.default_rng(scene).normal(0, 10, size=(h, w))
    u, v = (64 + 37 * scene) % 256, (192 - 53 * scene) % 256
    return np.clip(luma, 16, 235).astype(np.uint8), u, v


def generate(path: Path, seconds: int, size: tuple[int, int]) -> None:
    """Encode the benchmark pattern straight from YUV planes (no RGB conversion per frame)."""
    w, h = size
    total = seconds * FPS
    cuts = known_cuts(seconds)
    windows = active_frames(total)
    tmp = path.with_suffix(".part.mp4")
    with av.open(str(tmp), mode="w") as container:
        stream = container.add_stream("libx264", rate=Fraction(FPS))
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        stream.options = {"preset": PRESET, "crf": "23"}
        planes = None
        box_x, scene = 0, -1
        for i in range(total):
            now_scene = sum(1 for c in cuts if i >= c)
            if now_scene != scene:
                scene = now_scene
                luma, u, v = _scene_planes(scene, size)
                planes = np.empty((h * 3 // 2, w), dtype=np.uint8)
                planes[h:] = u
                planes[h + h // 4:] = v
            if any(a <= i < b for a, b in windows):
                box_x = (box_x + 12) % (w - h // 4)
            # A slow pan (1 px per frame) keeps every P-frame busy, as in real footage.
            planes[:h] = np.roll(luma, i % w, axis=1)
            planes[h // 3:h // 3 + h // 4, box_x:box_x + h // 4] = 235
            frame = av.VideoFrame.from_ndarray(planes, format="yuv420p")
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    tmp.rename(path)


def clip_path(name: str, seconds: int, size: tuple[int, int]) -> Path:
    path = CACHE / f"{name}-{CLIP_VERSION}.mp4"
    if not path.exists():
        CACHE.mkdir(parents=True, exist_ok=True)
        print(f"generating {path} ({seconds} s, {size[0]}x{size[1]}) ...", flush=True)
        started = time.perf_counter()
        generate(path, seconds, size)
        print(f"  done in {time.perf_counter() - started:.0f} s", flush=True)
    return path


# ---- one measurement per subprocess -----------------------------------------------------------


def _status_mb(field: str) -> float:
    """VmRSS (now) or VmHWM (peak) of this process, Linux. Not ru_maxrss: that one survives
    exec, so a child would report the parent's peak."""
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return round(int(line.split()[1]) / 1024, 1)
    return 0.0


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _digest(frame: av.VideoFrame) -> str:
    return hashlib.sha1(frame.to_ndarray(format="rgb24").tobytes()).hexdigest()[:16]


def measure(mode: str, path: Path, index_cache_dir: Path | None = None) -> dict:
    """Run one job in this (fresh) process; return its wall time and peak memory. With
    `index_cache_dir`, frame indexes are read from (and written to) that folder."""
    from chronicon.video import index_cache
    from chronicon.video.decode import ExactFrameReader
    from chronicon.video.probe import frame_index, probe
    from chronicon.video.sampling import sample, uniform_indices
    from chronicon.video.scenes import find_cuts

    index_cache.configure(index_cache_dir)
    mode = mode.removesuffix("_warm")
    rss_before = _status_mb("VmRSS")
    tracemalloc.start()
    cpu_before = _cpu_seconds()
    started = time.perf_counter()
    extra: dict = {}
    if mode == "naive":
        # The loop people write first: decode every frame, keep the ones you want.
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"  # same threading as our reader: a fair baseline
            count = sum(1 for _frame in container.decode(stream))
        extra["frames_decoded"] = count
    elif mode == "probe":
        extra["frame_count"] = probe(path).frame_count
    elif mode == "cuts":
        extra["cuts"] = find_cuts(path, frame_index(path))
    else:
        frames = sample(path, N_FRAMES, mode, RESIZE)
        extra["indices"] = [f.index for f in frames]
    seconds = time.perf_counter() - started
    cpu = _cpu_seconds() - cpu_before
    _, py_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    # CPU seconds of all the process's threads: cpu / seconds is how many cores it kept busy.
    result = {"mode": mode, "seconds": round(seconds, 3), "cpu_seconds": round(cpu, 3),
              "peak_rss_mb": _status_mb("VmHWM"),
              "rss_before_mb": rss_before, "python_peak_mb": round(py_peak / 2**20, 2),
              **extra}
    if mode == "uniform":  # untimed: hashes of the exact frames, to compare with a full decode
        index = frame_index(path)
        with ExactFrameReader(path, index) as reader:
            result["digests"] = {k: _digest(f) for k, f in
                                 reader.read(uniform_indices(len(index), N_FRAMES))}
    if mode == "naive":
        result["digests"] = _digests_by_full_decode(path)
    return result


def _digests_by_full_decode(path: Path) -> dict[int, str]:
    from chronicon.video.probe import frame_index
    from chronicon.video.sampling import uniform_indices

    wanted = set(uniform_indices(len(frame_index(path)), N_FRAMES))
    with av.open(str(path)) as container:
        return {k: _digest(f) for k, f in enumerate(container.decode(video=0)) if k in wanted}


def run_child(mode: str, path: Path, index_cache_dir: Path | None = None) -> dict:
    cache = [] if index_cache_dir is None else ["--index-cache", str(index_cache_dir)]
    out = subprocess.run([sys.executable, __file__, "--child", mode, str(path), *cache],
                         check=True, capture_output=True, text=True)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    result["mode"] = mode
    return result


# ---- the report -------------------------------------------------------------------------------


MODES = ("probe", "uniform", "motion", "scene", "cuts")


def bench_clip(name: str, path: Path, skip_naive: bool, modes: tuple[str, ...] = MODES,
               seconds: int | None = None) -> dict:
    """Every mode on one clip, each in a fresh process. `seconds`: a generated clip of that
    length (its cuts and motion windows are known, so picks are scored too)."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        size = [stream.codec_context.width, stream.codec_context.height]
    rows: dict = {"clip": name, "path": str(path), "size": size,
                  "file_mb": round(path.stat().st_size / 2**20, 1)}
    if seconds:
        rows |= {"seconds": seconds, "frames": seconds * FPS}
    naive = None if skip_naive else run_child("naive", path)
    runs: dict = {}
    with tempfile.TemporaryDirectory(prefix="chronicon-index-") as folder:
        cache = Path(folder)
        for mode in modes:
            # The cold probe also writes the index into the (empty) cache folder; the warm rows
            # then read it in a fresh process.
            runs[mode] = run_child(mode, path, cache if mode == "probe" else None)
        if "probe" in modes:
            for mode in ("probe", "uniform"):
                if mode in modes:
                    runs[f"{mode}_warm"] = run_child(f"{mode}_warm", path, cache)
    if naive:
        runs["naive"] = naive
    for mode in ("uniform", "uniform_warm"):
        if mode in runs:
            digests = runs[mode].pop("digests")
            if naive:
                runs[mode]["exact_frames"] = sum(naive["digests"].get(k) == d
                                                 for k, d in digests.items())
    if naive:
        naive.pop("digests")
        for mode in ("uniform", "uniform_warm", "motion", "scene"):
            if mode in runs:
                runs[mode]["speedup_vs_naive"] = round(naive["seconds"] / runs[mode]["seconds"], 1)
                # On a shared machine a long run and a short one get different shares of the
                # cores: the ratio of CPU seconds is the load-independent view of the same gap.
                runs[mode]["cpu_speedup_vs_naive"] = round(
                    naive["cpu_seconds"] / max(runs[mode]["cpu_seconds"], 1e-3), 1)
    if "probe" in runs and "probe_warm" in runs:
        runs["probe_warm"]["speedup_vs_cold"] = round(
            runs["probe"]["seconds"] / runs["probe_warm"]["seconds"], 1)
    if seconds:
        _score_picks(runs, seconds)
    rows["runs"] = runs
    return rows


def _score_picks(runs: dict, seconds: int) -> None:
    total = seconds * FPS
    if "motion" in runs:
        windows = active_frames(total)
        motion = runs["motion"]["indices"]
        runs["motion"]["in_active_windows"] = sum(any(a <= k < b for a, b in windows)
                                                  for k in motion)
        # With picks at least N/2n frames apart, only so many fit inside the windows.
        gap = max(1, total // (2 * N_FRAMES))
        fit = sum((b - a - 1) // gap + 1 for a, b in windows)
        runs["motion"]["fit_in_windows"] = min(N_FRAMES, fit)
    if "cuts" in runs:
        cuts = runs["cuts"]["cuts"]
        known = known_cuts(seconds)
        runs["cuts"]["known_cuts"] = len(known)
        runs["cuts"]["found_within_1_frame"] = sum(any(abs(c - k) <= 1 for c in cuts)
                                                   for k in known)
        runs["cuts"]["false_cuts"] = sum(not any(abs(c - k) <= 1 for k in known) for c in cuts)


def print_table(results: list[dict]) -> None:
    width = max(12, *(len(clip["clip"]) for clip in results))
    header = f"{'clip':<{width}} {'job':<12} {'seconds':>8} {'vs naive':>9} {'cores':>5} " \
             f"{'CPU s':>7} {'vs naive':>9} {'RSS MB':>7} {'(+job)':>7} {'py MB':>6}  notes"
    print(header)
    print("-" * len(header))
    for clip in results:
        for mode, run in clip["runs"].items():
            ratio = f"{run['speedup_vs_naive']}x" if "speedup_vs_naive" in run else ""
            notes = _notes(mode, run)
            cores = run["cpu_seconds"] / run["seconds"] if run["seconds"] else 0.0
            cpu_ratio = (f"{run['cpu_speedup_vs_naive']}x" if "cpu_speedup_vs_naive" in run
                         else "")
            print(f"{clip['clip']:<{width}} {mode:<12} {run['seconds']:>8.2f} {ratio:>9} "
                  f"{cores:>5.2f} {run['cpu_seconds']:>7.2f} {cpu_ratio:>9} "
                  f"{run['peak_rss_mb']:>7.0f} {run['peak_rss_mb'] - run['rss_before_mb']:>+7.0f} "
                  f"{run['python_peak_mb']:>6.1f}  {notes}")


def _notes(mode: str, run: dict) -> str:
    if mode.startswith("uniform") and "exact_frames" in run:
        return f"{run['exact_frames']}/{N_FRAMES} frames pixel-exact vs full decode"
    if mode == "probe_warm" and "speedup_vs_cold" in run:
        return f"frame index from the disk cache: {run['speedup_vs_cold']}x the cold probe"
    if mode == "motion" and "in_active_windows" in run:
        return (f"{run['in_active_windows']}/{len(run['indices'])} picks while the box moves "
                f"(at most {run['fit_in_windows']} fit at the minimum spread)")
    if mode == "cuts" and "known_cuts" in run:
        return (f"{run['found_within_1_frame']}/{run['known_cuts']} cuts within 1 frame, "
                f"{run['false_cuts']} false")
    if mode == "naive":
        return f"{run['frames_decoded']} frames decoded"
    return ""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="short clips (a minute or so)")
    parser.add_argument("--skip-naive", action="store_true", help="skip the full-decode baseline")
    parser.add_argument("--clip", type=Path, action="append",
                        help="bench this file instead of the generated clips (repeatable); "
                             "writes results/sampling-<name>.json")
    parser.add_argument("--modes", default=",".join(MODES),
                        help=f"comma-separated, from {', '.join(MODES)} (default: all)")
    parser.add_argument("--child", nargs=2, metavar=("MODE", "PATH"), help=argparse.SUPPRESS)
    parser.add_argument("--index-cache", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(args.child[0], Path(args.child[1]), args.index_cache)))
        return
    modes = tuple(m.strip() for m in args.modes.split(",") if m.strip())
    if unknown := set(modes) - set(MODES):
        parser.error(f"unknown modes: {', '.join(sorted(unknown))}")
    load_before = os.getloadavg()[0]
    if args.clip:
        results = [bench_clip(path.stem, path.resolve(), args.skip_naive, modes)
                   for path in args.clip]
        output = RESULTS.with_name(f"sampling-{args.clip[0].stem}.json")
    else:
        clips = CLIPS["quick" if args.quick else "full"]
        results = [bench_clip(name, clip_path(name, secs, size), args.skip_naive, modes, secs)
                   for name, secs, size in clips]
        output = RESULTS
    print_table(results)
    # Timings on a shared machine move with its load: record it next to them.
    load = {"before": round(load_before, 2), "after": round(os.getloadavg()[0], 2),
            "cpus": os.cpu_count()}
    print(f"\nload average {load['before']} before, {load['after']} after ({load['cpus']} CPUs)")
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps({
        "benchmark": "sampling", "command": "python " + " ".join(
            [f"benchmarks/{Path(__file__).name}", *sys.argv[1:]]),
        "frames": N_FRAMES, "resize": RESIZE, "pyav": av.__version__,
        "machine": f"{platform.machine()}, {platform.python_version()}", "load_average": load,
        "clips": results}, indent=2) + "\n")
    print(f"\nwrote {output}")


if __name__ == "__main__":
    main()

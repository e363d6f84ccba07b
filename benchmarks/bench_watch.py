"""A live stream watched for an hour of stream time, replayed faster than real time.

    python benchmarks/bench_watch.py                 # 1 hour of stream, 10-s windows
    python benchmarks/bench_watch.py --minutes 20    # shorter

ffmpeg publishes a 100-s clip looped to the wanted length as MPEG-TS over TCP on 127.0.0.1,
without `-re`: as fast as Chronicon reads it (flow-controlled by TCP). In each 100 s, one 10-s
span moves and the rest is still, so 10 % of the windows move. Chronicon's `StreamWatcher`
cuts windows while decoding and gates them by motion; kept windows go to the `Analyst`'s
bounded queue (4) and are described by the real SmolVLM2-256M architecture (random weights,
`--tokens` tokens), recorded and decided like clips. The model is far slower than the replay, so
most kept windows are dropped (oldest first), which is the point: memory must not grow.

Reported: windows in all, gated (skipped as still), kept, described, dropped; replay speed
against real time; peak RSS per 10 minutes of stream time (flat = bounded memory).
Prints a table; writes benchmarks/results/watch.json.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import psutil  # noqa: E402
from benchmarks.bench_inference import CACHE, ensure_model  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "watch.json"
WINDOW_S = 10.0
LOOP_S = 100  # one moving 10-s span per loop: 10 % of the windows move
FPS = 10


def ensure_loop_clip() -> Path:
    """100 s at 10 fps, 320x240: still except seconds 50-60, where a block moves."""
    path = CACHE / "watch-loop-100s.mp4"
    if path.exists():
        return path
    import numpy as np
    from tests.support.media import write_video

    w, h = 320, 240
    yy, xx = np.mgrid[0:h, 0:w]
    background = np.stack([(xx * 3) % 256, (yy * 5) % 256, ((xx + yy) * 2) % 256],
                          axis=-1).astype(np.uint8)

    def frame(i: int) -> np.ndarray:
        img = background.copy()
        t = i / FPS
        x = 20 + (int((t - 50) * FPS * 6) if 50 <= t < 60 else 0) % (w - 80)
        img[h // 2 - 30:h // 2 + 30, x:x + 60] = 255
        return img

    CACHE.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name("tmp-" + path.name)
    write_video(tmp, n_frames=LOOP_S * FPS, fps=FPS, size=(w, h), frame_fn=frame,
                options={"g": str(FPS), "preset": "ultrafast"})
    tmp.rename(path)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--minutes", type=int, default=60, help="stream time to replay")
    parser.add_argument("--tokens", type=int, default=10, help="tokens per description")
    args = parser.parse_args()

    from tests.support.ports import free_port
    from tests.support.streams import publisher

    from chronicon.analysis import AnalysisOptions
    from chronicon.config import Settings
    from chronicon.sources.analyst import Analyst
    from chronicon.sources.streams import StreamWatcher
    from chronicon.store import Store
    from chronicon.vlm.backend import create_backend

    model_dir, _ = ensure_model()
    clip = ensure_loop_clip()
    loops = max(1, round(args.minutes * 60 / LOOP_S))
    work = Path(tempfile.mkdtemp(prefix="bench-watch-"))
    settings = Settings(data_dir=work / "data", model=str(model_dir), device="cpu",
                        hub_offline=True)
    store = Store(settings.db_path)
    backend = create_backend(settings)
    load_s = backend.load()
    options = AnalysisOptions(frames=4, max_tokens=args.tokens, min_tokens=args.tokens)
    analyst = Analyst(settings, store, backend, options, window_queue_size=4)
    port = free_port()
    watcher = StreamWatcher(f"tcp://127.0.0.1:{port}", analyst.submit_window, source="bench",
                            window_s=WINDOW_S, frames=4, resize=336, timeout_s=10,
                            backoff_max_s=1)
    stop = threading.Event()
    rss: dict[int, int] = {}  # 10-minute block of stream time -> peak RSS (bytes)
    process = psutil.Process()

    def sample_memory() -> None:
        while not stop.is_set():
            block = int(watcher.status.frames / FPS // 600)
            rss[block] = max(rss.get(block, 0), process.memory_info().rss)
            stop.wait(0.5)

    threads = [threading.Thread(target=watcher.run, args=(stop,), daemon=True),
               threading.Thread(target=analyst.run, args=(stop,), daemon=True),
               threading.Thread(target=sample_memory, daemon=True)]
    total_frames = loops * LOOP_S * FPS
    started = time.perf_counter()
    # No -re: as fast as the reader takes it; -stream_loop keeps timestamps continuous.
    with publisher(clip, f"tcp://127.0.0.1:{port}?listen=1", work / "ffmpeg.log",
                   loops=loops - 1, realtime=False):
        time.sleep(0.5)
        for thread in threads:
            thread.start()
        while watcher.status.frames < total_frames - FPS and time.perf_counter() - started < 3600:
            if watcher.status.state == "reconnecting" and watcher.status.frames > 0:
                break  # the publisher finished: the stream ended
            time.sleep(0.5)
        replay_s = time.perf_counter() - started
    stop.set()
    for thread in threads:
        thread.join(timeout=60)
    store.close()

    s, c = watcher.status, analyst.counters
    stream_s = s.frames / FPS
    data: dict[str, Any] = {
        "stream_minutes": round(stream_s / 60, 1), "window_s": WINDOW_S, "tokens": args.tokens,
        "model_load_s": round(load_s, 2), "replay_s": round(replay_s, 1),
        "speed_vs_real_time": round(stream_s / replay_s, 1),
        "windows": s.windows, "gated": s.windows_skipped, "kept": s.windows_kept,
        "described": c.windows_described, "dropped": c.windows_dropped,
        "still_in_queue": analyst.pending_windows,
        "peak_rss_mb_per_10_min": {f"{b * 10}-{b * 10 + 10} min": round(v / 2**20, 1)
                                   for b, v in sorted(rss.items())},
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(data, indent=2) + "\n")
    print("| stream | replay | speed | windows | gated (still) | kept (moving) | described "
          "| dropped |")
    print("|---|---|---|---|---|---|---|---|")
    print(f"| {data['stream_minutes']} min | {data['replay_s']} s | "
          f"{data['speed_vs_real_time']}x | {s.windows} | {s.windows_skipped} | "
          f"{s.windows_kept} | {c.windows_described} | {c.windows_dropped} |")
    print("\npeak RSS per 10 min of stream time (MB): "
          + ", ".join(f"{k}: {v}" for k, v in data["peak_rss_mb_per_10_min"].items()))
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()

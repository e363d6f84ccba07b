"""Live streams on loopback: ffmpeg publishes a clip that alternates still and moving spans;
the still windows are skipped, the moving ones described, recorded and decided; a publisher
killed mid-stream and restarted is reconnected to, with the states visible."""

from __future__ import annotations

import shutil
import threading
import time
from pathlib import Path

import pytest

from chronicon.config import Settings
from chronicon.sources.analyst import Analyst
from chronicon.sources.registry import mask_url, source_kind
from chronicon.sources.streams import StreamWatcher
from support.ports import free_port
from support.streams import FFMPEG, hls_server, publisher, write_still_moving_clip
from support.watching import OPTIONS, wait_for, watching

pytestmark = pytest.mark.skipif(FFMPEG is None, reason="ffmpeg is not installed")


@pytest.fixture(scope="module")
def live_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_still_moving_clip(tmp_path_factory.mktemp("live") / "still-moving.mp4")


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "data", stream_window_s=2.0, stream_timeout_s=3.0,
                    stream_backoff_max_s=2.0, stream_queue=8)


def stream_analyses(store) -> list:
    return [r for r in store.list_analyses(200) if "stream" in r.result]


def test_credentials_are_masked() -> None:
    assert mask_url("rtsp://admin:s3cret@cam.local:554/live") == "rtsp://***@cam.local:554/live"
    assert mask_url("rtmp://token@host/app") == "rtmp://***@host/app"
    assert mask_url("udp://127.0.0.1:5000") == "udp://127.0.0.1:5000"
    assert source_kind("srt://127.0.0.1:9000") == "stream" and source_kind("/tmp") == "folder"


def test_a_slow_model_drops_the_oldest_windows(settings: Settings) -> None:
    analyst = Analyst(settings, store=None, backend=None, options=OPTIONS, window_queue_size=3)
    for i in range(10):
        analyst.submit_window(i)
    assert analyst.pending_windows == 3 and analyst.counters.windows_dropped == 7
    assert list(analyst._windows) == [7, 8, 9]  # the newest kept


@pytest.mark.slow
def test_udp_still_windows_skipped_moving_described_and_reconnects(
        settings: Settings, tiny_backend, live_clip: Path, tmp_path: Path) -> None:
    port = free_port()
    url = f"udp://127.0.0.1:{port}"
    states: list[str] = []
    with watching(settings, tiny_backend, url) as (store, analyst, sources):
        [source] = sources.list()
        watcher = sources.get(source["id"]).watcher
        watcher.on_state = lambda state: states.append(state["detail"])
        with publisher(live_clip, f"{url}?pkt_size=1316", tmp_path / "pub.log"):
            wait_for(lambda: watcher.status.windows_kept >= 2 and watcher.status.windows_skipped
                     >= 2, timeout=60, what="moving and still windows")
            wait_for(lambda: len(stream_analyses(store)) >= 2, timeout=60, what="descriptions")
        # The publisher is gone: silence past the timeout, then reconnect attempts.
        wait_for(lambda: any(s.startswith("reconnecting") for s in states), timeout=30,
                 what="the reconnecting state")
        status = next(s for s in sources.list() if s["id"] == source["id"])
        assert "timeout" in (status["last_error"] or "")
        kept_before = watcher.status.windows_kept
        with publisher(live_clip, f"{url}?pkt_size=1316", tmp_path / "pub.log"):
            wait_for(lambda: watcher.status.windows_kept > kept_before, timeout=60,
                     what="windows after the restart")
        assert watcher.status.connects >= 2 and "connected" in states
        record = stream_analyses(store)[-1]  # the oldest: the agent has acted on it
        stream = record.result["stream"]
        assert stream["url"] == url and len(stream["wall_clock"]) == 2
        assert stream["stream_time"][1] - stream["stream_time"][0] == pytest.approx(2.0)
        assert stream["motion"] >= settings.stream_motion_threshold
        assert record.decision_id is not None  # decided like a clip (its stored decision)
    assert not [t for t in threading.enumerate() if t.name.startswith("chronicon-stream")]


@pytest.mark.slow
def test_tcp_mpegts_stream(settings: Settings, tiny_backend, live_clip: Path,
                           tmp_path: Path) -> None:
    port = free_port()
    with publisher(live_clip, f"tcp://127.0.0.1:{port}?listen=1", tmp_path / "pub.log"):
        time.sleep(0.5)  # let ffmpeg listen before we connect
        with watching(settings, tiny_backend, f"tcp://127.0.0.1:{port}") as (store, _, src):
            watcher = src.get(src.list()[0]["id"]).watcher
            wait_for(lambda: watcher.status.windows_kept >= 1
                     and watcher.status.windows_skipped >= 1, timeout=60, what="windows")
            wait_for(lambda: stream_analyses(store), timeout=60, what="a description")


@pytest.mark.slow
def test_hls_stream_over_http(settings: Settings, tiny_backend, live_clip: Path,
                              tmp_path: Path) -> None:
    with hls_server(live_clip, tmp_path / "hls", tmp_path / "hls.log") as url, \
            watching(settings, tiny_backend, url) as (store, _, src):
        watcher = src.get(src.list()[0]["id"]).watcher
        wait_for(lambda: watcher.status.windows_kept >= 1
                 and watcher.status.windows_skipped >= 1, timeout=90, what="windows")
        wait_for(lambda: stream_analyses(store), timeout=60, what="a description")


@pytest.mark.slow
def test_rtsp_from_live555(settings: Settings, tiny_backend, live_clip: Path,
                           tmp_path: Path) -> None:
    server = shutil.which("live555MediaServer")
    if server is None:
        pytest.skip("live555MediaServer (Debian livemedia-utils) is not installable here: "
                    "bookworm has no livemedia-utils in main, contrib or non-free")
    import subprocess

    from support.streams import stop_process

    ts = tmp_path / "rtsp" / "clip.ts"
    ts.parent.mkdir()
    subprocess.run([FFMPEG, "-loglevel", "error", "-i", str(live_clip), "-c", "copy", "-f",
                    "mpegts", str(ts)], check=True)
    process = subprocess.Popen([server], cwd=ts.parent, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    try:
        time.sleep(1.0)
        port = 8554 if process.poll() is None else 554
        url = f"rtsp://127.0.0.1:{port}/clip.ts"
        with watching(settings, tiny_backend, url) as (store, _, src):
            watcher = src.get(src.list()[0]["id"]).watcher
            wait_for(lambda: watcher.status.windows_kept >= 1, timeout=60, what="windows")
    finally:
        stop_process(process)


def test_a_dead_source_never_hangs(settings: Settings) -> None:
    """Nothing listens: each attempt fails fast, the state says why, stop ends the thread."""
    watcher = StreamWatcher(f"tcp://127.0.0.1:{free_port()}", lambda w: None, source="s",
                            window_s=2, timeout_s=1, backoff_max_s=1)
    stop = threading.Event()
    thread = threading.Thread(target=watcher.run, args=(stop,))
    thread.start()
    wait_for(lambda: watcher.status.attempt >= 2, timeout=20, what="two attempts")
    assert watcher.status.state in ("reconnecting", "connecting")
    assert watcher.status.last_error
    stop.set()
    thread.join(timeout=10)
    assert not thread.is_alive() and watcher.status.state == "stopped"

"""`chronicon watch DIR` end to end: the real command in a subprocess, stopped by SIGTERM."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
from pathlib import Path

import pytest

from chronicon.config import Settings
from chronicon.store import Store
from support.media import write_video
from support.server_process import chronicon_command
from support.watching import wait_for


@pytest.mark.slow
def test_watch_a_folder_from_the_command_line(tmp_path: Path, tiny_model_dir: Path) -> None:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    clip = write_video(tmp_path / "clip.mp4", n_frames=30, size=(160, 120))
    env = {**os.environ, "CHRONICON_DATA_DIR": str(tmp_path / "data"), "HF_HUB_OFFLINE": "1"}
    log = (tmp_path / "watch.log").open("wb")
    process = subprocess.Popen(
        [*chronicon_command(), "watch", str(inbox), "--settle", "0.5", "-m", str(tiny_model_dir),
         "--device", "cpu", "-f", "2", "-t", "4", "--min-tokens", "1"],
        env=env, stdout=subprocess.PIPE, stderr=log)
    try:
        shutil.copy(clip, inbox / "arrived.mp4")
        # Poll the results folder, not the database: two processes migrating one new
        # database at the same moment is not what this test is about.
        results = tmp_path / "data" / "results"
        wait_for(lambda: list(results.glob("*_arrived.json")), timeout=90,
                 what="the watched clip's result file")
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait(timeout=5)
        log.close()
    stderr = (tmp_path / "watch.log").read_text()
    assert process.returncode == 0, stderr
    assert "clip arrived.mp4: analysis" in stderr and "stopped:" in stderr
    assert len(list((tmp_path / "data" / "results").glob("*_arrived.json"))) == 1
    store = Store(Settings(data_dir=tmp_path / "data").db_path)
    try:
        assert store.count_analyses() == 1
        [row] = store.list_watched_files()
        assert row.state == "done" and Path(row.path).name == "arrived.mp4"
    finally:
        store.close()

"""Watched folders with real files, real threads, watchfiles, SQLite and the tiny model."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest

from chronicon.config import Settings
from chronicon.sources.folders import file_identity, is_temporary
from chronicon.store.source_records import DONE, FAILED
from support.media import write_video
from support.watching import wait_for, watching


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("source-clips")
    return {name: write_video(base / f"{name}.mp4", n_frames=45, fps=15, size=(160, 120))
            for name in ("a", "b", "c")}


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "data", watch_settle_s=1.0)


def done_files(store) -> list:
    return [f for f in store.list_watched_files() if f.state == DONE]


def test_temporary_names_are_ignored() -> None:
    for name in ("x.part", "x.mp4.tmp", "x.crdownload", ".x.mp4", "x.mp4~"):
        assert is_temporary(Path(name)), name
    assert not is_temporary(Path("x.mp4"))


def test_identity_changes_with_the_content(tmp_path: Path) -> None:
    path = tmp_path / "f.bin"
    path.write_bytes(b"a" * 3_000_000)
    first = file_identity(path)
    with path.open("r+b") as fh:
        fh.seek(2_999_999)
        fh.write(b"b")
    assert file_identity(path).digest != first.digest


@pytest.mark.slow
def test_a_slowly_copied_clip_is_analysed_once_after_it_settles(
        settings: Settings, tiny_backend, clips: dict[str, Path], tmp_path: Path) -> None:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    data = clips["a"].read_bytes()
    with watching(settings, tiny_backend, str(inbox)) as (store, analyst, _):
        target = inbox / "slow.mp4"
        with target.open("wb") as fh:  # a writer appending in chunks for ~2 s
            for start in range(0, len(data), max(1, len(data) // 10)):
                fh.write(data[start:start + max(1, len(data) // 10)])
                fh.flush()
                time.sleep(0.2)
        [row] = wait_for(lambda: done_files(store), what="the clip analysed")
        time.sleep(1.5)  # nothing more happens: no second analysis, no failure
        rows = store.list_watched_files()
        assert len(rows) == 1 and rows[0].state == DONE and rows[0].size == len(data)
        analysis = store.get_analysis(rows[0].analysis_id)
        assert analysis.result["source"] == rows[0].source
        assert analysis.result_path and Path(analysis.result_path).is_file()
        assert analysis.decision_id is not None  # the agent acted on it (its stored decision)
        assert analyst.counters.clips == 1


@pytest.mark.slow
def test_a_part_file_is_taken_once_renamed(settings: Settings, tiny_backend,
                                           clips: dict[str, Path], tmp_path: Path) -> None:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    with watching(settings, tiny_backend, str(inbox)) as (store, _, _):
        partial = inbox / "movie.mp4.part"
        shutil.copy(clips["b"], partial)
        time.sleep(2.0)  # well past the settle time: a .part is never taken
        assert store.list_watched_files() == []
        partial.rename(inbox / "movie.mp4")
        [row] = wait_for(lambda: done_files(store), what="the renamed clip")
        assert Path(row.path).name == "movie.mp4"


@pytest.mark.slow
def test_restart_analyses_nothing_twice_and_picks_up_what_arrived(
        settings: Settings, tiny_backend, clips: dict[str, Path], tmp_path: Path) -> None:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    shutil.copy(clips["a"], inbox / "one.mp4")
    with watching(settings, tiny_backend, str(inbox)) as (store, _, _):
        wait_for(lambda: len(done_files(store)) == 1, what="the first clip")
    shutil.copy(clips["c"], inbox / "two.mp4")  # arrives while Chronicon is stopped
    with watching(settings, tiny_backend, str(inbox)) as (store, analyst, _):
        wait_for(lambda: len(done_files(store)) == 2, what="the clip that came while stopped")
        time.sleep(1.5)
        names = sorted(Path(f.path).name for f in store.list_watched_files())
        assert names == ["one.mp4", "two.mp4"] and analyst.counters.clips == 1
        assert store.count_analyses() == 2


@pytest.mark.slow
def test_a_text_file_named_mp4_is_recorded_failed_once(settings: Settings, tiny_backend,
                                                       tmp_path: Path) -> None:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    with watching(settings, tiny_backend, str(inbox)) as (store, analyst, sources):
        (inbox / "notes.mp4").write_text("just some notes, not a video\n" * 50)
        [row] = wait_for(lambda: [f for f in store.list_watched_files() if f.state == FAILED],
                         what="the failure")
        assert "notes.mp4" in row.error or "not a video" in row.error.lower()
        time.sleep(2.5)  # settles again and again: still one row, no retry loop
        assert len(store.list_watched_files()) == 1
        [status] = sources.list()
        assert status["failed"] == 1 and status["kind"] == "folder"
        assert store.count_analyses() == 0 and analyst.counters.clips == 0

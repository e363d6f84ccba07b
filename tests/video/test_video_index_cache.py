"""The frame index kept on disk: a new process reuses it, and never a stale or broken one."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from chronicon.config import Settings, load_settings
from chronicon.video import index_cache, probe
from chronicon.video.frame_index import FrameIndex
from chronicon.video.sampling import sample
from support.awkward_media import with_duplicate_timestamps
from support.media import write_video


@pytest.fixture(autouse=True)
def cache_dir(tmp_path: Path) -> Iterator[Path]:
    """A disk cache in the test's folder, and no index left in memory from other tests."""
    folder = tmp_path / "index-cache"
    before = index_cache.directory()
    index_cache.configure(folder)
    probe._recent_indexes.clear()
    yield folder
    index_cache.configure(before)
    probe._recent_indexes.clear()


@pytest.fixture
def demuxes(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The paths the probe reads from end to end (demuxes every packet of)."""
    seen: list[str] = []
    real = probe.scan_packets

    def counting(container, stream, *args, **kwargs):  # type: ignore[no-untyped-def]
        seen.append(container.name)
        return real(container, stream, *args, **kwargs)

    monkeypatch.setattr(probe, "scan_packets", counting)
    return seen


def new_process() -> None:
    """What a fresh process starts with: an empty in-memory cache."""
    probe._recent_indexes.clear()


def assert_same_index(a: FrameIndex, b: FrameIndex) -> None:
    for name in ("pts", "keyframe", "size"):
        got, want = getattr(a, name), getattr(b, name)
        assert got.dtype == want.dtype and np.array_equal(got, want), name
    for name in ("time_base", "origin", "read_error", "end_time", "positioning", "key_packets",
                 "notes"):
        assert getattr(a, name) == getattr(b, name), name


def test_a_new_process_reuses_the_index_without_reading_the_file(
        tmp_path: Path, cache_dir: Path, demuxes: list[str]) -> None:
    path = write_video(tmp_path / "a.mp4", n_frames=40, options={"g": "10"})
    first = probe.probe(path)
    built = probe.frame_index(path)
    assert len(demuxes) == 1 and len(list(cache_dir.glob("*.npz"))) == 1

    new_process()
    assert probe.probe(path) == first
    assert_same_index(probe.frame_index(path), built)
    assert len(demuxes) == 1  # read from the cache, not demuxed again
    # Sampling from the stored index gives the same exact frames.
    frames = sample(path, 4, "uniform", 64)
    new_process()
    index_cache.configure(None)
    again = sample(path, 4, "uniform", 64)
    assert [f.index for f in frames] == [f.index for f in again]
    assert all(np.array_equal(np.asarray(f.image), np.asarray(g.image))
               for f, g in zip(frames, again, strict=True))


def test_count_positioning_and_notes_survive_the_round_trip(
        tmp_path: Path, clip: Path, demuxes: list[str]) -> None:
    # Repeated timestamps: "count" positioning, keyframe packets by (dts, pts), a note.
    path = with_duplicate_timestamps(clip, tmp_path / "dup.mp4")
    info = probe.probe(path)
    built = probe.frame_index(path)
    assert built.positioning == "count" and built.key_packets and built.notes
    new_process()
    assert probe.probe(path) == info  # warnings included
    assert_same_index(probe.frame_index(path), built)
    assert len(demuxes) == 1


@pytest.mark.parametrize("damage", ["truncated", "garbage", "empty", "wrong arrays"])
def test_a_broken_entry_is_ignored_and_rebuilt(tmp_path: Path, cache_dir: Path,
                                               demuxes: list[str], damage: str) -> None:
    path = write_video(tmp_path / "b.mkv", n_frames=30)
    built = probe.frame_index(path)
    [entry] = cache_dir.glob("*.npz")
    data = entry.read_bytes()
    if damage == "truncated":
        entry.write_bytes(data[: len(data) // 2])
    elif damage == "garbage":
        entry.write_bytes(os.urandom(len(data)))
    elif damage == "empty":
        entry.write_bytes(b"")
    else:  # a readable npz whose arrays do not fit together
        with np.load(entry) as stored:
            arrays = dict(stored)
        arrays["keyframe"] = arrays["keyframe"][:-1]
        np.savez(entry, **arrays)
    new_process()
    assert_same_index(probe.frame_index(path), built)
    assert len(demuxes) == 2  # rebuilt from the file
    new_process()
    assert_same_index(probe.frame_index(path), built)
    assert len(demuxes) == 2  # and the rewritten entry is good again


def test_a_changed_file_is_indexed_again(tmp_path: Path, demuxes: list[str]) -> None:
    path = tmp_path / "c.mp4"
    write_video(path, n_frames=20)
    assert probe.probe(path).frame_count == 20
    write_video(path, n_frames=35)  # a new size and mtime
    new_process()
    assert probe.probe(path).frame_count == 35
    assert len(demuxes) == 2


def test_same_size_and_mtime_but_other_bytes_is_a_miss(tmp_path: Path) -> None:
    # `touch -r`, a restored backup, or a clock too coarse to tell two writes apart.
    path = write_video(tmp_path / "d.mp4", n_frames=20)
    version = probe.file_version(path)
    index_cache.save(*version, probe.frame_index(path))
    assert index_cache.load(*version) is not None
    data = bytearray(path.read_bytes())
    data[-100:] = bytes(100)
    path.write_bytes(bytes(data))
    os.utime(path, ns=(version[2], version[2]))
    assert probe.file_version(path) == version
    assert index_cache.load(*version) is None


def test_an_entry_of_another_format_version_is_not_read(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write_video(tmp_path / "e.mp4", n_frames=10)
    version = probe.file_version(path)
    index_cache.save(*version, probe.frame_index(path))
    monkeypatch.setattr(index_cache, "FORMAT_VERSION", index_cache.FORMAT_VERSION + 1)
    assert index_cache.load(*version) is None


def test_the_cache_is_bounded_least_recently_used_first(tmp_path: Path, cache_dir: Path) -> None:
    path = write_video(tmp_path / "f.mp4", n_frames=10)
    index_cache.configure(None)
    index = probe.frame_index(path)
    index_cache.configure(cache_dir)
    _, size, mtime = probe.file_version(path)
    names = [str(tmp_path / f"v{i}.mp4") for i in range(5)]
    for i, name in enumerate(names):  # five names of one file: five entries
        os.link(path, name)
        index_cache.save(name, size, mtime, index)
        os.utime(index_cache.entry_path(name, size, mtime), (1000 + i, 1000 + i))
    os.utime(index_cache.entry_path(names[0], size, mtime), (2000, 2000))  # used recently
    stale = cache_dir / ".dead-writer.tmp"
    stale.write_bytes(b"x")
    os.utime(stale, (0, 0))
    assert index_cache.prune(cache_dir, max_entries=2) == 3
    left = {p.name for p in cache_dir.iterdir()}
    expected = {index_cache.entry_path(n, size, mtime).name for n in (names[0], names[4])}
    assert left == expected  # the stale temporary file went too
    one = index_cache.entry_path(names[0], size, mtime).stat().st_size
    index_cache.prune(cache_dir, max_bytes=one)
    assert [p.name for p in cache_dir.iterdir()] == [index_cache.entry_path(names[0], size,
                                                                           mtime).name]


def test_an_unwritable_cache_costs_only_the_rebuild(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    index_cache.configure(blocker / "index")
    path = write_video(tmp_path / "g.mp4", n_frames=12)
    with caplog.at_level(logging.WARNING):
        assert probe.probe(path).frame_count == 12
        assert probe.probe(write_video(tmp_path / "g2.mp4", n_frames=5)).frame_count == 5
    assert caplog.text.count("cannot write") == 1  # once per folder, not once per video


def test_no_cache_when_off(tmp_path: Path, cache_dir: Path) -> None:
    index_cache.configure(None)
    probe.probe(write_video(tmp_path / "h.mp4", n_frames=10))
    assert not cache_dir.exists()


def test_settings_name_the_cache_and_the_edge_applies_them(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CHRONICON_INDEX_CACHE")  # the test environment turns it off
    assert Settings(data_dir=tmp_path).index_cache_dir == tmp_path / "cache" / "index"
    assert Settings(data_dir=tmp_path, index_cache="off").index_cache_dir is None
    assert Settings(index_cache=str(tmp_path / "x")).index_cache_dir == tmp_path / "x"
    monkeypatch.setenv("CHRONICON_DATA_DIR", str(tmp_path / "data"))
    load_settings()
    assert index_cache.directory() == tmp_path / "data" / "cache" / "index"
    monkeypatch.setenv("CHRONICON_INDEX_CACHE", "off")
    load_settings()
    assert index_cache.directory() is None


def test_writers_racing_on_one_entry_leave_a_whole_one(tmp_path: Path, cache_dir: Path) -> None:
    # Workers or server threads indexing the same new file at once: each writes its own
    # temporary file and renames it into place, so a reader sees a whole entry or none.
    path = write_video(tmp_path / "r.mp4", n_frames=30)
    version = probe.file_version(path)
    index = probe.frame_index(path)
    index_cache.save(*version, index)

    def save_or_load(i: int) -> FrameIndex | None:
        if i % 2:
            return index_cache.load(*version)
        index_cache.save(*version, index)
        return index

    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(save_or_load, range(40)))
    for got in results:
        assert got is not None  # never a missing or half-written entry while others write
        assert_same_index(got, index)
    assert [p.suffix for p in cache_dir.iterdir()] == [".npz"]  # no temporary file left

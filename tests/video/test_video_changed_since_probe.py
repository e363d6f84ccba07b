"""A file that changed after it was probed (an upload probed at submission, then replaced)
gets the error probe() would give it now, never FFmpeg's raw error with the server path."""

from __future__ import annotations

from pathlib import Path

import pytest

from chronicon.errors import CorruptVideo, NotAVideo, VideoNotFound
from chronicon.video.probe import probe
from chronicon.video.sampling import sample
from support.media import write_video


@pytest.mark.parametrize("strategy", ["uniform", "motion", "scene"])
def test_truncated_after_its_probe(tmp_path: Path, strategy: str) -> None:
    clip = write_video(tmp_path / "clip.mp4", n_frames=60)
    info = probe(clip)
    data = clip.read_bytes()
    clip.write_bytes(data[: len(data) // 3] + b"\0" * 1000)
    with pytest.raises(CorruptVideo) as caught:
        sample(clip, 4, strategy, info=info)
    assert caught.value.message.startswith("clip.mp4: ") and str(tmp_path) not in str(caught.value)


def test_replaced_by_text_or_removed_after_its_probe(tmp_path: Path) -> None:
    clip = write_video(tmp_path / "clip.mp4", n_frames=30)
    info = probe(clip)
    clip.write_text("not a video any more\n" * 50)
    with pytest.raises(NotAVideo):
        sample(clip, 4, "uniform", info=info)
    clip.unlink()
    with pytest.raises(VideoNotFound):
        sample(clip, 4, "uniform", info=info)

"""Clips whose shots change at known seconds (timeline tests, the browser test, benchmarks)."""

from __future__ import annotations

from pathlib import Path

from .media import scene_frame, write_video

# A 3-minute clip at 10 fps: 28, 65 and 95 lie within ±20 % of a 30-s chunk boundary (30, 60,
# 90), 150 on one; nothing near 120, which therefore stays where it is.
THREE_MINUTE_CUTS_S = (28, 65, 95, 150)


def write_scene_clip(path: Path, duration_s: int = 180, fps: int = 10,
                     cuts_s: tuple[int, ...] = THREE_MINUTE_CUTS_S,
                     size: tuple[int, int] = (160, 120)) -> Path:
    """H.264 whose scene (colour) changes at each of `cuts_s`, with motion inside each shot."""
    cuts = [c * fps for c in cuts_s]
    return write_video(Path(path), n_frames=duration_s * fps, fps=fps, size=size,
                       frame_fn=lambda i: scene_frame(i, cuts),
                       options={"preset": "ultrafast", "g": str(5 * fps)})

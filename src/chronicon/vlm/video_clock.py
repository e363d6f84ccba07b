"""Where each sampled frame sits in its video, in the terms SmolVLM's prompt uses (a frame
index on a clock of `fps` frames per second, and the video's duration). No torch: the
OpenVINO runtime builds its prompts without it, the transformers runtime wraps the same numbers
in transformers' VideoMetadata, so both state the same timestamps."""

from __future__ import annotations

from dataclasses import dataclass

from ..video.frames import Frame

# A millisecond clock for frames whose indices do not match the stream's nominal rate (VFR).
MS_CLOCK_FPS = 1000.0


@dataclass(frozen=True)
class VideoClock:
    """Frames as indices on a clock: frame i is shown at `indices[i] / fps` seconds."""

    fps: float
    duration: float
    indices: list[int]
    total_frames: int

    @property
    def timestamps(self) -> list[float]:
        return [index / self.fps for index in self.indices]


def video_clock(frames: list[Frame], fps: float | None, duration: float | None) -> VideoClock:
    """The clock that stamps each frame with its own timestamp.

    With the stream's fps and our frame indices, index / fps is exact for constant-rate video;
    when the indices and timestamps disagree (variable frame rate, or no fps known) the frames
    are placed on a millisecond clock instead.
    """
    last = max(f.timestamp for f in frames)
    duration = duration if duration and duration > 0 else last
    consistent = bool(fps) and fps > 0 and all(
        abs(f.index / fps - f.timestamp) <= 1.0 / fps for f in frames)
    if consistent:
        indices = [f.index for f in frames]
        total = max(int(round(duration * fps)), max(indices) + 1)
        return VideoClock(fps=float(fps), duration=duration, indices=indices, total_frames=total)
    indices = [int(round(f.timestamp * MS_CLOCK_FPS)) for f in frames]
    total = max(int(round(duration * MS_CLOCK_FPS)), max(indices) + 1)
    return VideoClock(fps=MS_CLOCK_FPS, duration=duration, indices=indices, total_frames=total)

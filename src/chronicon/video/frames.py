"""The value every sampler returns and every model backend consumes."""

from __future__ import annotations

from dataclasses import dataclass

from PIL import Image


@dataclass(frozen=True)
class Frame:
    """One sampled frame.

    `index` is the frame's position in a full decode of the video (0-based), `timestamp` its
    presentation time in seconds from the start of the stream, `image` an RGB PIL image already
    rotated upright and resized (longest edge = the requested resize).
    """

    index: int
    timestamp: float
    image: Image.Image

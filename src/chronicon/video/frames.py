"""The value every sampler returns and every model backend consumes."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image

FRAME_JPEG_QUALITY = 85


@dataclass(frozen=True)
class Frame:
    """One sampled frame.

    `index` is the frame's position in a full decode of the video (0-based), `timestamp` its
    presentation time in seconds from the start of the stream, `image` an RGB PIL image already
    rotated upright and resized (longest edge = the requested resize). `warnings` say why the
    image may be wrong (it was decoded after damaged data), empty for a sound frame.
    """

    index: int
    timestamp: float
    image: Image.Image
    warnings: tuple[str, ...] = ()


def save_frames(frames: list[Frame], directory: Path) -> list[dict[str, Any]]:
    """Write each frame as `<position>.jpg` and a `frames.json` listing (position, index,
    timestamp) into `directory`: how the history keeps an analysis's thumbnails. Returns the
    listing."""
    directory.mkdir(parents=True, exist_ok=True)
    listing = []
    for position, frame in enumerate(frames):
        frame.image.convert("RGB").save(directory / f"{position}.jpg", "JPEG",
                                        quality=FRAME_JPEG_QUALITY)
        listing.append({"position": position, "index": frame.index,
                        "timestamp": frame.timestamp})
    (directory / "frames.json").write_text(json.dumps(listing), encoding="utf-8")
    return listing

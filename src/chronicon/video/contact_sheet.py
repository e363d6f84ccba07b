"""A contact sheet: sampled frames in a grid, each tile labelled with its time and frame number."""

from __future__ import annotations

import math

from PIL import Image, ImageDraw, ImageFont

from .frames import Frame

BACKGROUND = (24, 24, 24)
LABEL_BAND = (0, 0, 0)
LABEL_TEXT = (255, 255, 255)


def format_timestamp(seconds: float) -> str:
    """`MM:SS.mmm` (or `H:MM:SS.mmm` from one hour on)."""
    millis = int(round(seconds * 1000))
    hours, rest = divmod(millis, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    secs, ms = divmod(rest, 1000)
    clock = f"{minutes:02d}:{secs:02d}.{ms:03d}"
    return f"{hours}:{clock}" if hours else clock


def contact_sheet(frames: list[Frame], columns: int | None = None, tile: int = 320,
                  gap: int = 6) -> Image.Image:
    """Frames left to right, top to bottom, each scaled down to fit a `tile`-pixel square cell
    (aspect kept) with a label band "MM:SS.mmm  #index" along its bottom edge."""
    if not frames:
        raise ValueError("a contact sheet needs at least one frame")
    columns = columns or min(len(frames), math.ceil(math.sqrt(len(frames))))
    tile = min(tile, max(max(f.image.size) for f in frames))  # never blow small frames up
    rows = math.ceil(len(frames) / columns)
    # Cells take the widest frame's aspect, so portrait and landscape clips both fill them.
    aspect = max(f.image.width / f.image.height for f in frames)
    cell_w, cell_h = (tile, max(1, round(tile / aspect))) if aspect >= 1 else \
        (max(1, round(tile * aspect)), tile)
    font = _font(max(12, tile // 16))
    band = font.size + 8 if hasattr(font, "size") else 20
    sheet = Image.new("RGB", (columns * cell_w + (columns + 1) * gap,
                              rows * (cell_h + band) + (rows + 1) * gap), BACKGROUND)
    draw = ImageDraw.Draw(sheet)
    for position, frame in enumerate(frames):
        row, col = divmod(position, columns)
        x0 = gap + col * (cell_w + gap)
        y0 = gap + row * (cell_h + band + gap)
        picture = frame.image.copy()
        picture.thumbnail((cell_w, cell_h))
        sheet.paste(picture, (x0 + (cell_w - picture.width) // 2,
                              y0 + (cell_h - picture.height) // 2))
        draw.rectangle((x0, y0 + cell_h, x0 + cell_w - 1, y0 + cell_h + band - 1), fill=LABEL_BAND)
        label = f"{format_timestamp(frame.timestamp)}  #{frame.index}"
        draw.text((x0 + 6, y0 + cell_h + 4), label, fill=LABEL_TEXT, font=font)
    return sheet


def _font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1 has only the fixed bitmap font
        return ImageFont.load_default()

"""Awkward but real-world video files, generated on demand (never committed).

Each writer makes one kind of file people really have: a decompression-bomb GIF, a clip cut
with `ffmpeg -ss -c copy`, a recording that starts mid-GOP, ... Writers that need the ffmpeg
command line say so by raising `pytest.skip`-friendly `FileNotFoundError` when it is absent.
"""

from __future__ import annotations

import shutil
import struct
import subprocess
from pathlib import Path


def gif_bomb(path: Path, screen: int = 16000, tile: int = 64, frames: int = 20) -> Path:
    """An animated GIF declaring a `screen` x `screen` logical screen whose frames are small
    `tile` x `tile` patches: a few kilobytes that decode to `screen`² pixels per frame."""
    out = bytearray(b"GIF89a")
    out += struct.pack("<HHBBB", screen, screen, 0xF0, 0, 0)  # global table of 2 colours
    out += b"\x00\x00\x00\xff\xff\xff"
    out += b"\x21\xff\x0bNETSCAPE2.0\x03\x01\x00\x00\x00"  # loop forever
    for i in range(frames):
        out += b"\x21\xf9\x04\x00\x04\x00\x00\x00"  # graphic control: 40 ms
        out += b"\x2c" + struct.pack("<HHHHB", (i * tile) % (screen - tile), 0, tile, tile, 0)
        out += b"\x02" + _lzw_blocks(_lzw_codes(i % 2, tile * tile))
    out += b"\x3b"
    Path(path).write_bytes(bytes(out))
    return Path(path)


def _lzw_codes(colour: int, pixels: int) -> bytes:
    # Minimum code size 2: clear = 4, end = 5; a clear after every two pixels keeps the code
    # width at 3 bits, so no dictionary bookkeeping is needed.
    bits: list[int] = []

    def emit(code: int) -> None:
        bits.extend((code >> b) & 1 for b in range(3))

    emit(4)
    for p in range(pixels):
        emit(colour)
        if p % 2:
            emit(4)
    emit(5)
    data = bytearray()
    for j in range(0, len(bits), 8):
        data.append(sum(bit << b for b, bit in enumerate(bits[j:j + 8])))
    return bytes(data)


def _lzw_blocks(data: bytes) -> bytes:
    out = bytearray()
    for j in range(0, len(data), 255):
        chunk = data[j:j + 255]
        out += bytes([len(chunk)]) + chunk
    return bytes(out + b"\x00")


def ffmpeg(*args: str) -> None:
    """Run the ffmpeg command line quietly; FileNotFoundError when it is not installed."""
    exe = shutil.which("ffmpeg")
    if exe is None:
        raise FileNotFoundError("ffmpeg is not installed")
    subprocess.run([exe, "-hide_banner", "-loglevel", "error", "-y", *args], check=True)

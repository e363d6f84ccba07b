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


def has_encoder(name: str) -> bool:
    """Whether the ffmpeg command line can encode with `name` (e.g. libsvtav1)."""
    exe = shutil.which("ffmpeg")
    if exe is None:
        return False
    listing = subprocess.run([exe, "-hide_banner", "-encoders"], capture_output=True,
                             text=True, check=False).stdout
    return any(line.split()[1:2] == [name] for line in listing.splitlines() if line.strip())


def cut_with_stream_copy(source: Path, path: Path, start: float) -> Path:
    """`ffmpeg -ss START -i source -c copy path`: the edit list hides the pre-roll packets."""
    ffmpeg("-ss", str(start), "-i", str(source), "-c", "copy", str(path))
    return path


def cut_transport_stream(source: Path, path: Path, fraction: float) -> Path:
    """Remux `source` to MPEG-TS and keep everything after `fraction` of its bytes, cut at a
    188-byte packet boundary: a recording that starts in the middle of a group of pictures."""
    whole = path.with_suffix(".whole.ts")
    ffmpeg("-i", str(source), "-c", "copy", "-f", "mpegts", str(whole))
    data = whole.read_bytes()
    start = int(len(data) // 188 * fraction) * 188
    path.write_bytes(data[start:])
    whole.unlink()
    return path


def remux(source: Path, path: Path) -> Path:
    ffmpeg("-i", str(source), "-c", "copy", str(path))
    return path


def with_duplicate_timestamps(source: Path, path: Path, fps: int = 30) -> Path:
    """Re-encode with every two frames sharing one timestamp, as a broken muxer writes them
    (ffmpeg then nudges the DTS and warns, exactly what such files hold)."""
    ffmpeg("-i", str(source), "-vf", f"setpts='floor(N/2)/({fps}*TB)'",
           "-fps_mode", "passthrough", "-c:v", "libx264", "-pix_fmt", "yuv420p", str(path))
    return path


def damage_packets(source: Path, path: Path, fraction: float, only: int | None = None,
                   seed: int = 2) -> Path:
    """Overwrite `fraction` of the file's bytes inside video packet payloads (headers left
    intact, so the file still demuxes): the whole stream, or only packet number `only`."""
    import random

    import av

    data = bytearray(source.read_bytes())
    with av.open(str(source)) as container:
        spans = [(p.pos + 8, p.pos + p.size) for p in container.demux(container.streams.video[0])
                 if p.size > 16 and p.pos is not None and p.pos >= 0]
    if only is not None:
        spans = [spans[only]]
    rng = random.Random(seed)
    for _ in range(max(1, int(len(data) * fraction))):
        start, end = rng.choice(spans)
        data[rng.randrange(start, end)] = rng.randrange(256)
    path.write_bytes(bytes(data))
    return path

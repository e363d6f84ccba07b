"""Uploads: streamed with the limit enforced while streaming, probed before queueing, stored
under a generated name with the user's name kept only as sanitised metadata."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from chronicon.config import Settings
from chronicon.web import create_app
from chronicon.web.uploads import MAX_FILENAME_CHARS, sanitize_filename
from support.media import truncate, write_audio_only, write_video
from support.web_client import changed, upload

# ---- sanitize_filename ---------------------------------------------------------------------------


@pytest.mark.parametrize(("raw", "expected"), [
    ("../../etc/passwd", "passwd"),
    ("..\\..\\windows\\system32\\evil.mp4", "evil.mp4"),
    ("/abs/path/clip.mp4", "clip.mp4"),
    ("clip\x00\x1b[31m.mp4", "clip[31m.mp4"),
    ("line\nbreak\r.mp4", "linebreak.mp4"),
    ("right\u202eto-left.mp4", "rightto-left.mp4"),
    ("...hidden.mp4", "hidden.mp4"),
    ("  spaced   out  .mp4 ", "spaced out .mp4"),
    ("", "upload"),
    ("..", "upload"),
    (None, "upload"),
    ("Zug über die Brücke 🚆.mp4", "Zug über die Brücke 🚆.mp4"),
])
def test_sanitize_filename(raw: str | None, expected: str) -> None:
    assert sanitize_filename(raw) == expected


def test_sanitize_filename_shortens_and_keeps_extension() -> None:
    name = sanitize_filename("a" * 5000 + ".webm")
    assert len(name) == MAX_FILENAME_CHARS and name.endswith(".webm")


# ---- the streamed upload -------------------------------------------------------------------------


def _stored_files(settings: Settings) -> list[Path]:
    return sorted(settings.uploads_dir.glob("*")) if settings.uploads_dir.exists() else []


def test_oversize_upload_is_refused_while_streaming(web_settings: Settings) -> None:
    """The body is 20x the limit; the server stops reading soon after the limit and keeps
    nothing. No Content-Length is sent, so only the streaming check can catch it."""
    limit = web_settings.max_upload_bytes
    chunk = b"\0" * 65536
    total_chunks = 20 * limit // len(chunk)
    pulled = 0
    boundary = "testboundary"

    async def body():
        nonlocal pulled
        head = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; "
                f"filename=\"big.mp4\"\r\nContent-Type: video/mp4\r\n\r\n").encode()
        yield head
        for _ in range(total_chunks):
            pulled += len(chunk)
            yield chunk
        yield f"\r\n--{boundary}--\r\n".encode()

    async def send() -> httpx.Response:
        app = create_app(web_settings)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            return await client.post(
                "/api/analyze", content=body(),
                headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})

    response = asyncio.run(send())
    assert response.status_code == 413
    assert "MAX_UPLOAD_MB" in response.json()["error"]
    assert response.json()["type"] == "UploadTooLarge"
    # Stopped within a couple of chunks of the limit, not after the 20x body.
    assert pulled <= limit + 2 * len(chunk)
    assert _stored_files(web_settings) == []


def test_declared_oversize_upload_is_refused_before_reading(idle_client: TestClient,
                                                            web_settings: Settings) -> None:
    big = 3 * web_settings.max_upload_bytes
    response = idle_client.post(
        "/api/analyze", content=b"x" * 10,
        headers={"Content-Type": "multipart/form-data; boundary=b",
                 "Content-Length": str(big)})
    assert response.status_code == 413
    assert _stored_files(web_settings) == []


def test_upload_just_under_the_limit_is_accepted(idle_client: TestClient, tmp_path: Path,
                                                 web_settings: Settings) -> None:
    clip = write_video(tmp_path / "c.mp4", n_frames=10)
    padded = tmp_path / "padded.mp4"
    # Trailing bytes after the moov atom are ignored by demuxers; pad close to the limit.
    padded.write_bytes(clip.read_bytes() + b"\0" * (web_settings.max_upload_bytes
                                                      - clip.stat().st_size - 10))
    response = upload(idle_client, padded)
    assert response.status_code == 202, response.text


def test_text_file_named_mp4_is_415(idle_client: TestClient, tmp_path: Path,
                                    web_settings: Settings) -> None:
    fake = tmp_path / "notes.mp4"
    fake.write_text("this is not a video, just some text\n" * 50)
    response = upload(idle_client, fake)
    assert response.status_code == 415
    body = response.json()
    assert body["type"] == "NotAVideo" and "notes.mp4" in body["error"]
    assert _stored_files(web_settings) == []  # refused files are not kept


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "WEBP", "GIF"])
def test_still_image_is_415(idle_client: TestClient, tmp_path: Path, fmt: str,
                            web_settings: Settings) -> None:
    """One rule for every still image, a one-frame GIF included."""
    from PIL import Image

    photo = tmp_path / "photo.mp4"
    Image.new("RGB", (64, 48), "red").save(photo, fmt)
    response = upload(idle_client, photo)
    assert response.status_code == 415, response.text
    assert response.json()["type"] == "NotAVideo"
    assert "still image" in response.json()["error"]
    assert _stored_files(web_settings) == []


def test_an_animated_gif_is_a_video(idle_client: TestClient, tmp_path: Path) -> None:
    from PIL import Image

    frames = [Image.new("RGB", (64, 48), colour) for colour in ("red", "green", "blue")]
    animation = tmp_path / "animation.gif"
    frames[0].save(animation, save_all=True, append_images=frames[1:], duration=100, loop=0)
    assert upload(idle_client, animation).status_code == 202


def test_a_huge_frame_is_refused_before_queueing(idle_client: TestClient, tmp_path: Path,
                                                 web_settings: Settings) -> None:
    """A 16000x16000 GIF of a few kB would decode to gigabytes: 413 on its header."""
    from support.awkward_media import gif_bomb

    bomb = gif_bomb(tmp_path / "bomb.gif")
    started = time.perf_counter()
    response = upload(idle_client, bomb)
    assert time.perf_counter() - started < 5
    assert response.status_code == 413, response.text
    body = response.json()
    assert body["type"] == "FrameTooLarge" and "bomb.gif" in body["error"]
    assert "CHRONICON_MAX_PIXELS" in body["error"]
    assert str(web_settings.data_dir) not in body["error"]
    assert idle_client.get("/api/jobs").json()["items"] == []
    assert _stored_files(web_settings) == []


def test_the_pixel_budget_is_a_setting(web_settings: Settings, clip: Path) -> None:
    client = TestClient(create_app(changed(web_settings, max_pixels=320 * 240 - 1)))
    assert upload(client, clip).status_code == 413
    client = TestClient(create_app(changed(web_settings, max_pixels=320 * 240)))
    assert upload(client, clip).status_code == 202


def test_truncated_video_is_422_with_cause(idle_client: TestClient, tmp_path: Path) -> None:
    cut = truncate(write_video(tmp_path / "cut.mp4", n_frames=60))
    response = upload(idle_client, cut)
    assert response.status_code == 422
    assert response.json()["type"] == "CorruptVideo"
    assert "cut.mp4" in response.json()["error"]


def test_audio_only_file_is_422(idle_client: TestClient, tmp_path: Path) -> None:
    response = upload(idle_client, write_audio_only(tmp_path / "song.mp4"))
    assert response.status_code == 422
    assert response.json()["type"] == "AudioOnly"
    assert "audio only" in response.json()["error"]


def test_empty_file_is_422(idle_client: TestClient, tmp_path: Path) -> None:
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    response = upload(idle_client, empty)
    assert response.status_code == 422 and response.json()["field"] == "file"


def test_missing_file_field_is_422(idle_client: TestClient) -> None:
    response = idle_client.post("/api/analyze", data={"frames": "4"},
                                files={"other": ("x.txt", b"hello", "text/plain")})
    assert response.status_code == 422
    assert response.json()["field"] == "file"


def test_not_multipart_is_422(idle_client: TestClient) -> None:
    response = idle_client.post("/api/analyze", json={"file": "clip.mp4"})
    assert response.status_code == 422
    assert "multipart/form-data" in response.json()["error"]


def test_malformed_multipart_is_422(idle_client: TestClient, web_settings: Settings) -> None:
    response = idle_client.post(
        "/api/analyze", content=b"--b\r\nthis is not a part header\r\n\r\n\x00\x01",
        headers={"Content-Type": "multipart/form-data; boundary=b"})
    assert response.status_code == 422
    assert _stored_files(web_settings) == []


@pytest.mark.parametrize("hostile", [
    "../../../../tmp/owned.mp4",
    "..\\..\\owned.mp4",
    "<script>alert(1)</script>.mp4",
    "bidi\u202egnp.mp4",
    "x" * 4000 + ".mp4",
    "файл 视频 ビデオ.mp4",
])
def test_hostile_filenames_are_stored_under_a_generated_name(
        idle_client: TestClient, clip: Path, web_settings: Settings, hostile: str) -> None:
    response = upload(idle_client, clip, filename=hostile)
    assert response.status_code == 202, response.text
    stored = _stored_files(web_settings)
    assert len(stored) == 1
    assert stored[0].parent == web_settings.uploads_dir
    assert len(stored[0].stem) == 32 and stored[0].suffix == ".mp4"  # uuid hex + extension
    job = idle_client.get(f"/api/jobs/{response.json()['job_id']}").json()
    assert job["video_filename"] == sanitize_filename(hostile)
    assert "/" not in job["video_filename"] and "\\" not in job["video_filename"]
    assert not any(ord(c) < 32 for c in job["video_filename"])
    assert len(job["video_filename"]) <= MAX_FILENAME_CHARS


def test_control_characters_in_a_raw_filename_header(idle_client: TestClient, clip: Path,
                                                     web_settings: Settings) -> None:
    """Browsers and httpx percent-encode control characters; a hostile client need not."""
    head = (b'--b\r\nContent-Disposition: form-data; name="file"; '
            b'filename="clip\x01\x1b[2J\x7f.mp4"\r\nContent-Type: video/mp4\r\n\r\n')
    body = head + clip.read_bytes() + b"\r\n--b--\r\n"
    response = idle_client.post("/api/analyze", content=body,
                                headers={"Content-Type": "multipart/form-data; boundary=b"})
    assert response.status_code == 202, response.text
    job = idle_client.get(f"/api/jobs/{response.json()['job_id']}").json()
    assert job["video_filename"] == "clip[2J.mp4"

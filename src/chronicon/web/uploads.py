"""Streamed multipart uploads: the file goes to disk chunk by chunk and the size limit is
enforced while it streams, so an oversize upload is refused after at most `max_bytes` bytes
were written (never buffered whole in memory or on disk first).

The user's filename is never used as a path: the file is stored under a generated name and the
original survives only as sanitised metadata (`sanitize_filename`).
"""

from __future__ import annotations

import re
import unicodedata
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from python_multipart.multipart import MultipartParser, parse_options_header

from ..errors import BadInput, BadParameter, UploadTooLarge

VIDEO_EXTENSIONS = frozenset({".mp4", ".m4v", ".avi", ".mov", ".mkv", ".webm"})
MAX_FILENAME_CHARS = 120
# Form fields are a few numbers and a prompt; anything bigger is not a form we sent.
MAX_FIELD_BYTES = 16 * 1024
# Room for multipart boundaries, part headers and the form fields around the file itself.
ENVELOPE_BYTES = 256 * 1024


def sanitize_filename(name: str | None) -> str:
    """A display name that is harmless anywhere it is shown or logged.

    Keeps only the last path component (either slash), drops control and format characters
    (including bidi overrides), collapses whitespace, strips leading dots and shortens very long
    names while keeping the extension. Non-ASCII letters are kept: they are escaped where shown.
    """
    text = unicodedata.normalize("NFKC", name or "")
    text = text.replace("\\", "/").split("/")[-1]
    text = "".join(ch for ch in text if unicodedata.category(ch)[0] != "C")
    text = re.sub(r"\s+", " ", text).strip().lstrip(".").strip()
    if not text:
        return "upload"
    if len(text) > MAX_FILENAME_CHARS:
        stem, dot, ext = text.rpartition(".")
        ext = f".{ext}" if dot and len(ext) <= 10 else ""
        stem = stem if ext else text
        text = stem[: MAX_FILENAME_CHARS - len(ext)].rstrip() + ext
    return text


def stored_name_for(filename: str) -> str:
    """A generated file name; keeps a known video extension so tools recognise the file."""
    suffix = Path(filename).suffix.lower()
    return uuid.uuid4().hex + (suffix if suffix in VIDEO_EXTENSIONS else ".video")


@dataclass
class Upload:
    """A received upload: the stored file, its sanitised original name, and the form fields."""

    path: Path
    filename: str
    size: int
    fields: dict[str, str] = field(default_factory=dict)


class _PartCollector:
    """Callbacks for python-multipart's streaming parser: one file part to disk, fields to
    memory, both with hard limits checked before each write."""

    def __init__(self, dest_dir: Path, file_field: str, max_bytes: int):
        self.dest_dir = dest_dir
        self.file_field = file_field
        self.max_bytes = max_bytes
        self.fields: dict[str, str] = {}
        self.upload: Upload | None = None
        self._file: BinaryIO | None = None
        self._header_name = bytearray()
        self._header_value = bytearray()
        self._headers: dict[bytes, bytes] = {}
        self._part_name = ""
        self._part_is_file = False
        self._field_value = bytearray()

    def callbacks(self) -> dict:
        return {
            "on_part_begin": self._on_part_begin,
            "on_header_field": lambda d, s, e: self._header_name.extend(d[s:e]),
            "on_header_value": lambda d, s, e: self._header_value.extend(d[s:e]),
            "on_header_end": self._on_header_end,
            "on_headers_finished": self._on_headers_finished,
            "on_part_data": self._on_part_data,
            "on_part_end": self._on_part_end,
        }

    def _on_part_begin(self) -> None:
        self._headers = {}
        self._field_value = bytearray()
        self._part_name, self._part_is_file = "", False

    def _on_header_end(self) -> None:
        self._headers[bytes(self._header_name).lower()] = bytes(self._header_value)
        self._header_name.clear()
        self._header_value.clear()

    def _on_headers_finished(self) -> None:
        _, params = parse_options_header(self._headers.get(b"content-disposition", b""))
        self._part_name = params.get(b"name", b"").decode("utf-8", "replace")
        filename = params.get(b"filename")
        if self._part_name != self.file_field:
            return
        if self.upload is not None:
            raise BadParameter(self.file_field, "send exactly one file")
        self._part_is_file = True
        display = sanitize_filename(filename.decode("utf-8", "replace") if filename else None)
        path = self.dest_dir / stored_name_for(display)
        self.upload = Upload(path=path, filename=display, size=0)
        self._file = path.open("wb")

    def _on_part_data(self, data: bytes, start: int, end: int) -> None:
        size = end - start
        if self._part_is_file:
            assert self.upload is not None and self._file is not None
            if self.upload.size + size > self.max_bytes:
                raise UploadTooLarge(
                    f"file: the upload is larger than the limit of "
                    f"{self.max_bytes / 1024 / 1024:g} MB (MAX_UPLOAD_MB)")
            self._file.write(data[start:end])
            self.upload.size += size
        else:
            if len(self._field_value) + size > MAX_FIELD_BYTES:
                raise BadParameter(self._part_name or "form", "form field too long")
            self._field_value.extend(data[start:end])

    def _on_part_end(self) -> None:
        if self._part_is_file:
            self.close_file()
        elif self._part_name:
            self.fields[self._part_name] = self._field_value.decode("utf-8", "replace")

    def close_file(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def discard(self) -> None:
        self.close_file()
        if self.upload is not None:
            self.upload.path.unlink(missing_ok=True)


def multipart_boundary(content_type: str | None) -> bytes:
    ctype, params = parse_options_header(content_type or "")
    boundary = params.get(b"boundary")
    if ctype != b"multipart/form-data" or not boundary:
        raise BadParameter("file", "send the video as multipart/form-data "
                                   "with the file in a field named 'file'")
    return boundary


async def receive_upload(
    chunks: AsyncIterator[bytes],
    content_type: str | None,
    content_length: str | None,
    dest_dir: Path,
    max_bytes: int,
    file_field: str = "file",
) -> Upload:
    """Stream a multipart body to `dest_dir`; raise UploadTooLarge as soon as the file part
    passes `max_bytes` (and before reading at all when Content-Length already says so)."""
    boundary = multipart_boundary(content_type)
    if content_length and content_length.isdigit() and \
            int(content_length) > max_bytes + ENVELOPE_BYTES:
        raise UploadTooLarge(f"file: the upload ({int(content_length) / 1024 / 1024:.1f} MB) is "
                             f"larger than the limit of {max_bytes / 1024 / 1024:g} MB "
                             "(MAX_UPLOAD_MB)")
    dest_dir.mkdir(parents=True, exist_ok=True)
    collector = _PartCollector(dest_dir, file_field, max_bytes)
    parser = MultipartParser(boundary, collector.callbacks(),
                             max_size=max_bytes + ENVELOPE_BYTES)
    try:
        async for chunk in chunks:
            if chunk:
                parser.write(chunk)
        parser.finalize()
    except (UploadTooLarge, BadParameter):
        collector.discard()
        raise
    except Exception as exc:  # the parser's own errors: a body that is not valid multipart
        collector.discard()
        if "max_size" in str(exc) or "exceeded" in str(exc).lower():
            raise UploadTooLarge("file: the request body is larger than the upload limit "
                                 "(MAX_UPLOAD_MB)") from None
        raise BadInput(f"file: malformed multipart body ({type(exc).__name__})") from None
    collector.close_file()
    if collector.upload is None:
        raise BadParameter(file_field, "no file in the upload (field 'file')")
    if collector.upload.size == 0:
        collector.discard()
        raise BadParameter(file_field, "the uploaded file is empty")
    collector.upload.fields = collector.fields
    return collector.upload

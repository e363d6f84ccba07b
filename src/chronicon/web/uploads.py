"""Streamed multipart uploads: the file goes to disk chunk by chunk and the size limit is
enforced while it streams, so an oversize upload is refused after at most `max_bytes` bytes
were written (never buffered whole in memory or on disk first).

The user's filename is never used as a path: the file is stored under a generated name and the
original survives only as sanitised metadata (`sanitize_filename`). While it streams the file is
named `*.partial`; only a complete upload gets its final name, so what a killed server leaves
behind is recognisable and removed at the next start (`remove_partial_uploads`).

Failures say whose fault they are: a body that is not multipart or a filename too long for a
part header is the client's (4xx), a folder that cannot be written is the server's
(`StorageFailure` 500, `StorageFull` 507 for a full disk), and an upload that stalls or drags
on past its deadline is cut off (`UploadTimeout` 408).
"""

from __future__ import annotations

import asyncio
import errno
import os
import re
import unicodedata
import uuid
from collections.abc import AsyncIterator
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import (
    DEFAULT_MAX_HEADER_SIZE,
    MultipartParser,
    parse_options_header,
)

from ..errors import (
    BadInput,
    BadParameter,
    StorageFailure,
    StorageFull,
    UploadTimeout,
    UploadTooLarge,
)

VIDEO_EXTENSIONS = frozenset({".mp4", ".m4v", ".avi", ".mov", ".mkv", ".webm"})
MAX_FILENAME_CHARS = 120
# Form fields are a few numbers and a prompt; anything bigger is not a form we sent.
MAX_FIELD_BYTES = 16 * 1024
# Room for multipart boundaries, part headers and the form fields around the file itself.
ENVELOPE_BYTES = 256 * 1024
PARTIAL_SUFFIX = ".partial"
# Errors that mean "no room" rather than "not allowed".
NO_SPACE = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG})


def storage_error(exc: OSError) -> StorageFailure:
    """The server's own failure to store an upload, with the real cause and no server path."""
    cause = os.strerror(exc.errno) if exc.errno else type(exc).__name__
    if exc.errno in NO_SPACE:
        return StorageFull(f"the server has no room to store the upload ({cause}); free space "
                           "in its data directory, then upload again")
    return StorageFailure(f"the server could not store the upload ({cause}); its operator "
                          "should check that the data directory's uploads/ folder is writable")


def remove_partial_uploads(uploads_dir: Path) -> int:
    """Delete uploads a killed server left half-written; returns how many. Call at start only:
    a running server's uploads in progress are partial too."""
    removed = 0
    for path in uploads_dir.glob(f"*{PARTIAL_SUFFIX}"):
        with suppress(OSError):
            path.unlink()
            removed += 1
    return removed


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
        try:
            self._file = self.partial_path.open("wb")
        except OSError as exc:
            raise storage_error(exc) from None

    @property
    def partial_path(self) -> Path:
        assert self.upload is not None
        return self.upload.path.with_name(self.upload.path.name + PARTIAL_SUFFIX)

    def _on_part_data(self, data: bytes, start: int, end: int) -> None:
        size = end - start
        if self._part_is_file:
            assert self.upload is not None and self._file is not None
            if self.upload.size + size > self.max_bytes:
                raise UploadTooLarge(
                    f"file: the upload is larger than the limit of "
                    f"{self.max_bytes / 1024 / 1024:g} MB (MAX_UPLOAD_MB)")
            try:
                self._file.write(data[start:end])
            except OSError as exc:
                raise storage_error(exc) from None
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
            file, self._file = self._file, None
            try:
                file.close()  # flushes: a full disk can show here first
            except OSError as exc:
                raise storage_error(exc) from None

    def complete(self) -> None:
        """The whole body arrived: give the file its final name."""
        self.close_file()
        if self.upload is not None:
            try:
                self.partial_path.replace(self.upload.path)
            except OSError as exc:
                raise storage_error(exc) from None

    def discard(self) -> None:
        with suppress(StorageFailure):
            self.close_file()
        if self.upload is not None:
            with suppress(OSError):
                self.partial_path.unlink(missing_ok=True)
                self.upload.path.unlink(missing_ok=True)

    def long_header_message(self) -> str:
        """What to say when a part header passes the parser's limit: in practice a filename."""
        start = bytes(self._header_value).decode("utf-8", "replace")
        _, found, name = start.partition('filename="')
        shown = f" {name[:40]!r}…" if found and name else ""
        return (f"the filename{shown} is too long (a part header may have at most "
                f"{DEFAULT_MAX_HEADER_SIZE} bytes); rename the file to something shorter")


def multipart_boundary(content_type: str | None) -> bytes:
    ctype, params = parse_options_header(content_type or "")
    boundary = params.get(b"boundary")
    if ctype != b"multipart/form-data" or not boundary:
        raise BadParameter("file", "send the video as multipart/form-data "
                                   "with the file in a field named 'file'")
    return boundary


async def paced(chunks: AsyncIterator[bytes], total_s: float,
                idle_s: float) -> AsyncIterator[bytes]:
    """`chunks`, cut off with UploadTimeout when none arrives for `idle_s` seconds or the whole
    body takes longer than `total_s`: a slow or stalled client must not hold a connection and
    an open file for ever."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + total_s
    iterator = chunks.__aiter__()
    while True:
        remaining = deadline - loop.time()
        try:
            chunk = await asyncio.wait_for(anext(iterator), timeout=max(0.0, min(idle_s,
                                                                                remaining)))
        except StopAsyncIteration:
            return
        except TimeoutError:
            if loop.time() >= deadline:
                raise UploadTimeout(f"file: the upload took longer than {total_s:g} s "
                                    "(CHRONICON_UPLOAD_TIMEOUT)") from None
            raise UploadTimeout(f"file: the upload stalled (nothing received for {idle_s:g} s, "
                                "CHRONICON_UPLOAD_IDLE_TIMEOUT)") from None
        yield chunk


async def receive_upload(
    chunks: AsyncIterator[bytes],
    content_type: str | None,
    content_length: str | None,
    dest_dir: Path,
    max_bytes: int,
    file_field: str = "file",
    *,
    total_timeout_s: float = 600.0,
    idle_timeout_s: float = 30.0,
) -> Upload:
    """Stream a multipart body to `dest_dir`; raise UploadTooLarge as soon as the file part
    passes `max_bytes` (and before reading at all when Content-Length already says so),
    UploadTimeout past the deadlines (see `paced`), StorageFailure when the server cannot
    write."""
    boundary = multipart_boundary(content_type)
    if content_length and content_length.isdigit() and \
            int(content_length) > max_bytes + ENVELOPE_BYTES:
        raise UploadTooLarge(f"file: the upload ({int(content_length) / 1024 / 1024:.1f} MB) is "
                             f"larger than the limit of {max_bytes / 1024 / 1024:g} MB "
                             "(MAX_UPLOAD_MB)")
    try:
        dest_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise storage_error(exc) from None
    collector = _PartCollector(dest_dir, file_field, max_bytes)
    parser = MultipartParser(boundary, collector.callbacks())
    received = 0
    try:
        async for chunk in paced(chunks, total_timeout_s, idle_timeout_s):
            received += len(chunk)
            if received > max_bytes + ENVELOPE_BYTES:
                raise UploadTooLarge("file: the request body is larger than the upload limit "
                                     f"of {max_bytes / 1024 / 1024:g} MB (MAX_UPLOAD_MB)")
            if chunk:
                parser.write(chunk)
        parser.finalize()
        collector.complete()
    except (UploadTooLarge, UploadTimeout, BadParameter, StorageFailure):
        collector.discard()
        raise
    except (MultipartParseError, ValueError) as exc:  # a body that is not valid multipart
        collector.discard()
        if "header size" in str(exc):
            raise BadParameter(file_field, collector.long_header_message()) from None
        raise BadInput(f"file: malformed multipart body ({exc})") from None
    except BaseException:
        collector.discard()
        raise
    if collector.upload is None:
        raise BadParameter(file_field, "no file in the upload (field 'file')")
    if collector.upload.size == 0:
        collector.discard()
        raise BadParameter(file_field, "the uploaded file is empty")
    collector.upload.fields = collector.fields
    return collector.upload

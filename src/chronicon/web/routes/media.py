"""An analysis's video and its timeline as subtitles: what the analysis page's player plays.

The video is served by `FileResponse`, which answers `Range: bytes=…` requests with 206 and the
asked part, so a browser can seek without downloading the whole file.
"""

from __future__ import annotations

import mimetypes
from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, PlainTextResponse

from ...errors import NotFound
from ...timeline import SUBTITLE_FORMATS
from .analyses import get_record

router = APIRouter(tags=["analyses"])

_SUBTITLE_TYPES = {"vtt": "text/vtt; charset=utf-8", "srt": "application/x-subrip; charset=utf-8"}
_VIDEO_TYPES = {".mkv": "video/x-matroska", ".webm": "video/webm", ".mov": "video/quicktime",
                ".avi": "video/x-msvideo", ".mp4": "video/mp4", ".ts": "video/mp2t"}


@router.get("/api/analyses/{analysis_id}/video", response_class=FileResponse, responses={
    200: {"content": {"video/mp4": {}}}, 206: {"description": "the requested byte range"},
    404: {}})
def analysis_video(request: Request, analysis_id: str) -> FileResponse:
    """The analysed video file (HTTP Range supported, so players can seek)."""
    record = get_record(request, analysis_id)
    path = Path(record.video_path)
    if not path.is_file():
        raise NotFound(f"the video of analysis {analysis_id} is no longer stored "
                       f"({record.video_filename or path.name})")
    media_type = _VIDEO_TYPES.get(path.suffix.lower()) or mimetypes.guess_type(path.name)[0]
    return FileResponse(path, media_type=media_type or "application/octet-stream",
                        filename=record.video_filename or path.name,
                        content_disposition_type="inline")


@router.get("/api/analyses/{analysis_id}/timeline.{fmt}", response_class=PlainTextResponse,
            responses={200: {"content": {"text/vtt": {}, "application/x-subrip": {}}},
                       404: {}})
def analysis_subtitles(request: Request, analysis_id: str, fmt: str) -> PlainTextResponse:
    """The analysis's timeline as WebVTT (`timeline.vtt`) or SRT (`timeline.srt`)."""
    if fmt not in SUBTITLE_FORMATS:
        raise NotFound(f"no timeline format {fmt!r}: use timeline.vtt or timeline.srt")
    record = get_record(request, analysis_id)
    timeline = record.result.get("timeline")
    if not timeline:
        raise NotFound(f"analysis {analysis_id} has no timeline (analyse with the Timeline "
                       "option or `chronicon analyze --timeline`)")
    stem = Path(record.video_filename or "timeline").stem or "timeline"
    return PlainTextResponse(
        SUBTITLE_FORMATS[fmt](timeline), media_type=_SUBTITLE_TYPES[fmt],
        headers={"Content-Disposition": f'inline; filename="{_safe(stem)}.{fmt}"'})


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "._-" else "_" for c in name)[:80] or "timeline"

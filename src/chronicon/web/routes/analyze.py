"""POST /api/analyze: a streamed upload, probed, validated, queued (202 with the job id)."""

from __future__ import annotations

import time
from typing import Any

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from ...errors import BadVideo, ChroniconError, NotAVideo
from ...options import WEB_LIMITS, parse_options
from ...video.sampling import SAMPLERS
from ..auth import require_token
from ..uploads import Upload, receive_upload

router = APIRouter(tags=["analyze"])


class JobAccepted(BaseModel):
    job_id: str
    state: str
    position: int | None
    status_url: str
    events_url: str
    page_url: str


def _multipart_schema() -> dict[str, Any]:
    properties: dict[str, Any] = {
        "file": {"type": "string", "format": "binary",
                 "description": "the video (MP4, AVI, MOV, MKV, WebM); MAX_UPLOAD_MB applies"},
        "prompt": {"type": "string", "maxLength": WEB_LIMITS.max_prompt_chars},
        "model": {"type": "string", "description": "one of the models /health lists"},
        "sampling": {"type": "string", "enum": list(SAMPLERS)},
        "timeline": {"type": "string", "enum": ["on", "off"], "default": "off",
                     "description": "on: describe the video as a timeline of 30-s chunks "
                                    "(frames = frames per chunk), then summarise"},
    }
    for name, (low, high, default) in WEB_LIMITS.ranges().items():
        properties[name] = {"type": "integer", "minimum": low, "maximum": high, "default": default}
    return {"requestBody": {"required": True, "content": {"multipart/form-data": {"schema": {
        "type": "object", "required": ["file"], "properties": properties}}}}}


def allowed_models(request: Request) -> list[str]:
    """The server's model first, then the operator's allow-list (CHRONICON_MODELS), loaded on
    demand one at a time; nothing else, so no visitor can swap out or download a model."""
    services = request.app.state.services
    if services.backends.injected:
        return [services.settings.model]
    return services.settings.web_models


def reject_still_image(info: Any, upload: Upload) -> None:
    """One rule for still images: FFmpeg opens a PNG, JPEG or WebP as an image pipe and a GIF
    as a "video" of one frame; the web accepts videos only, so any of them gets a clear 415
    instead of a one-frame analysis (an animated GIF has frames and is a video)."""
    image_container = info.container.endswith("_pipe") or info.container == "image2"
    if image_container or info.frame_count == 1:
        raise NotAVideo(f"{upload.filename}: a still image ({info.codec}), not a video; "
                        "upload MP4, AVI, MOV, MKV or WebM")


def _rename_in_message(exc: ChroniconError, upload: Upload) -> ChroniconError:
    """Probe messages name the file; name the user's file, not our generated one."""
    exc.message = exc.message.replace(upload.path.name, upload.filename)
    exc.args = (exc.message,)
    return exc


def _position_at_submission(store: Any, job_id: str) -> int | None:
    """The position the job was queued at (its `queued` event): the worker may already have
    taken it by the time we answer."""
    queued = [e for e in store.job_events_after(job_id) if e.kind == "queued"]
    return queued[0].data.get("position") if queued else None


@router.post("/api/analyze", status_code=202, response_model=JobAccepted,
             dependencies=[Depends(require_token)], openapi_extra=_multipart_schema(),
             responses={413: {"description": "upload larger than MAX_UPLOAD_MB"},
                        415: {"description": "not a video"},
                        422: {"description": "bad parameter or unusable video"}})
async def submit_analysis(request: Request) -> JobAccepted:
    """Upload a video with the analysis parameters; the job is queued and runs in order.

    Parameters (form fields, all optional): frames 1-16 (8), max_tokens 250-500 (250),
    min_tokens 50-200 (50), resize 64-1536 (336), prompt, model, sampling uniform|motion|scene,
    timeline on|off (a timeline of 30-s chunks, `frames` per chunk, then a summary).
    """
    from ...video.probe import probe

    services = request.app.state.services
    settings = services.settings
    started = time.perf_counter()
    upload = await receive_upload(request.stream(), request.headers.get("content-type"),
                                  request.headers.get("content-length"), settings.uploads_dir,
                                  settings.max_upload_bytes,
                                  total_timeout_s=settings.upload_timeout_s,
                                  idle_timeout_s=settings.upload_idle_timeout_s)
    upload_seconds = time.perf_counter() - started
    try:
        options = parse_options(upload.fields, WEB_LIMITS, allowed_models(request))
        info = await run_in_threadpool(probe, upload.path, max_pixels=settings.max_pixels)
        reject_still_image(info, upload)
    except BadVideo as exc:
        upload.path.unlink(missing_ok=True)
        raise _rename_in_message(exc, upload) from None
    except BaseException:
        upload.path.unlink(missing_ok=True)
        raise
    detail = (f"{upload.filename}: {upload.size / 1024 / 1024:.1f} MB, "
              f"{info.duration:.1f} s, {info.width}x{info.height}")
    timeline = (upload.fields.get("timeline") or "").strip().lower() in ("on", "true", "1")
    job = await run_in_threadpool(
        services.queue.submit, upload.path, upload.filename, options,
        upload={"seconds": upload_seconds, "detail": detail, "video": info.to_dict()},
        kind="timeline" if timeline else "analyze")
    position = await run_in_threadpool(_position_at_submission, services.store, job.id)
    return JobAccepted(job_id=job.id, state=job.state, position=position,
                       status_url=f"/api/jobs/{job.id}", events_url=f"/api/jobs/{job.id}/events",
                       page_url=f"/jobs/{job.id}")

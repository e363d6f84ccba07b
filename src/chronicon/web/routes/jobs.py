"""Jobs: status with queue position, cancel, the live event stream, and the sampled frames."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Header, Path, Query, Request
from fastapi.responses import FileResponse, StreamingResponse
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from ...errors import NotFound
from ...store.job_records import JobRecord
from ..auth import require_token
from ..paging import Offset
from ..sse import job_event_stream, parse_last_event_id

router = APIRouter(tags=["jobs"])


class JobStatus(BaseModel):
    id: str
    state: str
    position: int | None
    analysis_id: str | None
    error: str | None
    error_type: str | None
    video_filename: str | None
    model: str | None
    options: dict[str, Any]
    created_at: str
    started_at: str | None
    finished_at: str | None
    interruptions: int
    worker_id: str | None = None  # the remote worker that holds (or last held) the job


class JobList(BaseModel):
    items: list[JobStatus]


def job_status(request: Request, job: JobRecord) -> JobStatus:
    store = request.app.state.services.store
    return JobStatus(id=job.id, state=job.state, position=store.queue_position(job.id),
                     analysis_id=job.analysis_id, error=job.error, error_type=job.error_type,
                     video_filename=job.video_filename, model=job.model, options=job.options,
                     created_at=job.created_at, started_at=job.started_at,
                     finished_at=job.finished_at, interruptions=job.interruptions,
                     worker_id=store.job_holder(job.id))


@router.get("/api/jobs", response_model=JobList)
def list_jobs(request: Request, limit: int = Query(50, ge=1, le=500),
              offset: Offset = 0) -> JobList:
    """Jobs, newest first (the System page's queue)."""
    jobs = request.app.state.services.store.list_jobs(limit, offset)
    return JobList(items=[job_status(request, j) for j in jobs])


@router.get("/api/jobs/{job_id}", response_model=JobStatus, responses={404: {}})
def get_job(request: Request, job_id: str) -> JobStatus:
    """State (queued, running, done, failed, cancelled), queue position, and the analysis id
    once done."""
    return job_status(request, request.app.state.services.queue.get(job_id))


@router.delete("/api/jobs/{job_id}", response_model=JobStatus,
               dependencies=[Depends(require_token)], responses={404: {}, 409: {}})
def cancel_job(request: Request, job_id: str) -> JobStatus:
    """Cancel a queued job (409 once it has started or finished)."""
    return job_status(request, request.app.state.services.queue.cancel(job_id))


@router.get("/api/jobs/{job_id}/events", responses={
    200: {"content": {"text/event-stream": {}}, "description": "Server-Sent Events"},
    404: {}})
async def job_events(request: Request, job_id: str,
                     last_event_id: str | None = Query(None, description="resume after this id"),
                     last_event_id_header: str | None = Header(None, alias="Last-Event-ID"),
                     ) -> StreamingResponse:
    """The job's progress as Server-Sent Events: stage_started/stage_finished (upload, probe,
    sampling, model_load, preprocess, generate, agent), queued/position, frame, thumbnail,
    token, decision, then done, failed or cancelled. Reconnecting with `Last-Event-ID` resumes
    after that event; a finished job replays everything."""
    services = request.app.state.services
    await run_in_threadpool(services.queue.get, job_id)  # 404 before the stream starts
    after = parse_last_event_id(last_event_id_header, last_event_id)
    stream = job_event_stream(services.store, job_id, after, request.is_disconnected)
    return StreamingResponse(stream, media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})


@router.get("/api/jobs/{job_id}/frames/{position}.jpg", response_class=FileResponse,
            responses={200: {"content": {"image/jpeg": {}}}, 404: {}})
def job_frame(request: Request, job_id: str, position: int = Path(ge=0, le=63)) -> FileResponse:
    """A frame the job sampled (0-based position), as JPEG."""
    services = request.app.state.services
    services.queue.get(job_id)
    path = services.queue.frames_dir(job_id) / f"{position}.jpg"
    if not path.is_file():
        raise NotFound(f"job {job_id} has no frame {position}")
    return FileResponse(path, media_type="image/jpeg")

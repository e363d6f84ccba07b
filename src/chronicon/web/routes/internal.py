"""The internal API remote workers use (`chronicon worker`, CHRONICON_QUEUE=redis://…).

Every route needs `Authorization: Bearer <CHRONICON_WORKER_TOKEN>`; without the setting the
server accepts no worker at all (401). A worker claims a job, streams its video (Range
requests resume a broken transfer), reports events and frame JPEGs as the job runs, then posts
the result or the failure; the server records them in SQLite, relays them to the job's SSE
stream and runs the agent. These routes are not in the public OpenAPI schema.
"""

from __future__ import annotations

import hmac
from pathlib import Path as FilePath
from typing import Any

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import FileResponse, JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from ...errors import BadParameter, Conflict, NotFound, Unauthorized

worker_bearer = HTTPBearer(auto_error=False, description="CHRONICON_WORKER_TOKEN")

MAX_FRAME_BYTES = 1024 * 1024  # the request guard caps bodies at 1 MB too
MAX_EVENTS_PER_BATCH = 5000
# What only the server writes: the job's ends, its decision, its queue events, and thumbnails
# (announced when the frame's JPEG has arrived). Workers report every other progress event.
SERVER_EVENT_KINDS = frozenset({"done", "failed", "cancelled", "decision", "queued", "position",
                                "interrupted", "thumbnail"})


def require_worker_token(
    request: Request,
    credentials: HTTPAuthorizationCredentials | None = Depends(worker_bearer),
) -> None:
    expected = request.app.state.services.settings.worker_token
    if expected is None:
        raise Unauthorized("this server accepts no workers: set CHRONICON_WORKER_TOKEN on the "
                           "server and give the workers the same value")
    if credentials is None:
        raise Unauthorized("workers must send 'Authorization: Bearer <CHRONICON_WORKER_TOKEN>'")
    if not hmac.compare_digest(credentials.credentials.encode(),
                               expected.get_secret_value().encode()):
        raise Unauthorized("the worker token is not correct; use the server's "
                           "CHRONICON_WORKER_TOKEN")


router = APIRouter(prefix="/internal", tags=["internal"], include_in_schema=False,
                   dependencies=[Depends(require_worker_token)])


class Heartbeat(BaseModel):
    host: str | None = None
    pid: int | None = None
    model: str | None = None
    device: str | None = None
    concurrency: int = Field(1, ge=1, le=1024)
    current_job: str | None = None
    jobs_done: int = Field(0, ge=0)
    model_loads: int = Field(0, ge=0)


class WorkerRef(BaseModel):
    worker_id: str = Field(min_length=1, max_length=200)


class WorkerEvent(BaseModel):
    kind: str
    data: dict[str, Any]


class EventBatch(WorkerRef):
    events: list[WorkerEvent] = Field(max_length=MAX_EVENTS_PER_BATCH)


class WorkerResult(WorkerRef):
    result: dict[str, Any]


class WorkerFailure(WorkerRef):
    error: str = Field(max_length=4000)
    error_type: str = Field("ChroniconError", max_length=100)


def _remote_queue(request: Request) -> Any:
    """The server's queue, when it takes remote workers (Conflict otherwise)."""
    queue = request.app.state.services.queue
    if not callable(getattr(queue, "claim", None)):
        raise Conflict("this server runs its jobs itself (CHRONICON_QUEUE=sqlite); point the "
                       "workers at a server started with CHRONICON_QUEUE=redis://…")
    return queue


@router.post("/workers/{worker_id}/heartbeat")
def heartbeat(request: Request, body: Heartbeat,
              worker_id: str = Path(min_length=1, max_length=200)) -> dict[str, Any]:
    """A worker is alive: its model, device and the job in hand (shown on /health, System)."""
    request.app.state.services.store.record_heartbeat(worker_id, **body.model_dump())
    return {"ok": True}


@router.post("/jobs/{job_id}/claim", responses={409: {}})
def claim(request: Request, job_id: str, body: WorkerRef) -> Any:
    """Take the job: 200 with what the worker needs, or 409 (finished, or another live worker
    holds it: this delivery is a duplicate and is dropped)."""
    answer = _remote_queue(request).claim(job_id, body.worker_id)
    if not answer.granted:
        return JSONResponse({"reason": answer.reason, "holder": answer.holder}, status_code=409)
    job = answer.job
    return {"id": job.id, "kind": job.kind, "options": job.options,
            "video_filename": job.video_filename,
            "video_suffix": FilePath(job.video_path).suffix,
            "video_size": FilePath(job.video_path).stat().st_size
            if FilePath(job.video_path).exists() else None}


@router.get("/jobs/{job_id}/video", response_class=FileResponse)
def video(request: Request, job_id: str) -> FileResponse:
    """The job's uploaded video, streamed; `Range: bytes=N-` resumes a broken download."""
    job = request.app.state.services.queue.get(job_id)
    path = FilePath(job.video_path)
    if not path.is_file():
        raise NotFound(f"the video of job {job_id} is no longer on the server")
    return FileResponse(path, media_type="application/octet-stream")


@router.post("/jobs/{job_id}/events")
def events(request: Request, job_id: str, body: EventBatch) -> dict[str, Any]:
    """Progress events in the order they happened (token pieces already joined)."""
    for event in body.events:
        if event.kind in SERVER_EVENT_KINDS:
            raise BadParameter("events", f"a worker cannot report {event.kind!r} events")
    count = _remote_queue(request).worker_events(
        job_id, body.worker_id, [(e.kind, e.data) for e in body.events])
    return {"accepted": count}


@router.put("/jobs/{job_id}/frames/{position}")
async def frame(request: Request, job_id: str, position: int = Path(ge=0, le=63),
                index: int = Query(ge=0), timestamp: float = Query(ge=0),
                worker_id: str = Query(min_length=1, max_length=200)) -> dict[str, Any]:
    """One sampled frame as JPEG (the request body): kept with the job, announced as a
    `thumbnail` event."""
    jpeg = await request.body()
    if len(jpeg) > MAX_FRAME_BYTES or not jpeg.startswith(b"\xff\xd8"):
        raise BadParameter("frame", "expected one JPEG image of at most 1 MB")
    await run_in_threadpool(_remote_queue(request).worker_frame, job_id, worker_id, position,
                            index, timestamp, jpeg)
    return {"ok": True}


@router.post("/jobs/{job_id}/result")
def result(request: Request, job_id: str, body: WorkerResult) -> dict[str, Any]:
    """The result JSON: recorded once (a second post for the job returns the same analysis),
    then the agent decides and the job is done."""
    for key in ("analysis", "timestamp", "model"):
        if key not in body.result:
            raise BadParameter("result", f"the result has no {key!r}")
    job = _remote_queue(request).worker_result(job_id, body.worker_id, body.result)
    return {"state": job.state, "analysis_id": job.analysis_id}


@router.post("/jobs/{job_id}/failure")
def failure(request: Request, job_id: str, body: WorkerFailure) -> dict[str, Any]:
    """The job could not be analysed (a bad video, a model that cannot load): it fails with
    the worker's message."""
    job = _remote_queue(request).worker_failure(job_id, body.worker_id, body.error,
                                                body.error_type)
    return {"state": job.state}

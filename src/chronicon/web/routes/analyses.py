"""The history: analyses newest first, one analysis, its exact result file, its frames."""

from __future__ import annotations

import json
from pathlib import Path as FsPath
from typing import Any

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import FileResponse, JSONResponse, Response
from pydantic import BaseModel

from ...errors import NotFound
from ...store.analysis_records import AnalysisRecord
from ..paging import Offset

router = APIRouter(tags=["analyses"])


class FrameRef(BaseModel):
    position: int
    index: int | None = None
    timestamp: float | None = None
    url: str


class AnalysisSummary(BaseModel):
    id: str
    created_at: str
    video_filename: str | None
    model: str | None
    label: str | None
    excerpt: str
    device: str | None
    num_frames: int | None
    job_id: str | None
    thumbnail_url: str | None


class AnalysisDetail(AnalysisSummary):
    result: dict[str, Any]
    agent: dict[str, Any] | None
    deliveries: list[dict[str, Any]]
    frames: list[FrameRef]
    result_url: str


class AnalysisPage(BaseModel):
    items: list[AnalysisSummary]
    total: int
    limit: int
    offset: int


def frame_refs(record: AnalysisRecord) -> list[FrameRef]:
    if not record.frames_dir:
        return []
    frames_dir = FsPath(record.frames_dir)
    listing_path = frames_dir / "frames.json"
    listing = json.loads(listing_path.read_text()) if listing_path.is_file() else [
        {"position": int(p.stem)} for p in frames_dir.glob("*.jpg") if p.stem.isdigit()]
    return [FrameRef(**entry, url=f"/api/analyses/{record.id}/frames/{entry['position']}.jpg")
            for entry in sorted(listing, key=lambda e: e["position"])]


def summary(record: AnalysisRecord) -> dict[str, Any]:
    text = str(record.result.get("analysis", ""))
    has_thumb = bool(record.frames_dir) and (FsPath(record.frames_dir) / "0.jpg").is_file()
    return {
        "id": record.id, "created_at": record.created_at,
        "video_filename": record.video_filename, "model": record.model, "label": record.label,
        "excerpt": text[:200] + ("…" if len(text) > 200 else ""),
        "device": record.result.get("device"), "num_frames": record.result.get("num_frames"),
        "job_id": record.job_id,
        "thumbnail_url": f"/api/analyses/{record.id}/frames/0.jpg" if has_thumb else None,
    }


def get_record(request: Request, analysis_id: str) -> AnalysisRecord:
    record = request.app.state.services.store.get_analysis(analysis_id)
    if record is None:
        raise NotFound(f"no analysis with id {analysis_id}")
    return record


# What an email delivery's status means for the long-standing `email_status` field.
_EMAIL_STATUS = {"sent": "sent", "queued": "queued", "retrying": "queued", "sending": "queued",
                 "failed": "failed", "suppressed": "skipped"}


def agent_answer(store: Any, record: AnalysisRecord,
                 deliveries: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The agent's answer for this analysis, from the one stored decision (joined on run_id)
    and its deliveries as they stand now; `{"error"}` when the agent step failed."""
    if record.agent_error:
        return {"error": record.agent_error}
    if record.decision_id is None:
        return None
    decision = store.get_decision(record.decision_id)
    if decision is None:
        return None
    email = next((d for d in deliveries if d["channel"] == "email"), None)
    return {"decision": {"label": decision.label, "score": decision.score,
                         "reason": decision.reason},
            "action": decision.action if decision.label != "none" else "none",
            "email_status": _EMAIL_STATUS.get(email["status"], "queued") if email else "skipped",
            "decision_id": decision.id,
            "labels": list(dict.fromkeys(m["label"] for m in decision.matches)),
            "matches": decision.matches}


def current_deliveries(store: Any, record: AnalysisRecord) -> list[dict[str, Any]]:
    """The agent's deliveries for this analysis as they stand now (not as first queued)."""
    if record.decision_id is None:
        return []
    return [{k: v for k, v in d.to_dict().items() if k != "payload"}
            for d in store.deliveries_for_decision(record.decision_id)]


def detail(store: Any, record: AnalysisRecord) -> AnalysisDetail:
    deliveries = current_deliveries(store, record)
    return AnalysisDetail(**summary(record), result=record.result,
                          agent=agent_answer(store, record, deliveries),
                          deliveries=deliveries, frames=frame_refs(record),
                          result_url=f"/api/analyses/{record.id}/result.json")


@router.get("/api/analyses", response_model=AnalysisPage)
def list_analyses(request: Request, limit: int = Query(20, ge=1, le=200),
                  offset: Offset = 0) -> AnalysisPage:
    """Past analyses, newest first."""
    store = request.app.state.services.store
    items = [AnalysisSummary(**summary(r)) for r in store.list_analyses(limit, offset)]
    return AnalysisPage(items=items, total=store.count_analyses(), limit=limit, offset=offset)


@router.get("/api/analyses/{analysis_id}", response_model=AnalysisDetail, responses={404: {}})
def get_analysis(request: Request, analysis_id: str) -> AnalysisDetail:
    """One analysis: the result, the agent's decision and delivery status, the frames."""
    return detail(request.app.state.services.store, get_record(request, analysis_id))


@router.get("/api/analyses/{analysis_id}/result.json", responses={
    200: {"content": {"application/json": {}}}, 404: {}})
def download_result(request: Request, analysis_id: str) -> Response:
    """The exact result file the CLI writes for this analysis, as a download."""
    record = get_record(request, analysis_id)
    filename = f"chronicon-{record.id}.json"
    disposition = {"Content-Disposition": f'attachment; filename="{filename}"'}
    if record.result_path and FsPath(record.result_path).is_file():
        return FileResponse(record.result_path, media_type="application/json",
                            headers=disposition)
    return JSONResponse(record.result, headers=disposition)


@router.get("/api/analyses/{analysis_id}/frames/{position}.jpg", response_class=FileResponse,
            responses={200: {"content": {"image/jpeg": {}}}, 404: {}})
def analysis_frame(request: Request, analysis_id: str,
                   position: int = Path(ge=0, le=63)) -> FileResponse:
    """A sampled frame of the analysis (0-based position), as JPEG."""
    record = get_record(request, analysis_id)
    path = FsPath(record.frames_dir or "") / f"{position}.jpg"
    if not record.frames_dir or not path.is_file():
        raise NotFound(f"analysis {analysis_id} has no frame {position}")
    return FileResponse(path, media_type="image/jpeg")

"""Questions about an analysis: ask one (`POST`, queued as an `ask` job on the warm model and
streamed over the job's SSE), read the thread (`GET`)."""

from __future__ import annotations

from dataclasses import replace

from fastapi import APIRouter, Body, Depends, Request
from pydantic import BaseModel, Field

from ...ask import DEFAULT_ANSWER_TOKENS, MAX_QUESTION_CHARS, check_question, question_source
from ...store.job_records import CANCELLED
from ...store.job_records import FAILED as JOB_FAILED
from ...store.question_records import ASKED, FAILED, QuestionRecord
from ..auth import require_token
from .analyses import get_record

router = APIRouter(tags=["questions"])

MAX_ANSWER_TOKENS = 500


class AskRequest(BaseModel):
    question: str = Field(..., max_length=MAX_QUESTION_CHARS)
    max_tokens: int = Field(DEFAULT_ANSWER_TOKENS, ge=1, le=MAX_ANSWER_TOKENS)


class AskAccepted(BaseModel):
    question_id: int
    job_id: str
    state: str
    position: int | None
    status_url: str
    events_url: str


class Thread(BaseModel):
    items: list[QuestionRecord]


def thread(store, analysis_id: str) -> list[QuestionRecord]:
    """The analysis' questions; one whose job was cancelled (or failed before the question
    could record why) shows as failed, not as waiting forever."""
    items = []
    for question in store.list_questions(analysis_id):
        job = store.get_job(question.job_id) if question.state == ASKED and question.job_id \
            else None
        if job is not None and job.state in (CANCELLED, JOB_FAILED):
            question = replace(question, state=FAILED,
                               error=job.error or f"the question's job was {job.state}")
        items.append(question)
    return items


@router.get("/api/analyses/{analysis_id}/questions", response_model=Thread, responses={404: {}})
def list_questions(request: Request, analysis_id: str) -> Thread:
    """The questions asked about this analysis and their answers, oldest first."""
    get_record(request, analysis_id)
    return Thread(items=thread(request.app.state.services.store, analysis_id))


@router.post("/api/analyses/{analysis_id}/ask", status_code=202, response_model=AskAccepted,
             dependencies=[Depends(require_token)], responses={404: {}, 422: {}})
def ask(request: Request, analysis_id: str, body: AskRequest = Body(...)) -> AskAccepted:
    """Ask the model a question about this analysis. It is queued like an analysis (one worker,
    the warm model) and answered from the analysis' frames (a timeline: the chunk the question
    names, e.g. "at 03:20", else all captions). Follow `events_url` (SSE: `token` pieces of the
    answer, then `done` or `failed`); the answer is stored in the analysis' thread."""
    services = request.app.state.services
    question = check_question(body.question)
    record = get_record(request, analysis_id)
    from ...options import AnalysisOptions  # the job queue's one typed request

    stored = services.store.add_question(record.id, question)
    # The job's "video" is a path that never exists: an ask job reads the analysis' stored
    # frames, and cancelling a queued job (which deletes its video) must not touch the real one.
    placeholder = services.settings.data_dir / "questions" / str(stored.id)
    options = AnalysisOptions(prompt=question, max_tokens=body.max_tokens, min_tokens=1)
    job = services.queue.submit(placeholder, record.video_filename or "video", options,
                                source=question_source(stored.id), kind="ask")
    services.store.set_question_job(stored.id, job.id)
    return AskAccepted(question_id=stored.id, job_id=job.id, state=job.state,
                       position=services.store.queue_position(job.id),
                       status_url=f"/api/jobs/{job.id}", events_url=f"/api/jobs/{job.id}/events")

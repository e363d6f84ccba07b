"""Questions about one analysis, answered by the model from what the analysis kept.

A plain analysis is asked about its stored frames (JPEGs at the analysis resolution, with their
timestamps). A timeline is asked about the chunk the question names ("at 03:20", "chunk 4"):
that chunk's frames with its caption; a question that names no moment is answered from all the
captions as text. `answer_question` stores the question and its answer with the analysis (its
thread); the CLI calls it directly, the web through an `ask` job on the shared warm model.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image

from .errors import BadParameter, NotFound
from .events import EventCallback, ignore_event
from .store import Store
from .store.analysis_records import AnalysisRecord
from .store.question_records import QuestionRecord
from .video.frames import Frame
from .vlm.backend import GenerationParams

MAX_QUESTION_CHARS = 500
DEFAULT_ANSWER_TOKENS = 100
# Captions are short; this bounds the prompt of a long timeline all the same.
MAX_CAPTIONS_CHARS = 6000

FRAMES_PROMPT = "Answer the question about this video in one or two sentences.\nQuestion: {q}"
CHUNK_PROMPT = ("This part of the video ({start}-{end}) was described as: {caption}\n"
                "Answer the question about it in one or two sentences.\nQuestion: {q}")
CAPTIONS_PROMPT = ("Below are captions of consecutive parts of one video, each with its time "
                   "range.\n{captions}\n\nAnswer the question in one or two sentences, naming "
                   "the time when it matters.\nQuestion: {q}")

_CLOCK = re.compile(r"\b(?:(\d{1,2}):)?(\d{1,2}):(\d{2})\b")
_CHUNK = re.compile(r"\b(?:chunk|part|segment)\s+(\d{1,4})\b", re.IGNORECASE)


def check_question(question: str) -> str:
    """The question trimmed; BadParameter when empty or too long."""
    if not isinstance(question, str) or not question.strip():
        raise BadParameter("question", "must not be empty; ask something about the video")
    if len(question) > MAX_QUESTION_CHARS:
        raise BadParameter("question", f"at most {MAX_QUESTION_CHARS} characters, "
                                       f"got {len(question)}")
    return question.strip()


def clock(seconds: float) -> str:
    minutes, rest = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{rest:02d}" if hours else f"{minutes:02d}:{rest:02d}"


def named_moment(question: str, chunks: list[dict[str, Any]]) -> int | None:
    """The index of the timeline chunk the question names: a time ("at 03:20", "1:02:05")
    inside it, or "chunk N" / "part N" (1-based). None when it names none (or none that
    exists)."""
    by_number = _CHUNK.search(question)
    if by_number and 1 <= int(by_number.group(1)) <= len(chunks):
        return int(by_number.group(1)) - 1
    at = _CLOCK.search(question)
    if at:
        hours, minutes, seconds = (int(g or 0) for g in at.groups())
        moment = hours * 3600 + minutes * 60 + seconds
        for i, chunk in enumerate(chunks):
            if float(chunk["start"]) <= moment < float(chunk["end"]):
                return i
        if chunks and moment == float(chunks[-1]["end"]):
            return len(chunks) - 1
    return None


def stored_frames(record: AnalysisRecord) -> list[Frame]:
    """The analysis' frames as it kept them (position order), with their index and timestamp."""
    if not record.frames_dir:
        return []
    directory = Path(record.frames_dir)
    listing_path = directory / "frames.json"
    if listing_path.is_file():
        listing = json.loads(listing_path.read_text("utf-8"))
    else:
        listing = [{"position": int(p.stem), "index": int(p.stem), "timestamp": 0.0}
                   for p in directory.glob("*.jpg") if p.stem.isdigit()]
    frames = []
    for entry in sorted(listing, key=lambda e: e["position"]):
        path = directory / f"{entry['position']}.jpg"
        if path.is_file():
            with Image.open(path) as image:
                frames.append(Frame(int(entry.get("index", entry["position"])),
                                    float(entry.get("timestamp") or 0.0), image.convert("RGB")))
    return frames


@dataclass(frozen=True)
class AskPlan:
    """What the model is given: `frames` (empty: a text-only prompt) and the prompt; `basis`
    says which ("frames", "chunk 3 (01:00-01:30)", "captions")."""

    frames: list[Frame]
    prompt: str
    basis: str


def plan_answer(record: AnalysisRecord, question: str) -> AskPlan:
    chunks = [c for c in record.result.get("timeline") or [] if isinstance(c, dict)]
    frames = stored_frames(record)
    if not chunks:
        if not frames:
            raise NotFound(f"analysis {record.id} kept no frames to answer from")
        return AskPlan(frames, FRAMES_PROMPT.format(q=question), "frames")
    index = named_moment(question, chunks)
    if index is None:
        lines = [f"[{clock(c['start'])}-{clock(c['end'])}] {' '.join(str(c['caption']).split())}"
                 for c in chunks]
        captions = "\n".join(lines)[:MAX_CAPTIONS_CHARS]
        return AskPlan([], CAPTIONS_PROMPT.format(captions=captions, q=question), "captions")
    chunk = chunks[index]
    # A timeline keeps every chunk's frames in one list, chunk after chunk.
    per_chunk = len(chunks[0].get("frames") or [])
    chunk_frames = frames[index * per_chunk:(index + 1) * per_chunk] or frames
    span = f"{clock(chunk['start'])}-{clock(chunk['end'])}"
    prompt = CHUNK_PROMPT.format(start=clock(chunk["start"]), end=clock(chunk["end"]),
                                 caption=chunk["caption"], q=question)
    return AskPlan(chunk_frames, prompt, f"chunk {index + 1} ({span})")


def generate_answer(backend: Any, plan: AskPlan, params: GenerationParams,
                    on_piece: Callable[[str], None],
                    on_event: EventCallback = ignore_event) -> str:
    """Run the model on the plan; the whole answer (also streamed piece by piece)."""
    pieces: list[str] = []

    def collect(piece: str) -> None:
        pieces.append(piece)
        on_piece(piece)

    if plan.frames:
        backend.generate(plan.frames, plan.prompt, params, collect, on_event=on_event)
    else:
        backend.generate_text(plan.prompt, params, collect)
    return "".join(pieces).strip()


def get_analysis(store: Store, analysis_id: str) -> AnalysisRecord:
    record = store.get_analysis(analysis_id)
    if record is None:
        raise NotFound(f"no analysis with id {analysis_id} (see `chronicon search` or the "
                       "History page for ids)")
    return record


def answer_question(store: Store, backend: Any, question: QuestionRecord, *,
                    max_tokens: int = DEFAULT_ANSWER_TOKENS,
                    on_piece: Callable[[str], None] = lambda piece: None,
                    on_event: EventCallback = ignore_event) -> QuestionRecord:
    """Answer a stored question and store the answer (or, on failure, why not, then raise)."""
    try:
        record = get_analysis(store, question.analysis_id)
        plan = plan_answer(record, question.question)
        params = GenerationParams(max_tokens=max_tokens, min_tokens=min(1, max_tokens))
        answer = generate_answer(backend, plan, params, on_piece, on_event)
    except Exception as exc:
        store.fail_question(question.id, getattr(exc, "message", None)
                            or f"internal error: {type(exc).__name__}")
        raise
    store.answer_question(question.id, answer, backend.info().model_id)
    found = store.get_question(question.id)
    assert found is not None
    return found


def ask(store: Store, backend: Any, analysis_id: str, question: str, **options: Any
        ) -> QuestionRecord:
    """Store `question` on the analysis and answer it now (the CLI's path)."""
    question = check_question(question)
    get_analysis(store, analysis_id)  # NotFound before anything is stored
    return answer_question(store, backend, store.add_question(analysis_id, question), **options)



# ---- the `ask` job kind ------------------------------------------------------------------------

QUESTION_SOURCE = "question:"


def question_source(question_id: int) -> str:
    """How an `ask` job names its question (the job's `source`)."""
    return f"{QUESTION_SOURCE}{question_id}"


def run_ask_job(job: Any, context: Any) -> str:
    """The `ask` job kind: answer the question the job's source names with the worker's warm
    model, streaming the answer as `token` events; returns the analysis id (its `done` event
    names it). The question's row records the answer, or why there is none."""
    from .events import Stage, StageFinished, StageStarted, TokenGenerated

    source = job.source or ""
    question = None
    if source.startswith(QUESTION_SOURCE) and source[len(QUESTION_SOURCE):].isdigit():
        question = context.store.get_question(int(source[len(QUESTION_SOURCE):]))
    if question is None:
        raise NotFound(f"job {job.id} names no stored question ({source!r})")
    backend = context.backends.get(None)  # the server's model, warm for every job
    if not backend.loaded:
        context.emit(StageStarted(Stage.MODEL_LOAD))
        seconds = backend.load()
        context.backends.count_load(seconds)
        context.emit(StageFinished(Stage.MODEL_LOAD, seconds))
    max_tokens = int((job.options or {}).get("max_tokens") or DEFAULT_ANSWER_TOKENS)
    context.emit(StageStarted(Stage.GENERATE, "answer"))
    started = time.perf_counter()
    answered = answer_question(context.store, backend, question, max_tokens=max_tokens,
                               on_piece=lambda piece: context.emit(TokenGenerated(piece)),
                               on_event=context.emit)
    context.emit(StageFinished(Stage.GENERATE, time.perf_counter() - started, "answer"))
    return answered.analysis_id


__all__ = ["AskPlan", "MAX_QUESTION_CHARS", "answer_question", "ask", "check_question",
           "named_moment", "plan_answer", "question_source", "run_ask_job", "stored_frames"]

"""The job queue: jobs persisted in SQLite, run one at a time by ONE worker thread that keeps
one model backend loaded for every job (a model is never loaded per request).

States: queued → running → done | failed, or queued → cancelled. Every progress event of a job
is persisted (`job_events`) so a browser that reconnects, or opens a finished job, replays it.
A process that dies mid-job leaves the job `running`; the next `JobQueue.recover()` puts it
back in the queue, so nothing submitted is lost.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .config import Settings
from .errors import ChroniconError, Conflict, ModelUnavailable, NotFound
from .events import (
    Done,
    Event,
    EventCallback,
    Failed,
    Stage,
    StageFinished,
    StageStarted,
    TokenGenerated,
    to_dict,
)
from .search import index_analysis
from .store import Store
from .store.job_records import DONE, FAILED, QUEUED, JobRecord
from .video.frames import Frame, save_frames
from .vlm.warm import WarmBackend  # moved to vlm/; kept importable from here

log = logging.getLogger(__name__)

TERMINAL_EVENT_KINDS = frozenset({"done", "failed", "cancelled"})

# The agent step, given (analysis_id, description, video_filename, JPEG frames) → its answer
# (MISSION §6 shape). Built by the app so this module knows nothing of rules files.
AgentStep = Callable[[str, str, str, list], dict]


class TokenBatcher:
    """At most one `token` event per `window` seconds: a piece that comes after a quiet spell
    goes out at once, pieces that come faster are joined. The page still sees the text grow
    live, and the store writes ~20 rows a second instead of one per token (each row is a
    committed transaction that the SSE readers poll)."""

    def __init__(self, emit: Callable[[str], None], window: float = 0.05):
        self._emit = emit
        self._window = window
        self._pieces: list[str] = []
        self._last_emit = float("-inf")

    def add(self, text: str) -> None:
        self._pieces.append(text)
        if time.monotonic() - self._last_emit >= self._window:
            self.flush()

    def flush(self) -> None:
        if self._pieces:
            text, self._pieces = "".join(self._pieces), []
            self._last_emit = time.monotonic()
            self._emit(text)


@dataclass
class JobRuntime:
    """What the running job shares with `status()`: id and when it started."""

    job_id: str
    started: float


class JobQueue:
    """Submit, cancel and run analysis jobs; `start()` the worker, `stop()` it at shutdown."""

    def __init__(self, settings: Settings, store: Store, backends: WarmBackend,
                 agent_step: AgentStep | None = None, preload: bool = False):
        self.settings = settings
        self.store = store
        self.backends = backends
        self.agent_step = agent_step
        self.preload = preload
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.current: JobRuntime | None = None

    # ---- paths -----------------------------------------------------------------------------------
    def frames_dir(self, job_id: str) -> Path:
        return self.settings.frames_dir / job_id

    # ---- public API ------------------------------------------------------------------------------
    def submit(self, video_path: Path, video_filename: str, model: str | None,
               options: dict[str, Any], upload: dict[str, Any] | None = None) -> JobRecord:
        """Queue a probed upload; `upload` (size, seconds, video info) becomes its first events."""
        first = []
        if upload:
            first.append(("stage_finished", to_dict(StageFinished(
                Stage.UPLOAD, upload.get("seconds", 0.0), detail=upload.get("detail", "")))))
        job = self.store.insert_job(uuid.uuid4().hex, str(video_path), video_filename, model,
                                    options, first_events=first)
        self._wake.set()
        return job

    def cancel(self, job_id: str) -> JobRecord:
        """Cancel a queued job (Conflict once it has started or finished)."""
        job = self.get(job_id)  # 404 for an unknown id
        if not self.store.cancel_queued_job(job_id, ("cancelled",
                                                     {"detail": "cancelled by request"})):
            raise Conflict(f"job {job_id} is {self.get(job_id).state}; only a queued job "
                           "can be cancelled")
        Path(job.video_path).unlink(missing_ok=True)  # never analysed: nothing refers to it
        return self.get(job_id)

    def get(self, job_id: str) -> JobRecord:
        job = self.store.get_job(job_id)
        if job is None:
            raise NotFound(f"no job with id {job_id}")
        return job

    def depth(self) -> int:
        return self.store.count_jobs_by_state()[QUEUED]

    def recover(self) -> list[str]:
        """Requeue the jobs a dead process left running; each gets an `interrupted` event."""
        ids = self.store.requeue_running_jobs()
        for job_id in ids:
            self.store.append_job_event(job_id, "interrupted",
                                        {"detail": "the server stopped during this job; requeued"})
            self.store.append_job_event(job_id, "queued",
                                        {"position": self.store.queue_position(job_id)})
            log.warning("job %s was interrupted by a restart; requeued", job_id)
        return ids

    def start(self) -> None:
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="chronicon-worker", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Stop after the current job; a job cut off here is requeued by the next recover()."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    # ---- the worker ------------------------------------------------------------------------------
    def _loop(self) -> None:
        if self.preload:
            try:
                self.backends.preload()
            except Exception as exc:  # noqa: BLE001 - jobs will report it with their own error
                self.backends.last_error = str(exc)
                log.error("could not preload the model: %s", exc)
        while not self._stop.is_set():
            try:
                job = self.store.claim_next_job()
            except Exception:  # noqa: BLE001 - a locked or full disk must not end the worker
                log.exception("could not read the job queue; retrying")
                self._stop.wait(2.0)
                continue
            if job is None:
                self._wake.wait(timeout=1.0)
                self._wake.clear()
                continue
            self.current = JobRuntime(job.id, time.monotonic())
            try:
                self._run(job)
            finally:
                self.current = None

    def _emit(self, job_id: str, event: Event) -> None:
        self.store.append_job_event(job_id, event.kind, to_dict(event))

    def _run(self, job: JobRecord) -> None:
        stored_name = Path(job.video_path).name
        tokens = TokenBatcher(lambda text: self._emit(job.id, TokenGenerated(text)))

        def on_event(event: Event) -> None:
            # The job's own done/failed come after the agent step; analyze's are not terminal.
            if isinstance(event, Done | Failed):
                return
            if isinstance(event, TokenGenerated):
                tokens.add(event.text)
                return
            tokens.flush()
            detail = getattr(event, "detail", "")
            if stored_name in detail:  # show the user's file name, not our generated one
                event = dataclasses.replace(
                    event, detail=detail.replace(stored_name, job.video_filename or "video"))
            self._emit(job.id, event)

        try:
            try:
                analysis_id = self._analyse(job, on_event)
            finally:
                tokens.flush()
        except ChroniconError as exc:
            if isinstance(exc, ModelUnavailable):
                self.backends.last_error = exc.message
            self._fail(job, exc.message, type(exc).__name__)
        except Exception as exc:  # noqa: BLE001 - the worker must survive any one job
            log.exception("job %s failed", job.id)
            self._fail(job, f"internal error: {type(exc).__name__}", type(exc).__name__)
        else:
            record = self.store.get_analysis(analysis_id)
            done = Done({"analysis_id": analysis_id, "label": record.label if record else None})
            self.store.finish_job(job.id, DONE, (done.kind, to_dict(done)),
                                  analysis_id=analysis_id)

    def _fail(self, job: JobRecord, message: str, error_type: str) -> None:
        failed = Failed(message, error_type)
        self.store.finish_job(job.id, FAILED, (failed.kind, to_dict(failed)), error=message,
                              error_type=error_type)

    def _analyse(self, job: JobRecord, on_event: EventCallback) -> str:
        from .analysis import AnalysisOptions, analyze, save_result

        options = AnalysisOptions(**job.options)
        options.validate()
        backend = self.backends.get(job.model)
        was_loaded = backend.loaded
        frames_dir = self.frames_dir(job.id)
        result = None
        try:
            # Frames are saved and announced before generation, so the page shows them while
            # the text is still being written.
            result = analyze(Path(job.video_path), options, backend, on_event,
                             on_frames=lambda frames: self._save_frames(job.id, frames))
        finally:
            if not was_loaded and backend.loaded:  # this job paid for the (one) model load
                self.backends.count_load(result.times.model_load if result else 0.0)
        analysis_id = uuid.uuid4().hex
        result_path = save_result(result, self.settings.results_dir)
        self.store.insert_analysis(
            analysis_id, result.to_dict(), video_path=job.video_path,
            video_filename=job.video_filename, model=result.backend.model_id,
            frames_dir=str(frames_dir), job_id=job.id, result_path=str(result_path))
        index_analysis(self.store, analysis_id, result.to_dict())
        if self.agent_step is not None and self.settings.agent_enabled:
            self._run_agent(job, analysis_id, result, on_event)
        return analysis_id

    def _run_agent(self, job: JobRecord, analysis_id: str, result: Any,
                   on_event: EventCallback) -> None:
        """The agent's failure does not fail the analysis: it is recorded and shown."""
        assert self.agent_step is not None
        on_event(StageStarted(Stage.AGENT))
        started = time.perf_counter()
        text = result.analysis
        try:
            outcome = self.agent_step(analysis_id, text, job.video_filename or "",
                                      self._frame_jpegs(job.id))
        except ChroniconError as exc:
            outcome = {"error": exc.message}
        except Exception as exc:  # noqa: BLE001
            log.exception("agent failed for analysis %s", analysis_id)
            outcome = {"error": f"internal error: {type(exc).__name__}"}
        label = (outcome.get("decision") or {}).get("label")
        self.store.set_analysis_agent(analysis_id, outcome, label)
        self.store.append_job_event(job.id, "decision", outcome)
        on_event(StageFinished(Stage.AGENT, time.perf_counter() - started,
                               detail=label or outcome.get("error", "")))

    def _frame_jpegs(self, job_id: str) -> list[bytes]:
        """The saved frames as JPEG bytes, in order (what email actions attach)."""
        paths = [p for p in self.frames_dir(job_id).glob("*.jpg") if p.stem.isdigit()]
        return [p.read_bytes() for p in sorted(paths, key=lambda p: int(p.stem))]

    def _save_frames(self, job_id: str, frames: list[Frame]) -> None:
        """Keep the frames with the job and announce each as a `thumbnail` event."""
        for entry in save_frames(frames, self.frames_dir(job_id)):
            url = f"/api/jobs/{job_id}/frames/{entry['position']}.jpg"
            self.store.append_job_event(job_id, "thumbnail", {**entry, "url": url})


__all__ = ["JobQueue", "WarmBackend", "TERMINAL_EVENT_KINDS"]

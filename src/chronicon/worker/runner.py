"""Run one job on a worker: claim it, fetch its video, analyse, report, hand back the result.

The server stays the only writer of the record: the worker sends events, frame JPEGs and the
result JSON, and the server stores them, relays them to the page and runs the agent. A job the
worker cannot analyse (a bad video, a parameter the model refuses) is reported as failed and
acknowledged; only an unreachable server makes the actor raise, so the job comes back later.
"""

from __future__ import annotations

import dataclasses
import io
import logging
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import ChroniconError
from ..events import Done, Event, Failed, to_dict
from ..video.frames import FRAME_JPEG_QUALITY, Frame
from ..vlm.coalesce import CoalescingBackend
from .client import JobTaken, ServerClient, ServerUnreachable
from .uplink import EventUplink

log = logging.getLogger(__name__)


@dataclass
class JobOutcome:
    """What happened to one delivery of a job (the benchmark and the logs read it)."""

    job_id: str
    status: str  # done | failed | skipped
    seconds: float
    detail: str = ""


class RemoteJobRunner:
    """Runs the jobs of one worker process with its one warm backend.

    `backends` is the worker's WarmBackend (loaded at start). With `--concurrency` above 1,
    downloads, sampling and reporting overlap, and the generations of jobs that wait for the
    model together run as one batch (`CoalescingBackend`, up to CHRONICON_MAX_BATCH rows):
    one model in memory, never two generations fighting for it. A job for another model waits
    until the jobs in flight are done (the model is swapped, not doubled); the job that loads
    a model does so alone, so its load is reported once, in that job."""

    def __init__(self, client: ServerClient, backends: Any, work_dir: Path):
        self.client = client
        self.backends = backends
        self.work_dir = work_dir
        self._model_change = threading.Condition()
        self._model_users = 0
        self._model_name: str | None = None
        self._loading = False
        self.coalescer: CoalescingBackend | None = None
        self._lock = threading.Lock()
        self.current: set[str] = set()
        self.jobs_done = 0

    @contextmanager
    def model_for(self, model: str | None) -> Iterator[CoalescingBackend]:
        """The backend for `model` (None: the default), shared by the jobs in flight."""
        wanted = model or self.backends.default_model
        with self._model_change:
            while self._model_users and (self._model_name != wanted or self._loading):
                self._model_change.wait()
            backend = self.backends.get(wanted)
            loading = not backend.loaded
            if self.coalescer is None or self.coalescer.backend is not backend:
                self.coalescer = CoalescingBackend(backend, self.backends.settings.max_batch)
            coalescer = self.coalescer
            self._model_users += 1
            self._model_name, self._loading = wanted, loading
        try:
            yield coalescer
        finally:
            with self._model_change:
                self._model_users -= 1
                if loading:
                    self._loading = False
                self._model_change.notify_all()

    def run(self, job_id: str, kind: str, options: dict[str, Any]) -> JobOutcome:
        started = time.perf_counter()
        answer = self.client.claim(job_id)
        if not answer.granted:
            log.info("job %s: not claimed (%s); dropping this delivery", job_id, answer.reason)
            return JobOutcome(job_id, "skipped", time.perf_counter() - started, answer.reason)
        run_kind = KINDS.get(kind)
        if run_kind is None:
            self.client.post_failure(job_id, f"this worker cannot run {kind!r} jobs; upgrade "
                                             "it to the server's version", "BadParameter")
            return JobOutcome(job_id, "failed", time.perf_counter() - started, kind)
        with self._lock:
            self.current.add(job_id)
        job_dir = self.work_dir / job_id
        try:
            return run_kind(self, job_id, answer.job, options, job_dir, started)
        except JobTaken as exc:
            log.warning("job %s: %s", job_id, exc)
            return JobOutcome(job_id, "skipped", time.perf_counter() - started, str(exc))
        finally:
            with self._lock:
                self.current.discard(job_id)
            shutil.rmtree(job_dir, ignore_errors=True)

    def status(self) -> dict[str, Any]:
        with self._lock:
            current = sorted(self.current)
        return {"current_job": ",".join(current) or None, "jobs_done": self.jobs_done}


def run_analysis(runner: RemoteJobRunner, job_id: str, job: dict[str, Any],
                 options: dict[str, Any], job_dir: Path, started: float) -> JobOutcome:
    """The `analyze` kind: the same `analyze()` the server runs for a local job."""
    from ..analysis import analyze
    from ..options import AnalysisOptions

    client = runner.client
    filename = job.get("video_filename") or "video"
    suffix = Path(job.get("video_suffix") or ".mp4").suffix or ".mp4"
    uplink = EventUplink(lambda batch: client.post_events(job_id, batch))
    try:
        video = client.download_video(job_id, job_dir / f"video{suffix}")
        analysis_options = AnalysisOptions.from_dict(options or job.get("options") or {})
        on_event = _event_relay(uplink, video.name, filename)
        with runner.model_for(analysis_options.model) as backend:
            was_loaded = backend.loaded
            result = analyze(video, analysis_options, backend, on_event,
                             on_frames=lambda frames: _send_frames(client, job_id, frames))
            if not was_loaded and backend.loaded:
                runner.backends.count_load(result.times.model_load)
        data = result.to_dict()  # the server puts its own video path in
        uplink.close()
    except (JobTaken, ServerUnreachable):
        uplink.close()
        raise
    except ChroniconError as exc:
        uplink.close()
        client.post_failure(job_id, exc.message.replace(f"video{suffix}", filename),
                            type(exc).__name__)
        return JobOutcome(job_id, "failed", time.perf_counter() - started, exc.message)
    except Exception as exc:  # noqa: BLE001 - one job must not end the worker
        log.exception("job %s failed", job_id)
        uplink.close()
        client.post_failure(job_id, f"internal error on worker: {type(exc).__name__}",
                            type(exc).__name__)
        return JobOutcome(job_id, "failed", time.perf_counter() - started, str(exc))
    answer = client.post_result(job_id, data)
    runner.jobs_done += 1
    return JobOutcome(job_id, "done", time.perf_counter() - started,
                      answer.get("analysis_id", ""))


def _event_relay(uplink: EventUplink, stored_name: str,
                 filename: str) -> Callable[[Event], None]:
    def on_event(event: Event) -> None:
        # The job's own done/failed come from the server after the agent step.
        if isinstance(event, Done | Failed):
            return
        detail = getattr(event, "detail", "")
        if stored_name in detail:  # show the user's file name, not our download's
            event = dataclasses.replace(event, detail=detail.replace(stored_name, filename))
        uplink.emit(event.kind, to_dict(event))

    return on_event


def _send_frames(client: ServerClient, job_id: str, frames: list[Frame]) -> None:
    """Each sampled frame as JPEG: the server keeps it with the job and shows the thumbnail."""
    for position, frame in enumerate(frames):
        buffer = io.BytesIO()
        frame.image.convert("RGB").save(buffer, "JPEG", quality=FRAME_JPEG_QUALITY)
        client.put_frame(job_id, position, frame.index, frame.timestamp, buffer.getvalue())


# Job kinds this worker runs, by the name the server's queue gives them.
KINDS: dict[str, Callable[..., JobOutcome]] = {"analyze": run_analysis}

"""The worker's side of the internal HTTP API: everything a worker asks of or tells the server.

Every call carries `Authorization: Bearer <CHRONICON_WORKER_TOKEN>`. Calls that only report
(heartbeats, events) are retried briefly; the result is retried longer (the server records it
idempotently by job id, so a retry after a lost answer is safe). When the server stays
unreachable the error reaches the actor, which raises, so Dramatiq delivers the job again later.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx

from ..errors import ChroniconError, Unauthorized

log = logging.getLogger(__name__)

T = TypeVar("T")


class JobTaken(ChroniconError):
    """The server gave this job to another worker (or it finished meanwhile): stop, drop it."""


class ServerUnreachable(ChroniconError):
    """The server did not answer after the retries; the job is delivered again later."""


@dataclass(frozen=True)
class ClaimAnswer:
    granted: bool
    reason: str
    job: dict[str, Any]


class ServerClient:
    """One worker's connection to the server (`base_url`), identified as `worker_id`."""

    def __init__(self, base_url: str, token: str, worker_id: str, timeout: float = 30.0,
                 retries: int = 5, transport: httpx.BaseTransport | None = None):
        self.base_url = base_url.rstrip("/")
        self.worker_id = worker_id
        self.retries = retries
        self._http = httpx.Client(base_url=self.base_url, timeout=timeout, transport=transport,
                                  headers={"Authorization": f"Bearer {token}",
                                           "X-Chronicon-Worker": worker_id})

    def close(self) -> None:
        self._http.close()

    # ---- the calls -------------------------------------------------------------------------------
    def heartbeat(self, status: dict[str, Any]) -> None:
        self._call(lambda: self._post(f"/internal/workers/{self.worker_id}/heartbeat", status),
                   attempts=2)

    def claim(self, job_id: str) -> ClaimAnswer:
        def call() -> ClaimAnswer:
            response = self._http.post(f"/internal/jobs/{job_id}/claim",
                                       json={"worker_id": self.worker_id})
            if response.status_code == 409:
                body = response.json()
                return ClaimAnswer(False, body.get("reason", "taken"), body)
            self._raise_for_status(response)
            return ClaimAnswer(True, "claimed", response.json())

        return self._call(call)

    def post_events(self, job_id: str, events: list[dict[str, Any]]) -> None:
        self._call(lambda: self._post(f"/internal/jobs/{job_id}/events",
                                      {"worker_id": self.worker_id, "events": events}))

    def put_frame(self, job_id: str, position: int, index: int, timestamp: float,
                  jpeg: bytes) -> None:
        def call() -> None:
            response = self._http.put(
                f"/internal/jobs/{job_id}/frames/{position}",
                params={"index": index, "timestamp": timestamp, "worker_id": self.worker_id},
                content=jpeg, headers={"Content-Type": "image/jpeg"})
            self._raise_for_status(response)

        self._call(call)

    def post_result(self, job_id: str, result: dict[str, Any]) -> dict[str, Any]:
        return self._call(lambda: self._post(f"/internal/jobs/{job_id}/result",
                                             {"worker_id": self.worker_id, "result": result}),
                          attempts=self.retries * 2)

    def post_failure(self, job_id: str, error: str, error_type: str) -> None:
        self._call(lambda: self._post(f"/internal/jobs/{job_id}/failure",
                                      {"worker_id": self.worker_id, "error": error,
                                       "error_type": error_type}))

    def download_video(self, job_id: str, target: Path) -> Path:
        """Stream the job's video into `target`; a broken transfer resumes where it stopped
        (`Range: bytes=<have>-`) instead of starting again."""
        target.parent.mkdir(parents=True, exist_ok=True)
        target.unlink(missing_ok=True)
        url = f"/internal/jobs/{job_id}/video"
        for attempt in range(1, self.retries + 1):
            have = target.stat().st_size if target.exists() else 0
            headers = {"Range": f"bytes={have}-"} if have else {}
            try:
                with self._http.stream("GET", url, headers=headers) as response:
                    if response.status_code == 416:  # we already have every byte
                        return target
                    self._raise_for_status(response)
                    # 200 means the server ignored the range: start the file again.
                    mode = "ab" if response.status_code == 206 else "wb"
                    expected = _total_size(response)
                    with target.open(mode) as fh:
                        for chunk in response.iter_bytes():  # as received: a break keeps it
                            fh.write(chunk)
                if expected is None or target.stat().st_size >= expected:
                    return target
                log.warning("video %s: got %d of %d bytes; resuming", job_id,
                            target.stat().st_size, expected)
            except httpx.TransportError as exc:
                log.warning("video %s: transfer broke (%s); resuming (attempt %d)", job_id,
                            exc, attempt)
                time.sleep(min(0.5 * attempt, 5))
        raise ServerUnreachable(f"could not download the video of job {job_id} from "
                                f"{self.base_url} after {self.retries} attempts")

    # ---- plumbing --------------------------------------------------------------------------------
    def _post(self, path: str, body: dict[str, Any]) -> Any:
        response = self._http.post(path, json=body)
        self._raise_for_status(response)
        return response.json()

    def _raise_for_status(self, response: httpx.Response) -> None:
        if response.status_code == 401:
            raise Unauthorized(f"the server at {self.base_url} rejected this worker's token; "
                               "set CHRONICON_WORKER_TOKEN to the server's value")
        if response.status_code == 409:
            response.read()
            raise JobTaken(_error_text(response))
        if response.status_code >= 500:
            response.read()
            raise httpx.HTTPStatusError(f"server error {response.status_code}: "
                                        f"{_error_text(response)}", request=response.request,
                                        response=response)
        if response.status_code >= 400:
            response.read()
            raise ChroniconError(f"the server refused {response.request.url.path}: "
                                 f"{_error_text(response)}")

    def _call(self, call: Callable[[], T], attempts: int | None = None) -> T:
        """Retry transport failures and 5xx with a short backoff; other errors go up at once."""
        attempts = attempts or self.retries
        for attempt in range(1, attempts + 1):
            try:
                return call()
            except (httpx.TransportError, httpx.HTTPStatusError) as exc:
                if attempt == attempts:
                    raise ServerUnreachable(f"the server at {self.base_url} did not answer: "
                                            f"{exc}") from None
                time.sleep(min(0.25 * 2 ** (attempt - 1), 5.0))
        raise AssertionError("unreachable")


def _total_size(response: httpx.Response) -> int | None:
    """The whole file's size: from Content-Range on a 206, Content-Length on a 200."""
    content_range = response.headers.get("content-range", "")
    if "/" in content_range and content_range.rsplit("/", 1)[1].isdigit():
        return int(content_range.rsplit("/", 1)[1])
    length = response.headers.get("content-length")
    return int(length) if length and length.isdigit() else None


def _error_text(response: httpx.Response) -> str:
    try:
        return str(response.json().get("error", response.text))
    except ValueError:
        return response.text[:200]

"""Helpers the web tests share: upload a clip, wait for a job, parse Server-Sent Events."""

from __future__ import annotations

import time
from pathlib import Path

from fastapi.testclient import TestClient

from chronicon.config import Settings

TOKEN = "s3cret-token-for-tests"


def changed(settings: Settings, **changes: object) -> Settings:
    """A validated copy (model_copy(update=...) would skip validation: no SecretStr)."""
    return Settings(**{**settings.model_dump(), **changes})


def upload(client: TestClient, path: Path, filename: str | None = None,
           headers: dict[str, str] | None = None, **fields: object):
    return client.post("/api/analyze", headers=headers or {},
                       files={"file": (filename or path.name, path.read_bytes(), "video/mp4")},
                       data={k: str(v) for k, v in fields.items()})


def wait_for_job(client: TestClient, job_id: str, timeout: float = 60.0) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = client.get(f"/api/jobs/{job_id}").json()
        if job["state"] in ("done", "failed", "cancelled"):
            return job
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} did not finish in {timeout}s: {job}")


def parse_sse(text: str) -> list[dict]:
    """SSE text to [{"id": int|None, "event": str, "data": str}], comments skipped."""
    events = []
    for block in text.split("\n\n"):
        fields: dict = {}
        for line in block.splitlines():
            if not line or line.startswith(":"):
                continue
            name, _, value = line.partition(": ")
            fields[name] = value
        if "event" in fields:
            events.append({"id": int(fields["id"]) if "id" in fields else None,
                           "event": fields["event"], "data": fields.get("data", "")})
    return events

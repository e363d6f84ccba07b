"""Operations: /health (is it up, is the model warm), /debug (versions, memory, masked
settings), /metrics (Prometheus text)."""

from __future__ import annotations

import importlib.metadata
import platform
import sys
from typing import Any

import psutil
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, PlainTextResponse

from ... import __version__
from ...hardware import nvidia_gpu_present

router = APIRouter(tags=["system"])


# Workers not heard from for a day drop off /health and the System page.
FORGET_WORKERS_AFTER_S = 86_400


def queue_data(services: Any) -> dict[str, Any]:
    """The queue kind and, for a broker-backed queue, its own status (depth, errors)."""
    status = getattr(services.queue, "status", None)
    return status() if callable(status) else {"kind": services.settings.queue_kind}


def workers_data(services: Any) -> list[dict[str, Any]]:
    """Remote workers as their heartbeats describe them, `alive` or not."""
    from ...store.worker_records import seconds_ago

    alive_after = seconds_ago(services.settings.worker_timeout)
    return [w.to_dict(alive_after)
            for w in services.store.list_workers(seconds_ago(FORGET_WORKERS_AFTER_S))]


def health_data(request: Request) -> dict[str, Any]:
    services = request.app.state.services
    model = services.backends.status()
    counts = services.store.count_jobs_by_state()
    current = services.queue.current
    worker = services.queue.health()
    return {
        "status": "ok" if worker == "ok" else "degraded",
        "worker": worker,
        "version": __version__,
        "model": model["model"],
        "model_loaded": model["loaded"],
        "model_loads": model["loads"],
        "model_error": model["error"],
        "device": model["device"] or services.settings.device,
        "dtype": model["dtype"],
        "quantization": model["quantization"],
        "queue_depth": counts["queued"],
        "running_job": current.job_id if current else None,
        "running_jobs": list(current.job_ids) if current else [],  # several: a batch
        "jobs": counts,
        "agent_enabled": services.settings.agent_enabled,
        "auth_required": services.settings.api_token is not None,
        "max_upload_mb": services.settings.max_upload_mb,
        "queue": queue_data(services),
        "workers": workers_data(services),
    }


@router.get("/health", responses={503: {"description": "the job worker is dead or stuck"}})
def health(request: Request) -> JSONResponse:
    """Status, the job worker (`ok`, `dead` or `stuck`: then 503), model loaded or not (and how
    many loads so far), device, queue depth, version."""
    data = health_data(request)
    return JSONResponse(data, status_code=200 if data["worker"] == "ok" else 503)


def _torch_facts() -> dict[str, Any]:
    # Only a torch this process already holds is asked: a server on the openvino runtime never
    # imports it, and opening /debug must not cost it ~500 MB of memory.
    torch = sys.modules.get("torch")
    if torch is None:
        try:
            installed: str | None = importlib.metadata.version("torch")
        except importlib.metadata.PackageNotFoundError:
            installed = None
        return {"torch": installed, "torch_loaded": False,
                "cuda_available": nvidia_gpu_present()}
    facts: dict[str, Any] = {"torch": torch.__version__, "torch_loaded": True,
                             "cuda_available": torch.cuda.is_available(),
                             "cuda_version": torch.version.cuda,
                             "mps_available": bool(getattr(torch.backends, "mps", None)
                                                   and torch.backends.mps.is_available()),
                             "threads": torch.get_num_threads()}
    if facts["cuda_available"]:
        facts["cuda_devices"] = []
        for i in range(torch.cuda.device_count()):
            free, total = torch.cuda.mem_get_info(i)
            facts["cuda_devices"].append({"index": i, "name": torch.cuda.get_device_name(i),
                                          "memory_free_mb": free // 2**20,
                                          "memory_total_mb": total // 2**20})
    return facts


def debug_data(request: Request) -> dict[str, Any]:
    services = request.app.state.services
    memory = psutil.virtual_memory()
    process = psutil.Process()
    return {
        "version": __version__,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        **_torch_facts(),
        "memory": {"total_mb": memory.total // 2**20, "available_mb": memory.available // 2**20,
                   "process_rss_mb": process.memory_info().rss // 2**20},
        "cpu_count": psutil.cpu_count(),
        "backend": services.backends.status(),
        "settings": services.settings.masked(),
    }


@router.get("/debug")
def debug(request: Request) -> dict[str, Any]:
    """Python, torch, CUDA, memory, and every setting with secrets masked."""
    return debug_data(request)


def _line(name: str, value: float, labels: dict[str, str] | None = None) -> str:
    if labels:
        inner = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
        return f"{name}{{{inner}}} {value:g}"
    return f"{name} {value:g}"


def _delivery_counts(store: Any) -> dict[str, int]:
    return store.count_deliveries()


def _worker_lines(services: Any) -> list[str]:
    workers = workers_data(services)
    alive = sum(1 for w in workers if w["alive"])
    lines = ["# HELP chronicon_workers Remote workers by heartbeat state.",
             "# TYPE chronicon_workers gauge",
             _line("chronicon_workers", alive, {"state": "alive"}),
             _line("chronicon_workers", len(workers) - alive, {"state": "gone"}),
             "# HELP chronicon_worker_jobs_done Jobs each remote worker finished.",
             "# TYPE chronicon_worker_jobs_done counter"]
    lines += [_line("chronicon_worker_jobs_done", w["jobs_done"], {"worker": w["id"]})
              for w in workers]
    queue = queue_data(services)
    if "reenqueued_total" in queue:
        lines += ["# HELP chronicon_queue_reenqueued_total Jobs the sweep enqueued again "
                  "because the broker had lost them.",
                  "# TYPE chronicon_queue_reenqueued_total counter",
                  _line("chronicon_queue_reenqueued_total", queue["reenqueued_total"])]
    return lines


@router.get("/metrics", response_class=PlainTextResponse)
def metrics(request: Request) -> PlainTextResponse:
    """Prometheus text format: jobs by state, stage durations, model loads, deliveries."""
    services = request.app.state.services
    store = services.store
    lines = ["# HELP chronicon_jobs Jobs by state.", "# TYPE chronicon_jobs gauge"]
    lines += [_line("chronicon_jobs", n, {"state": s})
              for s, n in store.count_jobs_by_state().items()]
    lines += ["# HELP chronicon_stage_seconds Time spent per stage over all jobs.",
              "# TYPE chronicon_stage_seconds summary"]
    for stage, (count, total) in sorted(store.stage_duration_totals().items()):
        lines.append(_line("chronicon_stage_seconds_count", count, {"stage": stage}))
        lines.append(_line("chronicon_stage_seconds_sum", round(total, 6), {"stage": stage}))
    model = services.backends.status()
    lines += ["# HELP chronicon_model_loads_total Model loads since the server started.",
              "# TYPE chronicon_model_loads_total counter",
              _line("chronicon_model_loads_total", model["loads"]),
              "# HELP chronicon_model_loaded 1 when a model is loaded and warm.",
              "# TYPE chronicon_model_loaded gauge",
              _line("chronicon_model_loaded", 1 if model["loaded"] else 0),
              "# HELP chronicon_analyses Analyses in the history.",
              "# TYPE chronicon_analyses gauge",
              _line("chronicon_analyses", store.count_analyses()),
              "# HELP chronicon_deliveries Deliveries by status.",
              "# TYPE chronicon_deliveries gauge"]
    lines += [_line("chronicon_deliveries", n, {"status": s})
              for s, n in sorted(_delivery_counts(store).items())]
    lines += _worker_lines(services)
    if services.sources is not None:
        lines += _source_lines(services.sources.metrics())
    return PlainTextResponse("\n".join(lines) + "\n",
                             media_type="text/plain; version=0.0.4; charset=utf-8")


def _source_lines(totals: dict[str, int]) -> list[str]:
    """Watched sources: stream windows seen, gated by the motion gate, kept, described, dropped
    because the model fell behind; reconnects."""
    return ["# HELP chronicon_sources Watched folders and streams running.",
            "# TYPE chronicon_sources gauge", _line("chronicon_sources", totals["sources"]),
            "# HELP chronicon_stream_windows_total Stream windows by outcome.",
            "# TYPE chronicon_stream_windows_total counter",
            _line("chronicon_stream_windows_total", totals["windows_skipped"],
                  {"outcome": "skipped_still"}),
            _line("chronicon_stream_windows_total", totals["windows_kept"], {"outcome": "kept"}),
            _line("chronicon_stream_windows_total", totals["windows_described"],
                  {"outcome": "described"}),
            _line("chronicon_stream_windows_total", totals["windows_dropped"],
                  {"outcome": "dropped"}),
            "# HELP chronicon_stream_reconnects_total Stream reconnections.",
            "# TYPE chronicon_stream_reconnects_total counter",
            _line("chronicon_stream_reconnects_total", totals["reconnects"])]

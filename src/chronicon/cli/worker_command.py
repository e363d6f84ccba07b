"""`chronicon worker`: run jobs from the Redis queue with one warm model (see README,
"Running on several machines")."""

from __future__ import annotations

import logging
import signal

import typer

from .common import app, err, exit_on_error, settings_from_cli


@app.command()
@exit_on_error
def worker(
    queue: str = typer.Option(None, "--queue", envvar="CHRONICON_QUEUE",
                              help="The server's Redis queue: redis://host:6379/0."),
    server: str = typer.Option(None, "--server", envvar="CHRONICON_SERVER_URL",
                               help="The server's URL. [default: http://127.0.0.1:5000]"),
    model: str = typer.Option(None, "--model", "-m", envvar="CHRONICON_MODEL",
                              help="Model: 256m, 500m, 2.2b, a hub id or a directory."),
    cuda_device: int = typer.Option(None, "--cuda-device", min=0,
                                    help="Run on this GPU (cuda:N)."),
    concurrency: int = typer.Option(1, "--concurrency", min=1, max=64,
                                    help="Jobs in hand at once (the model runs one at a time)."),
    name: str = typer.Option(None, "--name", help="Worker id. [default: host-pid-xxxx]"),
) -> None:
    """Take analysis jobs from Redis, keep the model warm, report to the server."""
    from ..worker.process import WorkerProcess

    device = f"cuda:{cuda_device}" if cuda_device is not None else None
    settings = settings_from_cli(queue=queue, server_url=server, model=model, device=device)
    logging.basicConfig(level=settings.log_level.upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    process = WorkerProcess(settings, concurrency=concurrency, worker_id=name)
    err.print(f"Chronicon worker {process.worker_id} · model {settings.model} · "
              f"server {settings.server_url} · {concurrency} thread(s)")
    process.start()

    def stop(signum: int, frame: object) -> None:  # noqa: ARG001 - signal handler signature
        process.request_stop()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    process.wait()
    err.print("stopping: finishing the job in hand")
    process.stop()

"""`chronicon serve`: the web application on uvicorn, with the model kept warm."""

from __future__ import annotations

import ipaddress
import logging
from pathlib import Path

import typer

from ..redact import install_log_masking
from .common import app, err, exit_on_error, settings_from_cli


def is_loopback(host: str) -> bool:
    """True for addresses only this machine can reach (127.0.0.0/8, ::1, localhost)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def bind_warning(host: str, token_set: bool) -> str | None:
    """The warning for a server others can reach without a token; None when there is none."""
    if is_loopback(host) or token_set:
        return None
    return (f"binding {host}, reachable from other machines, without CHRONICON_API_TOKEN: "
            "anyone who can reach it can upload videos and change the rules. "
            "Set CHRONICON_API_TOKEN.")


@app.command()
@exit_on_error
def serve(
    host: str = typer.Option(None, "--host", help="Address to bind. [default: 127.0.0.1]"),
    port: int = typer.Option(None, "--port", help="Port. [default: 5000]"),
    model: str = typer.Option(None, "--model", "-m", envvar="CHRONICON_MODEL",
                              help="Model: 256m, 500m, 2.2b, a hub id or a directory."),
    data_dir: Path = typer.Option(None, "--data-dir", envvar="CHRONICON_DATA_DIR",
                                  help="Database, uploads and results live here."),
    no_preload: bool = typer.Option(False, "--no-preload",
                                    help="Load the model with the first job, not at startup."),
) -> None:
    """Start the web app and API (http://127.0.0.1:5000 by default)."""
    import uvicorn

    from ..web import create_app

    settings = settings_from_cli(host=host, port=port, model=model, data_dir=data_dir)
    logging.basicConfig(level=settings.log_level.upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    install_log_masking()
    warning = bind_warning(settings.host, settings.api_token is not None)
    if warning:
        err.print(f"[bold yellow]warning:[/] {warning}", markup=True, highlight=False)
    err.print(f"Chronicon on http://{settings.host}:{settings.port} · model {settings.model} · "
              f"data {settings.data_dir}")
    web_app = create_app(settings, preload=not no_preload)
    uvicorn.run(web_app, host=settings.host, port=settings.port,
                log_level=settings.log_level.lower(), timeout_graceful_shutdown=10)

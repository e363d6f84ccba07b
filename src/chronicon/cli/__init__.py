"""The `chronicon` command: one Typer app, one module per group of sub-commands.

Commands stay thin: parse arguments, build Settings, call library code, render. Each module
below registers its commands on `app` when imported.
"""

from __future__ import annotations

# Importing registers the commands on `app`.
from . import (
    agent_commands,  # noqa: E402,F401  decide, rules, deliveries
    analyze_command,  # noqa: E402,F401  analyze
    ask_command,  # noqa: E402,F401  ask
    convert_command,  # noqa: E402,F401  convert
    search_command,  # noqa: E402,F401  search
    serve_command,  # noqa: E402,F401  serve
    video_commands,  # noqa: E402,F401  probe, frames
    watch_command,  # noqa: E402,F401  watch
    worker_command,  # noqa: E402,F401  worker
)
from .common import app


def main() -> None:
    app()


__all__ = ["app", "main"]

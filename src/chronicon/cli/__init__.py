"""The `chronicon` command: one Typer app, one module per group of sub-commands.

Commands stay thin: parse arguments, build Settings, call library code, render. Each module
below registers its commands on `app` when imported.
"""

from __future__ import annotations

from .common import app

# Importing registers the commands; the order is the order of `chronicon --help`.
from . import video_commands  # noqa: E402,F401  probe, frames
from . import analyze_command  # noqa: E402,F401  analyze
from . import agent_commands  # noqa: E402,F401  decide, rules, deliveries
from . import serve_command  # noqa: E402,F401  serve


def main() -> None:
    app()


__all__ = ["app", "main"]

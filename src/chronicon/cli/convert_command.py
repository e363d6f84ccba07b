"""`chronicon convert MODEL --to openvino [--weights int8]`: a one-time model conversion."""

from __future__ import annotations

import json

import typer

from ..errors import BadParameter
from .common import app, exit_on_error, out, settings_from_cli, setup_logging

TARGETS = ("openvino",)


@app.command("convert")
@exit_on_error
def convert_command(
    model: str = typer.Argument(None, help="256m, 500m, 2.2b, a hub id or a model directory "
                                           "(default: CHRONICON_MODEL)."),
    to: str = typer.Option("openvino", "--to", help="Target runtime: openvino."),
    weights: str = typer.Option("fp32", "--weights", help="fp32, or int8 (weight-only, "
                                                          "needs NNCF)."),
    output: str = typer.Option(None, "--output", "-o", help="Directory to write (default: "
                                                            "where the backend looks)."),
    json_out: bool = typer.Option(False, "--json", help="Print the manifest as JSON."),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Debug logs on stderr."),
) -> None:
    """Convert a model for another runtime (then set CHRONICON_BACKEND=openvino)."""
    from pathlib import Path

    setup_logging(verbose)
    if to not in TARGETS:
        raise BadParameter("to", f"{to!r} is not one of {', '.join(TARGETS)}")
    settings = settings_from_cli()
    from ..vlm.registry import backend_class

    backend_class("openvino")  # a missing `openvino` names its pip install before any work
    from ..vlm.openvino.backend import convert

    target, manifest = convert(settings, model, weights, Path(output) if output else None)
    if json_out:
        typer.echo(json.dumps({"output": str(target), **manifest}, indent=2))
    else:
        out.print(f"converted {manifest['model_id']} ({weights} weights) to {target} in "
                  f"{manifest['export_s']:.0f}s; use it with CHRONICON_BACKEND=openvino")

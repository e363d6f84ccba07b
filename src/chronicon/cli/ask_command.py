"""`chronicon ask ANALYSIS_ID "Was anyone wearing a helmet?" [--json]`."""

from __future__ import annotations

import json
import sys

import typer

from ..ask import DEFAULT_ANSWER_TOKENS, ask
from ..store import Store
from ..vlm.backend import create_backend
from .common import app, exit_on_error, settings_from_cli, setup_logging


@app.command("ask")
@exit_on_error
def ask_command(
    analysis_id: str = typer.Argument(..., help="The analysis (its id in History or "
                                                "`chronicon search --json`)."),
    question: str = typer.Argument(..., help="What you want to know about the video."),
    max_tokens: int = typer.Option(DEFAULT_ANSWER_TOKENS, "--max-tokens", "-t",
                                   help="Longest answer, in tokens."),
    model: str = typer.Option(None, "--model", "-m", help="Model [default: CHRONICON_MODEL]."),
    device: str = typer.Option(None, "--device", help="auto, cpu, cuda, cuda:N, mps."),
    json_out: bool = typer.Option(False, "--json",
                                  help='Print {"analysis_id", "question", "answer"} as JSON.'),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Debug logs on stderr."),
) -> None:
    """Ask the model a question about a stored analysis: answered from its frames (for a
    timeline, from the chunk the question names, else from all captions). The question and
    the answer are kept with the analysis."""
    setup_logging(verbose)
    settings = settings_from_cli(model=model, device=device)
    store = Store(settings.db_path)
    try:
        def stream(piece: str) -> None:
            if not json_out:
                sys.stdout.write(piece)
                sys.stdout.flush()

        answered = ask(store, create_backend(settings), analysis_id, question,
                       max_tokens=max_tokens, on_piece=stream)
    finally:
        store.close()
    if json_out:
        typer.echo(json.dumps({"analysis_id": answered.analysis_id,
                               "question": answered.question, "answer": answered.answer},
                              indent=2, ensure_ascii=False))
    else:
        sys.stdout.write("\n")

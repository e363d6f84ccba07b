"""`chronicon search "red van near the gate" [--since 2d] [--label train] [--json]`."""

from __future__ import annotations

import json

import typer
from rich.markup import escape

from ..search import MODES, SearchQuery, parse_since, search, segments
from ..search.query import SearchHit
from ..store import Store
from .common import app, exit_on_error, out, settings_from_cli, setup_logging


def _clock(seconds: float | None) -> str:
    if seconds is None:
        return ""
    minutes, rest = divmod(int(seconds), 60)
    return f"{minutes:02d}:{rest:02d}"


def _render(hit: SearchHit) -> str:
    # Every piece of stored text is escaped: a description may contain "[bold]" or worse.
    e = hit.entry
    text = "".join(f"[bold yellow]{escape(piece)}[/]" if matched else escape(piece)
                   for piece, matched in segments(e.text, hit.marks))
    where = f" {_clock(e.start)}-{_clock(e.end)}" if e.start is not None else ""
    label = f" [{escape(e.label)}]" if e.label else ""
    return (f"[dim]{hit.score:.4f}[/] [bold]{escape(e.video_filename or 'video')}[/]"
            f"{escape(where)}{escape(label)} [dim]{e.analysis_id}[/]\n    {text}")


@app.command("search")
@exit_on_error
def search_command(
    query: str = typer.Argument(..., help="What you are looking for, in your own words."),
    since: str = typer.Option(None, "--since", help="Only analyses from this recent: 30m, 12h, "
                                                    "2d, 1w, or an ISO date."),
    label: str = typer.Option(None, "--label", help="Only analyses the agent gave this label."),
    mode: str = typer.Option("hybrid", "--mode", help=f"{', '.join(MODES)}: words, meaning, "
                                                      "or both fused by rank."),
    limit: int = typer.Option(10, "--limit", "-n", help="Hits to show, 1-100."),
    offset: int = typer.Option(0, "--offset", help="Skip this many hits (paging)."),
    json_out: bool = typer.Option(False, "--json", help='Print {"hits": [...]} as JSON.'),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Debug logs on stderr."),
) -> None:
    """Search every description, timeline caption and summary stored so far."""
    setup_logging(verbose)
    settings = settings_from_cli()
    request = SearchQuery(query, since=parse_since(since) if since else None,
                          label=label or None, mode=mode, offset=offset, limit=limit).validate()
    store = Store(settings.db_path)
    try:
        results = search(store, request)
    finally:
        store.close()
    if json_out:
        # Plain echo: `--json | jq` must get exactly what json.dumps wrote.
        typer.echo(json.dumps({"hits": [h.to_dict() for h in results.hits]}, indent=2,
                              ensure_ascii=False))
        return
    if not results.hits:
        out.print("no matches", markup=False)
        return
    for hit in results.hits:
        out.print(_render(hit), highlight=False)

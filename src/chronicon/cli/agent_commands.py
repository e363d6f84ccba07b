"""`chronicon decide`, `chronicon rules check|test|show|save` and `chronicon deliveries`.

Without `--rules`, every command uses the rules in force, where the server finds them too
(`chronicon.agent.rules.rules_path`: `CHRONICON_RULES`, else `<data dir>/rules.yaml` once saved
from the web page or `chronicon rules save`, else the built-in rules)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from ..agent.act import decide_and_act
from ..agent.backtest import BacktestReport, backtest, read_corpus
from ..agent.outbox import Outbox
from ..agent.rules import RuleSet, load_current_rules, load_rules, rules_path, save_rules_text
from ..config import Settings
from ..errors import BadInput, BadParameter
from ..store import Store
from ..store.agent_records import STATUSES
from .common import app, err, exit_on_error, out, settings_from_cli, setup_logging

rules_app = typer.Typer(help="Check and back-test rules files.", no_args_is_help=True)
app.add_typer(rules_app, name="rules")


def _echo_json(data: Any) -> None:
    # Plain echo, not rich: `--json | jq` must get exactly what json.dumps wrote.
    typer.echo(json.dumps(data, indent=2, ensure_ascii=False))


def _rules(settings: Settings, rules_file: Path | None) -> RuleSet:
    return load_rules(rules_file) if rules_file is not None else load_current_rules(settings)


def _read_result_file(path: Path) -> tuple[str, str | None, str | None]:
    """(analysis, run id, video file name) from a saved analysis result."""
    try:
        data = json.loads(path.read_text("utf-8"))
    except FileNotFoundError:
        raise BadInput(f"result file not found: {path}") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BadInput(f"cannot read {path} as a result JSON file: {exc}") from None
    if not isinstance(data, dict) or not isinstance(data.get("analysis"), str):
        raise BadInput(f"{path} has no \"analysis\" text (is it a Chronicon result file?)")
    video = data.get("video_filename") or (Path(data["video_path"]).name
                                           if isinstance(data.get("video_path"), str) else None)
    run_id = data.get("run_id") or data.get("id")
    return data["analysis"], str(run_id) if run_id else None, video


@app.command("decide")
@exit_on_error
def decide_command(
    text: str = typer.Argument(None, help="The description to decide on."),
    file: Path = typer.Option(None, "--file", help="A result JSON file: decide on its analysis."),
    rules_file: Path = typer.Option(None, "--rules", help="Rules file [default: the rules in "
                                                          "force, as the server uses them]."),
    act: bool = typer.Option(False, "--act", help="Record the decision and deliver through the "
                                                  "rule's channels, waiting for the outcome."),
    as_json: bool = typer.Option(False, "--json", help="Print the decide_and_act JSON."),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Log details to stderr."),
) -> None:
    """Decide what a description shows (label, score, reason) and, with --act, act on it."""
    setup_logging(verbose)
    if (text is None) == (file is None):
        raise BadParameter("TEXT/--file", "give either a description or --file, not both")
    run_id = video = None
    if file is not None:
        text, run_id, video = _read_result_file(file)
    settings = settings_from_cli()
    rules = _rules(settings, rules_file)
    if act:
        store = Store(settings.db_path)
        try:
            result = decide_and_act(text, run_id, video, settings=settings, store=store,
                                    rules=rules, wait=True).to_dict()
        finally:
            store.close()
    else:
        result = decide_and_act(text, run_id, video, settings=settings, store=None,
                                rules=rules, dry_run=True).to_dict()
    if as_json:
        _echo_json(result)
        return
    _print_decision(result)


def _print_decision(result: dict[str, Any]) -> None:
    d = result["decision"]
    out.print(f"[bold]{d['label']}[/] score {d['score']:.2f}: {d['reason']}")
    for m in result.get("matches", []):
        evidence = ", ".join(m["terms"] + m["weak_terms"] + [f'"{p}"' for p in m["patterns"]])
        if m.get("similarity") is not None:
            evidence += f"{'; ' if evidence else ''}closest example \"{m['example']}\" " \
                        f"({m['similarity']:.2f})"
        out.print(f"  rule {m['rule']} → {m['label']} {m['score']:.2f}  {evidence}")
    if result.get("dry_run"):
        out.print(f"action: {result['action']} (not taken; use --act)")
        return
    out.print(f"action: {result['action']}, email: {result['email_status']}")
    for delivery in result.get("deliveries", []):
        extra = delivery.get("error") or delivery.get("note") or ""
        out.print(f"  delivery {delivery['id']} {delivery['channel']}: {delivery['status']}"
                  f"{' - ' + extra if extra else ''}")


@rules_app.command("check")
@exit_on_error
def rules_check_command(
    file: Path = typer.Argument(..., help="The rules file (YAML)."),
) -> None:
    """Validate a rules file; errors name the rule and field (exit 2)."""
    rules = load_rules(file)
    out.print(f"{file}: {len(rules.rules)} rule(s) OK")
    for rule in rules.rules:
        matchers = [f"{len(rule.keywords)} keyword(s)" if rule.keywords else "",
                    f"{len(rule.regex)} regex" if rule.regex else "",
                    f"{len(rule.examples)} example(s)" if rule.examples else ""]
        verify = (f", verify {rule.verify!r} at p >= {rule.verify_threshold:g}"
                  if rule.verify else "")
        out.print(f"  {rule.name} → {rule.label}: {', '.join(m for m in matchers if m)}; "
                  f"threshold {rule.threshold}, actions {', '.join(rule.actions)}, "
                  f"cooldown {rule.cooldown:g}s{verify}")


@rules_app.command("show")
@exit_on_error
def rules_show_command(
    rules_file: Path = typer.Option(None, "--rules", help="Rules file [default: the rules in "
                                                          "force, as the server uses them]."),
) -> None:
    """Print the effective rules as YAML (a starting point for your own file)."""
    typer.echo(_rules(settings_from_cli(), rules_file).to_yaml(), nl=False)


@rules_app.command("save")
@exit_on_error
def rules_save_command(
    file: Path = typer.Argument(..., help="The rules file (YAML) to put in force."),
) -> None:
    """Validate a rules file and put it in force for the CLI and the server (what the web page's
    Save does): it is written to CHRONICON_RULES, else <data dir>/rules.yaml."""
    try:
        text = file.read_text("utf-8")
    except FileNotFoundError:
        raise BadInput(f"rules file not found: {file}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise BadInput(f"cannot read rules file {file}: {exc}") from None
    settings = settings_from_cli()
    rules = save_rules_text(settings, text)
    out.print(f"saved {len(rules.rules)} rule(s) to {rules_path(settings)}")


@rules_app.command("test")
@exit_on_error
def rules_test_command(
    corpus: Path = typer.Option(..., "--corpus", help="JSON Lines: {\"analysis\": ..., "
                                                      "\"labels\": [...]} per line."),
    rules_file: Path = typer.Option(None, "--rules", help="Rules file [default: the rules in "
                                                          "force, as the server uses them]."),
    as_json: bool = typer.Option(False, "--json", help="Print {label: {precision, recall, f1}}."),
) -> None:
    """Back-test rules on labelled descriptions: precision, recall, F1 per label."""
    rules = _rules(settings_from_cli(), rules_file)
    report = backtest(rules, read_corpus(corpus))
    if as_json:
        _echo_json(report.to_dict())
        return
    _print_report(report)


def _print_report(report: BacktestReport) -> None:
    table = Table("label", "precision", "recall", "F1", "TP", "FP", "FN", box=None)
    for label, s in report.labels.items():
        table.add_row(label, f"{s.precision:.3f}", f"{s.recall:.3f}", f"{s.f1:.3f}",
                      str(s.true_positives), str(s.false_positives), str(s.false_negatives))
    out.print(table)
    out.print(f"{report.total} description(s), {len(report.misclassified)} misclassified")
    for m in report.misclassified:
        out.print(f"  line {m.line}: expected {m.expected or ['none']}, got "
                  f"{m.predicted or ['none']}: {m.analysis}", markup=False)


@app.command("deliveries")
@exit_on_error
def deliveries_command(
    limit: int = typer.Option(20, "--limit", "-n", min=1, max=1000, help="How many, newest first."),
    status: str = typer.Option(None, "--status", help=f"Only one status: {', '.join(STATUSES)}."),
    retry: int = typer.Option(None, "--retry", help="Make this failed delivery due again."),
    deliver: bool = typer.Option(False, "--deliver", help="Attempt every due delivery now."),
    as_json: bool = typer.Option(False, "--json", help="Print the deliveries as JSON."),
) -> None:
    """Recent deliveries (email, webhook, log) with their status, attempts and last error."""
    if status is not None and status not in STATUSES:
        raise BadParameter("--status", f"one of {', '.join(STATUSES)}, not {status!r}")
    settings = settings_from_cli()
    store = Store(settings.db_path)
    try:
        if retry is not None or deliver:
            outbox = Outbox(store, settings)
            if retry is not None:
                outbox.retry(retry)  # NotFound / Conflict (e.g. already sent) exit 2
            attempted = outbox.deliver_due()
            err.print(f"attempted {attempted} delivery(ies)")
        rows = store.list_deliveries(limit=limit, status=status)
    finally:
        store.close()
    if as_json:
        _echo_json([r.to_dict() for r in rows])
        return
    if not rows:
        out.print("no deliveries yet")
        return
    table = Table("id", "created", "rule", "channel", "status", "tries", "next / sent",
                  "error / note", box=None)
    for r in rows:
        table.add_row(str(r.id), _short_time(r.created_at), r.rule, r.channel, r.status,
                      f"{r.attempts}/{r.max_attempts}",
                      _short_time(r.sent_at or r.next_attempt_at or ""),
                      (r.last_error or r.note or "")[:80])
    out.print(table)


def _short_time(stamp: str) -> str:
    """"2026-01-02T03:04:05.678+00:00" → "01-02 03:04:05" (UTC): fits a terminal row."""
    return stamp[5:19].replace("T", " ")

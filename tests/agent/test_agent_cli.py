"""The agent's commands end to end: decide, rules check/test/show, deliveries."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from chronicon.cli import app
from chronicon.errors import EXIT_BAD_INPUT
from support.mail import RECIPIENTS, SMTP_PASSWORD, SMTP_USER

runner = CliRunner()
KEYWORD_RULES = "rules:\n  - {name: train, keywords: [train, railway]}\n"


@pytest.fixture
def rules_file(tmp_path: Path) -> Path:
    path = tmp_path / "rules.yaml"
    path.write_text(KEYWORD_RULES)
    return path


def test_decide_prints_the_decision(rules_file: Path) -> None:
    result = runner.invoke(app, ["decide", "A train on the railway.", "--rules", str(rules_file)])
    assert result.exit_code == 0, result.output
    assert "train score 0.94: Matched: train, railway" in result.stdout
    assert "not taken; use --act" in result.stdout


def test_decide_json_has_the_decide_and_act_shape(rules_file: Path) -> None:
    result = runner.invoke(app, ["decide", "No train is visible.", "--json",
                                 "--rules", str(rules_file)])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["decision"] == {"label": "none", "score": 0.0,
                                "reason": "No rule matched (negated: train)"}
    assert (data["action"], data["email_status"]) == ("none", "skipped")


def test_decide_from_a_result_file(tmp_path: Path, rules_file: Path) -> None:
    result_file = tmp_path / "result.json"
    result_file.write_text(json.dumps({"video_path": "/videos/clip.mp4",
                                       "analysis": "A train arrives."}))
    result = runner.invoke(app, ["decide", "--file", str(result_file), "--json",
                                 "--rules", str(rules_file)])
    assert json.loads(result.stdout)["decision"]["label"] == "train"


@pytest.mark.parametrize(("args", "message"), [
    (["decide"], "give either a description or --file"),
    (["decide", "x", "--file", "r.json"], "give either a description or --file"),
    (["decide", "--file", "missing.json"], "result file not found"),
    (["decide", "x", "--rules", "missing.yaml"], "rules file not found"),
])
def test_decide_bad_input(args: list[str], message: str) -> None:
    result = runner.invoke(app, args)
    assert result.exit_code == EXIT_BAD_INPUT
    assert message in " ".join(result.stderr.split())


def test_decide_act_delivers_and_waits(smtp_server, tls_files, monkeypatch, rules_file) -> None:
    server = smtp_server("starttls")
    for name, value in {"SMTP_HOST": "127.0.0.1", "SMTP_PORT": str(server.port),
                        "SMTP_USER": SMTP_USER, "SMTP_PASSWORD": SMTP_PASSWORD,
                        "SMTP_TO": ",".join(RECIPIENTS), "SMTP_CA_FILE": str(tls_files.cert),
                        "SMTP_TIMEOUT": "3"}.items():
        monkeypatch.setenv(name, value)
    rules_file.write_text("rules:\n  - {name: train, keywords: [train], actions: [email]}\n")
    result = runner.invoke(app, ["decide", "A train.", "--act", "--json",
                                 "--rules", str(rules_file)])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert (data["action"], data["email_status"]) == ("send_email", "sent")
    assert len(server.messages) == 1

    listed = runner.invoke(app, ["deliveries", "--json"])
    delivery, = json.loads(listed.stdout)
    assert (delivery["channel"], delivery["status"], delivery["attempts"]) == ("email", "sent", 1)
    table = runner.invoke(app, ["deliveries"])
    assert "email" in table.stdout and "sent" in table.stdout
    assert SMTP_PASSWORD not in listed.stdout + table.stdout


def test_deliveries_empty_and_bad_status() -> None:
    assert "no deliveries yet" in runner.invoke(app, ["deliveries"]).stdout
    bad = runner.invoke(app, ["deliveries", "--status", "lost"])
    assert bad.exit_code == EXIT_BAD_INPUT


def test_rules_check(tmp_path: Path, rules_file: Path) -> None:
    ok = runner.invoke(app, ["rules", "check", str(rules_file)])
    assert ok.exit_code == 0 and "1 rule(s) OK" in ok.stdout
    bad = tmp_path / "bad.yaml"
    bad.write_text("rules:\n  - name: t\n    keywords: [a]\n    threshold: -1\n")
    failed = runner.invoke(app, ["rules", "check", str(bad)])
    assert failed.exit_code == EXIT_BAD_INPUT
    assert "rule 't' (#1), field 'threshold'" in " ".join(failed.stderr.split())


def test_rules_test_json_and_table(tmp_path: Path, rules_file: Path) -> None:
    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text("\n".join(json.dumps(r) for r in [
        {"analysis": "A train.", "labels": ["train"]},
        {"analysis": "A trainer.", "labels": []},
        {"analysis": "A locomotive.", "labels": ["train"]},
    ]))
    as_json = runner.invoke(app, ["rules", "test", "--corpus", str(corpus), "--rules",
                                  str(rules_file), "--json"])
    assert json.loads(as_json.stdout) == {"train": {"precision": 1.0, "recall": 0.5,
                                                    "f1": 0.6667}}
    table = runner.invoke(app, ["rules", "test", "--corpus", str(corpus), "--rules",
                                str(rules_file)])
    assert "1 misclassified" in table.stdout
    assert "line 3: expected ['train'], got ['none']: A locomotive." in table.stdout


def test_rules_show_prints_yaml_that_parses_back(rules_file: Path) -> None:
    from chronicon.agent.rules import parse_rules

    shown = runner.invoke(app, ["rules", "show", "--rules", str(rules_file)])
    assert parse_rules(shown.stdout).rules[0].keywords == ["train", "railway"]


def test_deliveries_retry_and_deliver(webhook_receiver, monkeypatch, rules_file) -> None:
    monkeypatch.setenv("WEBHOOK_URL", webhook_receiver.url)
    monkeypatch.setenv("CHRONICON_DELIVERY_MAX_ATTEMPTS", "1")
    webhook_receiver.statuses = [500]
    rules_file.write_text("rules:\n  - {name: train, keywords: [train], actions: [webhook]}\n")
    acted = runner.invoke(app, ["decide", "A train.", "--act", "--json", "--rules",
                                str(rules_file)])
    delivery = json.loads(acted.stdout)["deliveries"][0]
    assert (delivery["status"], delivery["error"]) == ("failed", "HTTP 500")

    assert "attempted 0" in runner.invoke(app, ["deliveries", "--deliver"]).stderr
    retried = runner.invoke(app, ["deliveries", "--retry", str(delivery["id"]), "--json"])
    assert retried.exit_code == 0, retried.output
    assert "attempted 1" in retried.stderr
    row, = json.loads(retried.stdout)
    assert (row["status"], row["attempts"]) == ("sent", 2)
    missing = runner.invoke(app, ["deliveries", "--retry", "999"])
    assert missing.exit_code == EXIT_BAD_INPUT and "no delivery 999" in missing.stderr


BOAT_RULES = "rules:\n  - {name: boats, label: boat, keywords: [ferry, boat], actions: [log]}\n"


def test_rules_saved_for_the_server_are_the_rules_the_cli_uses(tmp_path: Path) -> None:
    # What the web page's Save writes (<data dir>/rules.yaml) is in force for the CLI too;
    # `rules show` and `decide` used to read only CHRONICON_RULES and fall back to the built-in.
    from chronicon.agent.rules import save_rules_text
    from chronicon.config import Settings

    save_rules_text(Settings(), BOAT_RULES)
    shown = runner.invoke(app, ["rules", "show"])
    assert shown.exit_code == 0, shown.output
    assert "name: boats" in shown.stdout and "name: train" not in shown.stdout
    decided = runner.invoke(app, ["decide", "A ferry leaves the port.", "--json"])
    assert json.loads(decided.stdout)["decision"]["label"] == "boat"


def test_rules_save_validates_and_puts_rules_in_force(tmp_path: Path) -> None:
    candidate = tmp_path / "boats.yaml"
    candidate.write_text(BOAT_RULES)
    saved = runner.invoke(app, ["rules", "save", str(candidate)])
    assert saved.exit_code == 0, saved.output
    assert (tmp_path / "data" / "rules.yaml").read_text() == BOAT_RULES
    candidate.write_text("rules:\n  - {name: x, keywords: [a], actions: [sms]}\n")
    refused = runner.invoke(app, ["rules", "save", str(candidate)])
    assert refused.exit_code == EXIT_BAD_INPUT and "unknown action 'sms'" in refused.stderr
    assert (tmp_path / "data" / "rules.yaml").read_text() == BOAT_RULES


def test_retrying_a_sent_delivery_is_a_conflict(monkeypatch, rules_file: Path) -> None:
    rules_file.write_text("rules:\n  - {name: train, keywords: [train], actions: [log]}\n")
    acted = runner.invoke(app, ["decide", "A train.", "--act", "--json", "--rules",
                                str(rules_file)])
    sent = json.loads(acted.stdout)["deliveries"][0]
    retried = runner.invoke(app, ["deliveries", "--retry", str(sent["id"])])
    assert retried.exit_code == EXIT_BAD_INPUT
    assert f"delivery {sent['id']} is sent" in " ".join(retried.stderr.split())


def test_rules_check_shows_the_verify_question(tmp_path: Path) -> None:
    path = tmp_path / "verify.yaml"
    path.write_text('rules:\n  - {name: t, keywords: [train], verify: "Is a train there?", '
                    'verify_threshold: 0.7}\n')
    checked = runner.invoke(app, ["rules", "check", str(path)])
    assert checked.exit_code == 0, checked.output
    assert "verify 'Is a train there?' at p >= 0.7" in " ".join(checked.stdout.split())

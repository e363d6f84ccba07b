"""Rule regexes cannot freeze the server: RE2 runs them in linear time, the classic
catastrophic shapes are refused when rules are saved, and a slow rule never holds the event loop.

Before: `(a+)+$` on 29 characters held Python's `re` (and the GIL) for 25 s, doubling per
character, and the server answered nothing meanwhile, `/health` included."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from chronicon.agent.decide import decide
from chronicon.agent.rules import parse_rules
from chronicon.errors import RulesError
from support.server_process import running_server

# Not refused (RE2 runs it fine), but exponential in a backtracking engine: a run of "a" can be
# split into "a" and "aa" in Fibonacci-many ways before `$` fails on the "!". Python's `re`
# takes 1 s for 30 characters here, x1.6 per character: about 10 minutes for 44.
AMBIGUOUS = "rules:\n  - {name: slow, regex: ['(a|aa)+$'], actions: [log]}\n"
HOSTILE_TEXT = "a" * 44 + "!"


@pytest.mark.parametrize(("pattern", "message"), [
    ("(a+)+$", "repeats a repeat"),
    ("(\\\\w+\\\\s?)*x", "repeats a repeat"),
    ("(a{1,5})+$", "repeats a repeat"),
    ("(?=train)", "cannot run in linear time"),
    ("(t)\\\\1", "cannot run in linear time"),
])
def test_patterns_that_need_backtracking_are_refused(pattern: str, message: str) -> None:
    with pytest.raises(RulesError) as caught:
        parse_rules(f'rules:\n  - name: r\n    regex: ["{pattern}"]\n')
    assert "rule 'r' (#1), field 'regex'" in caught.value.message
    assert message in caught.value.message


def test_exclude_patterns_are_checked_too() -> None:
    with pytest.raises(RulesError, match="field 'exclude'"):
        parse_rules('rules:\n  - {name: r, keywords: [x], exclude: ["(a+)+"]}\n')


def test_safe_patterns_keep_working() -> None:
    rules = parse_rules("rules:\n  - name: r\n    regex: ['(?-i:\\bICE\\s?\\d{1,4}\\b)', "
                        "'((ab)+c)+']\n")
    assert decide("The ICE 578 to Berlin.", rules).label == "r"
    assert decide("the ice 578", rules).label == "none"  # (?-i:...) stays case-sensitive
    assert decide("ababcabc", rules).label == "r"


def test_an_ambiguous_pattern_decides_in_linear_time() -> None:
    # In a child process: a backtracking match holds the GIL, so a thread could not be timed out.
    script = ("from chronicon.agent.decide import decide; from chronicon.agent.rules import "
              f"parse_rules; print(decide({HOSTILE_TEXT!r}, parse_rules({AMBIGUOUS!r})).label)")
    try:
        done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                              timeout=30, env={**os.environ, "PYTHONPATH": os.pathsep.join(
                                  sys.path)})
    except subprocess.TimeoutExpired:
        pytest.fail("the rule regex did not finish within 30 s")
    assert done.stdout.strip() == "none", done.stderr


@pytest.mark.slow
def test_the_server_refuses_hostile_rules_and_keeps_answering(tmp_path: Path,
                                                              tiny_model_dir: Path) -> None:
    with running_server(tmp_path / "data", str(tiny_model_dir), tmp_path / "serve.log",
                        extra_env={"CHRONICON_AGENT": "false"}) as base:
        refused = httpx.put(f"{base}/api/rules", timeout=10, json={
            "yaml": "rules:\n  - {name: slow, regex: ['(a+)+$'], actions: [log]}\n"})
        assert refused.status_code == 422
        assert "repeats a repeat" in refused.json()["error"]

        assert httpx.put(f"{base}/api/rules", json={"yaml": AMBIGUOUS}, timeout=10).is_success
        answers: list[httpx.Response] = []
        decider = threading.Thread(target=lambda: answers.append(httpx.post(
            f"{base}/decide_and_act", json={"analysis": HOSTILE_TEXT}, timeout=60)), daemon=True)
        decider.start()
        health_times = []
        for _ in range(5):
            started = time.monotonic()
            assert httpx.get(f"{base}/health", timeout=10).status_code == 200
            health_times.append(time.monotonic() - started)
            time.sleep(0.05)
        decider.join(timeout=60)
        assert answers and answers[0].json()["decision"]["label"] == "none"
        assert max(health_times) < 5.0, health_times  # generous: the machine may be busy

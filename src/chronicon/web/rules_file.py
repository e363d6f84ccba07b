"""Where the web app keeps the agent's rules, and the agent step it gives the job worker.

The rules file is `CHRONICON_RULES` when set; otherwise `<data dir>/rules.yaml`, written the
first time someone saves rules in the web page (until then the built-in rules apply). Every
analysis and `/decide_and_act` use the rules as they are on disk at that moment.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..config import Settings
from ..store import Store


def rules_path(settings: Settings) -> Path:
    return settings.rules_path or settings.data_dir / "rules.yaml"


def load_current_rules(settings: Settings) -> Any:
    """The RuleSet in force: the rules file if it exists, else the built-in rules."""
    from ..agent.rules import load_rules

    path = rules_path(settings)
    return load_rules(path if path.exists() else None)


def current_rules_text(settings: Settings) -> tuple[str, str]:
    """(YAML text, where it comes from): the file's text, or the built-in rules as YAML."""
    from ..agent.rules import default_rules_text

    path = rules_path(settings)
    if path.exists():
        return path.read_text(encoding="utf-8"), str(path)
    return default_rules_text(), "built-in"


def save_rules_text(settings: Settings, text: str) -> Any:
    """Validate (raises RulesError naming the rule and field), then write atomically."""
    from ..agent.rules import parse_rules

    path = rules_path(settings)
    rules = parse_rules(text, str(path))
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".yaml.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)
    return rules


def make_agent_step(settings: Settings, store: Store, outbox: Callable[[], Any]):
    """The job worker's agent step: decide on the description and queue the actions through
    the running outbox (`outbox()`; None makes decide_and_act use its own)."""

    def agent_step(analysis_id: str, description: str, video_filename: str,
                   frames: list[bytes]) -> dict[str, Any]:
        from ..agent.act import decide_and_act

        return decide_and_act(description, analysis_id, video_filename, settings=settings,
                              store=store, rules=load_current_rules(settings), frames=frames,
                              wait=False, outbox=outbox())

    return agent_step

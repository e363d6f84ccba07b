"""The agent step the web app gives the job worker.

Where the rules live is the agent's business (`chronicon.agent.rules.rules_path`), shared with
the CLI; every analysis uses the rules as they are on disk at that moment.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..agent.rules import load_current_rules
from ..config import Settings
from ..store import Store


def make_agent_step(settings: Settings, store: Store, outbox: Callable[[], Any]):
    """The job worker's agent step: decide on the description and queue the actions through
    the running outbox (`outbox()`; None makes decide_and_act use its own)."""

    def agent_step(analysis_id: str, description: str, video_filename: str) -> dict[str, Any]:
        from ..agent.act import decide_and_act

        return decide_and_act(description, analysis_id, video_filename, settings=settings,
                              store=store, rules=load_current_rules(settings),
                              frames_id=analysis_id, wait=False, outbox=outbox()).to_dict()

    return agent_step

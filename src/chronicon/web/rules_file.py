"""The agent step the web app gives the job worker.

Where the rules live is the agent's business (`chronicon.agent.rules.rules_path`), shared with
the CLI; every analysis uses the rules as they are on disk at that moment. Rules that `verify`
ask the warm model (the one that just described the video) about the analysis' stored frames.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..agent.act import decide_and_act
from ..agent.rules import load_current_rules
from ..agent.verify import Verifier
from ..ask import stored_frames
from ..config import Settings
from ..store import Store
from ..vlm.warm import WarmBackend


def make_agent_step(settings: Settings, store: Store, outbox: Callable[[], Any],
                    backends: WarmBackend | None = None):
    """The job worker's agent step: decide on the description and queue the actions through
    the running outbox (`outbox()`; None makes decide_and_act use its own)."""

    def agent_step(analysis_id: str, description: str, video_filename: str) -> dict[str, Any]:
        return decide_and_act(description, analysis_id, video_filename, settings=settings,
                              store=store, rules=load_current_rules(settings),
                              frames_id=analysis_id, wait=False, outbox=outbox(),
                              verifier=_verifier(store, analysis_id, backends)).to_dict()

    return agent_step


def _verifier(store: Store, analysis_id: str, backends: WarmBackend | None) -> Verifier | None:
    # The model that described the video is still held by the worker: asking it costs one
    # forward pass, and a verification never loads another model.
    backend = backends.current if backends is not None else None
    if backend is None:
        return None

    def frames() -> list[Any]:
        record = store.get_analysis(analysis_id)
        return stored_frames(record) if record is not None else []

    return Verifier.for_backend(backend, frames)

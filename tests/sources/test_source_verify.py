"""Watched clips and stream windows verify like web jobs: `record.act` hands the agent the model
that described the clip, and the rule's yes/no question is asked on the analysis' stored frames."""

from __future__ import annotations

from pathlib import Path

from chronicon.agent.verify import LOGITS
from chronicon.analysis import AnalysisOptions, analyze
from chronicon.config import Settings
from chronicon.sources.record import act, record
from chronicon.store import Store
from support.media import write_video

QUESTION = "Is there a train in these frames?"


def _recorded(tmp_path: Path, tiny_backend) -> tuple[Settings, Store, str]:
    settings = Settings(data_dir=tmp_path / "data")
    settings.data_dir.mkdir(parents=True)
    # Fires on any description, so the random-weight model's text always reaches verification.
    (settings.data_dir / "rules.yaml").write_text(
        f"rules:\n  - {{name: any, regex: ['\\S'], actions: [log], verify: \"{QUESTION}\"}}\n")
    clip = write_video(tmp_path / "clip.mp4", n_frames=30, size=(160, 120))
    options = AnalysisOptions(frames=2, max_tokens=8, min_tokens=4)
    result = analyze(clip, options, tiny_backend)
    store = Store(settings.db_path)
    return settings, store, record(store, settings, result, source="folder:test")


def test_a_watched_clip_is_verified_by_the_model_that_described_it(
        tmp_path: Path, tiny_backend) -> None:
    settings, store, analysis_id = _recorded(tmp_path, tiny_backend)
    try:
        act(store, settings, analysis_id, backend=tiny_backend)
        decision, = store.list_decisions(5, 0)
    finally:
        store.close()
    check = decision.matches[0]["verification"]
    assert check["question"] == QUESTION and 0.0 <= check["p_yes"] <= 1.0
    assert check["method"] == LOGITS and check["verified"] is (check["p_yes"] >= 0.5)


def test_without_a_model_the_firing_stands_unverified(tmp_path: Path, tiny_backend) -> None:
    settings, store, analysis_id = _recorded(tmp_path, tiny_backend)
    try:
        act(store, settings, analysis_id)
        decision, = store.list_decisions(5, 0)
    finally:
        store.close()
    check = decision.matches[0]["verification"]
    assert check["p_yes"] is None and check["verified"] is None

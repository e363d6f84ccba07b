"""Verification by the VLM (the tiny random-weight SmolVLM: its P(yes) is arbitrary but must be
a probability, recorded, and thresholded exactly), a real SMTP server for a verified vs a
suppressed alert, and semantic dedup of alerts within the cooldown."""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from chronicon.agent.act import decide_and_act
from chronicon.agent.rules import RuleSet, parse_rules
from chronicon.agent.verify import LOGITS, Verifier
from chronicon.config import Settings
from chronicon.store import Store
from chronicon.video.frames import Frame
from chronicon.vlm.transformers.backend import TransformersBackend
from chronicon.web import create_app
from support.mail import smtp_settings
from support.media import write_video
from support.web_client import upload, wait_for_job

QUESTION = "Is there a train in these frames?"
TRAIN = "A regional train arrives at the platform."


def verifying_rules(threshold: float, action: str = "log", cooldown: str = "0") -> RuleSet:
    return parse_rules(f"rules:\n  - name: train\n    keywords: [train]\n    actions: [{action}]\n"
                       f"    cooldown: {cooldown}\n    verify: \"{QUESTION}\"\n"
                       f"    verify_threshold: {threshold!r}\n")


@pytest.fixture(scope="module")
def tiny_backend(tiny_model_dir: Path) -> Iterator[TransformersBackend]:
    backend = TransformersBackend(model=str(tiny_model_dir), device="cpu")
    backend.load()
    yield backend


@pytest.fixture(scope="module")
def frames() -> list[Frame]:
    colours = [(200, 30, 30), (30, 30, 200)]
    return [Frame(i, i / 2, Image.new("RGB", (64, 48), c)) for i, c in enumerate(colours)]


@pytest.fixture(scope="module")
def p_yes(tiny_backend: TransformersBackend, frames: list[Frame]) -> float:
    p = tiny_backend.answer_yes_probability(frames, QUESTION)
    assert p is not None and 0.0 <= p <= 1.0
    return p


def test_the_probability_is_recorded_and_thresholded_exactly(
        tmp_path, store, tiny_backend, frames, p_yes) -> None:
    settings = Settings(data_dir=tmp_path / "data")
    verifier = Verifier.for_backend(tiny_backend, lambda: frames)
    assert verifier.method == LOGITS

    at = decide_and_act(TRAIN, "r1", "a.mp4", settings=settings, store=store,
                        rules=verifying_rules(p_yes), verifier=verifier)
    check = at.decision.matches[0].verification
    assert check["p_yes"] == p_yes and check["verified"] is True  # p >= threshold, exactly
    assert at.deliveries[0].status == "queued"
    assert at.decision.matches[0].score == 0.75  # the text score stays beside the answer

    above = decide_and_act(TRAIN, "r2", "b.mp4", settings=settings, store=store,
                           rules=verifying_rules(math.nextafter(p_yes, 2.0)), verifier=verifier)
    assert above.decision.matches[0].verification["verified"] is False
    assert above.deliveries[0].status == "suppressed"
    assert above.deliveries[0].note == f"not verified, p={p_yes:.2f}"
    assert above.action == "none"

    stored = store.list_decisions(10, 0)[0]  # newest first: the rejected one, not lost
    assert stored.matches[0]["verification"]["p_yes"] == p_yes
    assert stored.matches[0]["verification"]["answer"] in ("yes", "no")
    assert f"not verified, p={p_yes:.2f}" in stored.reason


def test_a_verified_alert_is_mailed_and_a_rejected_one_is_not(
        smtp_server, tls_files, tmp_path, store, tiny_backend, frames) -> None:
    server = smtp_server("starttls")
    settings = smtp_settings(tmp_path, server.port, tls_files)
    verifier = Verifier.for_backend(tiny_backend, lambda: frames)
    sent = decide_and_act(TRAIN, "r1", "a.mp4", settings=settings, store=store, wait=True,
                          rules=verifying_rules(0.0, "email"), verifier=verifier).to_dict()
    assert (sent["action"], sent["email_status"]) == ("send_email", "sent")
    assert len(server.messages) == 1

    rejected = decide_and_act(TRAIN, "r2", "b.mp4", settings=settings, store=store, wait=True,
                              rules=verifying_rules(1.0, "email"), verifier=verifier).to_dict()
    assert (rejected["action"], rejected["email_status"]) == ("none", "skipped")
    delivery = rejected["deliveries"][0]
    assert delivery["status"] == "suppressed" and delivery["note"].startswith("not verified, p=")
    assert len(server.messages) == 1


def test_without_frames_a_firing_stands_unverified(tmp_path, store) -> None:
    answer = decide_and_act(TRAIN, "r1", "a.mp4", settings=Settings(data_dir=tmp_path / "d"),
                            store=store, rules=verifying_rules(0.9))
    check = answer.decision.matches[0].verification
    assert (check["verified"], check["p_yes"]) == (None, None)
    assert check["note"] == "unverified: no frames to ask about"
    assert answer.deliveries[0].status == "queued"


def test_same_meaning_within_the_cooldown_is_a_duplicate(tmp_path, store) -> None:
    settings = Settings(data_dir=tmp_path / "data")
    rules = parse_rules("rules:\n  - {name: train, keywords: [train, locomotive], "
                        "cooldown: 5m, dedup_similarity: 0.9}\n")

    def act(text: str, video: str):
        return decide_and_act(text, None, video, settings=settings, store=store, rules=rules)

    first = act("A red train arrives at the platform.", "a.mp4").deliveries[0]
    again = act("A red train is arriving at the platform.", "b.mp4").deliveries[0]
    other = act("A locomotive hauls freight wagons across a bridge in the snow.",
                "c.mp4").deliveries[0]
    assert first.status == "queued"
    assert again.status == "suppressed"
    assert again.note.startswith(f"duplicate of delivery {first.id} (same meaning, cosine 0.9")
    assert other.status == "queued"  # the first is not sent yet, so no cooldown either


def test_dedup_vectors_are_unit_vectors_in_the_store(tmp_path, store) -> None:
    settings = Settings(data_dir=tmp_path / "data")
    rules = parse_rules("rules:\n  - {name: train, keywords: [train], cooldown: 1m}\n")
    answer = decide_and_act(TRAIN, None, "a.mp4", settings=settings, store=store, rules=rules)
    (_, vector), = store.recent_alert_vectors("train", "log", rules.model,
                                              since=_long_ago(), exclude_decision=-1)
    assert answer.decision_id is not None
    assert abs(float(np.linalg.norm(vector)) - 1.0) < 1e-3


def _long_ago():
    from datetime import datetime, timezone

    return datetime(2000, 1, 1, tzinfo=timezone.utc)


@pytest.mark.slow
def test_a_web_job_verifies_with_the_warm_model(tmp_path: Path, tiny_model_dir: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data", model=str(tiny_model_dir), device="cpu")
    settings.data_dir.mkdir(parents=True)
    (settings.data_dir / "rules.yaml").write_text(
        f"rules:\n  - {{name: any, regex: ['\\S'], actions: [log], verify: \"{QUESTION}\"}}\n")
    clip = write_video(tmp_path / "clip.mp4", n_frames=30)
    with TestClient(create_app(settings)) as client:
        job = wait_for_job(client, upload(client, clip, frames=2, max_tokens=250,
                                          min_tokens=50).json()["job_id"], timeout=120)
        assert job["state"] == "done", job
    opened = Store(settings.db_path)
    try:
        decision, = opened.list_decisions(5, 0)
    finally:
        opened.close()
    assert decision.matches, (decision.reason, decision.analysis)
    check = decision.matches[0]["verification"]
    assert check["question"] == QUESTION and 0.0 <= check["p_yes"] <= 1.0
    assert check["method"] == LOGITS

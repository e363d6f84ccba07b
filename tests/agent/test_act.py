"""decide_and_act: the long-standing answer shape, recorded decisions, email through the outbox."""

from __future__ import annotations

import email
import email.policy

from chronicon.agent.act import decide_and_act
from chronicon.agent.outbox import Outbox
from chronicon.config import Settings
from support.mail import smtp_settings

CORE_KEYS = {"decision", "action", "email_status"}


def test_nothing_found_means_no_action(tmp_path, store, default_rules) -> None:
    settings = Settings(data_dir=tmp_path / "data")
    result = decide_and_act("A ferry crosses a harbor at sunset.", "r1", "ferry.mp4",
                            settings=settings, store=store, rules=default_rules).to_dict()
    assert result["decision"] == {"label": "none", "score": 0.0, "reason": "No rule matched"}
    assert (result["action"], result["email_status"]) == ("none", "skipped")
    assert result["deliveries"] == []
    decision, = store.list_decisions()
    assert (decision.label, decision.run_id, decision.video_filename) == ("none", "r1",
                                                                          "ferry.mp4")


def test_without_smtp_the_default_rules_log(tmp_path, store, default_rules) -> None:
    settings = Settings(data_dir=tmp_path / "data")
    result = decide_and_act("A regional train on the railway.", "r2", "t.mp4", settings=settings,
                            store=store, rules=default_rules, wait=True).to_dict()
    assert set(result) >= CORE_KEYS
    assert result["decision"]["label"] == "train"
    assert result["decision"]["reason"] == "Matched: train, railway"
    assert (result["action"], result["email_status"]) == ("log", "skipped")
    assert result["deliveries"][0]["status"] == "sent"
    assert store.get_decision(result["decision_id"]).action == "log"


def test_email_is_queued_then_sent_by_the_outbox(smtp_server, tls_files, tmp_path, store,
                                                 default_rules) -> None:
    server = smtp_server("starttls")
    settings = smtp_settings(tmp_path, server.port, tls_files)
    (settings.frames_dir / "r3").mkdir(parents=True)
    (settings.frames_dir / "r3" / "0.jpg").write_bytes(b"\xff\xd8fake-jpeg")
    result = decide_and_act("A <b>train</b> passes.", "r3", "clip.mp4", settings=settings,
                            store=store, rules=default_rules, frames_id="r3").to_dict()
    assert (result["action"], result["email_status"]) == ("send_email", "queued")
    assert server.messages == []
    # The delivery names the analysis whose frames it attaches; the images stay on disk.
    payload = store.get_delivery(result["deliveries"][0]["id"]).payload
    assert payload["frames_id"] == "r3" and "frames" not in payload
    Outbox(store, settings).deliver_due()
    assert store.get_delivery(result["deliveries"][0]["id"]).status == "sent"
    message = email.message_from_bytes(server.messages[0][2], policy=email.policy.default)
    assert "&lt;b&gt;train&lt;/b&gt;" in message.get_body(("html",)).get_content()
    images = [p for p in message.walk() if p.get_content_maintype() == "image"]
    assert [i.get_content() for i in images] == [b"\xff\xd8fake-jpeg"]


def test_wait_reports_sent_or_failed(smtp_server, tls_files, tmp_path, store,
                                     default_rules) -> None:
    server = smtp_server("ssl")
    settings = smtp_settings(tmp_path, server.port, tls_files, smtp_security="ssl")
    sent = decide_and_act("A metro train.", "r4", "a.mp4", settings=settings, store=store,
                          rules=default_rules, wait=True).to_dict()
    assert (sent["action"], sent["email_status"]) == ("send_email", "sent")
    assert len(server.messages) == 1

    bad = smtp_settings(tmp_path, server.port, tls_files, smtp_security="ssl",
                        smtp_password="wrong")
    failed = decide_and_act("A MySQL console.", "r5", "b.mp4", settings=bad, store=store,
                            rules=default_rules, wait=True).to_dict()
    assert (failed["action"], failed["email_status"]) == ("send_email", "failed")
    assert "authentication failed" in failed["deliveries"][0]["error"]


def test_cooldown_reports_skipped(smtp_server, tls_files, tmp_path, store, default_rules) -> None:
    server = smtp_server("starttls")
    settings = smtp_settings(tmp_path, server.port, tls_files)
    decide_and_act("A train.", "r6", "a.mp4", settings=settings, store=store,
                   rules=default_rules, wait=True).to_dict()
    again = decide_and_act("A locomotive.", "r7", "b.mp4", settings=settings, store=store,
                           rules=default_rules, wait=True).to_dict()
    assert again["email_status"] == "skipped"
    assert again["deliveries"][0]["note"].startswith("cooldown")
    assert len(server.messages) == 1


def test_dry_run_decides_without_recording_or_sending(tmp_path, store, default_rules) -> None:
    settings = Settings(data_dir=tmp_path / "data")
    answer = decide_and_act("A regional train on the railway.", "r8", "t.mp4",
                            settings=settings, store=None, rules=default_rules, dry_run=True)
    assert (answer.label, answer.action, answer.decision_id) == ("train", "log", None)
    data = answer.to_dict()
    assert data["dry_run"] is True and "deliveries" not in data
    assert store.list_decisions(10, 0) == []


def test_a_timeline_chunk_decision_carries_its_moment(tmp_path, store, default_rules) -> None:
    settings = Settings(data_dir=tmp_path / "data")
    answer = decide_and_act("A train.", "r9", "long.mp4", settings=settings, store=store,
                            rules=default_rules, start=200.0, end=230.5)
    payload = store.get_delivery(answer.deliveries[0].id).payload
    assert (payload["start"], payload["end"], payload["moment"]) == (200.0, 230.5, "03:20-03:50")

"""Outbox bookkeeping: cooldown, dedup, restarts, the background worker, the audit trail."""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from chronicon.agent.act import decide_and_act
from chronicon.agent.channels import DeliveryResult
from chronicon.agent.outbox import Outbox
from chronicon.agent.rules import parse_rules
from chronicon.config import Settings
from chronicon.errors import Conflict, NotFound
from chronicon.store import Store

RULES = parse_rules("""
rules:
  - {name: train, keywords: [train], actions: [webhook], cooldown: 10m}
  - {name: loud, keywords: [siren], actions: [log]}
""")


def hook_settings(tmp_path: Path, url: str, **extra) -> Settings:
    return Settings(data_dir=tmp_path / "data", webhook_url=url, delivery_backoff_s=0,
                    delivery_max_attempts=3, webhook_timeout=2, **extra)


def act(text: str, settings: Settings, store: Store, video: str = "a.mp4", **kwargs) -> dict:
    return decide_and_act(text, "run", video, settings=settings, store=store, rules=RULES,
                          **kwargs).to_dict()


def test_cooldown_counts_notifications_actually_sent(webhook_receiver, tmp_path, store) -> None:
    settings = hook_settings(tmp_path, webhook_receiver.url)
    first = act("A train.", settings, store, wait=True)
    assert first["action"] == "webhook" and first["deliveries"][0]["status"] == "sent"
    second = act("Another train, later.", settings, store, video="b.mp4", wait=True)
    delivery = second["deliveries"][0]
    assert delivery["status"] == "suppressed" and delivery["note"].startswith("cooldown")
    assert len(webhook_receiver.requests) == 1
    # Both decisions are recorded, whatever happened to their notifications.
    assert [d.label for d in store.list_decisions()] == ["train", "train"]


def test_cooldown_does_not_start_on_a_failed_send(webhook_receiver, tmp_path, store) -> None:
    webhook_receiver.statuses = [404]  # a final failure: nothing was sent
    settings = hook_settings(tmp_path, webhook_receiver.url)
    assert act("A train.", settings, store, wait=True)["deliveries"][0]["status"] == "failed"
    again = act("A second train.", settings, store, video="b.mp4", wait=True)
    assert again["deliveries"][0]["status"] == "sent"


def test_repeats_of_one_event_are_deduplicated(webhook_receiver, tmp_path, store) -> None:
    settings = hook_settings(tmp_path, webhook_receiver.url)
    first = act("A train arrives.", settings, store)  # queued, not yet sent
    repeat = act("  a TRAIN   arrives. ", settings, store)
    assert first["deliveries"][0]["status"] == "queued"
    note = repeat["deliveries"][0]["note"]
    assert repeat["deliveries"][0]["status"] == "suppressed"
    assert note == f"duplicate of delivery {first['deliveries'][0]['id']} (same event within 600s)"
    Outbox(store, settings).deliver_due()
    assert len(webhook_receiver.requests) == 1


def test_queued_deliveries_wait_for_the_cooldown_of_an_earlier_send(webhook_receiver, tmp_path,
                                                                    store) -> None:
    settings = hook_settings(tmp_path, webhook_receiver.url)
    act("A train.", settings, store, video="1.mp4")
    act("A train again.", settings, store, video="2.mp4")
    Outbox(store, settings).deliver_due()
    statuses = [d.status for d in store.list_deliveries()][::-1]
    assert statuses == ["sent", "suppressed"]
    assert len(webhook_receiver.requests) == 1


def test_without_cooldown_every_decision_is_delivered(tmp_path, store) -> None:
    settings = Settings(data_dir=tmp_path / "data")
    for _ in range(3):
        assert act("A siren wails.", settings, store, wait=True)["deliveries"][0]["status"] == \
            "sent"


def test_restart_resumes_pending_deliveries(webhook_receiver, tmp_path) -> None:
    settings = hook_settings(tmp_path, webhook_receiver.url)
    db_path = tmp_path / "data" / "chronicon.db"
    first = Store(db_path)
    queued = act("A train.", settings, first)["deliveries"][0]["id"]
    crashed = act("A siren wails.", settings, first)["deliveries"][0]["id"]
    # A crash in the middle of a send leaves a claimed row behind.
    first.execute("UPDATE deliveries SET status = 'sending', claimed_at = ? WHERE id = ?",
                  ("2000-01-01T00:00:00.000000+00:00", crashed))
    first.close()

    second = Store(db_path)  # the "restarted" process
    outbox = Outbox(second, settings, poll_interval=0.05)
    outbox.start()
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and any(
                second.get_delivery(i).status != "sent" for i in (queued, crashed)):
            time.sleep(0.05)
    finally:
        outbox.stop()
    assert not outbox.running
    assert second.get_delivery(queued).status == "sent"
    assert second.get_delivery(crashed).status == "sent"  # the stale claim was taken over
    assert len(webhook_receiver.requests) == 1
    second.close()


def test_worker_delivers_in_the_background(tmp_path, store) -> None:
    sent: list[int] = []

    class Recording:
        def send(self, delivery):
            sent.append(delivery.id)
            return DeliveryResult(True, detail="recorded")

    settings = Settings(data_dir=tmp_path / "data")
    outbox = Outbox(store, settings, channels={"log": Recording()}, poll_interval=5)
    outbox.start()
    try:
        result = act("A siren wails.", settings, store, outbox=outbox)
        deadline = time.monotonic() + 5
        while not sent and time.monotonic() < deadline:
            time.sleep(0.02)  # enqueue wakes the worker: no 5 s poll wait
    finally:
        outbox.stop()
    assert sent == [result["deliveries"][0]["id"]]


@pytest.mark.expect_error_logs  # the outbox logs the raising channel with its traceback
def test_a_channel_that_raises_is_a_recorded_retryable_failure(tmp_path, store) -> None:
    class Broken:
        def send(self, delivery):
            raise RuntimeError("boom")

    settings = Settings(data_dir=tmp_path / "data", delivery_backoff_s=5)
    outbox = Outbox(store, settings, channels={"log": Broken()})
    delivery_id = act("A siren.", settings, store, outbox=outbox)["deliveries"][0]["id"]
    outbox.deliver_due()
    delivery = store.get_delivery(delivery_id)
    assert (delivery.status, delivery.last_error) == ("retrying", "RuntimeError: boom")


def test_retry_errors(tmp_path, store) -> None:
    settings = Settings(data_dir=tmp_path / "data")
    outbox = Outbox(store, settings)
    with pytest.raises(NotFound):
        outbox.retry(999)
    sent = act("A siren.", settings, store, wait=True)["deliveries"][0]["id"]
    with pytest.raises(Conflict, match="is sent"):
        outbox.retry(sent)


def test_two_workers_never_take_the_same_delivery(tmp_path, store) -> None:
    settings = Settings(data_dir=tmp_path / "data")
    act("A siren.", settings, store)
    now = datetime.now(timezone.utc)
    first = store.claim_due_deliveries(now, now - timedelta(minutes=5))
    second = store.claim_due_deliveries(now, now - timedelta(minutes=5))
    assert len(first) == 1 and second == []


def test_webhook_without_url_and_email_without_smtp_fall_back_to_log(tmp_path, store) -> None:
    settings = Settings(data_dir=tmp_path / "data", webhook_url=None)
    result = act("A train.", settings, store, wait=True)
    assert result["action"] == "log" and result["email_status"] == "skipped"
    assert [d["channel"] for d in result["deliveries"]] == ["log"]


def test_one_pass_attempts_each_delivery_once(tmp_path, store) -> None:
    calls: list[int] = []

    class Failing:
        def send(self, delivery):
            calls.append(delivery.id)
            return DeliveryResult(False, error="nope")

    settings = Settings(data_dir=tmp_path / "data", delivery_backoff_s=0)
    outbox = Outbox(store, settings, channels={"log": Failing()})
    act("A siren.", settings, store, outbox=outbox)
    future = datetime.now(timezone.utc) + timedelta(days=1)
    assert outbox.deliver_due(future) == 1 and len(calls) == 1
    outbox.start()
    outbox.stop()
    assert outbox.deliver_due(future + timedelta(seconds=1)) == 1  # usable after stop()
    assert len(calls) == 2

"""The webhook channel through the outbox against a real HTTP server thread."""

from __future__ import annotations

import hashlib
import hmac
from datetime import datetime, timedelta, timezone
from pathlib import Path

from chronicon.agent.channels.webhook import SIGNATURE_HEADER
from chronicon.agent.outbox import Outbox
from chronicon.config import Settings
from chronicon.store import Store
from support.mail import free_port

SECRET = "webhook-secret"


def hook_settings(tmp_path: Path, url: str, **extra) -> Settings:
    return Settings(data_dir=tmp_path / "data", webhook_url=url, webhook_secret=SECRET,
                    webhook_token="tok-123", webhook_timeout=2, delivery_backoff_s=10,
                    delivery_max_attempts=3, **extra)


def queue_hook(outbox: Outbox, store: Store) -> int:
    decision_id = store.insert_decision(
        created_at=datetime.now(timezone.utc), run_id="r1", video_filename="clip.mp4",
        label="train", score=0.75, reason="Matched: train", rule="train", action="webhook",
        analysis="A train.", matches=[])
    payload = {"decision": {"label": "train", "score": 0.75, "reason": "Matched: train"},
               "labels": ["train"], "analysis": "A train.", "run_id": "r1",
               "video_filename": "clip.mp4", "frames": ["AAAA"]}
    return outbox.enqueue(decision_id=decision_id, rule="train", channel="webhook",
                          dedup_key=f"w{decision_id}", payload=payload).id


def test_signed_json_post(webhook_receiver, tmp_path, store) -> None:
    outbox = Outbox(store, hook_settings(tmp_path, webhook_receiver.url))
    delivery_id = queue_hook(outbox, store)
    outbox.deliver_due()
    assert store.get_delivery(delivery_id).status == "sent"
    (headers, body), = webhook_receiver.requests
    expected = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(headers[SIGNATURE_HEADER.lower()], expected)
    assert headers["authorization"] == "Bearer tok-123"
    assert headers["content-type"] == "application/json"
    assert headers["x-chronicon-delivery"] == str(delivery_id)
    sent, = webhook_receiver.json_bodies()
    assert sent["decision"] == {"label": "train", "score": 0.75, "reason": "Matched: train"}
    assert (sent["video_filename"], sent["run_id"], sent["delivery_id"]) == ("clip.mp4", "r1",
                                                                            delivery_id)
    assert "frames" not in sent


def test_retries_on_500_with_exponential_backoff(webhook_receiver, tmp_path, store) -> None:
    webhook_receiver.statuses = [500, 503]
    outbox = Outbox(store, hook_settings(tmp_path, webhook_receiver.url))
    delivery_id = queue_hook(outbox, store)
    now = datetime.now(timezone.utc)
    outbox.deliver_due(now)
    first = store.get_delivery(delivery_id)
    assert (first.status, first.last_error) == ("retrying", "HTTP 500")
    delay1 = datetime.fromisoformat(first.next_attempt_at) - now
    outbox.deliver_due(now + timedelta(seconds=11))
    second = store.get_delivery(delivery_id)
    delay2 = datetime.fromisoformat(second.next_attempt_at) - (now + timedelta(seconds=11))
    assert timedelta(seconds=10) <= delay1 < timedelta(seconds=12)   # backoff 10 s ...
    assert timedelta(seconds=20) <= delay2 < timedelta(seconds=22)   # ... then doubled
    outbox.deliver_due(now + timedelta(seconds=40))
    assert store.get_delivery(delivery_id).status == "sent"
    assert len(webhook_receiver.requests) == 3
    assert [a.error for a in store.list_attempts(delivery_id)] == ["HTTP 500", "HTTP 503", None]
    # The receiver can tell attempts of one delivery apart from new events.
    assert [b["attempt"] for b in webhook_receiver.json_bodies()] == [1, 2, 3]


def test_gives_up_after_max_attempts_and_stays_visible(webhook_receiver, tmp_path, store) -> None:
    webhook_receiver.statuses = [500] * 10
    settings = hook_settings(tmp_path, webhook_receiver.url)
    outbox = Outbox(store, settings)
    delivery_id = queue_hook(outbox, store)
    moment = datetime.now(timezone.utc)
    for _ in range(5):
        outbox.deliver_due(moment)
        moment += timedelta(hours=1)
    delivery = store.get_delivery(delivery_id)
    assert (delivery.status, delivery.attempts) == ("failed", 3)
    assert delivery.note == "gave up after the final attempt"
    assert len(webhook_receiver.requests) == 3
    assert [d.id for d in store.list_deliveries(status="failed")] == [delivery_id]

    webhook_receiver.statuses = []
    retried = outbox.retry(delivery_id)
    assert (retried.status, retried.max_attempts) == ("queued", 6)
    outbox.deliver_due()
    assert store.get_delivery(delivery_id).status == "sent"
    assert len(store.list_attempts(delivery_id)) == 4


def test_client_error_is_not_retried(webhook_receiver, tmp_path, store) -> None:
    webhook_receiver.statuses = [404]
    outbox = Outbox(store, hook_settings(tmp_path, webhook_receiver.url))
    delivery_id = queue_hook(outbox, store)
    outbox.deliver_due()
    assert store.get_delivery(delivery_id).status == "failed"


def test_unreachable_receiver_is_retried(tmp_path, store) -> None:
    outbox = Outbox(store, hook_settings(tmp_path, f"http://127.0.0.1:{free_port()}/hook"))
    delivery_id = queue_hook(outbox, store)
    outbox.deliver_due()
    delivery = store.get_delivery(delivery_id)
    assert delivery.status == "retrying" and "ConnectError" in delivery.last_error
    assert SECRET not in delivery.last_error and "tok-123" not in delivery.last_error

"""The outbox: every notification is a row first, then an attempt, then a recorded outcome.

- `enqueue` writes the delivery (or a `suppressed` row saying why it will not be sent: the rule's
  cooldown is running since its last notification actually sent, or the same event, by
  `dedup_key`, was already queued or sent within the cooldown window, or a description that
  means the same (cosine of the sentence embeddings >= the rule's `dedup_similarity`) was, or
  the caller says why, e.g. `not verified, p=0.12`).
- `deliver_due` claims every due delivery (a transaction marks them `sending`, so two workers or
  two processes never take the same one), calls the channel, and records the attempt. A failure
  is retried after `delivery_backoff_s * 2**(attempt-1)` seconds until `delivery_max_attempts`;
  then, or at once for an error retrying cannot fix, the delivery is `failed` and stays visible
  until `retry(id)`. Nothing is dropped: a crash leaves rows `queued`/`retrying`/`sending`, and a
  later pass (after a restart too) picks them up; a `sending` claim older than the lease is taken
  over (at-least-once delivery; webhooks carry `X-Chronicon-Delivery` to spot repeats).
- `start()` runs `deliver_due` on a background thread every `poll_interval` seconds.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

import numpy as np

from ..config import Settings
from ..errors import Conflict, DeliveryError, NotFound
from ..store import Store
from ..store.agent_records import DeliveryRecord
from .channels import Channel, Delivery, DeliveryResult, default_channels

log = logging.getLogger("chronicon.agent")


RETRIED_NOTE = "retry requested"


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _parse(stamp: str) -> datetime:
    return datetime.fromisoformat(stamp)


@dataclass(frozen=True)
class AlertMeaning:
    """What a description means (a unit vector of embedding `model`) and how close another
    must be to count as the same alert."""

    model: str
    vector: np.ndarray
    threshold: float


class Outbox:
    def __init__(self, store: Store, settings: Settings,
                 channels: dict[str, Channel] | None = None, poll_interval: float = 2.0):
        self.store = store
        self.settings = settings
        self.channels = channels if channels is not None else default_channels(settings)
        self.poll_interval = poll_interval
        # A claim older than this is presumed dead (its process crashed mid-send).
        self.lease = timedelta(seconds=4 * max(settings.smtp_timeout,
                                               settings.webhook_timeout) + 60)
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

    # ---- writing --------------------------------------------------------------------------------

    def enqueue(self, *, decision_id: int, rule: str, channel: str, dedup_key: str,
                payload: dict[str, Any], cooldown_s: float = 0.0,
                now: datetime | None = None, meaning: AlertMeaning | None = None,
                suppress: str | None = None) -> DeliveryRecord:
        """Record a delivery: `queued`, or `suppressed` (`suppress` given, cooldown, duplicate
        by key or by `meaning`) with the reason."""
        now = now or _now()
        if channel not in self.channels:
            raise DeliveryError(f"unknown channel {channel!r}", retryable=False)
        note = suppress or self._suppression(rule, channel, dedup_key, cooldown_s, now,
                                             decision_id, meaning)
        delivery_id = self.store.insert_delivery(
            decision_id=decision_id, rule=rule, channel=channel, dedup_key=dedup_key,
            status="suppressed" if note else "queued",
            max_attempts=self.settings.delivery_max_attempts, payload=payload, now=now,
            note=note)
        self._wake.set()
        return self.store.get_delivery(delivery_id)  # type: ignore[return-value]

    def _suppression(self, rule: str, channel: str, dedup_key: str, cooldown_s: float,
                     now: datetime, decision_id: int,
                     meaning: AlertMeaning | None) -> str | None:
        if cooldown_s <= 0:
            return None
        window_start = now - timedelta(seconds=cooldown_s)
        repeat = self.store.find_repeat(dedup_key, window_start)
        if repeat is not None:
            return f"duplicate of delivery {repeat.id} (same event within {cooldown_s:g}s)"
        if meaning is not None:
            for delivery_id, vector in self.store.recent_alert_vectors(
                    rule, channel, meaning.model, window_start, decision_id):
                cosine = float(vector @ meaning.vector)
                if cosine >= meaning.threshold:
                    return (f"duplicate of delivery {delivery_id} (same meaning, cosine "
                            f"{cosine:.2f}, within {cooldown_s:g}s)")
        last = self.store.last_sent_at(rule, channel)
        if last is not None and _parse(last) > window_start:
            return f"cooldown: rule {rule!r} sent by {channel} at {last} (cooldown {cooldown_s:g}s)"
        return None

    def retry(self, delivery_id: int) -> DeliveryRecord:
        """Make a failed (given up) or suppressed delivery due now, with a fresh set of attempts.
        `NotFound` for an unknown id, `Conflict` for a delivery in another state (e.g. sent)."""
        found = self.store.get_delivery(delivery_id)
        if found is None:
            raise NotFound(f"no delivery {delivery_id}")
        if not self.store.requeue_delivery(delivery_id, self.settings.delivery_max_attempts,
                                           _now(), note=RETRIED_NOTE):
            raise Conflict(f"delivery {delivery_id} is {found.status}; only failed, "
                           "suppressed or retrying deliveries can be retried")
        self._wake.set()
        return self.store.get_delivery(delivery_id)  # type: ignore[return-value]

    # ---- delivering -----------------------------------------------------------------------------

    def deliver_due(self, now: datetime | None = None) -> int:
        """One pass: attempt every delivery due at `now`; returns how many were attempted."""
        now = now or _now()
        attempted = 0
        # Batches until none is due; each attempt pushes its row out of `now` (sent, failed or
        # rescheduled later), so the loop ends. The worker stops between batches on `stop()`.
        while not (self._stop.is_set() and self.running):
            batch = self.store.claim_due_deliveries(now, now - self.lease)
            if not batch:
                break
            for delivery in batch:
                self._attempt(delivery, now)
                attempted += 1
        return attempted

    def deliver_now(self, delivery_id: int) -> DeliveryRecord | None:
        """Attempt one queued delivery immediately (the `wait=True` path); its new state."""
        now = _now()
        claimed = self.store.claim_delivery(delivery_id, now)
        if claimed is not None:
            self._attempt(claimed, now)
        return self.store.get_delivery(delivery_id)

    def _cooling_down(self, delivery: DeliveryRecord, cooldown_s: float) -> str | None:
        """A notification of the same rule and channel was sent after this one was queued."""
        if cooldown_s <= 0 or delivery.attempts > 0 or delivery.note == RETRIED_NOTE:
            return None  # only a fresh delivery waits for the cooldown; a retry goes out
        last = self.store.last_sent_at(delivery.rule, delivery.channel)
        if last is not None and last >= delivery.created_at:
            return (f"cooldown: rule {delivery.rule!r} sent by {delivery.channel} at {last} "
                    f"(cooldown {cooldown_s:g}s)")
        return None

    def _attempt(self, delivery: DeliveryRecord, now: datetime) -> None:
        note = self._cooling_down(delivery, float(delivery.payload.get("cooldown_s") or 0))
        if note is not None:
            self.store.suppress_delivery(delivery.id, note, now)
            return
        attempt = delivery.attempts + 1
        started = _now()
        result = self._send(delivery)
        finished = _now()
        if result.ok:
            status, next_at = "sent", None
        elif not result.retryable or attempt >= delivery.max_attempts:
            status, next_at = "failed", None
        else:
            delay = self.settings.delivery_backoff_s * 2 ** (attempt - 1)
            # Strictly after `now`, so the pass that made this attempt does not repeat it.
            later = max(now + timedelta(microseconds=1), finished)
            status, next_at = "retrying", later + timedelta(seconds=delay)
        self.store.record_attempt(
            delivery_id=delivery.id, attempt=attempt, started_at=started, finished_at=finished,
            ok=result.ok, error=result.error, detail=result.detail or None, status=status,
            next_attempt_at=next_at,
            note=("gave up after the final attempt" if status == "failed" and result.retryable
                  else None))
        level = logging.INFO if result.ok else logging.WARNING
        log.log(level, "delivery %s via %s attempt %s: %s %s", delivery.id, delivery.channel,
                attempt, status, result.error or result.detail)

    def _send(self, delivery: DeliveryRecord) -> DeliveryResult:
        channel = self.channels.get(delivery.channel)
        if channel is None:
            return DeliveryResult(False, error=f"unknown channel {delivery.channel!r}",
                                  retryable=False)
        try:
            return channel.send(Delivery(
                id=delivery.id, decision_id=delivery.decision_id, rule=delivery.rule,
                channel=delivery.channel, attempt=delivery.attempts + 1,
                payload=delivery.payload))
        except DeliveryError as exc:
            return DeliveryResult(False, error=exc.message, retryable=exc.retryable)
        except Exception as exc:  # noqa: BLE001 - a channel bug must not lose the delivery
            log.exception("channel %s raised", delivery.channel)
            return DeliveryResult(False, error=f"{type(exc).__name__}: {exc}")

    # ---- the background worker ------------------------------------------------------------------

    def start(self) -> None:
        """Deliver in the background until `stop()`; pending rows from earlier runs included."""
        if self._thread is not None and self._thread.is_alive():
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="chronicon-outbox", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def wake(self) -> None:
        """Run a pass now instead of at the next poll."""
        self._wake.set()

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.deliver_due()
            except Exception:  # noqa: BLE001 - keep the worker alive; the rows stay pending
                log.exception("outbox pass failed")
            self._wake.wait(self.poll_interval)
            self._wake.clear()

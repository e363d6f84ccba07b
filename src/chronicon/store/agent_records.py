"""Queries for decisions, deliveries and delivery attempts (the agent's audit trail).

Delivery statuses: `queued` (due now or at `next_attempt_at`), `sending` (claimed by a worker;
a claim older than the lease is taken over, so a crash mid-send is retried), `retrying` (an
attempt failed, the next is scheduled), `sent`, `failed` (given up after its attempts or on an
error retrying cannot fix; `retry` makes it due again) and `suppressed` (cooldown or duplicate;
recorded, never sent). Times are ISO-8601 UTC strings with microseconds, so they sort as text.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from typing import Any

PENDING = ("queued", "retrying", "sending")
STATUSES = ("queued", "sending", "retrying", "sent", "failed", "suppressed")


def iso(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).isoformat(timespec="microseconds")


@dataclass
class DecisionRecord:
    id: int
    created_at: str
    run_id: str | None
    video_filename: str | None
    label: str
    score: float
    reason: str
    rule: str | None
    action: str
    analysis: str
    matches: list[dict[str, Any]]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class DeliveryRecord:
    """One notification to one channel, with its retry state. `payload` is what channels send."""

    id: int
    decision_id: int
    created_at: str
    updated_at: str
    rule: str
    channel: str
    dedup_key: str
    status: str
    attempts: int
    max_attempts: int
    next_attempt_at: str | None
    claimed_at: str | None
    sent_at: str | None
    last_error: str | None
    note: str | None
    payload: dict[str, Any] = field(repr=False)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class AttemptRecord:
    id: int
    delivery_id: int
    attempt: int
    started_at: str
    finished_at: str
    ok: bool
    error: str | None
    detail: str | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _decision(row: Any) -> DecisionRecord:
    data = dict(row)
    data["matches"] = json.loads(data.pop("matches_json"))
    return DecisionRecord(**data)


def _delivery(row: Any) -> DeliveryRecord:
    data = dict(row)
    data["payload"] = json.loads(data.pop("payload_json"))
    return DeliveryRecord(**data)


def _attempt(row: Any) -> AttemptRecord:
    data = dict(row)
    data["ok"] = bool(data["ok"])
    return AttemptRecord(**data)


class AgentRecords:
    """Mixin on `Store`; relies on `Database.query/execute/transaction`."""

    # ---- decisions ------------------------------------------------------------------------------

    def insert_decision(self, *, created_at: datetime, run_id: str | None,
                        video_filename: str | None, label: str, score: float, reason: str,
                        rule: str | None, action: str, analysis: str,
                        matches: list[dict[str, Any]]) -> int:
        cursor = self.execute(
            "INSERT INTO decisions (created_at, run_id, video_filename, label, score, reason,"
            " rule, action, analysis, matches_json) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (iso(created_at), run_id, video_filename, label, score, reason, rule, action,
             analysis, json.dumps(matches)))
        return int(cursor.lastrowid)

    def get_decision(self, decision_id: int) -> DecisionRecord | None:
        row = self.query_one("SELECT * FROM decisions WHERE id = ?", (decision_id,))
        return _decision(row) if row else None

    def list_decisions(self, limit: int = 50, offset: int = 0) -> list[DecisionRecord]:
        """Newest first."""
        rows = self.query("SELECT * FROM decisions ORDER BY id DESC LIMIT ? OFFSET ?",
                          (limit, offset))
        return [_decision(r) for r in rows]

    # ---- deliveries -----------------------------------------------------------------------------

    def insert_delivery(self, *, decision_id: int, rule: str, channel: str, dedup_key: str,
                        status: str, max_attempts: int, payload: dict[str, Any], now: datetime,
                        note: str | None = None) -> int:
        stamp = iso(now)
        cursor = self.execute(
            "INSERT INTO deliveries (decision_id, created_at, updated_at, rule, channel,"
            " dedup_key, status, attempts, max_attempts, next_attempt_at, note, payload_json)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, 0, ?, ?, ?, ?)",
            (decision_id, stamp, stamp, rule, channel, dedup_key, status, max_attempts,
             stamp if status == "queued" else None, note, json.dumps(payload)))
        return int(cursor.lastrowid)

    def get_delivery(self, delivery_id: int) -> DeliveryRecord | None:
        row = self.query_one("SELECT * FROM deliveries WHERE id = ?", (delivery_id,))
        return _delivery(row) if row else None

    def list_deliveries(self, limit: int = 50, offset: int = 0,
                        status: str | None = None) -> list[DeliveryRecord]:
        """Newest first, optionally only one status."""
        if status is None:
            rows = self.query("SELECT * FROM deliveries ORDER BY id DESC LIMIT ? OFFSET ?",
                              (limit, offset))
        else:
            rows = self.query("SELECT * FROM deliveries WHERE status = ? ORDER BY id DESC"
                              " LIMIT ? OFFSET ?", (status, limit, offset))
        return [_delivery(r) for r in rows]

    def deliveries_for_decision(self, decision_id: int) -> list[DeliveryRecord]:
        rows = self.query("SELECT * FROM deliveries WHERE decision_id = ? ORDER BY id",
                          (decision_id,))
        return [_delivery(r) for r in rows]

    def count_deliveries(self) -> dict[str, int]:
        """Deliveries per status (every status present, zero when none)."""
        counts = dict.fromkeys(STATUSES, 0)
        for row in self.query("SELECT status, COUNT(*) AS n FROM deliveries GROUP BY status"):
            counts[row["status"]] = row["n"]
        return counts

    def last_sent_at(self, rule: str, channel: str) -> str | None:
        """When `rule` last actually delivered through `channel` (what cooldown counts)."""
        row = self.query_one("SELECT MAX(sent_at) AS t FROM deliveries WHERE rule = ? AND"
                             " channel = ? AND status = 'sent'", (rule, channel))
        return row["t"] if row else None

    def find_repeat(self, dedup_key: str, since: datetime) -> DeliveryRecord | None:
        """A live (pending or sent) delivery of the same event created at or after `since`."""
        row = self.query_one(
            "SELECT * FROM deliveries WHERE dedup_key = ? AND created_at >= ? AND status IN"
            " ('queued', 'retrying', 'sending', 'sent') ORDER BY id LIMIT 1",
            (dedup_key, iso(since)))
        return _delivery(row) if row else None

    def claim_due_deliveries(self, now: datetime, stale_before: datetime,
                             limit: int = 50) -> list[DeliveryRecord]:
        """Mark due deliveries `sending` and return them, in one transaction, so two workers
        never take the same one. A `sending` claim older than `stale_before` is taken over."""
        stamp = iso(now)
        with self.transaction() as conn:
            rows = conn.execute(
                "SELECT id FROM deliveries WHERE (status IN ('queued', 'retrying') AND"
                " next_attempt_at <= ?) OR (status = 'sending' AND claimed_at <= ?)"
                " ORDER BY next_attempt_at, id LIMIT ?", (stamp, iso(stale_before), limit)
            ).fetchall()
            ids = [r["id"] for r in rows]
            for delivery_id in ids:
                conn.execute("UPDATE deliveries SET status = 'sending', claimed_at = ?,"
                             " updated_at = ? WHERE id = ?", (stamp, stamp, delivery_id))
            claimed = [conn.execute("SELECT * FROM deliveries WHERE id = ?", (i,)).fetchone()
                       for i in ids]
        return [_delivery(r) for r in claimed]

    def claim_delivery(self, delivery_id: int, now: datetime) -> DeliveryRecord | None:
        """Claim one delivery if it is `queued` or `retrying` (due or not); None otherwise."""
        stamp = iso(now)
        with self.transaction() as conn:
            cursor = conn.execute(
                "UPDATE deliveries SET status = 'sending', claimed_at = ?, updated_at = ?"
                " WHERE id = ? AND status IN ('queued', 'retrying')",
                (stamp, stamp, delivery_id))
            if cursor.rowcount == 0:
                return None
            row = conn.execute("SELECT * FROM deliveries WHERE id = ?",
                               (delivery_id,)).fetchone()
        return _delivery(row)

    def record_attempt(self, *, delivery_id: int, attempt: int, started_at: datetime,
                       finished_at: datetime, ok: bool, error: str | None,
                       detail: str | None, status: str, next_attempt_at: datetime | None,
                       note: str | None = None) -> None:
        """One attempt and the delivery's new state, together."""
        done = iso(finished_at)
        with self.transaction() as conn:
            conn.execute(
                "INSERT INTO delivery_attempts (delivery_id, attempt, started_at, finished_at,"
                " ok, error, detail) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (delivery_id, attempt, iso(started_at), done, int(ok), error, detail))
            conn.execute(
                "UPDATE deliveries SET status = ?, attempts = ?, next_attempt_at = ?,"
                " claimed_at = NULL, updated_at = ?, last_error = COALESCE(?, last_error),"
                " sent_at = CASE WHEN ? THEN ? ELSE sent_at END, note = COALESCE(?, note)"
                " WHERE id = ?",
                (status, attempt, iso(next_attempt_at) if next_attempt_at else None, done,
                 error, int(ok), done, note, delivery_id))

    def suppress_delivery(self, delivery_id: int, note: str, now: datetime) -> None:
        """Settle a claimed delivery as suppressed (cooldown found at send time)."""
        self.execute("UPDATE deliveries SET status = 'suppressed', note = ?, claimed_at = NULL,"
                     " next_attempt_at = NULL, updated_at = ? WHERE id = ?",
                     (note, iso(now), delivery_id))

    def requeue_delivery(self, delivery_id: int, extra_attempts: int, now: datetime,
                         note: str) -> bool:
        """Make a failed (or suppressed) delivery due now with `extra_attempts` more tries."""
        stamp = iso(now)
        cursor = self.execute(
            "UPDATE deliveries SET status = 'queued', next_attempt_at = ?, updated_at = ?,"
            " max_attempts = attempts + ?, claimed_at = NULL, note = ? WHERE id = ? AND status IN"
            " ('failed', 'suppressed', 'retrying')",
            (stamp, stamp, extra_attempts, note, delivery_id))
        return cursor.rowcount > 0

    def list_attempts(self, delivery_id: int) -> list[AttemptRecord]:
        rows = self.query("SELECT * FROM delivery_attempts WHERE delivery_id = ? ORDER BY id",
                          (delivery_id,))
        return [_attempt(r) for r in rows]

"""The agent's alert memory (migration 006): the meaning vector of each decision that notified,
and the live deliveries of a rule and channel whose decisions have one, for semantic dedup."""

from __future__ import annotations

from datetime import datetime

import numpy as np

from .agent_records import iso


class AlertRecords:
    """Mixin on `Store`; relies on `Database.query/execute`."""

    def set_decision_vector(self, decision_id: int, model: str, vector: np.ndarray) -> None:
        """Remember a decision's description as a float32 unit vector of `model`."""
        self.execute(  # type: ignore[attr-defined]
            "INSERT OR REPLACE INTO decision_vectors (decision_id, model, vector) VALUES (?, ?, ?)",
            (decision_id, model, np.asarray(vector, dtype=np.float32).tobytes()))

    def recent_alert_vectors(self, rule: str, channel: str, model: str, since: datetime,
                             exclude_decision: int) -> list[tuple[int, np.ndarray]]:
        """(delivery id, vector) of live (pending or sent) deliveries of `rule` on `channel`
        created at or after `since`, whose decision has a vector of `model`; oldest first."""
        rows = self.query(  # type: ignore[attr-defined]
            "SELECT d.id, v.vector FROM deliveries d JOIN decision_vectors v"
            " ON v.decision_id = d.decision_id WHERE d.rule = ? AND d.channel = ?"
            " AND d.created_at >= ? AND d.decision_id != ? AND v.model = ? AND d.status IN"
            " ('queued', 'retrying', 'sending', 'sent') ORDER BY d.id",
            (rule, channel, iso(since), exclude_decision, model))
        return [(int(r[0]), np.frombuffer(r[1], dtype=np.float32)) for r in rows]

"""Queries for decisions, deliveries and delivery attempts (the agent's audit trail)."""

from __future__ import annotations


class AgentRecords:
    """Mixin on `Store`; relies on `Database.query/execute/transaction`."""

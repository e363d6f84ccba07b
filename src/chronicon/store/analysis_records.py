"""Queries for finished analyses (the history)."""

from __future__ import annotations


class AnalysisRecords:
    """Mixin on `Store`; relies on `Database.query/execute/transaction`."""

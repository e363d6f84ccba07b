"""Queries for the job queue and each job's replayable event log."""

from __future__ import annotations


class JobRecords:
    """Mixin on `Store`; relies on `Database.query/execute/transaction`."""

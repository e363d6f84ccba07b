"""SQLite storage: the only package that writes SQL.

`Store` is one connection to one database file, migrated on open. Each concern keeps its
queries in its own module (analyses, jobs, agent records) as a mixin, so the schema has one
owner and every query sits beside its table's migration in `migrations.py`.
"""

from __future__ import annotations

from .agent_records import AgentRecords
from .alert_records import AlertRecords
from .analysis_records import AnalysisRecords
from .database import Database, utc_now
from .job_records import JobRecords
from .question_records import QuestionRecords
from .search_records import SearchRecords
from .source_records import SourceRecords
from .worker_records import WorkerRecords


class Store(WorkerRecords, SourceRecords, SearchRecords, QuestionRecords, AlertRecords,
            AgentRecords, JobRecords, AnalysisRecords, Database):
    """The application's store: one database, every concern's queries."""


__all__ = ["Store", "Database", "utc_now"]

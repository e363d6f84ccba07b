"""Queries for finished analyses (the history)."""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from typing import Any

from .database import utc_now

# The analysis row with its agent decision: the decision is stored once, in `decisions`
# (run_id = analysis id), and joined here. A timeline has one decision per chunk: the strongest
# is the analysis' (among equal scores, the newest).
DECISION_OF_ANALYSIS = ("(SELECT id FROM decisions WHERE run_id = a.id"
                        " ORDER BY score DESC, id DESC LIMIT 1)")
# The label of analysis `a` as an SQL expression (for filters in other queries).
LABEL_OF_ANALYSIS = "(SELECT label FROM decisions WHERE id = " + DECISION_OF_ANALYSIS + ")"
_SELECT = f"""
    SELECT a.*, d.id AS decision_id, d.label AS label
    FROM analyses a
    LEFT JOIN decisions d ON d.id = {DECISION_OF_ANALYSIS}
"""


@dataclass(frozen=True)
class AnalysisRecord:
    """One analysis in the history.

    `result` is the exact result dict the CLI writes (MISSION §4); `result_path` the file
    `save_result` wrote, when there is one; `frames_dir` holds `<n>.jpg`; `source` where the
    video came from (upload, cli, a watched folder...). `decision_id` and `label` come from the
    agent's decision (None when the agent did not decide); `agent_error` says why the agent
    step failed, when it did.
    """

    id: str
    created_at: str
    video_path: str
    video_filename: str | None
    model: str | None
    result: dict[str, Any]
    frames_dir: str | None
    job_id: str | None
    result_path: str | None
    source: str | None = None
    agent_error: str | None = None
    decision_id: int | None = None
    label: str | None = None

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> AnalysisRecord:
        data = dict(row)
        data["result"] = json.loads(data.pop("result_json"))
        return cls(**data)


class AnalysisRecords:
    """Mixin on `Store`; relies on `Database.query/execute/transaction`."""

    def insert_analysis(self, analysis_id: str, result: dict[str, Any], *, video_path: str,
                        video_filename: str | None = None, model: str | None = None,
                        frames_dir: str | None = None, job_id: str | None = None,
                        result_path: str | None = None,
                        source: str | None = None) -> AnalysisRecord:
        """Insert the row; an id that is already there is left as it is (recording by job id
        is idempotent: the id of a job's analysis is the job id)."""
        self.execute(  # type: ignore[attr-defined]
            "INSERT INTO analyses (id, created_at, video_path, video_filename, model,"
            " result_json, frames_dir, job_id, result_path, source)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING",
            (analysis_id, utc_now(), video_path, video_filename, model, json.dumps(result),
             frames_dir, job_id, result_path, source))
        record = self.get_analysis(analysis_id)
        assert record is not None
        return record

    def set_agent_error(self, analysis_id: str, error: str | None) -> None:
        """Why the agent step failed for this analysis (None: it did not fail)."""
        self.execute(  # type: ignore[attr-defined]
            "UPDATE analyses SET agent_error = ? WHERE id = ?", (error, analysis_id))

    def get_analysis(self, analysis_id: str) -> AnalysisRecord | None:
        row = self.query_one(_SELECT + " WHERE a.id = ?",  # type: ignore[attr-defined]
                             (analysis_id,))
        return AnalysisRecord.from_row(row) if row else None

    def analysis_for_job(self, job_id: str) -> AnalysisRecord | None:
        """The analysis a job recorded (the first, for a job recorded twice before 004)."""
        row = self.query_one(_SELECT + " WHERE a.job_id = ? ORDER BY a.rowid LIMIT 1",  # type: ignore[attr-defined]
                             (job_id,))
        return AnalysisRecord.from_row(row) if row else None

    def list_analyses(self, limit: int = 20, offset: int = 0) -> list[AnalysisRecord]:
        """Newest first."""
        rows = self.query(  # type: ignore[attr-defined]
            _SELECT + " ORDER BY a.created_at DESC, a.rowid DESC LIMIT ? OFFSET ?",
            (limit, offset))
        return [AnalysisRecord.from_row(r) for r in rows]

    def count_analyses(self) -> int:
        row = self.query_one("SELECT COUNT(*) FROM analyses")  # type: ignore[attr-defined]
        return int(row[0]) if row else 0

"""Queries for finished analyses (the history)."""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from typing import Any

from .database import utc_now


@dataclass(frozen=True)
class AnalysisRecord:
    """One analysis in the history.

    `result` is the exact result dict the CLI writes (MISSION §4); `result_path` the file
    `save_result` wrote, when there is one; `agent` the agent's answer (decision, action,
    delivery status) or None when the agent did not run; `frames_dir` holds `<n>.jpg`.
    """

    id: str
    created_at: str
    video_path: str
    video_filename: str | None
    model: str | None
    label: str | None
    result: dict[str, Any]
    frames_dir: str | None
    job_id: str | None
    result_path: str | None
    agent: dict[str, Any] | None

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> AnalysisRecord:
        data = dict(row)
        data["result"] = json.loads(data.pop("result_json"))
        agent_json = data.pop("agent_json", None)
        data["agent"] = json.loads(agent_json) if agent_json else None
        return cls(**data)


class AnalysisRecords:
    """Mixin on `Store`; relies on `Database.query/execute/transaction`."""

    def insert_analysis(self, analysis_id: str, result: dict[str, Any], *, video_path: str,
                        video_filename: str | None = None, model: str | None = None,
                        frames_dir: str | None = None, job_id: str | None = None,
                        result_path: str | None = None) -> AnalysisRecord:
        self.execute(  # type: ignore[attr-defined]
            "INSERT INTO analyses (id, created_at, video_path, video_filename, model, label,"
            " result_json, frames_dir, job_id, result_path)"
            " VALUES (?, ?, ?, ?, ?, NULL, ?, ?, ?, ?)",
            (analysis_id, utc_now(), video_path, video_filename, model, json.dumps(result),
             frames_dir, job_id, result_path))
        record = self.get_analysis(analysis_id)
        assert record is not None
        return record

    def set_analysis_agent(self, analysis_id: str, agent: dict[str, Any],
                           label: str | None) -> None:
        """Store the agent's answer with the analysis; `label` is the decision's label."""
        self.execute(  # type: ignore[attr-defined]
            "UPDATE analyses SET agent_json = ?, label = ? WHERE id = ?",
            (json.dumps(agent), label, analysis_id))

    def get_analysis(self, analysis_id: str) -> AnalysisRecord | None:
        row = self.query_one("SELECT * FROM analyses WHERE id = ?",  # type: ignore[attr-defined]
                             (analysis_id,))
        return AnalysisRecord.from_row(row) if row else None

    def list_analyses(self, limit: int = 20, offset: int = 0) -> list[AnalysisRecord]:
        """Newest first."""
        rows = self.query(  # type: ignore[attr-defined]
            "SELECT * FROM analyses ORDER BY created_at DESC, rowid DESC LIMIT ? OFFSET ?",
            (limit, offset))
        return [AnalysisRecord.from_row(r) for r in rows]

    def count_analyses(self) -> int:
        row = self.query_one("SELECT COUNT(*) FROM analyses")  # type: ignore[attr-defined]
        return int(row[0]) if row else 0

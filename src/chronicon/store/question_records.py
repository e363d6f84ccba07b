"""Queries for the questions asked about an analysis and their answers (its thread)."""

from __future__ import annotations

import sqlite3
from dataclasses import asdict, dataclass
from typing import Any

from .database import utc_now

ASKED, ANSWERED, FAILED = "asked", "answered", "failed"


@dataclass(frozen=True)
class QuestionRecord:
    """One question about an analysis. `state`: asked → answered | failed; `answer` is None
    until answered, `error` says why it failed; `job_id` is the queued job that answers it
    (None for the CLI, which answers at once)."""

    id: int
    analysis_id: str
    created_at: str
    question: str
    state: str
    answer: str | None
    error: str | None
    job_id: str | None
    model: str | None
    answered_at: str | None

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> QuestionRecord:
        return cls(**dict(row))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class QuestionRecords:
    """Mixin on `Store`; relies on `Database.query/query_one/transaction`."""

    def add_question(self, analysis_id: str, question: str, *,
                     job_id: str | None = None) -> QuestionRecord:
        with self.transaction() as conn:  # type: ignore[attr-defined]
            cursor = conn.execute(
                "INSERT INTO analysis_questions (analysis_id, created_at, question, state,"
                " job_id) VALUES (?, ?, ?, ?, ?)",
                (analysis_id, utc_now(), question, ASKED, job_id))
            question_id = int(cursor.lastrowid)
        found = self.get_question(question_id)
        assert found is not None
        return found

    def set_question_job(self, question_id: int, job_id: str) -> None:
        self.execute(  # type: ignore[attr-defined]
            "UPDATE analysis_questions SET job_id = ? WHERE id = ?", (job_id, question_id))

    def answer_question(self, question_id: int, answer: str, model: str | None) -> None:
        self.execute(  # type: ignore[attr-defined]
            "UPDATE analysis_questions SET state = ?, answer = ?, model = ?, answered_at = ?"
            " WHERE id = ?", (ANSWERED, answer, model, utc_now(), question_id))

    def fail_question(self, question_id: int, error: str) -> None:
        self.execute(  # type: ignore[attr-defined]
            "UPDATE analysis_questions SET state = ?, error = ?, answered_at = ? WHERE id = ?",
            (FAILED, error, utc_now(), question_id))

    def get_question(self, question_id: int) -> QuestionRecord | None:
        row = self.query_one(  # type: ignore[attr-defined]
            "SELECT * FROM analysis_questions WHERE id = ?", (question_id,))
        return QuestionRecord.from_row(row) if row else None

    def question_for_job(self, job_id: str) -> QuestionRecord | None:
        row = self.query_one(  # type: ignore[attr-defined]
            "SELECT * FROM analysis_questions WHERE job_id = ?", (job_id,))
        return QuestionRecord.from_row(row) if row else None

    def list_questions(self, analysis_id: str) -> list[QuestionRecord]:
        """The analysis' thread, oldest first."""
        rows = self.query(  # type: ignore[attr-defined]
            "SELECT * FROM analysis_questions WHERE analysis_id = ? ORDER BY id", (analysis_id,))
        return [QuestionRecord.from_row(r) for r in rows]

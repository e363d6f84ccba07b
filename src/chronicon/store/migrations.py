"""Numbered schema migrations, applied in list order and recorded by name.

Never edit a migration that has shipped: append a new one that alters the table.
"""

from __future__ import annotations

MIGRATIONS: list[tuple[str, str]] = [
    ("001_analyses", """
        CREATE TABLE analyses (
            id TEXT PRIMARY KEY,
            created_at TEXT NOT NULL,
            video_path TEXT NOT NULL,
            video_filename TEXT,
            model TEXT,
            label TEXT,
            result_json TEXT NOT NULL,
            frames_dir TEXT
        );
        CREATE INDEX analyses_created ON analyses(created_at);
    """),
    ("002_agent", """
        CREATE TABLE decisions (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            created_at TEXT NOT NULL,
            run_id TEXT,
            video_filename TEXT,
            label TEXT NOT NULL,
            score REAL NOT NULL,
            reason TEXT NOT NULL,
            rule TEXT,
            action TEXT NOT NULL,
            analysis TEXT NOT NULL,
            matches_json TEXT NOT NULL
        );
        CREATE INDEX decisions_created ON decisions(created_at);
        CREATE TABLE deliveries (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            decision_id INTEGER NOT NULL REFERENCES decisions(id),
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL,
            rule TEXT NOT NULL,
            channel TEXT NOT NULL,
            dedup_key TEXT NOT NULL,
            status TEXT NOT NULL,
            attempts INTEGER NOT NULL DEFAULT 0,
            max_attempts INTEGER NOT NULL,
            next_attempt_at TEXT,
            claimed_at TEXT,
            sent_at TEXT,
            last_error TEXT,
            note TEXT,
            payload_json TEXT NOT NULL
        );
        CREATE INDEX deliveries_due ON deliveries(status, next_attempt_at);
        CREATE INDEX deliveries_rule_sent ON deliveries(rule, channel, sent_at);
        CREATE INDEX deliveries_dedup ON deliveries(dedup_key, created_at);
        CREATE TABLE delivery_attempts (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            delivery_id INTEGER NOT NULL REFERENCES deliveries(id),
            attempt INTEGER NOT NULL,
            started_at TEXT NOT NULL,
            finished_at TEXT NOT NULL,
            ok INTEGER NOT NULL,
            error TEXT,
            detail TEXT
        );
        CREATE INDEX delivery_attempts_delivery ON delivery_attempts(delivery_id, attempt)
    """),
    ("003_jobs", """
        CREATE TABLE jobs (
            id TEXT PRIMARY KEY,
            seq INTEGER NOT NULL,
            state TEXT NOT NULL,
            created_at TEXT NOT NULL,
            started_at TEXT,
            finished_at TEXT,
            video_path TEXT NOT NULL,
            video_filename TEXT,
            model TEXT,
            options_json TEXT NOT NULL,
            analysis_id TEXT,
            error TEXT,
            error_type TEXT,
            interruptions INTEGER NOT NULL DEFAULT 0
        );
        CREATE INDEX jobs_state_seq ON jobs(state, seq);
        CREATE TABLE job_events (
            job_id TEXT NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
            seq INTEGER NOT NULL,
            created_at TEXT NOT NULL,
            kind TEXT NOT NULL,
            data_json TEXT NOT NULL,
            PRIMARY KEY (job_id, seq)
        );
        ALTER TABLE analyses ADD COLUMN job_id TEXT;
        ALTER TABLE analyses ADD COLUMN result_path TEXT;
        ALTER TABLE analyses ADD COLUMN agent_json TEXT
    """),
]

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
]

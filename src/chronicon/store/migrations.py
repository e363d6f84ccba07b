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
    # Records, not copies (issue 12): jobs carry their kind, source and the probe taken at
    # submission; the agent's decision lives only in `decisions` (joined by run_id = analysis
    # id; an agent step that failed keeps its reason in `agent_error`); deliveries name the
    # folder of the frames they attach instead of holding them base64-encoded. The folder is
    # the analysis id, or the job id for a web job recorded before this migration.
    ("004_records", """
        ALTER TABLE jobs ADD COLUMN kind TEXT NOT NULL DEFAULT 'analyze';
        ALTER TABLE jobs ADD COLUMN source TEXT;
        ALTER TABLE jobs ADD COLUMN video_json TEXT;
        ALTER TABLE analyses ADD COLUMN source TEXT;
        ALTER TABLE analyses ADD COLUMN agent_error TEXT;
        UPDATE analyses SET agent_error = json_extract(agent_json, '$.error')
            WHERE agent_json IS NOT NULL AND json_valid(agent_json);
        ALTER TABLE analyses DROP COLUMN agent_json;
        ALTER TABLE analyses DROP COLUMN label;
        CREATE INDEX decisions_run ON decisions(run_id, id);
        CREATE INDEX analyses_job ON analyses(job_id);
        UPDATE deliveries SET payload_json = json_set(json_remove(payload_json, '$.frames'),
            '$.frames_id', CASE WHEN json_array_length(payload_json, '$.frames') > 0 THEN
                (SELECT COALESCE(a.job_id, a.id) FROM decisions d JOIN analyses a
                 ON a.id = d.run_id WHERE d.id = deliveries.decision_id) END)
            WHERE json_valid(payload_json) AND json_type(payload_json, '$.frames') = 'array'
    """),
    # 005 (search owner): the search index over descriptions, timeline captions and summaries
    # (full text through FTS5 with porter stemming; sentence vectors beside it), backfilled here
    # for the descriptions already stored; and the questions asked about an analysis.
    # FTS5 keeps no copy of the text (external content): `store/search_records.py` writes both
    # tables in one transaction. Vectors are float32 unit vectors, filled by the indexer.
    ("005_search", """
        CREATE TABLE search_entries (
            id INTEGER PRIMARY KEY,
            analysis_id TEXT NOT NULL REFERENCES analyses(id) ON DELETE CASCADE,
            kind TEXT NOT NULL,
            start_s REAL,
            end_s REAL,
            text TEXT NOT NULL
        );
        CREATE INDEX search_entries_analysis ON search_entries(analysis_id, kind, start_s);
        CREATE VIRTUAL TABLE search_fts USING fts5(
            text, content='search_entries', content_rowid='id',
            tokenize='porter unicode61 remove_diacritics 2');
        CREATE TABLE search_vectors (
            entry_id INTEGER PRIMARY KEY REFERENCES search_entries(id) ON DELETE CASCADE,
            vector BLOB NOT NULL
        );
        INSERT INTO search_entries (analysis_id, kind, text)
            SELECT id, 'description', trim(json_extract(result_json, '$.analysis'))
            FROM analyses
            WHERE trim(coalesce(json_extract(result_json, '$.analysis'), '')) != ''
            ORDER BY created_at;
        INSERT INTO search_fts(search_fts) VALUES ('rebuild');
        CREATE TABLE analysis_questions (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            analysis_id TEXT NOT NULL REFERENCES analyses(id) ON DELETE CASCADE,
            created_at TEXT NOT NULL,
            question TEXT NOT NULL,
            state TEXT NOT NULL,
            answer TEXT,
            error TEXT,
            job_id TEXT,
            model TEXT,
            answered_at TEXT
        );
        CREATE INDEX analysis_questions_analysis ON analysis_questions(analysis_id, id)
    """),
    # 006 (agent owner): the meaning of each notified description (a float32 unit vector of the
    # whole description), so a firing that means the same as one notified within the rule's
    # cooldown is recorded as a duplicate. Verification answers live in the decision's matches.
    ("006_agent_dedup", """
        CREATE TABLE decision_vectors (
            decision_id INTEGER PRIMARY KEY REFERENCES decisions(id) ON DELETE CASCADE,
            model TEXT NOT NULL,
            vector BLOB NOT NULL
        );
        CREATE INDEX deliveries_rule_channel_created ON deliveries(rule, channel, created_at)
    """),
    ("007_sources", """
        CREATE TABLE watched_files (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            path TEXT NOT NULL,
            size INTEGER NOT NULL,
            mtime_ns INTEGER NOT NULL,
            digest TEXT NOT NULL,
            source TEXT NOT NULL,
            state TEXT NOT NULL,
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL,
            job_id TEXT,
            analysis_id TEXT,
            error TEXT,
            UNIQUE (path, size, mtime_ns, digest)
        );
        CREATE INDEX watched_files_state ON watched_files(state, id);
        CREATE TABLE sources (
            id TEXT PRIMARY KEY,
            kind TEXT NOT NULL,
            location TEXT NOT NULL UNIQUE,
            options_json TEXT NOT NULL,
            created_at TEXT NOT NULL
        )
    """),
    ("008_workers", """
        CREATE TABLE workers (
            id TEXT PRIMARY KEY,
            host TEXT,
            pid INTEGER,
            model TEXT,
            device TEXT,
            concurrency INTEGER NOT NULL DEFAULT 1,
            current_job TEXT,
            jobs_done INTEGER NOT NULL DEFAULT 0,
            model_loads INTEGER NOT NULL DEFAULT 0,
            started_at TEXT NOT NULL,
            last_seen TEXT NOT NULL
        );
        CREATE INDEX workers_last_seen ON workers(last_seen);
        CREATE TABLE job_assignments (
            job_id TEXT PRIMARY KEY REFERENCES jobs(id) ON DELETE CASCADE,
            worker_id TEXT NOT NULL,
            claimed_at TEXT NOT NULL,
            attempts INTEGER NOT NULL DEFAULT 1
        )
    """),
]

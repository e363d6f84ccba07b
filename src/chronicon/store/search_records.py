"""Queries for the search index: indexed texts, their FTS5 rows and their sentence vectors.

`search_fts` is an external-content FTS5 table over `search_entries.text` (no second copy of the
text), so every write here touches both tables in one transaction. Vectors live in their own
table so full-text lookups never read the 1.5 kB blobs.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from .analysis_records import LABEL_OF_ANALYSIS

# SQLite's default limit on host parameters is 32766 since 3.32; stay far below it.
_ID_CHUNK = 900


@dataclass(frozen=True)
class SearchEntry:
    """One indexed text with what a hit shows about its analysis.

    `kind` is `description`, `caption` (a timeline chunk) or `summary`; `start`/`end` are the
    chunk's seconds in the video, None outside timelines.
    """

    id: int
    analysis_id: str
    kind: str
    start: float | None
    end: float | None
    text: str
    video_filename: str | None
    created_at: str
    label: str | None


def _filters(since: str | None, label: str | None) -> tuple[str, list]:
    """SQL conditions on the analysis (`a`) for a search's `since` / `label` filters."""
    sql, params = "", []
    if since is not None:
        sql += " AND a.created_at >= ?"
        params.append(since)
    if label is not None:
        sql += f" AND {LABEL_OF_ANALYSIS} = ?"
        params.append(label)
    return sql, params


class SearchRecords:
    """Mixin on `Store`; relies on `Database.query/query_one/transaction`."""

    def add_search_entry(self, analysis_id: str, kind: str, text: str,
                         start: float | None = None, end: float | None = None) -> int:
        """Index `text`; an entry with the same analysis, kind and start is replaced (so
        indexing an analysis twice leaves one copy). Returns the entry id."""
        return self.add_search_entries(analysis_id, [(kind, text, start, end)])[0]

    def add_search_entries(self, analysis_id: str,
                           items: Sequence[tuple[str, str, float | None, float | None]]
                           ) -> list[int]:
        """`add_search_entry` for several (kind, text, start, end) in one transaction."""
        ids = []
        with self.transaction() as conn:  # type: ignore[attr-defined]
            for kind, text, start, end in items:
                old = conn.execute(
                    "SELECT id, text FROM search_entries WHERE analysis_id = ? AND kind = ?"
                    " AND start_s IS ?", (analysis_id, kind, start)).fetchall()
                for row in old:
                    conn.execute("INSERT INTO search_fts(search_fts, rowid, text)"
                                 " VALUES ('delete', ?, ?)", (row["id"], row["text"]))
                    conn.execute("DELETE FROM search_entries WHERE id = ?", (row["id"],))
                cursor = conn.execute(
                    "INSERT INTO search_entries (analysis_id, kind, start_s, end_s, text)"
                    " VALUES (?, ?, ?, ?, ?)", (analysis_id, kind, start, end, text))
                entry_id = int(cursor.lastrowid)
                conn.execute("INSERT INTO search_fts(rowid, text) VALUES (?, ?)",
                             (entry_id, text))
                ids.append(entry_id)
        return ids

    def set_search_vectors(self, vectors: Iterable[tuple[int, bytes]]) -> None:
        with self.transaction() as conn:  # type: ignore[attr-defined]
            conn.executemany("INSERT OR REPLACE INTO search_vectors (entry_id, vector)"
                             " VALUES (?, ?)", list(vectors))

    def unembedded_search_entries(self, limit: int = 256) -> list[tuple[int, str]]:
        """Entries without a vector yet (backfilled ones, or whose embedding failed)."""
        rows = self.query(  # type: ignore[attr-defined]
            "SELECT e.id, e.text FROM search_entries e WHERE NOT EXISTS"
            " (SELECT 1 FROM search_vectors v WHERE v.entry_id = e.id) ORDER BY e.id LIMIT ?",
            (limit,))
        return [(int(r[0]), str(r[1])) for r in rows]

    def search_vectors_after(self, after_id: int) -> list[tuple[int, bytes]]:
        rows = self.query(  # type: ignore[attr-defined]
            "SELECT entry_id, vector FROM search_vectors WHERE entry_id > ? ORDER BY entry_id",
            (after_id,))
        return [(int(r[0]), bytes(r[1])) for r in rows]

    def search_fulltext(self, match: str, *, since: str | None = None,
                        label: str | None = None, limit: int = 100) -> list[tuple[int, float]]:
        """(entry id, bm25) best first for an FTS5 MATCH expression (bm25: lower is better)."""
        where, params = _filters(since, label)
        join = " JOIN analyses a ON a.id = e.analysis_id" if where else ""
        rows = self.query(  # type: ignore[attr-defined]
            "SELECT f.rowid, bm25(search_fts) AS score FROM search_fts f"
            " JOIN search_entries e ON e.id = f.rowid" + join +
            " WHERE search_fts MATCH ?" + where + " ORDER BY score LIMIT ?",
            (match, *params, limit))
        return [(int(r[0]), float(r[1])) for r in rows]

    def search_entry_ids(self, *, since: str | None = None,
                         label: str | None = None) -> list[int]:
        """Ids of the entries whose analysis passes the filters (for the vector side)."""
        where, params = _filters(since, label)
        rows = self.query(  # type: ignore[attr-defined]
            "SELECT e.id FROM search_entries e JOIN analyses a ON a.id = e.analysis_id"
            " WHERE 1 = 1" + where, tuple(params))
        return [int(r[0]) for r in rows]

    def search_entries_by_id(self, ids: Sequence[int]) -> dict[int, SearchEntry]:
        found: dict[int, SearchEntry] = {}
        for i in range(0, len(ids), _ID_CHUNK):
            chunk = list(ids[i:i + _ID_CHUNK])
            marks = ",".join("?" * len(chunk))
            rows = self.query(  # type: ignore[attr-defined]
                "SELECT e.id, e.analysis_id, e.kind, e.start_s, e.end_s, e.text,"
                f" a.video_filename, a.created_at, {LABEL_OF_ANALYSIS} FROM search_entries e"
                f" JOIN analyses a ON a.id = e.analysis_id WHERE e.id IN ({marks})", chunk)
            for r in rows:
                found[int(r[0])] = SearchEntry(int(r[0]), r[1], r[2], r[3], r[4], r[5], r[6],
                                               r[7], r[8])
        return found

    def search_highlights(self, match: str, ids: Sequence[int], opening: str,
                          closing: str) -> dict[int, str]:
        """The text of those of `ids` that `match` finds, each matched token wrapped in
        `opening`…`closing` by FTS5 itself (so stemming decides what counts as a match)."""
        if not ids:
            return {}
        marks = ",".join("?" * len(ids))
        rows = self.query(  # type: ignore[attr-defined]
            "SELECT rowid, highlight(search_fts, 0, ?, ?) FROM search_fts"
            f" WHERE search_fts MATCH ? AND rowid IN ({marks})",
            (opening, closing, match, *ids))
        return {int(r[0]): str(r[1]) for r in rows}

    def search_entry_count(self) -> int:
        row = self.query_one("SELECT COUNT(*) FROM search_entries")  # type: ignore[attr-defined]
        return int(row[0])

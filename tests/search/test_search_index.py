"""The search index on a real SQLite FTS5 table and the real all-MiniLM-L6-v2 vectors."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta, timezone

import numpy as np
import pytest

from chronicon.errors import BadParameter
from chronicon.search import SearchQuery, index_text, parse_since, search, segments
from chronicon.search.fulltext import match_expression
from chronicon.search.fusion import reciprocal_rank_fusion
from chronicon.store import Store

AddAnalysis = Callable[..., str]

# Descriptions in the small model's style; the paraphrase queries in the tests share no word
# with the caption they must find.
DESCRIPTIONS = {
    "van": "A red van is parked near the gate while a man in a yellow jacket walks past.",
    "train": "A freight train hauls containers through the station at night.",
    "football": "Children are playing football on the grass in a park.",
    "kitchen": "Two people are cooking pasta in a small kitchen.",
    "snow": "Heavy snow falls on an empty parking lot; nobody is around.",
}


@pytest.fixture
def corpus(add_analysis: AddAnalysis) -> dict[str, str]:
    """name → analysis id for DESCRIPTIONS."""
    return {name: add_analysis(text, video=f"{name}.mp4") for name, text in DESCRIPTIONS.items()}


def _ids(store: Store, text: str, **options) -> list[str]:
    return [h.entry.analysis_id
            for h in search(store, SearchQuery(text, **options).validate()).hits]


def test_full_text_uses_porter_stemming_and_bm25(store: Store, corpus: dict[str, str]) -> None:
    # "trains" and "hauling" only share a stem with the caption's "train" and "hauls".
    assert _ids(store, "trains hauling", mode="text") == [corpus["train"]]
    hit = search(store, SearchQuery("trains hauling", mode="text").validate()).hits[0]
    marked = [hit.entry.text[a:b] for a, b in hit.marks]
    assert marked == ["train", "hauls"]
    assert hit.matched_by == ("text",)


def test_meaning_finds_a_paraphrase_that_shares_no_word(store: Store,
                                                        corpus: dict[str, str]) -> None:
    query = "kids kicking a ball outdoors"
    assert not set(match_expression(query).replace('"', "").split(" OR ")) & set(
        DESCRIPTIONS["football"].lower().split())
    assert _ids(store, query, mode="text") == []
    assert _ids(store, query, mode="meaning")[0] == corpus["football"]
    assert _ids(store, query)[0] == corpus["football"]  # hybrid


def test_hybrid_puts_what_both_sides_agree_on_first(store: Store,
                                                    corpus: dict[str, str]) -> None:
    hits = search(store, SearchQuery("red van near the gate").validate()).hits
    assert hits[0].entry.analysis_id == corpus["van"]
    assert hits[0].matched_by == ("text", "meaning")
    # Unrelated scenes stay below the similarity floor: no padding with noise.
    assert corpus["snow"] not in [h.entry.analysis_id for h in hits]


def test_since_and_label_filter_both_sides(store: Store, add_analysis: AddAnalysis) -> None:
    old = (datetime.now(timezone.utc) - timedelta(days=5)).isoformat()
    old_train = add_analysis("A train leaves the platform.", created_at=old, label="train")
    new_train = add_analysis("A train arrives at the platform.", label="train")
    unlabelled = add_analysis("A train waits at the platform.")
    for mode in ("text", "meaning", "hybrid"):
        assert set(_ids(store, "train platform", mode=mode)) == {old_train, new_train,
                                                                 unlabelled}
        assert set(_ids(store, "train platform", mode=mode,
                        since=parse_since("2d"))) == {new_train, unlabelled}
        assert set(_ids(store, "train platform", mode=mode, label="train")) == {old_train,
                                                                                new_train}


def test_timeline_captions_and_summary_are_indexed_with_their_times(
        store: Store, add_analysis: AddAnalysis) -> None:
    # The result JSON of `analyze --timeline`: `analysis` is the summary, `timeline` the chunks.
    timeline = [{"start": 0.0, "end": 30.0, "caption": "An empty street in the rain."},
                {"start": 30.0, "end": 60.0, "caption": "A cyclist rides past a bakery."}]
    analysis_id = add_analysis("A quiet street; one cyclist passes.", timeline=timeline)
    hits = search(store, SearchQuery("bakery", mode="text").validate()).hits
    assert [(h.entry.analysis_id, h.entry.kind, h.entry.start, h.entry.end) for h in hits] == [
        (analysis_id, "caption", 30.0, 60.0)]
    kinds = sorted(h.entry.kind for h in search(
        store, SearchQuery("cyclist", mode="text").validate()).hits)
    assert kinds == ["caption", "summary"]
    assert hits[0].to_dict()["start"] == 30.0


def test_reindexing_replaces_instead_of_duplicating(store: Store,
                                                    add_analysis: AddAnalysis) -> None:
    analysis_id = add_analysis("A blue tram crosses the bridge.")
    index_text(store, analysis_id, "A green tram crosses the bridge.", kind="description")
    hits = search(store, SearchQuery("tram", mode="text").validate()).hits
    assert [h.entry.text for h in hits] == ["A green tram crosses the bridge."]
    assert search(store, SearchQuery("blue", mode="text").validate()).hits == []


def test_entries_indexed_without_vectors_get_them_on_the_next_meaning_search(
        store: Store, add_analysis: AddAnalysis) -> None:
    analysis_id = add_analysis("A dog chases a frisbee on the beach.", embed=False)
    assert len(store.unembedded_search_entries()) == 1
    assert _ids(store, "puppy playing by the sea", mode="meaning") == [analysis_id]
    assert store.unembedded_search_entries() == []


def test_migration_backfills_existing_descriptions(tmp_path) -> None:
    """A database from before 005: its analyses become searchable when it is opened."""
    import sqlite3

    from chronicon.store.migrations import MIGRATIONS

    path = tmp_path / "old.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE _migrations (name TEXT PRIMARY KEY, applied_at TEXT)")
    for name, sql in MIGRATIONS:
        if name.startswith("005"):
            break
        for statement in sql.split(";"):
            if statement.strip():
                conn.execute(statement)
        conn.execute("INSERT INTO _migrations VALUES (?, '2026-01-01')", (name,))
    conn.execute("INSERT INTO analyses (id, created_at, video_path, result_json) VALUES"
                 " ('old1', '2026-01-01T00:00:00+00:00', '/v.mp4', ?)",
                 ('{"analysis": "A horse pulls a cart along the canal."}',))
    conn.commit()
    conn.close()
    store = Store(path)
    try:
        assert _ids(store, "horses", mode="text") == ["old1"]
        assert _ids(store, "a pony drawing a wagon by the water", mode="meaning") == ["old1"]
    finally:
        store.close()


def test_paging_is_stable_and_says_when_there_is_more(store: Store,
                                                      add_analysis: AddAnalysis) -> None:
    ids = [add_analysis(f"Bus number {n} stops at the corner.", embed=False) for n in range(5)]
    first = search(store, SearchQuery("bus", mode="text", limit=3).validate())
    second = search(store, SearchQuery("bus", mode="text", limit=3, offset=3).validate())
    assert first.has_more and not second.has_more
    found = [h.entry.analysis_id for h in first.hits + second.hits]
    assert sorted(found) == sorted(ids)


@pytest.mark.parametrize("text", ['"unbalanced', "NEAR(a b)", "a* OR", "-", "AND"])
def test_query_syntax_is_never_interpreted(store: Store, corpus: dict[str, str],
                                           text: str) -> None:
    search(store, SearchQuery(text, mode="text").validate())  # no sqlite3.OperationalError


@pytest.mark.parametrize(("query", "field"), [
    (SearchQuery(""), "q"), (SearchQuery("x", mode="fuzzy"), "mode"),
    (SearchQuery("x", limit=0), "limit"), (SearchQuery("x", offset=-1), "offset"),
    (SearchQuery("x" * 501), "q")])
def test_bad_queries_name_their_field(query: SearchQuery, field: str) -> None:
    with pytest.raises(BadParameter) as caught:
        query.validate()
    assert caught.value.name == field


def test_parse_since() -> None:
    now = datetime(2026, 3, 10, 12, 0, tzinfo=timezone.utc)
    assert parse_since("2d", now) == "2026-03-08T12:00:00+00:00"
    assert parse_since("90m", now) == "2026-03-10T10:30:00+00:00"
    assert parse_since("2026-03-01", now) == "2026-03-01T00:00:00+00:00"
    with pytest.raises(BadParameter):
        parse_since("last tuesday", now)


def test_fusion_and_segments() -> None:
    fused = reciprocal_rank_fusion([["a", "b", "c"], ["c", "a"]])
    assert [item for item, _ in fused] == ["a", "c", "b"]
    assert segments("a <b>red</b> van", [(3, 6)]) == [("a <", False), ("b>r", True),
                                                      ("ed</b> van", False)]


def test_vectors_are_float32_blobs(store: Store, corpus: dict[str, str]) -> None:
    blob = store.search_vectors_after(0)[0][1]
    vector = np.frombuffer(blob, dtype="<f4")
    assert vector.shape == (384,) and abs(float(vector @ vector) - 1.0) < 1e-3

"""Search at scale: 50,000 generated captions, query time per mode, index size, recall@10.

    python benchmarks/bench_search.py [--captions 50000] [--repeat 5]

Builds a real store in a temporary directory: generated timeline captions (10 per analysis) as
the haystack, plus one hand-written "needle" caption per labelled query. Each query's relevant
set is its needle; the haystack is drawn from a vocabulary that avoids every needle's subject,
so nothing else counts as relevant. A third of the queries are paraphrases that share no word
with their needle (checked here), which full-text search cannot find by design.

Reported: index build time (full text, then vectors), index size (FTS5 data, vectors, whole
file), the first query in a fresh process (vectors loaded into memory), p50/p95 per query for
`text`, `meaning` and `hybrid` with the model warm, and recall@10 per mode and query type.
Prints a table and writes benchmarks/results/search.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import sys
import tempfile
import time
import uuid
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT.parent))

from chronicon.search import SearchQuery, search  # noqa: E402
from chronicon.search.fulltext import STOPWORDS, WORD  # noqa: E402
from chronicon.search.indexing import EMBED_BATCH, default_embedder  # noqa: E402
from chronicon.search.vectors import VectorIndex, pack, unit_rows  # noqa: E402
from chronicon.store import Store  # noqa: E402

# ---- the haystack: everyday street, office and shop scenes ----------------------------------
SUBJECTS = ["a man in a grey coat", "a woman with a shopping bag", "two office workers",
            "an elderly couple", "a group of tourists", "a postman", "a jogger",
            "a waiter", "a young woman", "a security guard", "three teenagers",
            "a man with a backpack", "a woman pushing a stroller", "a street cleaner",
            "a blue car", "a white taxi", "a city bus", "a motorbike", "a silver sedan"]
ACTIONS = ["walks slowly along", "waits at", "stands still near", "crosses", "turns left at",
           "stops briefly beside", "hurries past", "looks around at", "moves away from",
           "drives along", "parks next to", "passes by"]
PLACES = ["the pedestrian crossing", "a bus stop", "the shop window", "the office entrance",
          "a parked row of cars", "the traffic lights", "a newspaper kiosk", "the cafe terrace",
          "the corner of the square", "a bench", "the lobby doors", "the supermarket exit",
          "a lamp post", "the taxi rank", "the pharmacy"]
TIMES = ["In the morning", "Around noon", "In the afternoon", "At dusk", "Late in the evening",
         "On a cloudy day", "Under bright sunlight", "During light rain"]
DETAILS = ["The camera is static.", "The image is slightly blurred.", "The scene is busy.",
           "Few people are around.", "Shadows are long.", "The street is wet.",
           "A few pedestrians are visible in the background.", "The view is from above.",
           "The lighting is dim.", ""]

# ---- the labelled queries: (query, needle caption, type) -------------------------------------
# "exact": words of the caption; "stem": other forms of its words (porter finds them);
# "paraphrase": no word in common with the caption at all.
LABELLED = [
    ("red van near the gate", "A red van is parked near the gate of the warehouse.", "exact"),
    ("horse cart canal", "A horse pulls a wooden cart along the canal path.", "exact"),
    ("construction worker helmet", "A construction worker wearing a yellow helmet climbs "
     "the scaffolding.", "exact"),
    ("smoke rising from a building", "Thick black smoke is rising from the roof of a building.",
     "exact"),
    ("freight train containers", "A long freight train hauls containers past the platform.",
     "exact"),
    ("cat windowsill", "A ginger cat sleeps on a sunny windowsill.", "exact"),
    ("ambulance lights", "An ambulance with flashing lights speeds through the intersection.",
     "exact"),
    ("snow plow", "A snow plow clears the road at night.", "exact"),
    ("fishermen nets", "Two fisherman are repairing a net on the pier.", "stem"),
    ("dogs barking", "A dog barks at the delivery drone hovering over the lawn.", "stem"),
    ("kids skating", "Kids skate in circles on a frozen pond.", "stem"),
    ("firefighters spraying water", "A firefighter sprays water on a burning car.", "stem"),
    ("boats sailing harbour", "A small sailboat sails out of the harbour.", "stem"),
    ("painted murals", "An artist paints a large mural on a brick wall.", "stem"),
    ("cranes lifting", "A tower crane lifts steel beams above the site.", "stem"),
    ("pigeons fed", "An old man feeds pigeons in the park.", "stem"),
    ("kids kicking a ball on the lawn", "Children play football on the grass.", "paraphrase"),
    ("someone stealing a bicycle", "A thief cuts the lock and rides off on a bike.",
     "paraphrase"),
    ("a blaze in a forest", "Wildfire flames spread through the trees.", "paraphrase"),
    ("people fighting", "Two men argue and then punch each other.", "paraphrase"),
    ("a pony drawing a wagon", "A horse pulls a carriage through the village.", "paraphrase"),
    ("medical helicopter touching down", "An air ambulance lands on the hospital roof.",
     "paraphrase"),
    ("flooded road", "Water covers the street up to the car doors after the storm.",
     "paraphrase"),
    ("a puppy playing by the sea", "A young dog chases a frisbee on the beach.", "paraphrase"),
]


def content_words(text: str) -> set[str]:
    return {w.lower() for w in WORD.findall(text)} - STOPWORDS


def check_labels() -> None:
    for query, needle, kind in LABELLED:
        if kind == "paraphrase":
            shared = content_words(query) & content_words(needle)
            assert not shared, f"paraphrase {query!r} shares {shared} with its needle"


def haystack(n: int, unique: int, rng: random.Random) -> list[str]:
    """`n` captions drawn from `unique` distinct ones (a fixed camera repeats itself; and each
    distinct caption is embedded once, which keeps the run minutes, not a quarter hour)."""
    pool: set[str] = set()
    while len(pool) < unique:
        detail = rng.choice(DETAILS)
        pool.add(f"{rng.choice(TIMES)}, {rng.choice(SUBJECTS)} {rng.choice(ACTIONS)} "
                 f"{rng.choice(PLACES)}.{' ' + detail if detail else ''}")
    distinct = sorted(pool)
    return [rng.choice(distinct) for _ in range(n)]


def embed_all(store: Store, texts: list[str]) -> dict:
    """Embed each distinct text once (the real model, batched as the indexer does) and store
    a vector for every entry."""
    embedder = default_embedder()
    distinct = sorted(set(texts))
    started = time.perf_counter()
    vectors = unit_rows(np.concatenate([embedder.encode(distinct[i:i + EMBED_BATCH])
                                        for i in range(0, len(distinct), EMBED_BATCH)]))
    embed_s = time.perf_counter() - started
    lookup = dict(zip(distinct, vectors, strict=True))
    started = time.perf_counter()
    entries = store.unembedded_search_entries(len(texts) + 1)
    store.set_search_vectors((entry_id, pack(lookup[text])) for entry_id, text in entries)
    return {"distinct_captions": len(distinct), "embed_s": round(embed_s, 2),
            "embed_ms_per_caption": round(embed_s * 1000 / len(distinct), 2),
            "store_vectors_s": round(time.perf_counter() - started, 2)}


def build(store: Store, n_captions: int, per_analysis: int, unique: int,
          rng: random.Random) -> dict:
    """Insert analyses with timeline captions (full text), then their vectors."""
    captions = haystack(n_captions - len(LABELLED), unique, rng)
    for _, needle, _ in LABELLED:  # needles at random places among the captions
        captions.insert(rng.randrange(len(captions) + 1), needle)
    needle_texts = {needle for _, needle, _ in LABELLED}
    needles = {}
    started = time.perf_counter()
    for first in range(0, len(captions), per_analysis):
        analysis_id = uuid.uuid4().hex
        group = captions[first:first + per_analysis]
        store.insert_analysis(analysis_id, {"analysis": ""}, video_path="/bench/video.mp4",
                              video_filename=f"camera-{first // per_analysis:05d}.mp4")
        ids = store.add_search_entries(analysis_id, [
            ("caption", text, 30.0 * i, 30.0 * (i + 1)) for i, text in enumerate(group)])
        needles.update({text: entry_id for entry_id, text in zip(ids, group, strict=True)
                        if text in needle_texts})
    fulltext_s = time.perf_counter() - started
    return {"captions": len(captions), "analyses": -(-len(captions) // per_analysis),
            "fulltext_index_s": round(fulltext_s, 2), **embed_all(store, captions),
            "needles": needles}


def sizes(store: Store, path: Path) -> dict:
    fts = store.query_one("SELECT SUM(LENGTH(block)) FROM search_fts_data")[0] or 0
    vectors = store.query_one("SELECT SUM(LENGTH(vector)) FROM search_vectors")[0] or 0
    text = store.query_one("SELECT SUM(LENGTH(text)) FROM search_entries")[0] or 0
    store.query("PRAGMA wal_checkpoint(TRUNCATE)")
    return {"fts_mb": round(fts / 1e6, 2), "vectors_mb": round(vectors / 1e6, 2),
            "caption_text_mb": round(text / 1e6, 2),
            "database_file_mb": round(path.stat().st_size / 1e6, 2)}


def time_query_embedding(repeat: int) -> dict:
    """The model's share of a meaning query: embedding the query text alone."""
    embedder = default_embedder()
    times = []
    for _ in range(repeat):
        for query, _, _ in LABELLED:
            started = time.perf_counter()
            embedder.encode([query])
            times.append((time.perf_counter() - started) * 1000)
    return {"p50_ms": round(float(np.percentile(times, 50)), 2),
            "p95_ms": round(float(np.percentile(times, 95)), 2), "n": len(times)}


def time_queries(store: Store, mode: str, repeat: int) -> dict:
    times = []
    for _ in range(repeat):
        for query, _, _ in LABELLED:
            started = time.perf_counter()
            search(store, SearchQuery(query, mode=mode, limit=10).validate())
            times.append((time.perf_counter() - started) * 1000)
    return {"p50_ms": round(float(np.percentile(times, 50)), 2),
            "p95_ms": round(float(np.percentile(times, 95)), 2), "n": len(times)}


def recall_at_10(store: Store, mode: str, needles: dict) -> dict:
    found_by_kind: dict[str, list[int]] = {}
    misses = []
    for query, needle, kind in LABELLED:
        hits = search(store, SearchQuery(query, mode=mode, limit=10).validate()).hits
        found = needles[needle] in [h.entry.id for h in hits]
        found_by_kind.setdefault(kind, []).append(int(found))
        if not found:
            misses.append(query)
    every = [f for values in found_by_kind.values() for f in values]
    return {"all": round(sum(every) / len(every), 3),
            **{kind: round(sum(v) / len(v), 3) for kind, v in found_by_kind.items()},
            "misses": misses}


def cold_vector_load(store: Store, repeat: int = 3) -> float:
    """Median ms to load every stored vector into a fresh matrix (a new process's first
    meaning query pays this once)."""
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        VectorIndex().refresh(store)
        times.append((time.perf_counter() - started) * 1000)
    return round(float(np.median(times)), 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--captions", type=int, default=50_000)
    parser.add_argument("--per-analysis", type=int, default=10)
    parser.add_argument("--unique", type=int, default=4000,
                        help="distinct generated captions the haystack repeats")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--output", type=Path, default=ROOT / "results" / "search.json")
    args = parser.parse_args()
    check_labels()
    rng = random.Random(1234)
    with tempfile.TemporaryDirectory(prefix="bench-search-") as tmp:
        path = Path(tmp) / "chronicon.db"
        store = Store(path)
        built = build(store, args.captions, args.per_analysis, args.unique, rng)
        needles = built.pop("needles")
        size = sizes(store, path)
        cold_ms = cold_vector_load(store)
        for mode in ("text", "meaning", "hybrid"):  # warm: model loaded, vectors in memory
            search(store, SearchQuery("warm up", mode=mode).validate())
        modes = {mode: {**time_queries(store, mode, args.repeat),
                        "recall_at_10": recall_at_10(store, mode, needles)}
                 for mode in ("text", "meaning", "hybrid")}
        query_embedding = time_query_embedding(args.repeat)
        store.close()
    report = {"build": built, "size": size, "cold_vector_load_ms": cold_ms, "modes": modes,
              "query_embedding": query_embedding,
              "queries": len(LABELLED), "repeat": args.repeat,
              "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                          "processor": platform.processor() or platform.machine()}}
    print(f"{built['captions']} captions in {built['analyses']} analyses: full-text index "
          f"{built['fulltext_index_s']} s; vectors: {built['distinct_captions']} distinct "
          f"captions embedded in {built['embed_s']} s ({built['embed_ms_per_caption']} ms "
          f"each), stored in {built['store_vectors_s']} s")
    print(f"size: FTS5 {size['fts_mb']} MB, vectors {size['vectors_mb']} MB, caption text "
          f"{size['caption_text_mb']} MB, whole database {size['database_file_mb']} MB; "
          f"loading all vectors into memory {cold_ms} ms")
    print("| mode | p50 | p95 | recall@10 all | exact | stem | paraphrase |")
    print("|---|---|---|---|---|---|---|")
    for mode, m in modes.items():
        r = m["recall_at_10"]
        print(f"| {mode} | {m['p50_ms']} ms | {m['p95_ms']} ms | {r['all']} | {r['exact']} "
              f"| {r['stem']} | {r['paraphrase']} |")
    print(f"(of which embedding the query: p50 {query_embedding['p50_ms']} ms, "
          f"p95 {query_embedding['p95_ms']} ms)")
    for mode, m in modes.items():
        if m["recall_at_10"]["misses"]:
            print(f"{mode} misses: {m['recall_at_10']['misses']}")
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()

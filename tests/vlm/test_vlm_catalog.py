"""Model names: presets, hub ids and directories."""

from __future__ import annotations

from pathlib import Path

import pytest

from chronicon.errors import BadParameter
from chronicon.vlm.catalog import PRESETS, count_parameters, resolve_model


def test_short_names_map_to_the_smolvlm2_hub_ids() -> None:
    assert resolve_model(None).model_id == "HuggingFaceTB/SmolVLM2-256M-Video-Instruct"
    assert resolve_model("256m").model_id == "HuggingFaceTB/SmolVLM2-256M-Video-Instruct"
    assert resolve_model("500M").model_id == "HuggingFaceTB/SmolVLM2-500M-Video-Instruct"
    assert resolve_model("2.2b").model_id == "HuggingFaceTB/SmolVLM2-2.2B-Instruct"
    assert all(p.parameters > 100_000_000 for p in PRESETS.values())


def test_a_preset_hub_id_keeps_its_parameter_count() -> None:
    ref = resolve_model("HuggingFaceTB/SmolVLM2-2.2B-Instruct")
    assert ref.parameters == PRESETS["2.2b"].parameters
    assert not ref.is_local


def test_other_hub_ids_pass_through_without_a_size() -> None:
    ref = resolve_model("someone/some-vlm")
    assert (ref.model_id, ref.parameters, ref.local_dir) == ("someone/some-vlm", None, None)


def test_a_directory_is_a_local_model(tmp_path: Path) -> None:
    ref = resolve_model(str(tmp_path))
    assert ref.is_local and ref.local_dir == tmp_path.resolve()


@pytest.mark.parametrize("name", ["./no/such/dir", "/no/such/model", "no-slash-name", "a/b/c", " "])
def test_names_that_are_neither_are_bad_parameters(name: str) -> None:
    with pytest.raises(BadParameter) as info:
        resolve_model(name)
    assert info.value.name == "model"


def test_a_file_is_not_a_model(tmp_path: Path) -> None:
    file = tmp_path / "weights.bin"
    file.write_bytes(b"x")
    with pytest.raises(BadParameter, match="is a file"):
        resolve_model(str(file))


def test_parameters_are_counted_from_safetensors_headers(tiny_model_dir: Path) -> None:
    from transformers import AutoModelForImageTextToText

    model = AutoModelForImageTextToText.from_pretrained(tiny_model_dir)
    assert count_parameters(tiny_model_dir) == sum(p.numel() for p in model.parameters())


def test_no_safetensors_no_count(tmp_path: Path) -> None:
    assert count_parameters(tmp_path) is None

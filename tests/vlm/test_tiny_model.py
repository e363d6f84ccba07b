"""The tiny test model loads through the same classes as a hub id."""

from __future__ import annotations

from pathlib import Path

from transformers import AutoModelForImageTextToText, AutoProcessor

from support.tiny_model import TINY_IMAGE_SEQ_LEN


def test_tiny_model_loads_with_auto_classes(tiny_model_dir: Path) -> None:
    processor = AutoProcessor.from_pretrained(tiny_model_dir)
    model = AutoModelForImageTextToText.from_pretrained(tiny_model_dir)
    assert type(processor).__name__ == "SmolVLMProcessor"
    assert type(model).__name__ == "SmolVLMForConditionalGeneration"
    assert processor.image_seq_len == TINY_IMAGE_SEQ_LEN
    assert processor.tokenizer.convert_tokens_to_ids("<image>") == model.config.image_token_id

"""A tiny SmolVLM built offline for tests: the real model, processor and tokenizer classes, with
random weights and toy sizes.

`build_tiny_smolvlm(path)` writes a directory that loads through exactly the same code path as a
hub id (`AutoProcessor.from_pretrained` + `AutoModelForImageTextToText.from_pretrained`), in well
under a second. Each frame costs `TINY_IMAGE_SEQ_LEN` image tokens. `build_smolvlm` takes any
sizes: the inference benchmark builds the real SmolVLM2-256M architecture with it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
from transformers import (
    AutoModelForImageTextToText,
    PreTrainedTokenizerFast,
    SmolVLMConfig,
    SmolVLMImageProcessor,
    SmolVLMProcessor,
    SmolVLMVideoProcessor,
)

TINY_IMAGE_SIZE = 32  # the vision encoder's input side, in pixels
TINY_PATCH_SIZE = 8
TINY_SCALE_FACTOR = 2
# (32 / 8)^2 patches, merged 2x2 by pixel shuffle: 4 image tokens per frame.
TINY_IMAGE_SEQ_LEN = (TINY_IMAGE_SIZE // TINY_PATCH_SIZE) ** 2 // TINY_SCALE_FACTOR**2

# SmolVLM's special tokens, as in the released tokenizer.
IMAGE_TOKEN = "<image>"
FAKE_IMAGE_TOKEN = "<fake_token_around_image>"
GLOBAL_IMAGE_TOKEN = "<global-img>"
END_OF_UTTERANCE = "<end_of_utterance>"
SPECIAL_TOKENS = [
    "<|endoftext|>", "<|im_start|>", "<|im_end|>", END_OF_UTTERANCE, FAKE_IMAGE_TOKEN,
    IMAGE_TOKEN, GLOBAL_IMAGE_TOKEN, "<video>",
    *(f"<row_{r}_col_{c}>" for r in range(1, 7) for c in range(1, 7)),
]

# SmolVLM2's chat template (the released one, also the processor's default for videos).
CHAT_TEMPLATE = (
    "<|im_start|>{% for message in messages %}{{message['role'] | capitalize}}"
    "{% if message['content'] is string %}{{': ' + message['content']}}{% else %}"
    "{% if message['content'][0]['type'] == 'image' %}{{':'}}{% else %}{{': '}}{% endif %}"
    "{% for line in message['content'] %}{% if line['type'] == 'text' %}{{line['text']}}"
    "{% elif line['type'] == 'image' %}{{ '<image>' }}{% elif line['type'] == 'video' %}"
    "{{ '<video>' }}{% endif %}{% endfor %}{% endif %}<end_of_utterance>\n{% endfor %}"
    "{% if add_generation_prompt %}{{ 'Assistant:' }}{% endif %}"
)

_CORPUS = [
    "User: Describe the main events in this video.",
    "Assistant: A person walks across the street while a train passes behind them.",
    "You are provided the following series of four frames from a 0:00:07 [H:MM:SS] video.",
    "Frame from 00:03: a red car stops at the light, then drives away quickly.",
    "The camera pans left; a dog runs on the grass near the railway station at night.",
]


def _train_tokenizer() -> PreTrainedTokenizerFast:
    tok = Tokenizer(models.BPE(unk_token=None))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    trainer = trainers.BpeTrainer(
        vocab_size=400,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(_CORPUS, trainer=trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token="<|im_start|>",
        eos_token=END_OF_UTTERANCE,
        pad_token="<|im_end|>",
        unk_token="<|endoftext|>",
        additional_special_tokens=[t for t in SPECIAL_TOKENS if t.startswith("<row_")
                                   or t in (IMAGE_TOKEN, FAKE_IMAGE_TOKEN, GLOBAL_IMAGE_TOKEN,
                                            "<video>")],
        model_max_length=4096,
    )


def _processor(tokenizer: PreTrainedTokenizerFast, image_size: int,
               image_seq_len: int) -> SmolVLMProcessor:
    side = {"longest_edge": image_size}
    image_processor = SmolVLMImageProcessor(
        do_image_splitting=False, size=side, max_image_size=side, do_resize=True)
    video_processor = SmolVLMVideoProcessor(
        size=side,
        max_image_size=side,
        video_sampling={"fps": 1, "max_frames": 64, "video_size": side},
    )
    return SmolVLMProcessor(
        image_processor=image_processor,
        tokenizer=tokenizer,
        video_processor=video_processor,
        image_seq_len=image_seq_len,
        chat_template=CHAT_TEMPLATE,
    )


def save_processor(path: Path, image_size: int, image_seq_len: int) -> Path:
    """Write only a SmolVLM processor (tokenizer included) whose frames are brought to
    `image_size` pixels, each `image_seq_len` image tokens (the 256M model: 512 and 64)."""
    _processor(_train_tokenizer(), image_size, image_seq_len).save_pretrained(path)
    return Path(path)


def build_smolvlm(path: Path, text: dict[str, Any], vision: dict[str, Any], scale_factor: int,
                  vocab_size: int | None = None, seed: int = 0,
                  dtype: torch.dtype = torch.float32) -> Path:
    """Write a random-weight SmolVLM with these text (llama) and vision (SigLIP) sizes, its
    processor (frames brought to the vision encoder's image size) and a small BPE tokenizer.
    `vocab_size` may exceed the tokenizer's (the real 256M has 49280 embeddings)."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    tokenizer = _train_tokenizer()
    image_size, patch_size = vision["image_size"], vision["patch_size"]
    image_seq_len = (image_size // patch_size) ** 2 // scale_factor**2
    processor = _processor(tokenizer, image_size, image_seq_len)
    ids = {"pad_token_id": tokenizer.pad_token_id, "bos_token_id": tokenizer.bos_token_id,
           "eos_token_id": tokenizer.eos_token_id}
    config = SmolVLMConfig(
        text_config={"model_type": "llama", "vocab_size": vocab_size or len(tokenizer),
                     **text, **ids},
        vision_config=dict(vision),
        scale_factor=scale_factor,
        image_token_id=tokenizer.convert_tokens_to_ids(IMAGE_TOKEN),
        tie_word_embeddings=False,
        **ids,
    )
    torch.manual_seed(seed)
    model = AutoModelForImageTextToText.from_config(config).to(dtype)
    for name, value in ids.items():
        setattr(model.generation_config, name, value)
    model.save_pretrained(path)
    processor.save_pretrained(path)
    return path


def build_tiny_smolvlm(path: Path, seed: int = 0) -> Path:
    """Write a tiny random-weight SmolVLM (model, processor, tokenizer) to `path`; return it."""
    return build_smolvlm(
        path,
        text={"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2,
              "num_attention_heads": 4, "num_key_value_heads": 2,
              "max_position_embeddings": 2048, "rope_theta": 100000.0},
        vision={"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 1,
                "num_attention_heads": 4, "image_size": TINY_IMAGE_SIZE,
                "patch_size": TINY_PATCH_SIZE},
        scale_factor=TINY_SCALE_FACTOR,
        seed=seed,
    )

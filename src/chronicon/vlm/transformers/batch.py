"""Several descriptions in shared forward passes: one vision pass, one decode loop.

The processor takes all the requests at once (left-padded prompts, every request's frames as
its own video), so `generate()` runs the vision encoder over all frames in one batch and
decodes all rows together. What differs per row is handled here:
- `MinTokensPerRow` / `MaxTokensPerRow`: each row's min and max tokens (EOS is masked for a
  row under its minimum; a row at its maximum stops while the others go on);
- `RowStreamer`: each row's text pieces go to `on_piece(row, piece)` as they decode, and each
  row's first-token and finish times are noted for its own stats.

Rows must share sampling settings (temperature, top_p); `group_key` says which can share.
`join_rows` makes one batch of rows the processor prepared one at a time, as its own batch
call pads them.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from transformers import BatchFeature, LogitsProcessor, StoppingCriteria
from transformers.generation.streamers import BaseStreamer

from ..backend import GenerationParams
from ..tokens import IncrementalText


def group_key(params: GenerationParams) -> tuple[float, float]:
    """Requests with equal keys may share a batch (the same decoding rule)."""
    return (params.temperature, params.top_p if not params.greedy else 1.0)


# Text tensors are left-padded (the prompts end where generation starts); pixel tensors get
# zeros after their frames and pixels, which the model reads as padding frames and pixels.
_LEFT_PADDED = {"input_ids", "attention_mask"}


def join_rows(rows: list[BatchFeature], pad_token_id: int) -> BatchFeature:
    """One batch from single-row processor outputs: every tensor padded to the largest row's
    shape (`input_ids` with `pad_token_id` on the left, the rest with zeros after) and
    concatenated."""
    joined = {}
    for key in rows[0]:
        tensors = [row[key] for row in rows]
        largest = [max(sizes) for sizes in zip(*(t.shape for t in tensors), strict=True)]
        value = pad_token_id if key == "input_ids" else 0
        padded = []
        for t in tensors:
            missing = [want - have for want, have in zip(largest, t.shape, strict=True)]
            if key in _LEFT_PADDED:
                padding = [missing[-1], 0]
            else:  # F.pad lists (before, after) from the last dimension back
                padding = [n for m in reversed(missing) for n in (0, m)]
            padded.append(F.pad(t, padding, value=value) if any(missing) else t)
        joined[key] = torch.cat(padded)
    return BatchFeature(joined)


class MinTokensPerRow(LogitsProcessor):
    """No EOS for a row still under its own minimum of new tokens."""

    def __init__(self, prompt_length: int, min_tokens: list[int], eos_ids: list[int]) -> None:
        self.prompt_length = prompt_length
        self.min_tokens = torch.tensor(min_tokens)
        self.eos_ids = torch.tensor(eos_ids, dtype=torch.long)

    def __call__(self, input_ids: torch.LongTensor,
                 scores: torch.FloatTensor) -> torch.FloatTensor:
        under = (input_ids.shape[1] - self.prompt_length) < self.min_tokens
        if not under.any() or not len(self.eos_ids):
            return scores
        scores = scores.clone()
        rows = under.nonzero().flatten().to(scores.device)
        scores[rows[:, None], self.eos_ids.to(scores.device)] = -torch.inf
        return scores


class MaxTokensPerRow(StoppingCriteria):
    """A row stops at its own maximum of new tokens while the others go on."""

    def __init__(self, prompt_length: int, max_tokens: list[int]) -> None:
        self.prompt_length = prompt_length
        self.max_tokens = torch.tensor(max_tokens)

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor,
                 **kwargs: Any) -> torch.BoolTensor:
        generated = input_ids.shape[1] - self.prompt_length
        return (generated >= self.max_tokens).to(input_ids.device)


class RowStreamer(BaseStreamer):
    """Decodes each row incrementally and hands new text to `on_piece(row, text)`.

    A row is finished at its first EOS or at its max tokens; later tokens of that row are the
    padding `generate()` fills finished rows with and are ignored."""

    def __init__(self, tokenizer: Any, rows: int, max_tokens: list[int], eos_ids: list[int],
                 on_piece: Callable[[int, str], None],
                 on_first_token: Callable[[], None] = lambda: None) -> None:
        self.max_tokens = max_tokens
        self.on_first_token = on_first_token
        self.eos_ids = set(eos_ids)
        self.texts = [IncrementalText(tokenizer, lambda piece, row=row: on_piece(row, piece))
                      for row in range(rows)]
        self.finished = [False] * rows
        self.ended_by_eos = [False] * rows
        self.first_token_at: float | None = None
        self.finished_at: list[float | None] = [None] * rows
        self._prompt_seen = False

    def put(self, value: torch.Tensor) -> None:
        if not self._prompt_seen:  # generate() first hands over the prompt
            self._prompt_seen = True
            return
        now = time.perf_counter()
        if self.first_token_at is None:
            self.first_token_at = now
            self.on_first_token()
        for row, token in enumerate(value.reshape(-1).tolist()):
            if self.finished[row]:
                continue
            if token in self.eos_ids:
                self.ended_by_eos[row] = True
                self._finish(row, now)
                continue
            self.texts[row].add(token)
            if len(self.texts[row].tokens) >= self.max_tokens[row]:
                self._finish(row, now)

    def generated(self, row: int) -> int:
        """Tokens generated for `row`, its EOS included (as a single generate counts them)."""
        return len(self.texts[row].tokens) + int(self.ended_by_eos[row])

    def end(self) -> None:
        now = time.perf_counter()
        for row in range(len(self.texts)):
            if not self.finished[row]:
                self._finish(row, now)

    def _finish(self, row: int, now: float) -> None:
        self.finished[row] = True
        self.finished_at[row] = now
        self.texts[row].finish()

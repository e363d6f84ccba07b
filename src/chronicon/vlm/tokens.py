"""Token-level helpers every local runtime shares (no torch): streaming text out of token ids as
whole words, and which token ids a yes/no answer starts with."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


class IncrementalText:
    """Turns a growing list of token ids into text pieces: a piece is handed out when a word is
    complete (as transformers' TextStreamer does), the rest when the text is finished; an
    incomplete UTF-8 sequence waits for its remaining bytes."""

    def __init__(self, tokenizer: Any, on_piece: Callable[[str], None]) -> None:
        self.tokenizer = tokenizer
        self.on_piece = on_piece
        self.tokens: list[int] = []
        self._sent = 0  # characters already handed out

    def add(self, token: int) -> None:
        self.tokens.append(int(token))
        self._emit(final=False)

    def finish(self) -> None:
        self._emit(final=True)

    def _emit(self, final: bool) -> None:
        text = self.tokenizer.decode(self.tokens, skip_special_tokens=True)
        if final:
            end = len(text)
        elif text.endswith("\ufffd"):
            return
        else:
            end = text.rfind(" ") + 1  # up to the last complete word
        if end > self._sent:
            piece = text[self._sent:end]
            self._sent = end
            self.on_piece(piece)


def yes_no_token_ids(tokenizer: Any) -> tuple[set[int], set[int]]:
    """The first token ids of "Yes"/" Yes"/"yes"/" yes" and of the same forms of "No"; a token
    both start with (a bare space in a small vocabulary) is dropped from both."""

    def first_ids(word: str) -> set[int]:
        ids = set()
        for variant in (word.capitalize(), " " + word.capitalize(), word, " " + word):
            encoded = tokenizer.encode(variant, add_special_tokens=False)
            if encoded:
                ids.add(int(encoded[0]))
        return ids

    yes, no = first_ids("yes"), first_ids("no")
    return yes - no, no - yes

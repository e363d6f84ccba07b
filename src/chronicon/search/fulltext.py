"""From what a user typed to an FTS5 query, and from FTS5's highlighting to character spans.

User text never reaches FTS5's query syntax: it is cut into words and each word is quoted, so
`"`, `*`, `NEAR`, `AND` or a stray parenthesis are plain words, not operators (or errors).
"""

from __future__ import annotations

import re

WORD = re.compile(r"\w+", re.UNICODE)

# Words that match nearly every description: leaving them out keeps an OR query from ranking
# "a" and "the" and from touching every row of the index.
_STOPWORD_LIST = """
a about after an and are as at be been before being but by can could did do does doing for
from had has have having he her here hers him his how i if in into is it its itself me more
most my near no nor not of off on once only or other our out over own same she should so some
such than that the their them then there these they this those through to too under until up
very was we were what when where which while who whom why will with would you your
"""
STOPWORDS = frozenset(_STOPWORD_LIST.split())

# Control characters FTS5 wraps around matched tokens; no description contains them (they are
# checked), so splitting on them is unambiguous.
OPEN_MARK, CLOSE_MARK = "\x02", "\x03"


def query_terms(text: str) -> list[str]:
    """The query's words, lower-cased, first occurrence order, stop words dropped (unless the
    query is nothing but stop words)."""
    words = list(dict.fromkeys(w.lower() for w in WORD.findall(text)))
    content = [w for w in words if w not in STOPWORDS]
    return content or words


def match_expression(text: str) -> str | None:
    """An FTS5 MATCH expression finding entries with ANY of the query's words (bm25 then ranks
    those with more, and rarer, words first); None when the text has no word at all."""
    terms = query_terms(text)
    if not terms:
        return None
    return " OR ".join(f'"{term}"' for term in terms)


def parse_highlight(highlighted: str, original: str) -> list[tuple[int, int]]:
    """Character spans `[start, end)` in `original` of the tokens FTS5 marked in `highlighted`.

    Empty when the text itself contains a marker character (then the spans could lie)."""
    if OPEN_MARK in original or CLOSE_MARK in original:
        return []
    spans, plain_length, inside_from = [], 0, None
    for piece in re.split(f"([{OPEN_MARK}{CLOSE_MARK}])", highlighted):
        if piece == OPEN_MARK:
            inside_from = plain_length
        elif piece == CLOSE_MARK:
            if inside_from is not None and plain_length > inside_from:
                spans.append((inside_from, plain_length))
            inside_from = None
        else:
            plain_length += len(piece)
    return spans


def segments(text: str, spans: list[tuple[int, int]]) -> list[tuple[str, bool]]:
    """`text` cut into (piece, is_match) in order: what a page renders, escaping each piece."""
    out: list[tuple[str, bool]] = []
    position = 0
    for start, end in sorted(spans):
        if start < position:
            continue
        if start > position:
            out.append((text[position:start], False))
        out.append((text[start:end], True))
        position = end
    if position < len(text):
        out.append((text[position:], False))
    return out

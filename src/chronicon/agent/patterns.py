"""Rule regexes: compiled for RE2, which runs in time linear in the text, never backtracking.

Python's `re` backtracks: `(a+)+$` on 29 "a"s and a "!" takes 25 s and doubles with every
character, and a rule runs on every description, so one such pattern in a rules file froze the
whole server. RE2 (`google-re2`) answers the same search in microseconds. It has no look-around
and no back-references (the features that need backtracking); a pattern using them is refused
with the reason. A pattern that nests one unbounded repeat inside another (`(a+)+`, `(\\w+\\s?)*`)
is refused too, although RE2 would run it safely: it is the classic catastrophic pattern in
every backtracking engine the same rules file might be pasted into, and it always has a plain
equivalent (`(a+)+$` is `a+$`).

Patterns are case-insensitive; `(?-i:...)` makes a part case-sensitive. Note that in RE2 `\\b`,
`\\w` and `\\d` are ASCII-only.
"""

from __future__ import annotations

import re
from typing import Any

import re2

try:  # Python 3.11+ names the parser `re._parser`; 3.10 only has sre_parse
    from re import _parser as _sre_parse  # type: ignore[attr-defined]
except ImportError:  # pragma: no cover
    import sre_parse as _sre_parse  # type: ignore[no-redef]

_OPTIONS = re2.Options()
_OPTIONS.case_sensitive = False
_OPTIONS.log_errors = False  # the refusal is reported as a RulesError, not on stderr

_REPEATS = {"MAX_REPEAT", "MIN_REPEAT", "POSSESSIVE_REPEAT"}
_UNBOUNDED = _sre_parse.MAXREPEAT

Pattern = Any  # re2._Regexp: finditer/search with str offsets, like re.Pattern


def compile_pattern(pattern: str) -> Pattern:
    """`pattern` compiled for linear-time matching; `ValueError` saying why it is refused."""
    try:
        parsed = _sre_parse.parse(pattern, re.IGNORECASE)
    except re.error as exc:
        raise ValueError(f"invalid regular expression {pattern!r}: {exc}") from None
    if _nested_unbounded(parsed, inside=False):
        raise ValueError(
            f"regular expression {pattern!r} repeats a repeat (like '(a+)+'), which can take "
            "exponential time: write it without the outer repeat (e.g. '(a+)+$' is 'a+$')")
    try:
        return re2.compile(pattern, _OPTIONS)
    except re2.error as exc:
        reason = exc.args[0].decode() if exc.args and isinstance(exc.args[0], bytes) else exc
        raise ValueError(
            f"regular expression {pattern!r} cannot run in linear time ({reason}): look-around "
            "(?=...), (?!...), (?<=...) and back-references \\1 are not supported") from None


def _nested_unbounded(items: Any, inside: bool) -> bool:
    """Whether an unbounded repeat's body is itself only a repeat, anywhere in `items`: the
    shape that lets a backtracking engine split one run of text in exponentially many ways
    (`(a+)+`, `(\\w+\\s?)*`, `(x|y+)+`, `(a{1,5})+`). `((ab)+c)+` is fine: the `c` fixes
    every split."""
    for op, value in items:
        if str(op) in _REPEATS:
            _, high, body = value
            unbounded = high == _UNBOUNDED
            if inside and high > 1 and _repeats_only(items):
                return True
            if _nested_unbounded(body, inside=unbounded or (inside and _repeats_only(items))):
                return True
        for part in _children(op, value):
            if _nested_unbounded(part, inside and _repeats_only(items)):
                return True
    return False


def _children(op: Any, value: Any) -> list[Any]:
    """The sub-patterns of a group, an alternation or an assertion (not of a repeat)."""
    if str(op) in _REPEATS or not isinstance(value, (tuple, list)):
        return []
    found = []
    for part in value:
        if isinstance(part, _sre_parse.SubPattern):
            found.append(part)
        elif isinstance(part, list):  # a BRANCH's alternatives
            found += [alt for alt in part if isinstance(alt, _sre_parse.SubPattern)]
    return found


def _repeats_only(items: Any) -> bool:
    """Every element is optional or a repeat (so the sequence can match in many splits)."""
    return all(str(op) in _REPEATS and (value[0] == 0 or value[1] > 1)
               or str(op) in ("SUBPATTERN", "BRANCH") for op, value in items)

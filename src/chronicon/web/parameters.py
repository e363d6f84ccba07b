"""The analysis parameters a web upload may set, with the web's documented ranges (MISSION §5).

The web ranges differ from the CLI's on purpose (max_tokens 250-500 here): they are a contract
existing users script against. Every violation names its field.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from ..analysis import DEFAULT_PROMPT
from ..errors import BadParameter
from ..video.sampling import STRATEGIES as SAMPLING_STRATEGIES

MAX_PROMPT_CHARS = 2000  # tighter than the CLI's: a form field, not a scripted prompt file

# name: (minimum, maximum, default)
INT_RANGES: dict[str, tuple[int, int, int]] = {
    "frames": (1, 16, 8),
    "max_tokens": (250, 500, 250),
    "min_tokens": (50, 200, 50),
    "resize": (64, 1536, 336),
}


@dataclass(frozen=True)
class AnalyzeParameters:
    frames: int = 8
    max_tokens: int = 250
    min_tokens: int = 50
    resize: int = 336
    prompt: str = DEFAULT_PROMPT
    sampling: str = "uniform"
    model: str | None = None  # None: the server's model

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _parse_int(name: str, raw: str | None) -> int:
    low, high, default = INT_RANGES[name]
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw.strip())
    except ValueError:
        raise BadParameter(name, f"must be a whole number between {low} and {high}, "
                                 f"got {raw[:40]!r}") from None
    if not low <= value <= high:
        raise BadParameter(name, f"must be between {low} and {high}, got {value}")
    return value


def parse_parameters(fields: dict[str, str], allowed_models: list[str]) -> AnalyzeParameters:
    """Form fields (strings) to validated parameters; missing or empty fields take defaults.

    `model` must be one of `allowed_models`: the web never loads an arbitrary path or hub id a
    visitor typed (that would let anyone make the server read directories or download models).
    """
    ints = {name: _parse_int(name, fields.get(name)) for name in INT_RANGES}
    if ints["min_tokens"] > ints["max_tokens"]:
        raise BadParameter("min_tokens", "must not be above max_tokens")
    prompt = (fields.get("prompt") or "").strip() or DEFAULT_PROMPT
    if len(prompt) > MAX_PROMPT_CHARS:
        raise BadParameter("prompt", f"at most {MAX_PROMPT_CHARS} characters")
    sampling = (fields.get("sampling") or "uniform").strip().lower()
    if sampling not in SAMPLING_STRATEGIES:
        raise BadParameter("sampling", f"must be one of {', '.join(SAMPLING_STRATEGIES)}")
    model = (fields.get("model") or "").strip() or None
    if model is not None and model not in allowed_models:
        raise BadParameter("model", f"not available on this server; choose one of "
                                    f"{', '.join(allowed_models)}")
    return AnalyzeParameters(prompt=prompt, sampling=sampling, model=model, **ints)

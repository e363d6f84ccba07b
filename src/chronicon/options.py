"""What a user may ask of one analysis, and every limit on it, declared once.

`AnalysisOptions` is the one typed request that travels from an edge (CLI flags, a web form, a
watched folder) through the job queue to `analyze()`. A value that exists is valid against the
widest profile (`CLI_LIMITS`, checked on construction), so everything below the edge trusts it;
an edge with narrower ranges checks them with `options.validate(WEB_LIMITS)` (or, when it parses
raw fields, `parse_options(fields, WEB_LIMITS)`) — the same code with another profile.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any

from .errors import BadParameter
from .video.sampling import SAMPLERS
from .vlm.backend import MAX_TOKENS_LIMIT, GenerationParams

DEFAULT_PROMPT = "Describe the main events in this video."
DEFAULT_SAMPLING = "uniform"


@dataclass(frozen=True)
class Limit:
    """A whole-number knob: its range (inclusive) and the default an edge offers."""

    low: int
    high: int
    default: int

    def check(self, name: str, value: Any) -> None:
        if isinstance(value, bool) or not isinstance(value, int):
            raise BadParameter(name, f"must be a whole number from {self.low} to {self.high}, "
                                     f"got {value!r}")
        if not self.low <= value <= self.high:
            raise BadParameter(name, f"must be from {self.low} to {self.high}, got {value}")


@dataclass(frozen=True)
class Limits:
    """One profile of ranges for the whole-number knobs, plus the prompt length."""

    name: str
    frames: Limit
    resize: Limit
    max_tokens: Limit
    min_tokens: Limit
    max_prompt_chars: int

    def ranges(self) -> dict[str, tuple[int, int, int]]:
        """name -> (low, high, default), for forms and the OpenAPI schema."""
        return {name: (limit.low, limit.high, limit.default)
                for name, limit in self.int_limits().items()}

    def int_limits(self) -> dict[str, Limit]:
        return {"frames": self.frames, "max_tokens": self.max_tokens,
                "min_tokens": self.min_tokens, "resize": self.resize}

    def check(self, values: Mapping[str, Any]) -> None:
        """Raise BadParameter naming the first field of `values` outside this profile."""
        for name, limit in self.int_limits().items():
            limit.check(name, values[name])
        if values["min_tokens"] > values["max_tokens"]:
            raise BadParameter("min_tokens", f"{values['min_tokens']} is above max_tokens "
                                             f"{values['max_tokens']} (min must not exceed max)")
        prompt = values["prompt"]
        if not isinstance(prompt, str) or not prompt.strip():
            raise BadParameter("prompt", "must not be empty")
        if len(prompt) > self.max_prompt_chars:
            raise BadParameter("prompt", f"at most {self.max_prompt_chars} characters, "
                                         f"got {len(prompt)}")
        if values["sampling"] not in SAMPLERS:
            raise BadParameter("sampling", f"must be one of {', '.join(SAMPLERS)}, "
                                           f"got {values['sampling']!r}")
        model = values.get("model")
        if model is not None and (not isinstance(model, str) or not model.strip()):
            raise BadParameter("model", f"must be a model name, got {model!r}")


# The CLI's ranges are the widest: what the sampler and the backends can do.
CLI_LIMITS = Limits(
    "cli",
    frames=Limit(1, 16, 8),
    resize=Limit(32, 4096, 336),
    max_tokens=Limit(1, MAX_TOKENS_LIMIT, 100),
    min_tokens=Limit(0, MAX_TOKENS_LIMIT, 50),  # the CLI lowers it to max_tokens when smaller
    max_prompt_chars=4000,
)
# The web's ranges are a contract existing users script against (max_tokens 250-500 here), and
# a form field gets a shorter prompt than a scripted prompt file.
WEB_LIMITS = Limits(
    "web",
    frames=Limit(1, 16, 8),
    resize=Limit(64, 1536, 336),
    max_tokens=Limit(250, 500, 250),
    min_tokens=Limit(50, 200, 50),
    max_prompt_chars=2000,
)


@dataclass(frozen=True)
class AnalysisOptions:
    """What the user asked for. Construction checks `CLI_LIMITS` (raises BadParameter naming
    the field); `model` None means the configured model."""

    frames: int = CLI_LIMITS.frames.default
    prompt: str = DEFAULT_PROMPT
    resize: int = CLI_LIMITS.resize.default
    max_tokens: int = CLI_LIMITS.max_tokens.default
    min_tokens: int = CLI_LIMITS.min_tokens.default
    sampling: str = DEFAULT_SAMPLING
    model: str | None = None

    def __post_init__(self) -> None:
        CLI_LIMITS.check(asdict(self))

    def validate(self, limits: Limits = CLI_LIMITS) -> AnalysisOptions:
        """Check against a (narrower) profile; returns self so it chains."""
        limits.check(asdict(self))
        return self

    def generation_params(self) -> GenerationParams:
        return GenerationParams(max_tokens=self.max_tokens, min_tokens=self.min_tokens)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> AnalysisOptions:
        """The inverse of `to_dict`; unknown keys (from a newer writer) are ignored."""
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})


def _parse_int(name: str, raw: str | None, limit: Limit) -> int:
    if raw is None or raw.strip() == "":
        return limit.default
    try:
        return int(raw.strip())
    except ValueError:
        raise BadParameter(name, f"must be a whole number from {limit.low} to {limit.high}, "
                                 f"got {raw[:40]!r}") from None


def parse_options(form: Mapping[str, str], limits: Limits,
                  allowed_models: list[str] | None = None) -> AnalysisOptions:
    """Text fields (a web form) to options checked against `limits`; a missing or empty field
    takes the profile's default (the prompt: DEFAULT_PROMPT).

    With `allowed_models`, `model` must be one of them: the web never loads an arbitrary path
    or hub id a visitor typed (that would let anyone make the server read directories or
    download models)."""
    values: dict[str, Any] = {name: _parse_int(name, form.get(name), limit)
                              for name, limit in limits.int_limits().items()}
    values["prompt"] = (form.get("prompt") or "").strip() or DEFAULT_PROMPT
    values["sampling"] = (form.get("sampling") or DEFAULT_SAMPLING).strip().lower()
    model = (form.get("model") or "").strip() or None
    if model is not None and allowed_models is not None and model not in allowed_models:
        raise BadParameter("model", f"not available on this server; choose one of "
                                    f"{', '.join(allowed_models)}")
    values["model"] = model
    limits.check(values)
    return AnalysisOptions(**values)


__all__ = ["AnalysisOptions", "CLI_LIMITS", "DEFAULT_PROMPT", "Limit", "Limits", "WEB_LIMITS",
           "parse_options"]

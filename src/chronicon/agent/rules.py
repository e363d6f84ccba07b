"""Rules: what to look for in a description and what to do when it is found.

A rules file is YAML (see README, section "agent", and the packaged `default_rules.yaml`):

    rules:
      - name: train               # unique; names the rule in errors, reasons and deliveries
        label: train              # the decision label (default: the name)
        keywords: [train, railway, "Deutsche Bahn", "postgres*"]
        weak_keywords: [db]       # ambiguous words: support other evidence, rarely decide alone
        regex: ['\\bICE ?\\d+\\b']  # RE2 regular expressions (linear time), case-insensitive
        examples: ["a locomotive pulls wagons"]   # meaning: compared by sentence embeddings
        counter_examples: ["a bus at a bus stop"]  # look-alikes: a sentence closer to one of
                                  # these than to every example gives no meaning evidence
        exclude: ['\\d+\\s*dB\\b']  # spans where keyword/regex hits do not count
        also_verbs: [train]       # keywords that are also verbs: "trains new staff" is no train
        threshold: 0.5            # the rule fires when its score reaches this
        actions: [email, log]     # channel names: email | webhook | log (see agent/channels/)
        cooldown: 5m              # seconds, or 30s / 5m / 2h / 1d
        dedup_similarity: 0.9     # within the cooldown, a description this close in meaning
                                  # to one already notified is a duplicate (null: off)
        verify: "Is there a train in these frames?"  # a yes/no question for the VLM ...
        verify_threshold: 0.5     # ... whose P(yes) must reach this for the actions to run

Validation errors raise `RulesError` naming the file, the rule and the field.
"""

from __future__ import annotations

import re
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    field_validator,
    model_validator,
)

from ..config import Settings
from ..errors import RulesError
from .channels import CHANNELS
from .meaning import DEFAULT_MODEL
from .patterns import Pattern, compile_pattern
from .words import Term

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|sec|m|min|h|d)?\s*$")
_UNIT_SECONDS = {None: 1, "s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600, "d": 86400}


def parse_duration(value: Any) -> float:
    """Seconds from a number or a string like "90", "30s", "5m", "2h", "1d"."""
    if isinstance(value, bool):
        raise ValueError("expected a duration such as 300, 30s, 5m or 1h")
    if isinstance(value, (int, float)):
        seconds = float(value)
    else:
        m = _DURATION.match(str(value))
        if not m:
            raise ValueError(f"expected a duration such as 300, 30s, 5m or 1h, not {value!r}")
        seconds = float(m.group(1)) * _UNIT_SECONDS[m.group(2)]
    if seconds < 0:
        raise ValueError("a duration cannot be negative")
    return seconds


class Rule(BaseModel):
    """One rule. Matchers: `keywords`, `regex`, `examples` (at least one of them)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, max_length=64)
    label: str = ""
    keywords: list[str] = Field(default_factory=list)
    weak_keywords: list[str] = Field(default_factory=list)
    regex: list[str] = Field(default_factory=list)
    examples: list[str] = Field(default_factory=list)
    counter_examples: list[str] = Field(default_factory=list)
    exclude: list[str] = Field(default_factory=list)
    also_verbs: list[str] = Field(default_factory=list)
    keyword_weight: float = Field(default=0.75, gt=0, le=1)
    weak_keyword_weight: float = Field(default=0.4, gt=0, le=1)
    regex_weight: float = Field(default=0.75, gt=0, le=1)
    example_weight: float = Field(default=0.9, gt=0, le=1)
    min_similarity: float = Field(default=0.2, ge=-1, lt=1)
    full_similarity: float = Field(default=0.65, gt=-1, le=1)
    min_margin: float = Field(default=0.0, ge=-1, lt=1)
    full_margin: float = Field(default=0.1, gt=-1, le=1)
    threshold: float = Field(default=0.5, gt=0, le=1)
    actions: list[str] = Field(default_factory=lambda: ["log"])
    cooldown: float = 0.0
    dedup_similarity: float | None = Field(default=0.9, gt=0, le=1)
    verify: str | None = Field(default=None, min_length=1, max_length=500)
    verify_threshold: float = Field(default=0.5, ge=0, le=1)

    _terms: list[Term] = PrivateAttr(default_factory=list)
    _weak_terms: list[Term] = PrivateAttr(default_factory=list)
    _patterns: list[Pattern] = PrivateAttr(default_factory=list)
    _excludes: list[Pattern] = PrivateAttr(default_factory=list)
    _verbs: frozenset[str] = PrivateAttr(default_factory=frozenset)

    @field_validator("keywords", "weak_keywords", "examples", "counter_examples")
    @classmethod
    def _no_blank(cls, values: list[str]) -> list[str]:
        for value in values:
            if not value.strip() or not value.strip().strip("*").strip():
                raise ValueError("entries must not be blank")
        return values

    @field_validator("keywords", "weak_keywords")
    @classmethod
    def _keywords_have_words(cls, values: list[str]) -> list[str]:
        for value in values:
            if not Term.parse(value).words:
                raise ValueError(f"keyword {value!r} holds no word to match")
        return values

    @field_validator("regex", "exclude")
    @classmethod
    def _valid_patterns(cls, values: list[str]) -> list[str]:
        for value in values:
            if not value:
                raise ValueError("entries must not be blank")
            compile_pattern(value)
        return values

    @field_validator("cooldown", mode="before")
    @classmethod
    def _duration(cls, value: Any) -> float:
        return parse_duration(value)

    @field_validator("actions")
    @classmethod
    def _known_actions(cls, values: list[str]) -> list[str]:
        for value in values:
            if value not in CHANNELS:
                raise ValueError(f"unknown action {value!r}: use one of {', '.join(CHANNELS)}")
        return list(dict.fromkeys(values))

    @model_validator(mode="after")
    def _check(self) -> Rule:
        if not (self.keywords or self.weak_keywords or self.regex or self.examples):
            raise ValueError("a rule needs at least one of keywords, weak_keywords, regex, "
                             "examples")
        if self.counter_examples and not self.examples:
            raise ValueError("counter_examples need examples to compare with")
        if self.full_similarity <= self.min_similarity:
            raise ValueError("full_similarity must be above min_similarity")
        if self.full_margin <= self.min_margin:
            raise ValueError("full_margin must be above min_margin")
        if not self.label:
            object.__setattr__(self, "label", self.name)
        return self

    def model_post_init(self, context: Any) -> None:
        self._terms = [Term.parse(k) for k in self.keywords]
        self._weak_terms = [Term.parse(k) for k in self.weak_keywords]
        self._patterns = [compile_pattern(p) for p in self.regex]
        self._excludes = [compile_pattern(p) for p in self.exclude]
        self._verbs = frozenset(w for v in self.also_verbs for w in Term.parse(v).words)

    @property
    def terms(self) -> list[Term]:
        return self._terms

    @property
    def weak_terms(self) -> list[Term]:
        return self._weak_terms

    @property
    def patterns(self) -> list[Pattern]:
        return self._patterns

    @property
    def excludes(self) -> list[Pattern]:
        return self._excludes

    @property
    def verbs(self) -> frozenset[str]:
        """The words of `also_verbs`, normalised like tokens."""
        return self._verbs

    def semantic_strength(self, similarity: float, margin: float) -> float:
        """Meaning evidence of one sentence: `example_weight` (a paraphrase is never quite
        proof) times the smaller of two parts, each mapped linearly to 0..1: the cosine to the
        closest example (`min_similarity` .. `full_similarity`), and its margin over the
        closest counter-example or other label's example (`min_margin` .. `full_margin`). Close
        to an example is not enough; it must be closer to it than to the look-alikes."""
        def part(value: float, low: float, high: float) -> float:
            return min(1.0, max(0.0, (value - low) / (high - low)))

        return self.example_weight * min(
            part(similarity, self.min_similarity, self.full_similarity),
            part(margin, self.min_margin, self.full_margin))


class RuleSet(BaseModel):
    """The rules, in order (earlier wins a tie), and the embedding model for `examples`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    rules: list[Rule] = Field(default_factory=list)
    model: str = DEFAULT_MODEL
    source: str = Field(default="<rules>", exclude=True)

    @model_validator(mode="after")
    def _unique_names(self) -> RuleSet:
        seen: set[str] = set()
        for rule in self.rules:
            if rule.name in seen:
                raise ValueError(f"duplicate rule name {rule.name!r}")
            seen.add(rule.name)
        return self

    @property
    def labels(self) -> list[str]:
        return list(dict.fromkeys(r.label for r in self.rules))

    def get(self, name: str) -> Rule | None:
        return next((r for r in self.rules if r.name == name), None)

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude={"source"})

    def to_yaml(self) -> str:
        """YAML that `parse_rules` reads back to an equal RuleSet."""
        return yaml.safe_dump(self.to_dict(), sort_keys=False, allow_unicode=True, width=100)


def _error_location(data: Any, loc: tuple[Any, ...]) -> str:
    if len(loc) >= 2 and loc[0] == "rules" and isinstance(loc[1], int):
        index = loc[1]
        name = None
        if isinstance(data, dict) and isinstance(data.get("rules"), list):
            entry = data["rules"][index] if index < len(data["rules"]) else None
            name = entry.get("name") if isinstance(entry, dict) else None
        where = f"rule {name!r} (#{index + 1})" if name else f"rule #{index + 1}"
        rest = ".".join(str(p) for p in loc[2:])
        return f"{where}, field {rest!r}" if rest else where
    return f"field {'.'.join(str(p) for p in loc)!r}" if loc else "top level"


def parse_rules(text: str, source: str = "<rules>") -> RuleSet:
    """A RuleSet from YAML text; `RulesError` names `source`, the rule and the field on error."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise RulesError(f"{source}: invalid YAML{where}: {problem}") from None
    if data is None:
        data = {}
    if isinstance(data, list):
        data = {"rules": data}
    if not isinstance(data, dict):
        raise RulesError(f"{source}: expected a mapping with a 'rules' list, "
                         f"got {type(data).__name__}")
    try:
        rule_set = RuleSet.model_validate({**data, "source": source})
    except ValidationError as exc:
        first = exc.errors()[0]
        message = str(first["msg"]).removeprefix("Value error, ")
        raise RulesError(f"{source}: {_error_location(data, tuple(first['loc']))}: "
                         f"{message}") from None
    if not rule_set.rules:
        raise RulesError(f"{source}: no rules: add at least one under 'rules:'")
    return rule_set


DEFAULT_RULES_RESOURCE = "default_rules.yaml"


def default_rules_text() -> str:
    return resources.files("chronicon.agent").joinpath(DEFAULT_RULES_RESOURCE).read_text("utf-8")


_loaded: dict[Path, tuple[float, RuleSet]] = {}


def load_rules(path: Path | None = None) -> RuleSet:
    """Rules from `path`, or the packaged defaults when None. A file is parsed again only when
    its modification time changes, so callers may load on every decision."""
    if path is None:
        cached = _loaded.get(Path("<default>"))
        if cached is None:
            rule_set = parse_rules(default_rules_text(), source="default_rules.yaml")
            _loaded[Path("<default>")] = (0.0, rule_set)
            return rule_set
        return cached[1]
    path = Path(path).expanduser()
    try:
        mtime = path.stat().st_mtime
        cached = _loaded.get(path)
        if cached is not None and cached[0] == mtime:
            return cached[1]
        text = path.read_text("utf-8")
    except FileNotFoundError:
        raise RulesError(f"rules file not found: {path}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise RulesError(f"cannot read rules file {path}: {exc}") from None
    rule_set = parse_rules(text, source=str(path))
    _loaded[path] = (mtime, rule_set)
    return rule_set


# ---- where the rules in force live (shared by the CLI and the web) -------------------------------


def rules_path(settings: Settings) -> Path:
    """The rules file: `CHRONICON_RULES` when set, else `<data dir>/rules.yaml` (written the first
    time someone saves rules, from the web page or `chronicon rules save`)."""
    return settings.rules_path or settings.data_dir / "rules.yaml"


def load_current_rules(settings: Settings) -> RuleSet:
    """The RuleSet in force: the rules file if it exists, else the built-in rules."""
    path = rules_path(settings)
    return load_rules(path if path.exists() else None)


def current_rules_text(settings: Settings) -> tuple[str, str]:
    """(YAML text, where it comes from): the file's text, or the built-in rules as YAML."""
    path = rules_path(settings)
    if path.exists():
        try:
            return path.read_text(encoding="utf-8"), str(path)
        except (OSError, UnicodeDecodeError) as exc:
            raise RulesError(f"cannot read rules file {path}: {exc}") from None
    return default_rules_text(), "built-in"


def save_rules_text(settings: Settings, text: str) -> RuleSet:
    """Validate `text` (raises RulesError naming the rule and field), then write it atomically
    to `rules_path(settings)`; returns the rules now in force."""
    path = rules_path(settings)
    rules = parse_rules(text, str(path))
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".yaml.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)
    return rules

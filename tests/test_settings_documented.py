"""Every setting is documented: a line in .env.example and a row in the README's
Configuration table, under its environment name (as datasette's test_settings_are_documented)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from chronicon.config import Settings

ROOT = Path(__file__).resolve().parents[1]


def env_names(field: str) -> list[str]:
    """The environment names of a field: its upper-case aliases (CHRONICON_..., SMTP_..., ...)."""
    alias = Settings.model_fields[field].validation_alias
    choices = getattr(alias, "choices", [alias] if isinstance(alias, str) else [])
    return [c for c in choices if isinstance(c, str) and c.isupper()]


def configuration_table() -> str:
    readme = (ROOT / "README.md").read_text()
    start = readme.index("## Configuration")
    end = readme.find("\n## ", start + 1)
    return readme[start:end if end != -1 else None]


@pytest.mark.parametrize("field", sorted(Settings.model_fields))
def test_setting_is_documented(field: str) -> None:
    names = env_names(field)
    assert names, f"Settings.{field} has no environment name (validation_alias)"
    example = (ROOT / ".env.example").read_text()
    assert any(re.search(rf"^#?\s*{name}=", example, re.M) for name in names), \
        f"{names[0]} is missing from .env.example"
    table = configuration_table()
    assert any(f"`{name}`" in table for name in names), \
        f"{names[0]} is missing from the README's Configuration table"

"""Shared fixtures: isolated settings and data directory per test."""

from __future__ import annotations

from pathlib import Path

import pytest

from chronicon.config import Settings


@pytest.fixture(autouse=True)
def _isolated_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No test reads the developer's .env or writes to their data directory, or goes online."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CHRONICON_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")
    for name in ("SMTP_HOST", "SMTP_PORT", "SMTP_USER", "SMTP_PASSWORD", "SMTP_TO", "SMTP_FROM",
                 "CHRONICON_API_TOKEN", "CHRONICON_MODEL", "CHRONICON_RESULTS_DIR", "WEBHOOK_URL"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "data")


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random-weight SmolVLM saved to disk once per session; pass it as `model=str(dir)`."""
    from support.tiny_model import build_tiny_smolvlm

    return build_tiny_smolvlm(tmp_path_factory.mktemp("tiny-smolvlm"))

"""Settings, errors and the migration runner: the pieces every other module stands on."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from chronicon import __version__
from chronicon.cli import app
from chronicon.config import Settings
from chronicon.errors import EXIT_BAD_INPUT, EXIT_MODEL_UNAVAILABLE, AudioOnly, ModelUnavailable
from chronicon.store import Store


def test_settings_read_environment_and_mask_secrets(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setenv("SMTP_PASSWORD", "hunter2")
    monkeypatch.setenv("SMTP_TO", "a@example.org, b@example.org")
    monkeypatch.setenv("MAX_UPLOAD_MB", "5")
    s = Settings()
    assert s.smtp_password.get_secret_value() == "hunter2"
    assert s.smtp_recipients == ["a@example.org", "b@example.org"]
    assert s.max_upload_bytes == 5 * 1024 * 1024
    masked = s.masked()
    assert masked["smtp_password"] == "***"
    assert "hunter2" not in repr(s) and "hunter2" not in str(masked)
    assert s.results_dir == tmp_path / "data" / "results"


def test_settings_read_dotenv_file(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("CHRONICON_MODEL=500m\nSMTP_PORT=465\n")
    s = Settings()
    assert (s.model, s.smtp_port) == ("500m", 465)


def test_error_types_carry_exit_codes_and_statuses() -> None:
    assert AudioOnly("x").exit_code == EXIT_BAD_INPUT
    assert ModelUnavailable("x").exit_code == EXIT_MODEL_UNAVAILABLE
    assert ModelUnavailable("x").http_status == 503


def test_store_migrates_once(tmp_path: Path) -> None:
    store = Store(tmp_path / "db.sqlite")
    assert store.migrate() == []  # already applied on open
    tables = {r["name"] for r in store.query("SELECT name FROM sqlite_master WHERE type='table'")}
    assert "analyses" in tables
    store.close()
    again = Store(tmp_path / "db.sqlite")
    assert again.migrate() == []


def test_cli_version() -> None:
    result = CliRunner().invoke(app, ["--version"])
    assert result.exit_code == 0
    assert __version__ in result.stdout

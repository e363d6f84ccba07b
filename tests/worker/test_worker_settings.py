"""The queue settings, the missing-extra error, and the internal API's token, in-process."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError
from typer.testing import CliRunner

from chronicon.cli import app as cli
from chronicon.config import Settings
from chronicon.errors import QueueUnavailable
from chronicon.web import create_app


def test_queue_is_sqlite_or_a_redis_url(tmp_path: Path) -> None:
    assert Settings(data_dir=tmp_path).queue_kind == "sqlite"
    settings = Settings(data_dir=tmp_path, queue="redis://:s3cret@10.0.0.1:6379/0")
    assert settings.queue_kind == "redis"
    assert settings.masked()["queue"] == "redis://***@10.0.0.1:6379/0"
    with pytest.raises(ValidationError, match="redis://"):
        Settings(data_dir=tmp_path, queue="amqp://rabbit")


def test_redis_queue_without_the_extra_names_the_pip_command(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "dramatiq", None)  # import dramatiq → ImportError
    settings = Settings(data_dir=tmp_path, queue="redis://127.0.0.1:1/0", worker_token="t")
    with pytest.raises(QueueUnavailable, match=r"pip install 'chronicon\[queue\]'"):
        create_app(settings)


def test_redis_queue_needs_a_worker_token(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, queue="redis://127.0.0.1:1/0")
    with pytest.raises(QueueUnavailable, match="CHRONICON_WORKER_TOKEN"):
        create_app(settings)


def test_worker_command_refuses_an_embedded_queue(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHRONICON_WORKER_TOKEN", "t")
    result = CliRunner().invoke(cli, ["worker", "--queue", "sqlite"])
    assert result.exit_code == 2
    assert "redis://" in result.output


def test_worker_command_without_token_says_so() -> None:
    result = CliRunner().invoke(cli, ["worker", "--queue", "redis://127.0.0.1:1/0"])
    assert result.exit_code == 2
    assert "CHRONICON_WORKER_TOKEN" in result.output


@pytest.mark.parametrize("token", [None, "right"])
def test_internal_api_needs_the_worker_token(tmp_path: Path, token: str | None) -> None:
    app = create_app(Settings(data_dir=tmp_path, worker_token=token))
    with TestClient(app) as client:
        url = "/internal/jobs/abc/claim"
        body = {"worker_id": "w1"}
        assert client.post(url, json=body).status_code == 401
        wrong = client.post(url, json=body, headers={"Authorization": "Bearer wrong"})
        assert wrong.status_code == 401 and "TOKEN" in wrong.json()["error"].upper()
        if token is not None:
            # The right token on a server that runs its jobs itself: nothing to claim.
            ok = client.post(url, json=body, headers={"Authorization": "Bearer right"})
            assert ok.status_code == 409 and "CHRONICON_QUEUE" in ok.json()["error"]
        assert "/internal" not in str(client.get("/openapi.json").json()["paths"])

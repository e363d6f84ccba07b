"""Helpers shared by the agent tests (fixtures live in conftest.py)."""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from chronicon.config import Settings

from .ports import free_port

SMTP_USER = "bot@example.org"
SMTP_PASSWORD = "correct horse battery staple"
RECIPIENTS = ["alerts@example.org", "ops@example.org"]


@dataclass(frozen=True)
class TlsFiles:
    cert: Path
    key: Path

    def server_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.cert, self.key)
        return context

    def client_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.cert))




def smtp_settings(tmp_path: Path, port: int, tls_files: TlsFiles, **extra: Any) -> Settings:
    values: dict[str, Any] = dict(
        data_dir=tmp_path / "data", smtp_host="127.0.0.1", smtp_port=port,
        smtp_user=SMTP_USER, smtp_password=SMTP_PASSWORD, smtp_to=", ".join(RECIPIENTS),
        smtp_from="Chronicon Alerts", smtp_ca_file=tls_files.cert, smtp_timeout=3,
        smtp_fallback_port=free_port(), delivery_backoff_s=0)
    values.update(extra)
    return Settings(**values)



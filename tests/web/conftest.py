"""Web fixtures: the real app on a temp data directory with the tiny model, real test videos."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from chronicon.config import Settings
from chronicon.web import create_app


@pytest.fixture
def client(web_settings: Settings) -> Iterator[TestClient]:
    """The app with its worker running (lifespan entered)."""
    with TestClient(create_app(web_settings)) as test_client:
        yield test_client


@pytest.fixture
def idle_client(web_settings: Settings) -> Iterator[TestClient]:
    """The app WITHOUT its lifespan: no worker, so submitted jobs stay queued."""
    yield TestClient(create_app(web_settings))

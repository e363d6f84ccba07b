"""schemathesis over the OpenAPI spec: no generated request makes the server fail (5xx)."""

from __future__ import annotations

import atexit
import shutil
import tempfile
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, settings

from chronicon.config import Settings
from chronicon.web import create_app

# The app is built at import (schemathesis needs it to read the spec); its data directory is a
# throwaway one. No lifespan runs, so no model is loaded: uploads are probed and queued only.
# `_env_file=None`: collection happens before the isolation fixtures, so ignore any .env here.
_DATA = Path(tempfile.mkdtemp(prefix="chronicon-schema-"))
atexit.register(shutil.rmtree, _DATA, True)
APP = create_app(Settings(_env_file=None, data_dir=_DATA, model="256m", device="cpu",
                          max_upload_mb=1, smtp_to=None, webhook_url=None, api_token=None))
schema = schemathesis.openapi.from_asgi("/openapi.json", APP)

pytestmark = pytest.mark.slow


@schema.parametrize()
@settings(max_examples=8, deadline=None, derandomize=True,
          suppress_health_check=list(HealthCheck))
def test_no_server_errors(case: schemathesis.Case) -> None:
    response = case.call()
    assert response.status_code < 500, (case.method, case.path, response.text[:500])

"""Numbers past what SQLite holds (2**63 and up) in any integer parameter of the API are a 4xx
naming the parameter, never a 500 (they were all 148 of schemathesis' 5xx)."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from chronicon.config import Settings
from chronicon.web import create_app

HUGE = [2**63, 2**63 - 1, 2**64, -(2**63) - 1]


def _integer_parameters(spec: dict) -> list[tuple[str, str, str, str]]:
    found = []
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            for parameter in operation.get("parameters", []):
                schema = parameter.get("schema", {})
                kinds = {schema.get("type")} | {s.get("type") for s in schema.get("anyOf", [])}
                if "integer" in kinds:
                    found.append((method.upper(), path, parameter["in"], parameter["name"]))
    return found


def test_every_integer_parameter_refuses_numbers_sqlite_cannot_hold(
        web_settings: Settings) -> None:
    client = TestClient(create_app(web_settings), raise_server_exceptions=False)
    parameters = _integer_parameters(client.get("/openapi.json").json())
    assert ("GET", "/api/analyses", "query", "offset") in parameters
    assert ("POST", "/api/deliveries/{delivery_id}/retry", "path", "delivery_id") in parameters
    for method, path, where, name in parameters:
        for number in HUGE:
            url = path
            for placeholder in ("{job_id}", "{analysis_id}", "{delivery_id}", "{position}",
                                "{source_id}", "{thread_id}"):
                url = url.replace(placeholder, str(number) if placeholder == f"{{{name}}}"
                                  else ("1" if "position" in placeholder or "delivery" in
                                        placeholder else "x"))
            params = {name: number} if where == "query" else None
            response = client.request(method, url, params=params, json={})
            assert response.status_code < 500, (method, url, name, number, response.text)


@pytest.mark.parametrize("url", ["/api/analyses?offset=9223372036854775808",
                                 "/api/jobs?offset=9223372036854775808",
                                 "/api/decisions?offset=9223372036854775808",
                                 "/api/deliveries?offset=18446744073709551616"])
def test_a_huge_offset_is_422_naming_it(idle_client: TestClient, url: str) -> None:
    response = idle_client.get(url)
    assert response.status_code == 422
    assert response.json()["field"] == "offset"


def test_a_huge_delivery_id_is_422(idle_client: TestClient) -> None:
    response = idle_client.post("/api/deliveries/9223372036854775808/retry")
    assert response.status_code == 422 and response.json()["field"] == "delivery_id"


def test_a_folder_name_the_os_refuses_is_422(idle_client: TestClient) -> None:
    """Found by schemathesis: a 5,000-character location made the OS raise ENAMETOOLONG."""
    response = idle_client.post("/api/sources", json={"location": "0" * 5000})
    assert response.status_code == 422, response.text
    assert response.json()["field"] == "location" and len(response.json()["error"]) < 300

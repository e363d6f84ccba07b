"""Absolute server paths never leave the server: result.json and the API name the user's file,
/api/rules and /debug show paths relative to the data directory."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient

from chronicon.config import Settings
from support.web_client import upload, wait_for_job


def test_an_uploads_result_names_the_users_file(client: TestClient, clip: Path,
                                                web_settings: Settings) -> None:
    job = upload(client, clip, filename="my holiday.mp4", frames=2).json()
    done = wait_for_job(client, job["job_id"], timeout=120)
    assert done["state"] == "done", done
    analysis = f"/api/analyses/{done['analysis_id']}"
    result = client.get(f"{analysis}/result.json").json()
    assert result["video_path"] == "my holiday.mp4"
    assert result["video"]["path"] == "my holiday.mp4"
    server_dir = str(web_settings.data_dir.resolve())
    for url in (f"{analysis}/result.json", analysis, "/api/analyses", f"/api/jobs/{job['job_id']}",
                "/api/rules", "/debug"):
        text = client.get(url).text
        assert server_dir not in text and str(web_settings.data_dir) not in text, url


def test_debug_shows_settings_paths_relative_to_the_data_dir(idle_client: TestClient,
                                                            web_settings: Settings) -> None:
    settings = idle_client.get("/debug").json()["settings"]
    assert settings["data_dir"] == "."
    assert str(web_settings.data_dir) not in idle_client.get("/debug").text


def test_error_messages_name_paths_relative_to_the_data_dir(web_settings: Settings) -> None:
    from chronicon.web import create_app
    from support.web_client import changed

    rules = web_settings.data_dir / "rules.yaml"
    rules.mkdir(parents=True)  # a folder where the rules file should be: unreadable
    client = TestClient(create_app(changed(web_settings, rules_path=rules)))
    response = client.get("/api/rules")
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert "rules.yaml" in error and str(web_settings.data_dir) not in error
    assert str(web_settings.data_dir.resolve()) not in error

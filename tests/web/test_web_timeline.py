"""A timeline in the web app: subtitles over the API, the video with Range support, and the
analysis page's player with its caption list in a real Chromium (clicking a caption seeks)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pysubs2
import pytest
from fastapi.testclient import TestClient

from chronicon.analysis import AnalysisOptions
from chronicon.config import Settings
from chronicon.sources.record import record
from chronicon.store import Store
from chronicon.timeline import TimelineOptions, describe_timeline
from chronicon.vlm.backend import create_backend
from chronicon.web import create_app
from support.browser import chromium
from support.scene_clips import write_scene_clip
from support.server_process import running_server
from support.web_client import parse_sse, upload, wait_for_job

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


def make_timeline_analysis(data_dir: Path, model_dir: Path, clip: Path,
                           chunk_s: float = 10) -> str:
    """Describe `clip` as a timeline with the tiny model and record it under `data_dir`."""
    settings = Settings(data_dir=data_dir, model=str(model_dir), device="cpu")
    backend = create_backend(settings)
    result = describe_timeline(clip, AnalysisOptions(max_tokens=6, min_tokens=3),
                               TimelineOptions(chunk_s=chunk_s), backend)
    store = Store(settings.db_path)
    try:
        return record(store, settings, result.result, extra=result.extra())
    finally:
        store.close()


@pytest.fixture(scope="module")
def minute_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_scene_clip(tmp_path_factory.mktemp("clips") / "minute.mp4", duration_s=60,
                            cuts_s=(19, 41), size=(320, 240))


@pytest.fixture
def timeline_client(tmp_path: Path, tiny_model_dir: Path,
                    minute_clip: Path) -> Iterator[tuple[TestClient, str]]:
    analysis_id = make_timeline_analysis(tmp_path / "data", tiny_model_dir, minute_clip)
    settings = Settings(data_dir=tmp_path / "data", model=str(tiny_model_dir), device="cpu")
    yield TestClient(create_app(settings)), analysis_id


def test_subtitles_parse_back_with_one_cue_per_chunk(timeline_client) -> None:
    client, analysis_id = timeline_client
    timeline = client.get(f"/api/analyses/{analysis_id}").json()["result"]["timeline"]
    assert len(timeline) == 6
    for fmt, media in (("vtt", "text/vtt"), ("srt", "application/x-subrip")):
        response = client.get(f"/api/analyses/{analysis_id}/timeline.{fmt}")
        assert response.status_code == 200 and response.headers["content-type"].startswith(media)
        cues = pysubs2.SSAFile.from_string(response.text, format_=fmt)
        assert [(c.start, c.end) for c in cues] == [
            (round(t["start"] * 1000), round(t["end"] * 1000)) for t in timeline]
    # The boundaries near the cuts at 19 s and 41 s moved onto them.
    assert [t["end"] for t in timeline][:4] == [10, 19, 30, 41]


def test_video_is_served_with_range_support(timeline_client, minute_clip: Path) -> None:
    client, analysis_id = timeline_client
    whole = client.get(f"/api/analyses/{analysis_id}/video")
    assert whole.status_code == 200 and whole.content == minute_clip.read_bytes()
    assert whole.headers["accept-ranges"] == "bytes"
    part = client.get(f"/api/analyses/{analysis_id}/video", headers={"Range": "bytes=100-199"})
    assert part.status_code == 206 and part.content == minute_clip.read_bytes()[100:200]
    assert part.headers["content-range"] == f"bytes 100-199/{minute_clip.stat().st_size}"


def test_no_timeline_and_unknown_formats_are_404(timeline_client, tmp_path: Path) -> None:
    client, analysis_id = timeline_client
    assert client.get(f"/api/analyses/{analysis_id}/timeline.ass").status_code == 404
    assert client.get("/api/analyses/nope/timeline.vtt").status_code == 404
    response = client.get("/api/analyses/nope/video")
    assert response.status_code == 404 and response.json()["type"] == "NotFound"


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_a_timeline_job_from_the_analyze_api(client: TestClient, minute_clip: Path) -> None:
    response = upload(client, minute_clip, frames=2, timeline="on", max_tokens=250,
                      min_tokens=50)
    assert response.status_code == 202, response.text
    job = wait_for_job(client, response.json()["job_id"], timeout=240)
    assert job["state"] == "done", job
    kinds = [e["event"] for e in parse_sse(client.get(
        f"/api/jobs/{job['id']}/events").text)]
    assert kinds.count("chunk") == 3 and kinds.count("thumbnail") == 4  # 2 chunks + done
    analysis = client.get(f"/api/analyses/{job['analysis_id']}").json()
    timeline = analysis["result"]["timeline"]
    assert [(t["start"], t["end"]) for t in timeline] == [(0, 30), (30, 60)]  # no cut near 30
    assert analysis["result"]["analysis"]  # the summary
    assert client.get(f"/api/analyses/{job['analysis_id']}/timeline.vtt").status_code == 200


@pytest.mark.browser
@pytest.mark.slow
@pytest.mark.timeout(1500)
def test_timeline_from_the_analyze_page_then_a_caption_click_seeks(
        tmp_path: Path, tiny_model_dir: Path) -> None:
    """The whole path in Chromium: tick Timeline on the Analyze page, upload, follow the job,
    open the analysis, click a caption: the player's currentTime moves there."""
    clip = write_scene_clip(tmp_path / "two-minutes.mp4", duration_s=120, cuts_s=(28, 65, 95),
                            size=(320, 240))
    with running_server(tmp_path / "data", str(tiny_model_dir), tmp_path / "server.log") as base, \
            chromium(("--autoplay-policy=no-user-gesture-required",)) as browser:
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(base + "/")
        page.set_input_files("#file-input", files=[{
            "name": clip.name, "mimeType": "video/mp4", "buffer": clip.read_bytes()}])
        page.fill("input[name=frames]", "2")
        page.check("input[name=timeline]")
        page.click("#submit")
        page.wait_for_url("**/jobs/*")
        page.wait_for_function("() => /Chunk \\d+ of 4|All 4 chunks/.test("
                               "document.body.textContent)", timeout=600_000)
        page.wait_for_selector("#job-state.state-done", timeout=900_000)
        page.click("#analysis-link")
        page.wait_for_url("**/history/*")
        page.wait_for_function("() => document.getElementById('player').readyState >= 1")
        assert page.evaluate("() => document.getElementById('player').duration") == \
            pytest.approx(120, abs=0.5)
        captions = page.locator("#captions button.caption")
        assert captions.count() == 4
        target = captions.nth(2)
        start = float(target.get_attribute("data-start"))
        assert start == 65  # the boundary snapped to the cut at 65 s
        target.click()
        page.wait_for_function(
            f"() => Math.abs(document.getElementById('player').currentTime - {start}) < 0.1")
        assert captions.nth(2).get_attribute("aria-current") == "true"
        # The WebVTT track is loaded and the clicked chunk's cue is active (at the boundary
        # the previous cue, whose end is this instant, may be active too).
        page.wait_for_function(f"""() => {{
            const track = document.getElementById('player').textTracks[0];
            return track && track.cues && track.cues.length === 4 && track.activeCues
                && Array.from(track.activeCues).some(c => Math.abs(c.startTime - {start})
                                                          < 0.01); }}""")
        page.evaluate("() => document.getElementById('player').play()")
        page.wait_for_function(
            f"() => document.getElementById('player').currentTime > {start + 1.5}",
            timeout=15_000)
        page.evaluate("() => document.getElementById('player').pause()")
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "timeline-player.png"), full_page=True)
        assert not errors, errors


"""Search from the History page in a real headless Chromium against the real `chronicon serve`:
type a query, see the matches highlighted, click a hit, land on the analysis (and ask it a
question) — and for a timeline caption, at its moment in the player."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image

from chronicon.config import Settings
from chronicon.search import index_analysis
from chronicon.store import Store
from chronicon.video.frames import Frame, save_frames
from support.browser import chromium
from support.media import write_video
from support.server_process import running_server

pytestmark = [pytest.mark.browser, pytest.mark.slow]

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
HOSTILE = 'A red van <img src=x onerror="window.__xss=1"> waits near the gate.'


def _record(store: Store, analysis_id: str, result: dict[str, Any], video: Path,
            frames_dir: Path) -> None:
    save_frames([Frame(i, i * 0.5, Image.new("RGB", (64, 48), (60 * i, 90, 150)))
                 for i in range(2)], frames_dir)
    store.insert_analysis(analysis_id, result, video_path=str(video),
                          video_filename=video.name, frames_dir=str(frames_dir))
    index_analysis(store, analysis_id, result, embed=False)  # the server embeds on search


@pytest.fixture
def server(tmp_path: Path, tiny_model_dir: Path) -> Iterator[tuple[str, str, str]]:
    """A server whose history holds a plain analysis and a timeline (4 s, two chunks)."""
    data = tmp_path / "data"
    clip = write_video(tmp_path / "street.mp4", n_frames=120, fps=30, size=(160, 120))
    plain, timeline = uuid.uuid4().hex, uuid.uuid4().hex
    settings = Settings(data_dir=data)
    store = Store(settings.db_path)
    try:
        _record(store, plain, {"analysis": HOSTILE, "video_path": str(clip)}, clip,
                settings.frames_dir / plain)
        _record(store, timeline, {"analysis": "A street; later a courier.", "timeline": [
            {"start": 0.0, "end": 2.0, "caption": "An empty street in the morning."},
            {"start": 2.0, "end": 4.0, "caption": "A delivery truck stops by the gate."}],
            "video_path": str(clip)}, clip, settings.frames_dir / timeline)
    finally:
        store.close()
    with running_server(data, str(tiny_model_dir), tmp_path / "server.log",
                        args=["--no-preload"]) as base:
        # The first meaning search loads the embedding model (seconds on a busy machine):
        # pay it here, not inside the browser's 30 s timeouts.
        assert httpx.get(base + "/api/search", params={"q": "warm up"},
                         timeout=180).status_code == 200
        yield base, plain, timeline


def test_search_from_history_and_open_hits(server: tuple[str, str, str]) -> None:
    base, plain, timeline = server
    ARTIFACTS.mkdir(exist_ok=True)
    with chromium() as browser:
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(base + "/history")
        page.fill("#search-q", "van near the gate")
        page.press("#search-q", "Enter")
        page.wait_for_selector("#search-results .search-hit", timeout=60_000)
        marked = page.locator(f'a[href="/history/{plain}"] mark').all_text_contents()
        assert marked == ["van", "gate"]
        assert page.evaluate("() => window.__xss") is None  # the text stayed text
        page.screenshot(path=str(ARTIFACTS / "search-results.png"), full_page=True)

        page.click(f'a[href="/history/{plain}"]')
        page.wait_for_url(f"**/history/{plain}")
        assert "waits near the gate" in page.text_content("#description")

        # Ask about it: the answer streams into the thread (the tiny model writes noise).
        page.fill("#ask-question", "Is the <b>gate</b> open?")
        page.click("#ask-submit")
        page.wait_for_selector('#thread li[data-state="answered"]', timeout=60_000)
        assert page.text_content("#thread .question") == "Is the <b>gate</b> open?"
        page.screenshot(path=str(ARTIFACTS / "ask-thread.png"), full_page=True)
        page.reload()  # stored: the thread is still there
        assert page.locator('#thread li[data-state="answered"]').count() == 1

        page.go_back()
        hit = page.locator(f'a[href="/history/{timeline}#t=2"]')
        assert "delivery truck" in hit.text_content()
        hit.click()
        page.wait_for_url(f"**/history/{timeline}#t=2")
        page.wait_for_function("() => Math.abs(document.getElementById('player').currentTime"
                               " - 2) < 0.05", timeout=20_000)
        page.wait_for_selector('#captions button.caption.current[data-start="2.0"]',
                               timeout=20_000)
        page.screenshot(path=str(ARTIFACTS / "search-timeline-hit.png"), full_page=True)
        assert not errors, errors

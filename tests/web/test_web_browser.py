"""The pages in a REAL headless Chromium (Debian's, driven by Playwright) against the real
`chronicon serve` with the tiny model: upload through the page, watch the live view, find the
analysis in History. Screenshots go to test-artifacts/ (look at them when changing the UI)."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path

import pytest

from support.browser import chromium
from support.media import write_video
from support.server_process import running_server

pytestmark = [pytest.mark.browser, pytest.mark.slow]

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
# A hostile name: if the page ever parsed it as HTML, the onerror would fire.
# (Predicates below are arrow functions: a bare expression string is eval'd, which the pages'
# Content-Security-Policy forbids, as it should.)
HOSTILE_NAME = "tram <img src=x onerror=window.__xss=1>.mp4"


@pytest.fixture
def browser() -> Iterator:
    with chromium() as instance:
        yield instance


# The tiny model writes random text: a rule that fires on any letter makes the agent decide and
# deliver (through the log channel) on every analysis, so the page has a decision to show.
ANY_TEXT_RULES = ("rules:\n  - name: anything\n    label: activity\n    regex: ['[a-z]']\n"
                  "    actions: [log]\n")


@pytest.fixture
def server(tmp_path: Path, tiny_model_dir: Path) -> Iterator[str]:
    data = tmp_path / "data"
    data.mkdir()
    (data / "rules.yaml").write_text(ANY_TEXT_RULES)
    with running_server(data, str(tiny_model_dir), tmp_path / "server.log",
                        extra_env={"MAX_UPLOAD_MB": "2"}) as base:
        yield base


def _drop(page, name: str, payload: bytes) -> None:
    """Drop a file on the drop zone the way a browser does (a DataTransfer on a drop event)."""
    page.evaluate("""([name, b64]) => {
        const bytes = Uint8Array.from(atob(b64), c => c.charCodeAt(0));
        const transfer = new DataTransfer();
        transfer.items.add(new File([bytes], name, {type: 'video/mp4'}));
        document.getElementById('dropzone').dispatchEvent(
            new DragEvent('drop', {dataTransfer: transfer, bubbles: true, cancelable: true}));
    }""", [name, base64.b64encode(payload).decode()])


def _watch_description(page) -> None:
    """Record every length the description goes through, to prove it streamed."""
    page.evaluate("""() => {
        window.__lengths = [];
        const box = document.getElementById('description');
        new MutationObserver(() => window.__lengths.push(box.textContent.length))
            .observe(box, {childList: true, characterData: true, subtree: true});
    }""")


def test_upload_live_view_and_history(browser, server: str, tmp_path: Path) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    clip = write_video(tmp_path / "clip.mp4", n_frames=60, size=(320, 240))
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))

    page.goto(server + "/")
    assert page.title().startswith("Analyze")
    page.set_input_files("#file-input", files=[{
        "name": HOSTILE_NAME, "mimeType": "video/mp4", "buffer": clip.read_bytes()}])
    assert HOSTILE_NAME in page.text_content("#file-name")
    page.fill("input[name=frames]", "4")
    page.screenshot(path=str(ARTIFACTS / "analyze.png"), full_page=True)
    page.click("#submit")

    page.wait_for_url("**/jobs/*")
    _watch_description(page)
    # Stages progress, frames appear as thumbnails with timestamps, text streams, agent decides.
    page.wait_for_selector(".stages li[data-stage=probe].done", timeout=60_000)
    page.wait_for_selector(".stages li[data-stage=sampling].done", timeout=60_000)
    page.wait_for_function(
        "() => document.querySelectorAll('#frames figure:not(.pending) img[src]').length === 4",
        timeout=60_000)
    page.wait_for_selector("#job-state.state-done", timeout=90_000)
    page.wait_for_selector("#decision:not([hidden])", timeout=10_000)

    captions = page.locator("#frames figcaption").all_text_contents()
    assert len(captions) == 4 and all(c.endswith(" s") for c in captions)
    for stage in ("upload", "probe", "sampling", "model_load", "preprocess", "generate",
                  "agent"):
        assert page.locator(f".stages li[data-stage={stage}].done").count() == 1, stage
    description = page.text_content("#description")
    assert description.strip()
    lengths = page.evaluate("() => window.__lengths")
    assert len(set(lengths)) >= 2, lengths  # it grew piece by piece, not in one go
    assert page.text_content("#decision-label") == "activity"
    assert "action: log" in page.text_content("#decision-action")
    page.wait_for_selector("#deliveries li .status-sent", timeout=20_000)  # the outbox sent it
    assert page.evaluate("() => window.__xss") is None
    assert HOSTILE_NAME in page.text_content(".filename")
    page.screenshot(path=str(ARTIFACTS / "live-view.png"), full_page=True)

    # History lists it; the detail page shows frames, text and a working JSON download.
    page.click("#analysis-link")
    page.wait_for_url("**/history/*")
    assert page.locator(".frames img").count() == 4
    assert page.locator("#deliveries .status-sent").count() == 1
    json_url = page.get_attribute("a[download]", "href")
    result = page.request.get(server + json_url).json()
    assert result["num_frames"] == 4 and result["analysis"] == description.strip()
    page.screenshot(path=str(ARTIFACTS / "analysis-detail.png"), full_page=True)
    page.goto(server + "/history")
    items = page.locator("#history .history-item")
    assert items.count() == 1
    assert HOSTILE_NAME in items.first.text_content()
    assert page.evaluate("() => window.__xss") is None
    page.screenshot(path=str(ARTIFACTS / "history.png"), full_page=True)

    # Agent and System pages load their data.
    page.goto(server + "/agent")
    page.wait_for_function("() => document.getElementById('rules-text').value.includes('rules')")
    page.wait_for_selector("#decisions-table tbody tr td:nth-child(3) .label-chip")
    page.screenshot(path=str(ARTIFACTS / "agent.png"), full_page=True)
    page.goto(server + "/system")
    page.wait_for_selector("#jobs-table .state-done")
    page.screenshot(path=str(ARTIFACTS / "system.png"), full_page=True)

    # The API docs render offline: no CDN, every asset from this server.
    outside: list[str] = []
    page.on("request", lambda r: None if r.url.startswith(server) else outside.append(r.url))
    page.goto(server + "/docs")
    page.wait_for_selector(".swagger-ui .opblock-summary-path[data-path='/api/analyze']")
    assert outside == []
    assert not dialogs and not errors, (dialogs, errors)


def test_drop_a_file_and_see_a_rules_error(browser, server: str, tmp_path: Path) -> None:
    """Drag-and-drop a (non-video) file: the server's cause is shown. Then an invalid rule."""
    page = browser.new_page(viewport={"width": 390, "height": 844})  # a phone
    page.goto(server + "/")
    _drop(page, "huge.mp4", b"\0" * (3 * 1024 * 1024))  # over the 2 MB limit
    assert "larger than the upload limit of 2 MB" in page.text_content("#form-error")
    assert page.is_disabled("#submit")
    _drop(page, "notes.mp4", b"just text, not a video\n" * 20)
    assert "notes.mp4" in page.text_content("#file-name")
    page.click("#submit")
    page.wait_for_selector("#form-error:not([hidden])")
    assert "not a video" in page.text_content("#form-error")
    page.screenshot(path=str(ARTIFACTS / "analyze-error-mobile.png"), full_page=True)

    page.goto(server + "/agent")
    page.wait_for_function("() => document.getElementById('rules-text').value.length > 0")
    page.fill("#rules-text", "rules:\n  - name: broken\n    label: x\n    unknown_field: 1\n")
    page.click("#rules-save")
    page.wait_for_selector("#rules-error:not([hidden])")
    assert "broken" in page.text_content("#rules-error")
    page.screenshot(path=str(ARTIFACTS / "agent-rules-error.png"), full_page=True)


def test_pages_log_in_once_when_the_server_wants_a_token(browser, tmp_path: Path,
                                                          tiny_model_dir: Path) -> None:
    """Every page needs the token: the browser logs in once through the form and then rides on
    an HttpOnly, SameSite=Strict cookie, the live view's EventSource included."""
    token = "browser-token-123"
    clip = write_video(tmp_path / "clip.mp4", n_frames=30)
    with running_server(tmp_path / "data", str(tiny_model_dir), tmp_path / "server.log",
                        extra_env={"CHRONICON_API_TOKEN": token}) as base:
        page = browser.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(base + "/history")
        page.wait_for_url("**/login?next=**")
        page.fill("#token", "not-the-token")
        page.click("#login")
        assert "not this server" in page.text_content("#login-error")
        page.fill("#token", token)
        page.click("#login")
        page.wait_for_url(base + "/history")

        page.goto(base + "/")
        page.set_input_files("#file-input", files=[{
            "name": "clip.mp4", "mimeType": "video/mp4", "buffer": clip.read_bytes()}])
        page.fill("input[name=frames]", "2")
        page.click("#submit")
        page.wait_for_url("**/jobs/*")
        page.wait_for_selector("#job-state.state-done", timeout=90_000)  # SSE on the cookie
        session = [c for c in page.context.cookies() if c["name"] == "chronicon_session"]
        assert len(session) == 1 and session[0]["httpOnly"] and session[0]["sameSite"] == "Strict"
        assert page.evaluate("() => document.cookie") == ""
        assert page.evaluate("() => localStorage.length") == 0
        assert token not in page.content() and token not in session[0]["value"]

        page.click("#logout")
        page.wait_for_url("**/login")
        assert page.request.get(base + "/api/analyses").status == 401
        assert not errors, errors

"""The email channel through the outbox against a real SMTP server (aiosmtpd) on loopback."""

from __future__ import annotations

import base64
import email
import email.policy
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from chronicon.agent.channels import Delivery
from chronicon.agent.channels.email import EmailChannel, build_message, routes
from chronicon.agent.outbox import Outbox
from chronicon.store import Store
from support.mail import RECIPIENTS, SMTP_USER, free_port, smtp_settings

PNG_PIXEL = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJg"
    "gg==")


def queue_email(outbox: Outbox, store: Store, analysis: str = "A train arrives.",
                frames: list[bytes] | None = None) -> int:
    """An email delivery for analysis `run-1`; `frames` are saved where its frames live (the
    payload names the analysis, the channel reads them when it sends)."""
    frames_dir = outbox.settings.frames_dir / "run-1"
    frames_dir.mkdir(parents=True, exist_ok=True)
    for position, image in enumerate(frames or []):
        (frames_dir / f"{position}.jpg").write_bytes(image)
    decision_id = store.insert_decision(
        created_at=datetime.now(timezone.utc), run_id="run-1", video_filename="clip.mp4",
        label="train", score=0.94, reason="Matched: train, railway", rule="train",
        action="send_email", analysis=analysis, matches=[])
    payload = {"decision": {"label": "train", "score": 0.94, "reason": "Matched: train, railway"},
               "labels": ["train"], "analysis": analysis, "run_id": "run-1",
               "video_filename": "clip.mp4", "created_at": "2026-01-01T00:00:00+00:00",
               "frames_id": "run-1" if frames else None}
    return outbox.enqueue(decision_id=decision_id, rule="train", channel="email",
                          dedup_key=f"k{decision_id}", payload=payload).id


def parse(raw: bytes) -> email.message.EmailMessage:
    return email.message_from_bytes(raw, policy=email.policy.default)


@pytest.mark.parametrize("mode", ["starttls", "ssl"])
def test_delivers_over_tls_with_auth(mode, smtp_server, tls_files, tmp_path, store) -> None:
    server = smtp_server(mode)
    settings = smtp_settings(tmp_path, server.port, tls_files, smtp_security=mode)
    outbox = Outbox(store, settings)
    delivery_id = queue_email(outbox, store)
    assert outbox.deliver_due() == 1
    delivery = store.get_delivery(delivery_id)
    assert (delivery.status, delivery.attempts) == ("sent", 1)
    assert server.logins == [(SMTP_USER, True)]  # logged in, and only over TLS
    (sender, recipients, _raw), = server.messages
    assert sender == SMTP_USER and recipients == RECIPIENTS
    attempt, = store.list_attempts(delivery_id)
    assert attempt.ok and f"({mode})" in attempt.detail


def test_message_escapes_html_and_carries_text_frames_and_recipients(
        smtp_server, tls_files, tmp_path, store) -> None:
    server = smtp_server("starttls")
    settings = smtp_settings(tmp_path, server.port, tls_files)
    outbox = Outbox(store, settings)
    evil = 'A train <script>alert("x")</script> & <b>bold</b> passes.'
    queue_email(outbox, store, analysis=evil, frames=[PNG_PIXEL, PNG_PIXEL])
    outbox.deliver_due()
    message = parse(server.messages[0][2])
    assert message["To"] == ", ".join(RECIPIENTS)
    assert message["From"] == f"Chronicon Alerts <{SMTP_USER}>"
    assert message["Subject"] == "[Chronicon] train detected in clip.mp4"
    html = message.get_body(("html",)).get_content()
    text = message.get_body(("plain",)).get_content()
    assert "<script>" not in html and "&lt;script&gt;" in html and "&lt;b&gt;bold" in html
    assert evil in text  # the plain part carries the description as written
    for part in (html, text):
        assert "Matched: train, railway" in part and "clip.mp4" in part and "run-1" in part
        assert "0.94" in part
    images = [p for p in message.walk() if p.get_content_maintype() == "image"]
    assert len(images) == 2 and images[0].get_content() == PNG_PIXEL
    assert f"cid:{images[0]['Content-ID'][1:-1]}" in html


def test_plain_server_never_gets_the_password(smtp_server, tls_files, tmp_path, store) -> None:
    server = smtp_server("plain")  # advertises AUTH without TLS
    settings = smtp_settings(tmp_path, server.port, tls_files)
    outbox = Outbox(store, settings)
    delivery_id = queue_email(outbox, store)
    outbox.deliver_due()
    delivery = store.get_delivery(delivery_id)
    assert delivery.status == "failed"  # not retried: waiting cannot make it safe
    assert "never sent unencrypted" in delivery.last_error
    assert server.logins == [] and server.messages == []


def test_falls_back_to_the_other_port_and_mode(smtp_server, tls_files, tmp_path, store) -> None:
    ssl_server = smtp_server("ssl")
    # 587-style STARTTLS port refuses; the fallback is implicit TLS, as 465 would be.
    settings = smtp_settings(tmp_path, free_port(), tls_files, smtp_fallback_port=ssl_server.port)
    assert [r.mode for r in routes(settings)] == ["starttls", "ssl"]
    outbox = Outbox(store, settings)
    delivery_id = queue_email(outbox, store)
    outbox.deliver_due()
    assert store.get_delivery(delivery_id).status == "sent"
    assert f"port {ssl_server.port} (ssl)" in store.list_attempts(delivery_id)[0].detail
    assert len(ssl_server.messages) == 1


def test_falls_back_from_implicit_tls_to_starttls(smtp_server, tls_files, tmp_path,
                                                  store) -> None:
    starttls_server = smtp_server("starttls")
    settings = smtp_settings(tmp_path, free_port(), tls_files, smtp_security="ssl",
                             smtp_fallback_port=starttls_server.port)
    outbox = Outbox(store, settings)
    delivery_id = queue_email(outbox, store)
    outbox.deliver_due()
    assert store.get_delivery(delivery_id).status == "sent"


def test_default_fallback_ports() -> None:
    from chronicon.config import Settings

    assert [(r.port, r.mode) for r in routes(Settings(smtp_port=587))] == [
        (587, "starttls"), (465, "ssl")]
    assert [(r.port, r.mode) for r in routes(Settings(smtp_port=465))] == [
        (465, "ssl"), (587, "starttls")]


def test_wrong_password_is_a_recorded_failure(smtp_server, tls_files, tmp_path, store) -> None:
    server = smtp_server("starttls")
    settings = smtp_settings(tmp_path, server.port, tls_files, smtp_password="wrong")
    outbox = Outbox(store, settings)
    delivery_id = queue_email(outbox, store)
    assert outbox.deliver_due() == 1
    delivery = store.get_delivery(delivery_id)
    assert delivery.status == "failed" and "authentication failed" in delivery.last_error
    assert "wrong" not in delivery.last_error  # the password never lands in the record
    attempt, = store.list_attempts(delivery_id)
    assert not attempt.ok and attempt.attempt == 1
    assert server.messages == []


def test_server_down_then_up_delivers_once(smtp_server, tls_files, tmp_path, store) -> None:
    port = free_port()
    settings = smtp_settings(tmp_path, port, tls_files, delivery_backoff_s=60)
    outbox = Outbox(store, settings)
    delivery_id = queue_email(outbox, store)
    outbox.deliver_due()
    delivery = store.get_delivery(delivery_id)
    assert delivery.status == "retrying" and "connection refused" in delivery.last_error
    first_retry = datetime.fromisoformat(delivery.next_attempt_at)
    assert outbox.deliver_due() == 0  # not due yet: backoff

    server = smtp_server("starttls", port=port)
    later = datetime.now(timezone.utc) + timedelta(seconds=61)
    assert first_retry <= later
    assert outbox.deliver_due(now=later) == 1
    assert store.get_delivery(delivery_id).status == "sent"
    assert outbox.deliver_due(now=later + timedelta(hours=1)) == 0
    assert len(server.messages) == 1
    assert [a.ok for a in store.list_attempts(delivery_id)] == [False, True]


def test_silent_server_times_out(silent_server, tls_files, tmp_path, store) -> None:
    settings = smtp_settings(tmp_path, silent_server, tls_files, smtp_timeout=0.5)
    outbox = Outbox(store, settings)
    delivery_id = queue_email(outbox, store)
    outbox.deliver_due()
    delivery = store.get_delivery(delivery_id)
    assert delivery.status == "retrying"
    assert "timed out after 0.5s" in delivery.last_error


def test_caller_supplied_ssl_context(smtp_server, tls_files, tmp_path, store) -> None:
    server = smtp_server("ssl")
    settings = smtp_settings(tmp_path, server.port, tls_files, smtp_ca_file=None,
                             smtp_security="ssl")
    # Without the CA the certificate is refused; with the caller's context it is trusted.
    untrusted = Outbox(store, settings)
    failing = queue_email(untrusted, store)
    untrusted.deliver_due()
    assert "TLS failed" in store.get_delivery(failing).last_error
    trusted = Outbox(store, settings, channels={
        "email": EmailChannel(settings, ssl_context=tls_files.client_context())})
    delivery_id = queue_email(trusted, store)
    trusted.deliver_due()
    assert store.get_delivery(delivery_id).status == "sent"


def a_delivery(**payload: object) -> Delivery:
    """What the outbox hands a channel: a value, not its store row."""
    return Delivery(id=7, decision_id=3, rule="train", channel="email", attempt=1, payload={
        "decision": {"label": "train", "score": 0.94, "reason": "Matched: train"},
        "analysis": "A train arrives.", "video_filename": "clip.mp4", **payload})


def test_display_name_and_full_from_address(tmp_path: Path, tls_files) -> None:
    settings = smtp_settings(tmp_path, 2525, tls_files, smtp_from="Ops <ops@example.org>")
    assert build_message(a_delivery(), settings)["From"] == "Ops <ops@example.org>"


def test_a_timeline_moment_is_in_the_subject_and_body(tmp_path: Path, tls_files) -> None:
    message = build_message(a_delivery(moment="03:20-03:50"), smtp_settings(tmp_path, 2525,
                                                                           tls_files))
    assert message["Subject"] == "[Chronicon] train detected in clip.mp4 at 03:20-03:50"
    assert "At:     03:20-03:50" in message.get_body(("plain",)).get_content()


def test_a_line_break_in_the_file_name_stays_out_of_the_headers(tmp_path: Path, tls_files,
                                                                store) -> None:
    settings = smtp_settings(tmp_path, 2525, tls_files)
    delivery = a_delivery(video_filename="clip.mp4\r\nBcc: victim@example.org")
    message = build_message(delivery, settings)
    assert message["Bcc"] is None
    assert message["Subject"] == ("[Chronicon] train detected in clip.mp4 Bcc: "
                                  "victim@example.org")

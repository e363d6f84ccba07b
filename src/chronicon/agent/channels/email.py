"""The email channel: multipart HTML + plain text over SMTP with STARTTLS or implicit TLS.

Connection policy:
- mode from `SMTP_SECURITY`: `ssl` (implicit TLS), `starttls`, or `auto` (port 465 means
  implicit TLS, any other port STARTTLS);
- when the first port cannot be reached or spoken to (refused, timed out, TLS failure), the
  other mode is tried on `SMTP_FALLBACK_PORT` (default: 465 for 587 and the other way round);
  a rejected password or recipient is not a reason to try another port;
- a password is only ever sent over TLS: a server on a plain connection that offers no
  STARTTLS gets no login (and, when a password is configured, no mail);
- every socket operation has `SMTP_TIMEOUT`.
The HTML comes from a Jinja template with autoescaping: model text is untrusted.
"""

from __future__ import annotations

import smtplib
import ssl
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formataddr, make_msgid
from pathlib import Path
from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape

from ...config import Settings
from ...errors import DeliveryError
from . import Channel, Delivery, DeliveryResult

_templates = Environment(loader=PackageLoader("chronicon.agent", "templates"),
                         autoescape=select_autoescape(["html"]), keep_trailing_newline=True)


def _one_line(text: str) -> str:
    # A file name is user input: a line break in it must not become a header break.
    return " ".join(text.split())[:200]


def _image_subtype(data: bytes) -> str:
    if data.startswith(b"\x89PNG"):
        return "png"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    return "jpeg"


def frame_images(settings: Settings, frames_id: str | None,
                 positions: list[int] | None = None) -> list[bytes]:
    """The saved frames of analysis `frames_id` (`<frames dir>/<id>/<position>.jpg`), in order,
    only `positions` when given; none when the payload names none or they are gone (the
    message then goes without)."""
    if not frames_id or Path(frames_id).name != frames_id:  # an id, never a path
        return []
    directory = settings.frames_dir / frames_id
    if not directory.is_dir():
        return []
    if positions is None:
        positions = sorted(int(p.stem) for p in directory.glob("*.jpg") if p.stem.isdigit())
    paths = [directory / f"{int(n)}.jpg" for n in positions]
    return [p.read_bytes() for p in paths if p.is_file()]


def build_message(delivery: Delivery, settings: Settings) -> EmailMessage:
    """The message for `delivery`: plain text, HTML alternative, frames inline (cid:) read
    from the analysis' saved frames when the message is built."""
    payload = delivery.payload
    decision = payload.get("decision", {})
    frames = frame_images(settings, payload.get("frames_id"), payload.get("frame_positions"))
    video = payload.get("video_filename")
    at = payload.get("moment")
    subject = _one_line(f"[Chronicon] {decision.get('label')} detected"
                        + (f" in {video}" if video else "") + (f" at {at}" if at else ""))
    cids = [make_msgid(domain="chronicon.local") for _ in frames]
    context: dict[str, Any] = {
        "subject": subject, "decision": decision, "rule": delivery.rule,
        "labels": payload.get("labels") or [decision.get("label")],
        "analysis": payload.get("analysis", ""), "video_filename": video,
        "run_id": payload.get("run_id"), "created_at": payload.get("created_at"),
        "moment": payload.get("moment"),
        "delivery_id": delivery.id, "attempt": delivery.attempt,
        "frame_cids": [c[1:-1] for c in cids], "frame_count": len(frames),
    }
    message = EmailMessage()
    message["Subject"] = subject
    message["From"] = sender_header(settings)
    message["To"] = ", ".join(settings.smtp_recipients)
    message["Message-ID"] = make_msgid(domain="chronicon.local")
    message["X-Chronicon-Delivery"] = str(delivery.id)
    message.set_content(_templates.get_template("email.txt").render(context))
    message.add_alternative(_templates.get_template("email.html").render(context), subtype="html")
    html_part = message.get_payload()[1]
    for data, cid in zip(frames, cids, strict=True):
        html_part.add_related(data, maintype="image", subtype=_image_subtype(data), cid=cid)
    return message


def sender_header(settings: Settings) -> str:
    """`SMTP_FROM` as given when it holds an address, else it is the display name of SMTP_USER."""
    user = settings.smtp_user or ""
    if settings.smtp_from and "@" in settings.smtp_from:
        return settings.smtp_from
    return formataddr((settings.smtp_from or "Chronicon", user))


@dataclass(frozen=True)
class _Route:
    port: int
    mode: str  # "ssl" or "starttls"


def routes(settings: Settings) -> list[_Route]:
    """The primary route and, if different, the fallback in the other mode."""
    port = settings.smtp_port
    if settings.smtp_security == "auto":
        mode = "ssl" if port == 465 else "starttls"
    else:
        mode = settings.smtp_security
    other = "starttls" if mode == "ssl" else "ssl"
    fallback = settings.smtp_fallback_port or (587 if port == 465 else 465)
    found = [_Route(port, mode)]
    if fallback != port:
        found.append(_Route(fallback, other))
    return found


class _Unreachable(Exception):
    """The route failed before the server judged our credentials or message: try another."""


class EmailChannel(Channel):
    name = "email"
    action = "send_email"
    priority = 10

    def __init__(self, settings: Settings, ssl_context: ssl.SSLContext | None = None):
        super().__init__(settings)
        self._ssl_context = ssl_context

    @classmethod
    def configured(cls, settings: Settings) -> bool:
        return settings.email_configured

    def ssl_context(self) -> ssl.SSLContext:
        if self._ssl_context is None:
            cafile = str(self.settings.smtp_ca_file) if self.settings.smtp_ca_file else None
            self._ssl_context = ssl.create_default_context(cafile=cafile)
        return self._ssl_context

    def send(self, delivery: Delivery) -> DeliveryResult:
        settings = self.settings
        if not settings.email_configured:
            raise DeliveryError("email is not configured (SMTP_USER and SMTP_TO are needed)",
                                retryable=False)
        message = build_message(delivery, settings)
        problems: list[str] = []
        retryable = True
        for route in routes(settings):
            try:
                refused = self._send_via(route, message)
            except _Unreachable as exc:
                problems.append(f"{settings.smtp_host}:{route.port} ({route.mode}): {exc}")
                retryable = retryable and not isinstance(exc.__cause__, _Final)
                continue
            if refused:
                return DeliveryResult(True, detail=f"sent via port {route.port} ({route.mode});"
                                      f" refused: {', '.join(sorted(refused))}")
            return DeliveryResult(True, detail=f"sent via port {route.port} ({route.mode}) to "
                                  f"{len(settings.smtp_recipients)} recipient(s)")
        return DeliveryResult(False, error="; ".join(problems), retryable=retryable)

    def _send_via(self, route: _Route, message: EmailMessage) -> dict[str, Any]:
        """Send on one route. Connection-level failures raise `_Unreachable`; a verdict of the
        server on credentials or message raises `DeliveryError`."""
        settings = self.settings
        password = settings.smtp_password.get_secret_value() if settings.smtp_password else None
        try:
            client = self._connect(route)
        except (OSError, smtplib.SMTPException) as exc:
            raise _Unreachable(_describe(exc, settings.smtp_timeout)) from exc
        with client:
            try:
                client.ehlo()
                if route.mode == "starttls":
                    if client.has_extn("starttls"):
                        client.starttls(context=self.ssl_context())
                        client.ehlo()
                    elif password:
                        raise _Unreachable("the server offers no STARTTLS; the password is never "
                                           "sent unencrypted") from _Final()
                if password:
                    client.login(settings.smtp_user or "", password)
            except smtplib.SMTPAuthenticationError as exc:
                raise DeliveryError(f"authentication failed for {settings.smtp_user}: "
                                    f"{exc.smtp_code} {_text(exc.smtp_error)}",
                                    retryable=False) from None
            except smtplib.SMTPNotSupportedError as exc:
                raise DeliveryError(f"the server does not support login: {exc}",
                                    retryable=False) from None
            except (OSError, smtplib.SMTPException) as exc:
                raise _Unreachable(_describe(exc, settings.smtp_timeout)) from exc
            try:
                return client.send_message(message, from_addr=settings.smtp_user,
                                           to_addrs=settings.smtp_recipients)
            except smtplib.SMTPRecipientsRefused as exc:
                raise DeliveryError(f"every recipient was refused: "
                                    f"{', '.join(sorted(exc.recipients))}",
                                    retryable=False) from None
            except (smtplib.SMTPSenderRefused, smtplib.SMTPDataError) as exc:
                # 4xx is a temporary refusal (greylisting, rate limits); 5xx is final.
                raise DeliveryError(f"the server refused the message: {exc.smtp_code} "
                                    f"{_text(exc.smtp_error)}",
                                    retryable=400 <= exc.smtp_code < 500) from None
            except (OSError, smtplib.SMTPException) as exc:
                raise DeliveryError(f"sending failed: {_describe(exc, settings.smtp_timeout)}"
                                    ) from None

    def _connect(self, route: _Route) -> smtplib.SMTP:
        timeout = self.settings.smtp_timeout
        if route.mode == "ssl":
            return smtplib.SMTP_SSL(self.settings.smtp_host, route.port, timeout=timeout,
                                    context=self.ssl_context())
        return smtplib.SMTP(self.settings.smtp_host, route.port, timeout=timeout)


class _Final(Exception):
    """Marks a route failure that retrying later cannot fix (as the cause of `_Unreachable`)."""


def _text(value: bytes | str) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def _describe(exc: BaseException, timeout: float) -> str:
    if isinstance(exc, TimeoutError) or "timed out" in str(exc).lower():
        return f"timed out after {timeout:g}s"
    if isinstance(exc, smtplib.SMTPServerDisconnected):
        return f"the server closed the connection ({exc})" if str(exc) else \
            "the server closed the connection"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, ssl.SSLError):
        return f"TLS failed: {exc.reason or exc}"
    return f"{type(exc).__name__}: {exc}"

"""Hiding credentials that ride inside URLs.

Any URL setting (WEBHOOK_URL, CHRONICON_REMOTE_URL, ...) may carry a credential:
`https://user:password@host/hook?key=...`. `mask_url` is the one function that hides them; it is
used wherever a URL is shown (/debug, /health, error messages) and, through `UrlMaskingFilter`,
on log records (httpx logs every request's full URL at INFO).
"""

from __future__ import annotations

import logging
import re
from urllib.parse import SplitResult, parse_qsl, urlencode, urlsplit

URL_IN_TEXT = re.compile(r"\b[a-zA-Z][a-zA-Z0-9+.-]*://[^\s'\"<>]+")
# Loggers of the HTTP client the channels and the remote backend use.
HTTP_CLIENT_LOGGERS = ("httpx", "httpcore")


def mask_url(url: str) -> str:
    """`url` safe to show or log: user and password become '***', so does every query value;
    the fragment is dropped. A URL that does not parse is replaced whole."""
    try:
        parts = urlsplit(url)
        port = parts.port  # raises ValueError on a malformed port
    except ValueError:
        return "***"
    netloc = parts.hostname or ""
    if ":" in netloc:  # an IPv6 literal
        netloc = f"[{netloc}]"
    if port is not None:
        netloc = f"{netloc}:{port}"
    if parts.username is not None or parts.password is not None:
        netloc = f"***@{netloc}"
    query = urlencode([(key, "***") for key, _ in parse_qsl(parts.query, keep_blank_values=True)],
                      safe="*")
    return SplitResult(parts.scheme, netloc, parts.path, query, "").geturl()


def mask_urls(text: str) -> str:
    """`text` with every URL in it passed through `mask_url`."""
    return URL_IN_TEXT.sub(lambda match: mask_url(match.group()), text)


class UrlMaskingFilter(logging.Filter):
    """Rewrites a record's message with `mask_urls` (never drops a record)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        masked = mask_urls(message)
        if masked != message:
            record.msg, record.args = masked, None
        return True


def install_log_masking() -> None:
    """Mask URLs in what the HTTP client logs and in everything the root handlers write.
    Idempotent; called by the app factory and the CLI after logging is configured."""
    targets: list[logging.Filterer] = [logging.getLogger(n) for n in HTTP_CLIENT_LOGGERS]
    targets += logging.getLogger().handlers
    for target in targets:
        if not any(isinstance(f, UrlMaskingFilter) for f in target.filters):
            target.addFilter(UrlMaskingFilter())

"""Channels deliver one notification; the outbox owns retries, backoff, cooldown and dedup.

A channel implements one method, `send(delivery) -> DeliveryResult`. It reports a failure by
returning `DeliveryResult(ok=False, ...)` or by raising `DeliveryError` (`retryable=False` when
trying again cannot help, e.g. a rejected password); any other exception counts as a retryable
failure. A channel never raises for a success and never writes to the store.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from ...config import Settings
from ...store.agent_records import DeliveryRecord as Delivery


@dataclass(frozen=True)
class DeliveryResult:
    ok: bool
    detail: str = ""
    error: str | None = None
    retryable: bool = True


@runtime_checkable
class Channel(Protocol):
    def send(self, delivery: Delivery) -> DeliveryResult:
        """Deliver `delivery.payload` once."""
        ...


CHANNEL_NAMES = ("email", "webhook", "log")


def channel_configured(name: str, settings: Settings) -> bool:
    """Whether `name` can deliver with these settings (email needs SMTP, webhook a URL)."""
    if name == "email":
        return settings.email_configured
    if name == "webhook":
        return bool(settings.webhook_url)
    return name == "log"


def default_channels(settings: Settings) -> dict[str, Channel]:
    """One instance of every built-in channel, built from `settings`."""
    from .email import EmailChannel
    from .log import LogChannel
    from .webhook import WebhookChannel

    return {"email": EmailChannel(settings), "webhook": WebhookChannel(settings),
            "log": LogChannel()}


__all__ = ["CHANNEL_NAMES", "Channel", "Delivery", "DeliveryResult", "channel_configured",
           "default_channels"]

"""Channels deliver one notification; the outbox owns retries, backoff, cooldown and dedup.

A channel is one file in this package holding one `Channel` subclass that declares its `name`
and implements one method, `send(delivery) -> DeliveryResult`. Optional: `configured(settings)`
(default True; email needs SMTP settings, webhook a URL), `action` (the long-standing single
`action` answer, default the name) and `priority` (lower wins that answer). `CHANNELS` is built
from the files found here, so adding a channel is adding one file.

A channel reports a failure by returning `DeliveryResult(ok=False, ...)` or by raising
`DeliveryError` (`retryable=False` when trying again cannot help, e.g. a rejected password); any
other exception counts as a retryable failure. A channel never raises for a success and never
writes to the store. It receives a `Delivery` value, not the outbox's row.
"""

from __future__ import annotations

import importlib
import pkgutil
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, ClassVar

from ...config import Settings


@dataclass(frozen=True)
class Delivery:
    """One notification of one decision to one channel: `attempt` is 1 on the first try."""

    id: int
    decision_id: int
    rule: str
    channel: str
    attempt: int
    payload: dict[str, Any] = field(repr=False)


@dataclass(frozen=True)
class DeliveryResult:
    ok: bool
    detail: str = ""
    error: str | None = None
    retryable: bool = True


class Channel(ABC):
    name: ClassVar[str]
    action: ClassVar[str] = ""
    priority: ClassVar[int] = 100

    def __init__(self, settings: Settings):
        self.settings = settings

    @classmethod
    def configured(cls, settings: Settings) -> bool:
        """Whether this channel can deliver with these settings."""
        return True

    @classmethod
    def action_name(cls) -> str:
        return cls.action or cls.name

    @abstractmethod
    def send(self, delivery: Delivery) -> DeliveryResult:
        """Deliver `delivery.payload` once."""


# A rule's action whose channel is not configured is delivered here instead.
FALLBACK_CHANNEL = "log"


def _discover() -> dict[str, type[Channel]]:
    found: list[type[Channel]] = []
    for module in pkgutil.iter_modules(__path__):
        loaded = importlib.import_module(f"{__name__}.{module.name}")
        found += [value for value in vars(loaded).values()
                  if isinstance(value, type) and issubclass(value, Channel)
                  and value is not Channel and value.__module__ == loaded.__name__
                  and getattr(value, "name", None)]
    return {c.name: c for c in sorted(found, key=lambda c: (c.priority, c.name))}


CHANNELS: dict[str, type[Channel]] = _discover()
"""Every channel by name, highest priority first."""


def channel_configured(name: str, settings: Settings) -> bool:
    """Whether channel `name` can deliver with these settings."""
    channel = CHANNELS.get(name)
    return channel is not None and channel.configured(settings)


def default_channels(settings: Settings) -> dict[str, Channel]:
    """One instance of every channel, built from `settings`."""
    return {name: channel(settings) for name, channel in CHANNELS.items()}


def action_name(channels: list[str]) -> str:
    """The long-standing single `action`: the highest-priority channel's action, else "none"."""
    for name, channel in CHANNELS.items():
        if name in channels:
            return channel.action_name()
    return "none"


__all__ = ["CHANNELS", "FALLBACK_CHANNEL", "Channel", "Delivery", "DeliveryResult",
           "action_name", "channel_configured", "default_channels"]

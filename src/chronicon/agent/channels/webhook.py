"""The webhook channel: a signed JSON POST.

Body: the delivery payload (without frames) plus `delivery_id` and `attempt`, as compact JSON.
Headers: `X-Chronicon-Signature: sha256=<hex HMAC-SHA256 of the exact body bytes>` when
`WEBHOOK_SECRET` is set, `Authorization: Bearer <WEBHOOK_TOKEN>` when set, and
`X-Chronicon-Delivery: <id>` so a receiver can drop repeats of the same delivery.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

import httpx

from ...config import Settings
from ...errors import DeliveryError
from ...redact import mask_urls
from . import Channel, Delivery, DeliveryResult

SIGNATURE_HEADER = "X-Chronicon-Signature"


def sign(body: bytes, secret: str) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def webhook_body(delivery: Delivery) -> bytes:
    payload: dict[str, Any] = {k: v for k, v in delivery.payload.items() if k != "frames"}
    payload["delivery_id"] = delivery.id
    payload["attempt"] = delivery.attempt
    return json.dumps(payload, separators=(",", ":"), sort_keys=True).encode()


class WebhookChannel(Channel):
    name = "webhook"
    priority = 20

    def __init__(self, settings: Settings, client: httpx.Client | None = None):
        super().__init__(settings)
        self._client = client

    @classmethod
    def configured(cls, settings: Settings) -> bool:
        return bool(settings.webhook_url)

    def send(self, delivery: Delivery) -> DeliveryResult:
        url = self.settings.webhook_url
        if not url:
            raise DeliveryError("WEBHOOK_URL is not set", retryable=False)
        body = webhook_body(delivery)
        headers = {"Content-Type": "application/json", "X-Chronicon-Delivery": str(delivery.id),
                   "User-Agent": "chronicon-webhook"}
        if self.settings.webhook_secret is not None:
            headers[SIGNATURE_HEADER] = sign(body, self.settings.webhook_secret.get_secret_value())
        if self.settings.webhook_token is not None:
            headers["Authorization"] = f"Bearer {self.settings.webhook_token.get_secret_value()}"
        client = self._client or httpx.Client(timeout=self.settings.webhook_timeout)
        try:
            response = client.post(url, content=body, headers=headers,
                                   timeout=self.settings.webhook_timeout)
        except httpx.TimeoutException:
            return DeliveryResult(False, error=f"timed out after {self.settings.webhook_timeout}s")
        except httpx.HTTPError as exc:
            return DeliveryResult(False, error=mask_urls(f"{type(exc).__name__}: {exc}"))
        finally:
            if self._client is None:
                client.close()
        if response.is_success:
            return DeliveryResult(True, detail=f"HTTP {response.status_code}")
        # 4xx means the receiver rejects this request as it is; only 408/429 may pass later.
        retryable = response.status_code >= 500 or response.status_code in (408, 429)
        return DeliveryResult(False, error=f"HTTP {response.status_code}", retryable=retryable)

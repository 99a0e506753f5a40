"""Webhook delivery by the Standard Webhooks convention (standardwebhooks.com).

Each event is one POST of its JSON object with three headers: ``webhook-id`` (the event's id,
the same on every retry), ``webhook-timestamp`` (seconds since the epoch, of this attempt) and
``webhook-signature``: ``v1,`` and the base64 HMAC-SHA256 of ``id.timestamp.body`` keyed with
the secret's decoded bytes (a secret is ``whsec_`` and base64), so that a receiver verifies it
with any of the convention's libraries. A 2xx answer is a delivery; anything else, a timeout
or a refused connection is a failure, retried by the dispatcher. Redirects are not followed.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from facedb.errors import ConfigError
from facedb.events import DeliveryResult
from facedb.extras import load

if TYPE_CHECKING:
    import httpx

__all__ = ["SECRET_PREFIX", "WebhookSender", "check_webhook_url", "new_secret", "secret_key", "sign"]

#: How a Standard Webhooks secret starts.
SECRET_PREFIX = "whsec_"


def new_secret() -> str:
    """A new signing secret: ``whsec_`` and the base64 of 32 random bytes."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode("ascii")


def secret_key(secret: str) -> bytes:
    """The HMAC key of a secret: its base64 part decoded, as the convention's libraries do.

    Raises:
        ConfigError: not base64, or shorter than 16 bytes decoded.
    """
    text = secret.strip()
    if text.startswith(SECRET_PREFIX):
        text = text[len(SECRET_PREFIX) :]
    try:
        key = base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise ConfigError(
            "a webhook secret is 'whsec_' and base64 (as Standard Webhooks libraries expect); "
            "leave it out and facedb makes one"
        ) from None
    if len(key) < 16:
        raise ConfigError(f"a webhook secret must hold at least 16 bytes of key, got {len(key)}")
    return key


def sign(key: bytes, event_id: str, timestamp: int, body: bytes) -> str:
    """The ``webhook-signature`` header of one delivery."""
    mac = hmac.new(key, f"{event_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(mac).decode("ascii")


def check_webhook_url(url: str) -> str:
    """A webhook URL: http or https, with a host; no user or password in it.

    Raises:
        ConfigError: anything else.
    """
    if not isinstance(url, str) or len(url) > 2000 or any(c.isspace() or ord(c) < 32 for c in url):
        raise ConfigError("a webhook URL is one line of at most 2000 characters, without spaces")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 (a bad port raises here)
    except ValueError as e:
        raise ConfigError(f"not a webhook URL: {url!r} ({e})") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"a webhook URL is http:// or https:// with a host, got {url!r}")
    if parts.username is not None or parts.password is not None:
        raise ConfigError("a webhook URL may not carry a user or password: use the signing secret")
    return url


def body_of(event: dict[str, Any]) -> bytes:
    """The bytes sent for an event (compact JSON, UTF-8)."""
    return json.dumps(event, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


class WebhookSender:
    """POSTs events to one URL, signed with one secret."""

    def __init__(self, url: str, secret: bytes | None, timeout: float) -> None:
        self.url = url
        self.key = secret_key(secret.decode("ascii")) if secret else None
        self.httpx = load("httpx", "events", "webhooks")
        self.client: httpx.Client = self.httpx.Client(
            timeout=timeout, follow_redirects=False, trust_env=False
        )

    def post(self, event: dict[str, Any]) -> DeliveryResult:
        """Delivers one event; what the receiver answered."""
        body = body_of(event)
        now = int(time.time())
        headers = {
            "content-type": "application/json",
            "user-agent": "facedb-events",
            "webhook-id": str(event["id"]),
            "webhook-timestamp": str(now),
        }
        if self.key is not None:
            headers["webhook-signature"] = sign(self.key, str(event["id"]), now, body)
        started = time.monotonic()
        try:
            answer = self.client.post(self.url, content=body, headers=headers)
        except self.httpx.HTTPError as e:
            reason = str(e) or type(e).__name__
            return DeliveryResult(
                False,
                None,
                f"{type(e).__name__}: {reason}"[:500],
                time.monotonic() - started,
                str(event["id"]),
            )
        text = answer.text[:200].strip() if answer.content else ""
        ok = 200 <= answer.status_code < 300
        detail = f"HTTP {answer.status_code}" + (f": {text}" if text else "")
        return DeliveryResult(ok, answer.status_code, detail, time.monotonic() - started, str(event["id"]))

    def send(self, events: Sequence[dict[str, Any]]) -> tuple[int, str | None]:
        """Delivers events in order until one fails: (how many were delivered, the failure)."""
        for n, event in enumerate(events):
            result = self.post(event)
            if not result.ok:
                return n, result.detail
        return len(events), None

    def close(self) -> None:
        """Closes the connections."""
        self.client.close()

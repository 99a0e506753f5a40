"""Events: what happened in a gallery, pushed to webhooks and MQTT brokers, at least once.

The pieces, from the write to the receiver:

- the event types and the JSON shape of an event (here), the records of subscriptions and
  queued events (here), and the settings of delivery (:class:`DeliverySettings`);
- the outbox: an event is written by the write that caused it (``change.event(type, data)``,
  facedb.writes) with one delivery row per subscription that wants its type (facedb.store.events);
- the senders: a Standard Webhooks POST (facedb.events.webhooks) or an MQTT QoS 1 publish
  (facedb.events.mqtt);
- the dispatcher (facedb.events.dispatcher): a thread per subscription that delivers its
  events in order, retries with exponential backoff and gives up after a set time.

An event is one JSON object::

    {"id": "evt_...", "type": "visit.started", "timestamp": "2026-12-07T15:21:40.123456Z",
     "data": {"gallery": "<the gallery's uid>", ...}}

It never carries a template or a path on the server.
"""

from __future__ import annotations

import os
import re
import socket
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import PurePath
from typing import Any, Literal
from urllib.parse import urlsplit, urlunsplit

from facedb.errors import ConfigError

__all__ = [
    "DEFAULT_TYPES",
    "EVENT_TYPES",
    "TEST_TYPE",
    "DeliveryResult",
    "DeliverySettings",
    "NewSubscription",
    "QueuedEvent",
    "Subscription",
    "check_types",
    "default_instance",
    "envelope",
    "new_event_id",
    "person_ref",
    "public_source",
    "timestamp_text",
]

#: Every event type, with what it means (README, "Events").
EVENT_TYPES: dict[str, str] = {
    "visit.started": "a watch logged a visit: a person named, or a stranger (data.stranger)",
    "person.identified": "identify named a person in a photo (opt-in: it can be every call)",
    "person.enrolled": "faces were enrolled for a person (a new one or not)",
    "person.renamed": "a person was given a new name",
    "person.removed": "a person was removed (their templates erased)",
    "group.named": "a group of unnamed faces was named (enrolled as a person)",
    "group.dismissed": "a group of unnamed faces was dismissed (its faces erased)",
}
#: What a subscription gets when it names no types: everything but person.identified.
DEFAULT_TYPES: tuple[str, ...] = tuple(t for t in EVENT_TYPES if t != "person.identified")
#: The type of the event ``events test`` sends (never queued).
TEST_TYPE = "subscription.test"

Kind = Literal["webhook", "mqtt"]


def check_types(types: str | Sequence[str] | None) -> tuple[str, ...]:
    """The event types of a subscription, checked: a list, or a comma-separated text; None or
    empty: :data:`DEFAULT_TYPES`; ``"all"``: every type.

    Raises:
        ConfigError: an unknown type (the message lists the known ones).
    """
    if types is None:
        return DEFAULT_TYPES
    items = types.split(",") if isinstance(types, str) else list(types)
    names = [str(t).strip() for t in items if str(t).strip()]
    if not names:
        return DEFAULT_TYPES
    if names == ["all"]:
        return tuple(EVENT_TYPES)
    unknown = [t for t in names if t not in EVENT_TYPES]
    if unknown:
        raise ConfigError(
            f"unknown event type(s) {', '.join(map(repr, unknown))}: "
            f"the types are {', '.join(EVENT_TYPES)} (or all)"
        )
    return tuple(t for t in EVENT_TYPES if t in names)  # in the documented order, once each


def new_event_id() -> str:
    """A new event id: ``evt_`` and 32 hex digits (random: unique across processes)."""
    return f"evt_{uuid.uuid4().hex}"


def timestamp_text(when: datetime) -> str:
    """A time as the events carry it: UTC, ISO 8601, microseconds, ``Z``."""
    utc = when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def envelope(uid: str, type_: str, occurred_at: datetime, data: dict[str, Any]) -> dict[str, Any]:
    """The JSON object of one event, as every channel sends it."""
    return {"id": uid, "type": type_, "timestamp": timestamp_text(occurred_at), "data": data}


def person_ref(person_id: int, name: str) -> dict[str, Any]:
    """A person in an event's data: ``{"id", "name"}``."""
    return {"id": int(person_id), "name": name}


_CAMERA = re.compile(r"^\d+$")


def public_source(source: str) -> str:
    """Where a watch saw somebody, as an event may tell it: a camera index as it is, a stream
    URL without its user, password and query (which may hold a token), a file by its name only
    (a path on the server is never sent)."""
    text = str(source).strip()
    if _CAMERA.match(text):
        return text
    if "://" in text:
        parts = urlsplit(text)
        host = parts.hostname or ""
        if parts.port:
            host = f"{host}:{parts.port}"
        return urlunsplit((parts.scheme, host, parts.path, "", ""))
    return PurePath(text).name or text


def default_instance(role: str = "python") -> str:
    """The name of this process in MQTT status topics: ``<host>-<role>``, or
    ``FACEDB_INSTANCE`` when set."""
    configured = os.environ.get("FACEDB_INSTANCE", "").strip()
    if configured:
        return configured
    host = re.sub(r"[^A-Za-z0-9_-]", "-", socket.gethostname()) or "host"
    return f"{host}-{role}"


def _env_seconds(name: str, default: float) -> float:
    raw = os.environ.get(name)
    if raw is None or not raw.strip():
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a number of seconds, got {raw!r}") from None
    if not value > 0:
        raise ConfigError(f"{name} must be above 0, got {raw!r}")
    return value


@dataclass(frozen=True, slots=True)
class DeliverySettings:
    """How a dispatcher delivers (the defaults; ``from_environment`` reads overrides).

    Attributes:
        give_up_after: seconds after an event was queued (or retried) when a delivery that
            keeps failing is given up and becomes a dead letter (default 24 h;
            ``FACEDB_EVENTS_GIVE_UP``).
        first_retry: the wait after the first failure; each further failure doubles it
            (``FACEDB_EVENTS_FIRST_RETRY``, 1 s) ...
        max_retry: ... up to this (``FACEDB_EVENTS_MAX_RETRY``, 5 min).
        poll: how often the outbox is looked at for events other processes wrote
            (``FACEDB_EVENTS_POLL``, 1 s; this process's own events wake it at once).
        timeout: a receiver's time to answer one request or acknowledge a publish
            (``FACEDB_EVENTS_TIMEOUT``, 10 s).
        lease: a dispatcher holds a subscription this long between renewals; a dispatcher
            that died is replaced after it (``FACEDB_EVENTS_LEASE``, 30 s).
        batch: most events one subscription is sent before its progress is written.
    """

    give_up_after: float = 24 * 3600.0
    first_retry: float = 1.0
    max_retry: float = 300.0
    poll: float = 1.0
    timeout: float = 10.0
    lease: float = 30.0
    batch: int = 100

    def __post_init__(self) -> None:
        for name in ("give_up_after", "first_retry", "max_retry", "poll", "timeout", "lease"):
            if not getattr(self, name) > 0:
                raise ConfigError(f"DeliverySettings.{name} must be above 0, got {getattr(self, name)}")
        if self.batch < 1:
            raise ConfigError(f"DeliverySettings.batch must be at least 1, got {self.batch}")

    @classmethod
    def from_environment(cls, **overrides: float | int | None) -> DeliverySettings:
        """The defaults, overridden by the environment (FACEDB_EVENTS_*), then by the
        ``overrides`` that are not None (a command's options)."""
        base = cls()
        values: dict[str, Any] = {
            "give_up_after": _env_seconds("FACEDB_EVENTS_GIVE_UP", base.give_up_after),
            "first_retry": _env_seconds("FACEDB_EVENTS_FIRST_RETRY", base.first_retry),
            "max_retry": _env_seconds("FACEDB_EVENTS_MAX_RETRY", base.max_retry),
            "poll": _env_seconds("FACEDB_EVENTS_POLL", base.poll),
            "timeout": _env_seconds("FACEDB_EVENTS_TIMEOUT", base.timeout),
            "lease": _env_seconds("FACEDB_EVENTS_LEASE", base.lease),
        }
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)

    def backoff(self, attempts: int) -> float:
        """The wait before the next attempt after ``attempts`` failures."""
        return float(min(self.max_retry, self.first_retry * 2 ** max(0, attempts - 1)))


@dataclass(frozen=True, slots=True)
class Subscription:
    """Where a gallery's events go.

    Attributes:
        id: the subscription's id.
        kind: ``"webhook"`` or ``"mqtt"``.
        target: the webhook URL, or the broker's URL with the topic prefix as its path
            (``mqtt://host:1883/facedb``), without a password.
        types: the event types it gets.
        created_at: when it was made (UTC).
        has_secret: whether a secret (signing key, MQTT password) is kept for it.
        home_assistant: (MQTT) whether Home Assistant discovery messages are published.
        pending: events queued for it and not yet delivered.
        failed: events given up on (dead letters).
    """

    id: int
    kind: Kind
    target: str
    types: tuple[str, ...]
    created_at: datetime
    has_secret: bool = False
    home_assistant: bool = False
    pending: int = 0
    failed: int = 0


@dataclass(frozen=True, slots=True)
class NewSubscription:
    """A subscription just made, with its secret: shown only now (a webhook's signing secret,
    ``whsec_`` and base64; None for MQTT)."""

    subscription: Subscription
    secret: str | None = None


@dataclass(frozen=True, slots=True)
class QueuedEvent:
    """An event one subscription still owes (pending) or gave up on (failed).

    Attributes:
        id: the event's id (``evt_...``: the same on every retry and channel).
        type, timestamp, data: the event.
        subscription_id: the subscription that owes it.
        state: ``"pending"`` or ``"failed"``.
        attempts: deliveries tried so far.
        queued_at: when it was queued (or last retried): the give-up clock starts there.
        next_attempt_at: when it is tried next (pending).
        last_error: the receiver's last answer or the error, if any.
    """

    id: str
    type: str
    timestamp: datetime
    data: dict[str, Any]
    subscription_id: int
    state: str
    attempts: int
    queued_at: datetime
    next_attempt_at: datetime
    last_error: str | None = None


@dataclass(frozen=True, slots=True)
class DeliveryResult:
    """What a receiver answered to one delivery (``events test``).

    Attributes:
        ok: whether it took the event (a 2xx answer; an MQTT PUBACK).
        status: the HTTP status (None for MQTT or no answer).
        detail: the answer's start, or the error.
        seconds: how long it took.
        event_id: the id of the event sent.
    """

    ok: bool
    status: int | None
    detail: str
    seconds: float
    event_id: str = field(default="")

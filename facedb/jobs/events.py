"""A gallery's events (``db.events``): its subscriptions, what they are owed, and the
dispatcher that delivers it (facedb.events).

Subscriptions live in the gallery, so that every process and door that writes or watches
queues events for them; the events themselves are queued by the writes that cause them
(``change.event``, facedb.writes), except ``person.identified``: identify writes nothing, so
its events are queued off the identify path (:class:`_Announcer`) and only while a
subscription wants them.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from facedb.context import GalleryContext
from facedb.errors import ConfigError, EventNotFound, FaceDBError, SubscriptionNotFound
from facedb.events import (
    TEST_TYPE,
    DeliveryResult,
    DeliverySettings,
    NewSubscription,
    QueuedEvent,
    Subscription,
    check_types,
    default_instance,
    envelope,
    new_event_id,
    person_ref,
)
from facedb.events.dispatcher import Dispatcher, sender_for
from facedb.events.mqtt import parse_mqtt_url
from facedb.events.webhooks import check_webhook_url, new_secret, secret_key
from facedb.extras import require
from facedb.results import Identification
from facedb.store import OutboxItem

__all__ = ["Events"]

log = logging.getLogger("facedb.events")

#: How long identify trusts its last look at whether anybody wants person.identified.
WANTED_SECONDS = 2.0


def _queued(item: OutboxItem) -> QueuedEvent:
    return QueuedEvent(
        id=item.uid,
        type=item.type,
        timestamp=item.occurred_at,
        data=item.data,
        subscription_id=item.subscription_id,
        state=item.state,
        attempts=item.attempts,
        queued_at=item.queued_at,
        next_attempt_at=item.next_attempt_at,
        last_error=item.last_error,
    )


class _Announcer:
    """Writes identify's person.identified events in a thread of its own, a batch per
    transaction, so that identify never waits for a database write (README: an event is
    queued within about 50 ms of its answer; a crash in that time loses it)."""

    def __init__(self, ctx: GalleryContext) -> None:
        self.ctx = ctx
        self.queue: queue.SimpleQueue[tuple[datetime, dict[str, Any]] | None] = queue.SimpleQueue()
        self.thread: threading.Thread | None = None
        self.lock = threading.Lock()

    def put(self, at: datetime, data: list[dict[str, Any]]) -> None:
        for item in data:
            self.queue.put((at, item))
        with self.lock:
            if self.thread is None:
                self.thread = threading.Thread(target=self.run, name="facedb-identified", daemon=True)
                self.thread.start()

    def run(self) -> None:
        done = False
        while not done:
            first = self.queue.get()
            batch = []
            if first is None:
                done = True
            else:
                batch.append(first)
            while len(batch) < 1000:
                try:
                    item = self.queue.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    done = True
                else:
                    batch.append(item)
            if batch:
                try:
                    with self.ctx.writes.change() as change:
                        for at, data in batch:
                            change.event("person.identified", data, at=at)
                except FaceDBError as e:
                    log.warning("%d person.identified event(s) could not be queued: %s", len(batch), e)

    def close(self) -> None:
        with self.lock:
            thread, self.thread = self.thread, None
        if thread is not None:
            self.queue.put(None)
            thread.join(30)


class Events:
    """The events of one gallery (``db.events``): subscriptions to webhooks and MQTT
    brokers, the events they are owed, and the dispatcher that delivers them.

    Example:
        >>> made = db.events.add_webhook("https://example.org/hook", types=["visit.started"])
        >>> print(made.secret)              # shown only now: give it to the receiver
        >>> db.events.test(made.subscription.id).ok
        True
        >>> dispatcher = db.events.dispatcher().start()   # or `facedb events run`
    """

    def __init__(self, ctx: GalleryContext) -> None:
        self.ctx = ctx
        self._wanted_at = -1e9
        self._wanted = False
        self._announcer = _Announcer(ctx)

    # -- subscriptions ---------------------------------------------------------------------

    def add_webhook(
        self, url: str, *, secret: str | None = None, types: Sequence[str] | str | None = None
    ) -> NewSubscription:
        """Subscribes a webhook URL (http or https; loopback and private addresses allowed).

        Args:
            secret: the Standard Webhooks signing secret (``whsec_`` and base64); None: a new
                one is made. It is kept in the gallery (sealed when the gallery has a key) and
                returned only now.
            types: the event types (facedb.events.EVENT_TYPES), a list or comma-separated; None:
                every type but person.identified; ``"all"``: every type.

        Raises:
            ConfigError: a bad URL, secret or type.
        """
        self.ctx.check_writable()
        target = check_webhook_url(url)
        chosen = check_types(types)
        text = new_secret() if secret is None else secret.strip()
        secret_key(text)  # checked: a receiver's library must be able to use it
        made = self._add("webhook", target, chosen, text.encode("ascii"), {})
        return NewSubscription(made, text)

    def add_mqtt(
        self, url: str, *, types: Sequence[str] | str | None = None, home_assistant: bool = False
    ) -> NewSubscription:
        """Subscribes an MQTT broker: ``mqtt://[user[:password]@]host[:port]/topic-prefix``
        (``mqtts://`` for TLS). Events go to ``<prefix>/<type>`` at QoS 1. A password is kept
        like a webhook's secret (sealed with the gallery's key, if any), never shown again.

        Args:
            types: as :meth:`add_webhook`.
            home_assistant: publish Home Assistant discovery, so that each person seen by a
                watch becomes a "last seen" sensor.

        Raises:
            ConfigError: a bad URL or type.
            MissingExtra: paho-mqtt is not installed (the ``events`` extra).
        """
        self.ctx.check_writable()
        require("events", "MQTT events")
        target = parse_mqtt_url(url)
        chosen = check_types(types)
        password = target.password.encode("utf-8") if target.password else None
        made = self._add("mqtt", target.url, chosen, password, {"home_assistant": bool(home_assistant)})
        return NewSubscription(made, None)

    def add(
        self,
        url: str,
        *,
        secret: str | None = None,
        types: Sequence[str] | str | None = None,
        home_assistant: bool = False,
    ) -> NewSubscription:
        """:meth:`add_webhook` for an http(s) URL, :meth:`add_mqtt` for mqtt(s)."""
        if url.startswith(("mqtt://", "mqtts://")):
            if secret is not None:
                raise ConfigError("an MQTT subscription takes no signing secret (a password goes in the URL)")
            return self.add_mqtt(url, types=types, home_assistant=home_assistant)
        if home_assistant:
            raise ConfigError("Home Assistant discovery is for MQTT subscriptions")
        return self.add_webhook(url, secret=secret, types=types)

    def _add(
        self, kind: str, target: str, types: tuple[str, ...], secret: bytes | None, options: dict[str, Any]
    ) -> Subscription:
        with self.ctx.writes.change() as change:
            sub_id = self.ctx.store.add_subscription(
                change.session,
                kind=kind,
                target=target,
                types=types,
                secret=secret,
                options=options,
                created_at=datetime.now(UTC),
            )
        self._wanted_at = -1e9  # identify looks again at once
        return self.subscription(sub_id)

    def subscriptions(self) -> list[Subscription]:
        """Every subscription, by id, with what it is owed."""
        self.ctx.check_open()
        store = self.ctx.store
        with store.read() as s:
            counts = store.delivery_counts(s)
            return [self._record(r, counts.get(int(r.id), (0, 0))) for r in store.subscriptions(s)]

    def subscription(self, subscription_id: int) -> Subscription:
        """One subscription.

        Raises:
            SubscriptionNotFound: no subscription has this id.
        """
        self.ctx.check_open()
        store = self.ctx.store
        with store.read() as s:
            row = store.subscription(s, int(subscription_id))
            if row is None:
                raise SubscriptionNotFound(
                    f"no event subscription with id {subscription_id} in {self.ctx.location}"
                )
            return self._record(row, store.delivery_counts(s).get(int(row.id), (0, 0)))

    @staticmethod
    def _record(row: Any, counts: tuple[int, int]) -> Subscription:
        types = tuple(t for t in row.types.split(",") if t)
        options = json.loads(row.options or "{}")
        return Subscription(
            id=int(row.id),
            kind=row.kind,
            target=row.target,
            types=types,
            created_at=row.created_at,
            has_secret=row.secret is not None,
            home_assistant=bool(options.get("home_assistant")),
            pending=counts[0],
            failed=counts[1],
        )

    def remove(self, subscription_id: int) -> None:
        """Removes a subscription: its secret is erased (from the database and its WAL) and
        what it was still owed is dropped.

        Raises:
            SubscriptionNotFound: no subscription has this id.
        """
        self.ctx.check_writable()
        with self.ctx.writes.change() as change:
            if not self.ctx.store.remove_subscription(change.session, int(subscription_id)):
                raise SubscriptionNotFound(
                    f"no event subscription with id {subscription_id} in {self.ctx.location}"
                )
            change.erased()  # the secret leaves the WAL too
        self._wanted_at = -1e9

    def test(self, subscription_id: int, *, timeout: float = 10.0) -> DeliveryResult:
        """Delivers one ``subscription.test`` event to a subscription at once (not through the
        outbox) and reports what the receiver answered.

        Raises:
            SubscriptionNotFound: no subscription has this id.
        """
        self.ctx.check_open()
        with self.ctx.store.read() as s:
            row = self.ctx.store.subscription(s, int(subscription_id))
            if row is None:
                raise SubscriptionNotFound(
                    f"no event subscription with id {subscription_id} in {self.ctx.location}"
                )
            kind, target, secret, options = row.kind, row.target, row.secret, json.loads(row.options or "{}")
        event = envelope(
            new_event_id(),
            TEST_TYPE,
            datetime.now(UTC),
            {"gallery": self.ctx.facts.uid, "subscription": int(subscription_id)},
        )
        sender = sender_for(
            kind,
            target,
            secret,
            options,
            instance=default_instance("test"),
            timeout=timeout,
            suffix="-test",
            status=False,  # a test is no dispatcher: no status topic of its own
        )
        try:
            result = sender.post(event)
        finally:
            sender.close()
        return result

    # -- what is owed ----------------------------------------------------------------------

    def pending(self, subscription_id: int | None = None, *, limit: int = 1000) -> list[QueuedEvent]:
        """Events queued and not yet delivered (one entry per subscription owed), oldest first."""
        self.ctx.check_open()
        with self.ctx.store.read() as s:
            return [_queued(i) for i in self.ctx.store.outbox(s, "pending", subscription_id, limit)]

    def failed(self, subscription_id: int | None = None, *, limit: int = 1000) -> list[QueuedEvent]:
        """The dead letters: events given up on after ``give_up_after`` of failures."""
        self.ctx.check_open()
        with self.ctx.store.read() as s:
            return [_queued(i) for i in self.ctx.store.outbox(s, "failed", subscription_id, limit)]

    def retry(self, event_id: str | None = None) -> int:
        """Queues failed events again (one, by its id; None: all of them), from now: each is
        tried at once and given up on again only after another ``give_up_after``. Returns how
        many deliveries were queued again.

        Raises:
            EventNotFound: ``event_id`` is not a failed event's.
        """
        self.ctx.check_writable()
        with self.ctx.writes.change() as change:
            count = self.ctx.store.retry_failed(change.session, event_id, datetime.now(UTC))
            if event_id is not None and count == 0:
                raise EventNotFound(f"no failed event with id {event_id!r} (`facedb events list --failed`)")
        for wake in list(self.ctx.writes.on_events):
            wake()
        return count

    # -- delivery --------------------------------------------------------------------------

    def dispatcher(
        self, settings: DeliverySettings | None = None, *, instance: str | None = None
    ) -> Dispatcher:
        """A dispatcher for this gallery (not started: ``.start()``; ``.stop(drain=...)``),
        woken at once by the events this process queues. ``settings`` default: the defaults
        with the environment's overrides (DeliverySettings.from_environment)."""
        self.ctx.check_open()
        dispatcher = Dispatcher(
            self.ctx.store,
            settings or DeliverySettings.from_environment(),
            instance or default_instance(),
        )
        self.ctx.writes.on_events.append(dispatcher.wake)
        return dispatcher

    def run(
        self,
        *,
        once: bool = False,
        settings: DeliverySettings | None = None,
        instance: str | None = None,
        stop: threading.Event | None = None,
    ) -> int:
        """Delivers until ``stop`` is set (or KeyboardInterrupt); with ``once``, delivers what
        is due and returns. Returns how many events were delivered."""
        dispatcher = self.dispatcher(settings, instance=instance)
        try:
            if once:
                return dispatcher.run_once()[0]
            dispatcher.start()
            stopped = stop or threading.Event()
            try:
                while not stopped.wait(0.5):
                    pass
            except KeyboardInterrupt:
                pass
            dispatcher.stop()
            return dispatcher.delivered
        finally:
            self.forget(dispatcher)

    def forget(self, dispatcher: Dispatcher) -> None:
        """Stops waking a dispatcher (after it stopped)."""
        try:
            self.ctx.writes.on_events.remove(dispatcher.wake)
        except ValueError:
            pass

    # -- person.identified -----------------------------------------------------------------

    def wants_identified(self) -> bool:
        """Whether a subscription wants person.identified (looked up at most every 2 s)."""
        now = time.monotonic()
        if now - self._wanted_at > WANTED_SECONDS:
            self._wanted = not self.ctx.read_only and self.ctx.store.wants_event("person.identified")
            self._wanted_at = now
        return self._wanted

    def identified(self, results: Sequence[Identification]) -> None:
        """Queues a person.identified event for each face identify named, when a subscription
        wants them (off the identify path: see :class:`_Announcer`)."""
        named = [r for r in results if r.person is not None]
        if not named or not self.wants_identified():
            return
        at = datetime.now(UTC)
        self._announcer.put(
            at,
            [
                {
                    "person": person_ref(r.person.id, r.person.name),
                    "similarity": round(float(r.similarity), 4),
                    "confidence": None if r.confidence is None else round(float(r.confidence), 4),
                    "bbox": [round(float(v), 1) for v in r.face.bbox],
                }
                for r in named
                if r.person is not None
            ],
        )

    def close(self) -> None:
        """Writes the person.identified events still in memory (called on the gallery's close)."""
        self._announcer.close()

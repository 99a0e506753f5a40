"""The dispatcher: delivers the outbox to the subscriptions, at least once, in order per
subscription, without ever holding up the code that queued the events.

One thread per subscription (a "lane"), so that a slow or dead receiver holds up only its own
events. A lane first takes the subscription's lease (one UPDATE: at most one process at a time
delivers for a subscription, which is what keeps the order when ``serve``, ``watch`` and
``events run`` share a gallery), reads the subscription's pending deliveries oldest first, sends
them in that order and deletes each one the receiver took. When one fails, it stays at the head
of the lane and is tried again after a wait that doubles each time (``first_retry`` up to
``max_retry``); once it has been failing for ``give_up_after`` since it was queued, it becomes a
dead letter (``failed``) and the lane moves on. A process killed mid-delivery leaves its
deliveries pending: the next dispatcher (after the lease runs out) sends them again, with the
same event ids, so a receiver can tell a repeat.

Everything a lane knows is in the database; the dispatcher itself holds nothing that a restart
would lose.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from sqlalchemy.orm import Session

from facedb.errors import FaceDBError
from facedb.events import DeliveryResult, DeliverySettings, envelope
from facedb.store import OutboxItem, Store

__all__ = ["Dispatcher", "Sender", "sender_for"]

log = logging.getLogger("facedb.events")

#: A lane records what it delivered at least this often (seconds).
RECORD_EVERY = 1.0


class Sender(Protocol):
    """What delivers events to one subscription's receiver (a webhook URL, an MQTT broker)."""

    def send(self, events: list[dict[str, Any]]) -> tuple[int, str | None]:
        """Delivers ``events`` in order until one fails: (how many were delivered, the failure)."""
        ...

    def post(self, event: dict[str, Any]) -> DeliveryResult:
        """Delivers one event; what the receiver answered."""
        ...

    def close(self) -> None:
        """Lets go of connections."""
        ...


def sender_for(
    kind: str,
    target: str,
    secret: bytes | None,
    options: dict[str, Any],
    *,
    instance: str,
    timeout: float,
    suffix: str = "",
    status: bool = True,
) -> Sender:
    """The sender of one subscription (``status``: an MQTT connection announces itself on
    its status topic, with a last will)."""
    if kind == "webhook":
        from facedb.events.webhooks import WebhookSender

        return WebhookSender(target, secret, timeout)
    from facedb.events.mqtt import MqttSender, parse_mqtt_url

    return MqttSender(
        parse_mqtt_url(target),
        password=secret.decode("utf-8") if secret else None,
        instance=instance,
        timeout=timeout,
        home_assistant=bool(options.get("home_assistant")),
        client_suffix=suffix,
        status=status,
    )


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass
class _Lane:
    """One subscription's deliveries, by one dispatcher."""

    dispatcher: Dispatcher
    subscription_id: int
    kind: str
    target: str
    secret: bytes | None
    options: dict[str, Any]
    wake: threading.Event = field(default_factory=threading.Event)
    stopping: threading.Event = field(default_factory=threading.Event)
    thread: threading.Thread | None = None
    delivered: int = 0
    failures: int = 0
    _sender: Sender | None = None
    _lease_until: datetime | None = None

    @property
    def store(self) -> Store:
        return self.dispatcher.store

    @property
    def settings(self) -> DeliverySettings:
        return self.dispatcher.settings

    def sender(self) -> Sender:
        if self._sender is None:
            self._sender = sender_for(
                self.kind,
                self.target,
                self.secret,
                self.options,
                instance=self.dispatcher.instance,
                timeout=self.settings.timeout,
                suffix=f"-{self.subscription_id}",
            )
        return self._sender

    def hold_lease(self, now: datetime) -> bool:
        """Whether this lane may deliver now (renewing its lease when a third of it is left)."""
        lease = timedelta(seconds=self.settings.lease)
        if self._lease_until is not None and self._lease_until - now > lease * 2 / 3:
            return True
        with self.store.write() as s:
            held = self.store.claim_lease(s, self.subscription_id, self.dispatcher.owner, now, now + lease)
        self._lease_until = now + lease if held else None
        return held

    def release(self) -> None:
        if self._lease_until is None:
            return
        self._lease_until = None
        try:
            with self.store.write() as s:
                self.store.release_lease(s, self.subscription_id, self.dispatcher.owner)
        except FaceDBError as e:
            log.warning("releasing subscription %d: %s", self.subscription_id, e)

    def step(self) -> float:
        """Delivers what is due; returns how long to wait before the next step (0: go on)."""
        now = _now()
        if not self.hold_lease(now):
            return self.settings.poll
        with self.store.read() as s:
            items = self.store.lane(s, self.subscription_id, self.settings.batch)
        if not items:
            return self.settings.poll
        head = items[0]
        if head.next_attempt_at > now:
            return min(self.settings.poll, (head.next_attempt_at - now).total_seconds())
        # A webhook is sent one event at a time, and the lane stops to record its progress
        # after a second (or a third of its lease, if shorter): a slow receiver cannot outlast
        # the lease, and a dispatcher killed meanwhile repeats at most that second's events.
        chunk = 1 if self.kind == "webhook" else len(items)
        started = time.monotonic()
        done: list[OutboxItem] = []
        error: str | None = None
        sender = self.sender()
        for start in range(0, len(items), chunk):
            part = items[start : start + chunk]
            n, error = sender.send([envelope(i.uid, i.type, i.occurred_at, i.data) for i in part])
            done += part[:n]
            if error is not None or self.stopping.is_set():
                break
            if time.monotonic() - started > min(RECORD_EVERY, self.settings.lease / 3):
                break
        failed = items[len(done)] if error is not None else None
        self.record(done, failed, error)
        if failed is None or self.given_up(failed, _now()):
            return 0.0  # on to the next event (a dead letter does not hold the others back)
        return self.settings.backoff(failed.attempts + 1)

    def given_up(self, item: OutboxItem, now: datetime) -> bool:
        """Whether a failing delivery has been tried long enough (a dead letter now)."""
        return (now - item.queued_at).total_seconds() >= self.settings.give_up_after

    def record(self, done: list[OutboxItem], failed: OutboxItem | None, error: str | None) -> None:
        """Writes what was delivered, and the failure of the next one (in a commit shared with
        the other lanes: :meth:`Dispatcher.commit`)."""
        now = _now()

        def write(s: Session) -> None:
            self.store.delivered(s, done)
            if failed is not None:
                attempts = failed.attempts + 1
                dead = self.given_up(failed, now)
                self.store.attempt_failed(
                    s,
                    failed.delivery_id,
                    attempts=attempts,
                    next_attempt_at=now + timedelta(seconds=self.settings.backoff(attempts)),
                    error=error or "failed",
                    dead=dead,
                )

        self.dispatcher.commit(write)
        self.delivered += len(done)
        self.dispatcher.count(len(done))
        if failed is not None:
            self.failures += 1
            log.warning(
                "event %s to subscription %d failed (attempt %d)%s: %s",
                failed.uid,
                self.subscription_id,
                failed.attempts + 1,
                "; given up (events list --failed)" if self.given_up(failed, now) else "",
                error,
            )

    def run(self) -> None:
        """The lane's thread: steps until stopped."""
        while not self.stopping.is_set():
            try:
                wait = self.step()
            except FaceDBError as e:  # the database away: try again later
                log.warning("events for subscription %d: %s", self.subscription_id, e)
                wait = self.settings.poll
            except Exception:
                log.exception("events for subscription %d failed", self.subscription_id)
                wait = self.settings.poll
            if wait > 0:
                self.wake.wait(wait)
                self.wake.clear()
        self.close()

    def close(self) -> None:
        sender, self._sender = self._sender, None
        if sender is not None:
            try:
                sender.close()
            except Exception as e:  # closing must not stop the others from closing
                log.debug("closing subscription %d's sender: %s", self.subscription_id, e)
        self.release()


class Dispatcher:
    """Delivers a gallery's events to its subscriptions in background threads.

    Args:
        store: the gallery's SQL store.
        settings: retries, give-up time, poll interval, timeouts.
        instance: this process's name in MQTT status topics (facedb.events.default_instance).

    Example:
        >>> dispatcher = db.events.dispatcher()
        >>> dispatcher.start()
        >>> ...  # enroll, watch, identify: events are delivered meanwhile
        >>> dispatcher.stop(drain=10)
    """

    def __init__(self, store: Store, settings: DeliverySettings, instance: str) -> None:
        self.store = store
        self.settings = settings
        self.instance = instance
        #: Who holds a lease: unique to this dispatcher (a restarted process is another).
        self.owner = f"{instance}/{os.getpid()}/{uuid.uuid4().hex[:8]}"
        self._lanes: dict[int, _Lane] = {}
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._delivered = 0
        # Group commit of the lanes' records (see commit).
        self._records = threading.Condition()
        self._queued: list[list[Any]] = []
        self._committing = False

    @property
    def delivered(self) -> int:
        """Events delivered by this dispatcher so far."""
        return self._delivered

    def count(self, n: int) -> None:
        """Counts ``n`` more deliveries (called by the lanes)."""
        with self._lock:
            self._delivered += n

    def commit(self, write: Callable[[Session], None]) -> None:
        """Runs ``write`` in a write transaction shared with the records of the other lanes
        that arrive meanwhile, and returns once it is committed. Each commit of a SQLite
        gallery is an fsync that every other writer waits for: ten lanes recording one event
        each would hold up a watch's next visit ten times; one shared commit holds it up once."""
        ticket: list[Any] = [write, False, None]  # the write, committed, its error
        with self._records:
            self._queued.append(ticket)
            while not ticket[1] and self._committing:
                self._records.wait()
            if ticket[1]:
                if ticket[2] is not None:
                    raise ticket[2]
                return
            self._committing = True  # this lane commits for everybody queued
        time.sleep(0.005)  # the records of the other lanes' deliveries of the same event join
        with self._records:
            batch, self._queued = self._queued, []
        error: Exception | None = None
        try:
            with self.store.write() as s:
                for queued in batch:
                    queued[0](s)
        except Exception as e:
            error = e
        with self._records:
            for queued in batch:
                queued[1], queued[2] = True, error
            self._committing = False
            self._records.notify_all()
        if error is not None:
            raise error

    def start(self) -> Dispatcher:
        """Starts delivering in the background (idempotent); returns the dispatcher."""
        if self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="facedb-events", daemon=True)
            self._thread.start()
        return self

    def wake(self) -> None:
        """New events were queued by this process: look now rather than at the next poll."""
        self._wake.set()
        for lane in list(self._lanes.values()):
            lane.wake.set()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.refresh(start=True)
            except FaceDBError as e:
                log.warning("events: %s", e)
            except Exception:
                log.exception("events: looking for subscriptions failed")
            self._wake.wait(self.settings.poll)
            self._wake.clear()

    def refresh(self, *, start: bool) -> list[_Lane]:
        """Makes one lane per subscription (started as threads when ``start``), ending the
        lanes of subscriptions removed meanwhile; returns the lanes."""
        with self.store.read() as s:
            rows = [(r.id, r.kind, r.target, r.secret, r.options) for r in self.store.subscriptions(s)]
        current = {int(r[0]) for r in rows}
        for sub_id in [i for i in self._lanes if i not in current]:
            lane = self._lanes.pop(sub_id)
            lane.stopping.set()
            lane.wake.set()
        for sub_id, kind, target, secret, options in rows:
            if sub_id in self._lanes:
                continue
            lane = _Lane(self, int(sub_id), kind, target, secret, json.loads(options or "{}"))
            self._lanes[int(sub_id)] = lane
            if start:
                lane.thread = threading.Thread(target=lane.run, name=f"facedb-events-{sub_id}", daemon=True)
                lane.thread.start()
        return list(self._lanes.values())

    def due(self) -> int:
        """How many deliveries are due now (pending and not waiting for a retry)."""
        with self.store.read() as s:
            return self.store.due_count(s, _now())

    def drain(self, timeout: float) -> bool:
        """Waits (at most ``timeout`` seconds) until nothing is due: every event queued so far
        delivered, or waiting for a retry after a failure. True when nothing is due."""
        deadline = time.monotonic() + timeout
        self.wake()
        while True:
            if self.due() == 0:
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.05)

    def run_once(self) -> tuple[int, int]:
        """Delivers everything due now, in this thread, and lets go: (delivered, failed
        attempts). A subscription whose receiver fails keeps its events for the next run."""
        lanes = self.refresh(start=False)
        try:
            for lane in lanes:
                while lane.step() == 0.0:
                    pass
        finally:
            for lane in lanes:
                lane.close()
            self._lanes.clear()
        return sum(lane.delivered for lane in lanes), sum(lane.failures for lane in lanes)

    def stop(self, drain: float = 0.0) -> bool:
        """Stops delivering, after waiting up to ``drain`` seconds for what is due (a file
        watch delivers its own events before it exits); what is left stays queued for the
        next dispatcher. Returns whether nothing was left due."""
        drained = True
        if drain > 0 and self._thread is not None:
            drained = self.drain(drain)
        self._stop.set()
        self._wake.set()
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.join(self.settings.poll + 5)
        lanes = list(self._lanes.values())
        self._lanes.clear()
        for lane in lanes:
            lane.stopping.set()
            lane.wake.set()
        deadline = time.monotonic() + self.settings.timeout + 5  # one wait for all of them
        for lane in lanes:
            if lane.thread is not None:
                lane.thread.join(max(0.1, deadline - time.monotonic()))
        return drained

"""The events' tables: subscriptions, the outbox and what each subscription still owes.

An event goes into the outbox inside the transaction of the write that caused it
(:meth:`EventQueries.add_event`), with one delivery row per subscription that wants its type,
so that an event exists exactly when its change was committed. A dispatcher reads a
subscription's deliveries in event order, deletes them once delivered and reschedules or gives
up on those that failed; :meth:`EventQueries.claim_lease` makes one dispatcher at a time the
one delivering for a subscription (one UPDATE, so two cannot both win).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import CursorResult, and_, delete, exists, func, insert, or_, select, update
from sqlalchemy.orm import Session

from facedb.models import EventDeliveryRow, EventRow, EventSubscriptionRow
from facedb.store.database import Database, core_table

__all__ = ["EventQueries", "OutboxItem", "types_column"]


def types_column(types: Sequence[str]) -> str:
    """The stored form of a subscription's types: ``,a,b,`` (found with one LIKE)."""
    return "," + ",".join(types) + ","


@dataclass(frozen=True, slots=True)
class OutboxItem:
    """One delivery a subscription owes, with its event."""

    delivery_id: int
    event_id: int
    uid: str
    type: str
    occurred_at: datetime
    data: dict[str, Any]
    subscription_id: int
    state: str
    attempts: int
    queued_at: datetime
    next_attempt_at: datetime
    last_error: str | None


_ITEM = select(
    EventDeliveryRow.id,
    EventRow.id,
    EventRow.uid,
    EventRow.type,
    EventRow.occurred_at,
    EventRow.data,
    EventDeliveryRow.subscription_id,
    EventDeliveryRow.state,
    EventDeliveryRow.attempts,
    EventDeliveryRow.queued_at,
    EventDeliveryRow.next_attempt_at,
    EventDeliveryRow.last_error,
).join(EventRow, EventRow.id == EventDeliveryRow.event_id)


def _rows(result: Any) -> int:
    """How many rows an UPDATE or DELETE changed."""
    assert isinstance(result, CursorResult)
    return int(result.rowcount or 0)


def _item(row: Any) -> OutboxItem:
    return OutboxItem(
        int(row[0]),
        int(row[1]),
        row[2],
        row[3],
        row[4],
        json.loads(row[5]),
        int(row[6]),
        row[7],
        int(row[8]),
        row[9],
        row[10],
        row[11],
    )


class EventQueries(Database):
    """Subscriptions, the outbox and its deliveries."""

    # -- subscriptions ---------------------------------------------------------------------

    def add_subscription(
        self,
        s: Session,
        *,
        kind: str,
        target: str,
        types: Sequence[str],
        secret: bytes | None,
        options: dict[str, Any],
        created_at: datetime,
    ) -> int:
        """Inside a write: a new subscription; returns its id."""
        row = EventSubscriptionRow(
            kind=kind,
            target=target,
            types=types_column(types),
            secret=secret,
            options=json.dumps(options, sort_keys=True),
            created_at=created_at,
        )
        s.add(row)
        s.flush()
        return int(row.id)

    def subscriptions(self, s: Session) -> list[EventSubscriptionRow]:
        """Every subscription, by id."""
        return list(s.scalars(select(EventSubscriptionRow).order_by(EventSubscriptionRow.id)))

    def subscription(self, s: Session, subscription_id: int) -> EventSubscriptionRow | None:
        """One subscription, or None."""
        return s.get(EventSubscriptionRow, int(subscription_id))

    def remove_subscription(self, s: Session, subscription_id: int) -> bool:
        """Inside a write: removes a subscription with its secret and what it still owes
        (events nobody else owes go too); False when there was none."""
        gone = _rows(
            s.execute(delete(EventSubscriptionRow).where(EventSubscriptionRow.id == int(subscription_id)))
        )
        if gone:
            # Its deliveries went by the foreign key's cascade.
            s.execute(delete(EventRow).where(~exists().where(EventDeliveryRow.event_id == EventRow.id)))
        return bool(gone)

    def delivery_counts(self, s: Session) -> dict[int, tuple[int, int]]:
        """For each subscription that owes something: (pending, failed)."""
        counts: dict[int, list[int]] = {}
        rows = s.execute(
            select(EventDeliveryRow.subscription_id, EventDeliveryRow.state, func.count()).group_by(
                EventDeliveryRow.subscription_id, EventDeliveryRow.state
            )
        )
        for sub_id, state, n in rows:
            counts.setdefault(int(sub_id), [0, 0])[0 if state == "pending" else 1] += int(n)
        return {k: (v[0], v[1]) for k, v in counts.items()}

    def wants_event(self, type_: str) -> bool:
        """Whether any subscription wants events of this type, in one cheap query on a bare
        connection (identify asks before it queues person.identified)."""
        with self._query() as conn:
            found = conn.execute(
                select(EventSubscriptionRow.id)
                .where(EventSubscriptionRow.types.contains(f",{type_},", autoescape=True))
                .limit(1)
            ).first()
        return found is not None

    # -- the outbox ------------------------------------------------------------------------

    def add_event(
        self,
        s: Session,
        *,
        uid: str,
        type_: str,
        occurred_at: datetime,
        data: dict[str, Any],
        queued_at: datetime,
    ) -> bool:
        """Inside a write: queues an event for every subscription that wants its type; False
        (and nothing written) when none does.

        The subscriptions' rows stay locked until the write commits (PostgreSQL; SQLite has one
        writer at a time anyway), so that events of one subscription get their ids in the order
        they commit: a dispatcher never delivers event 10 and then sees 9 commit."""
        wanting = [
            int(i)
            for i in s.scalars(
                select(EventSubscriptionRow.id)
                .where(EventSubscriptionRow.types.contains(f",{type_},", autoescape=True))
                .order_by(EventSubscriptionRow.id)  # one order for every writer: no deadlock
                .with_for_update()
            )
        ]
        if not wanting:
            return False
        event_id = s.execute(
            insert(core_table(EventRow))
            .values(
                uid=uid, type=type_, occurred_at=occurred_at, data=json.dumps(data, separators=(",", ":"))
            )
            .returning(core_table(EventRow).c.id)
        ).scalar_one()
        s.execute(
            insert(core_table(EventDeliveryRow)),
            [
                {
                    "event_id": event_id,
                    "subscription_id": sub_id,
                    "state": "pending",
                    "attempts": 0,
                    "queued_at": queued_at,
                    "next_attempt_at": queued_at,
                }
                for sub_id in wanting
            ],
        )
        return True

    def lane(self, s: Session, subscription_id: int, limit: int) -> list[OutboxItem]:
        """The pending deliveries of one subscription, oldest event first (its order)."""
        rows = s.execute(
            _ITEM.where(
                EventDeliveryRow.subscription_id == int(subscription_id), EventDeliveryRow.state == "pending"
            )
            .order_by(EventDeliveryRow.event_id)
            .limit(limit)
        )
        return [_item(r) for r in rows]

    def delivered(self, s: Session, items: Sequence[OutboxItem]) -> None:
        """Inside a write: these deliveries are done (deleted; an event nobody owes any more
        goes too)."""
        if not items:
            return
        s.execute(delete(EventDeliveryRow).where(EventDeliveryRow.id.in_([i.delivery_id for i in items])))
        s.execute(
            delete(EventRow).where(
                EventRow.id.in_({i.event_id for i in items}),
                ~exists().where(EventDeliveryRow.event_id == EventRow.id),
            )
        )

    def attempt_failed(
        self,
        s: Session,
        delivery_id: int,
        *,
        attempts: int,
        next_attempt_at: datetime,
        error: str,
        dead: bool,
    ) -> None:
        """Inside a write: a delivery failed; it is tried again at ``next_attempt_at``, or
        given up on (``dead``: a dead letter)."""
        s.execute(
            update(EventDeliveryRow)
            .where(EventDeliveryRow.id == int(delivery_id))
            .values(
                attempts=attempts,
                next_attempt_at=next_attempt_at,
                last_error=error[:1000],
                state="failed" if dead else "pending",
            )
        )

    def outbox(
        self, s: Session, state: str | None = None, subscription_id: int | None = None, limit: int = 1000
    ) -> list[OutboxItem]:
        """What the subscriptions owe (``state`` "pending" or "failed", or both), by event."""
        query = _ITEM
        if state is not None:
            query = query.where(EventDeliveryRow.state == state)
        if subscription_id is not None:
            query = query.where(EventDeliveryRow.subscription_id == int(subscription_id))
        rows = s.execute(
            query.order_by(EventDeliveryRow.event_id, EventDeliveryRow.subscription_id).limit(limit)
        )
        return [_item(r) for r in rows]

    def retry_failed(self, s: Session, uid: str | None, now: datetime) -> int:
        """Inside a write: the failed deliveries of one event (``uid``), or all of them (None),
        queued again from now; returns how many."""
        query = update(EventDeliveryRow).where(EventDeliveryRow.state == "failed")
        if uid is not None:
            query = query.where(
                EventDeliveryRow.event_id.in_(
                    select(EventRow.id).where(EventRow.uid == uid).scalar_subquery()
                )
            )
        result = s.execute(
            query.values(state="pending", attempts=0, queued_at=now, next_attempt_at=now, last_error=None)
        )
        return _rows(result)

    def event_exists(self, s: Session, uid: str) -> bool:
        """Whether the outbox holds an event with this id."""
        return s.execute(select(EventRow.id).where(EventRow.uid == uid)).first() is not None

    # -- who delivers ----------------------------------------------------------------------

    def claim_lease(
        self, s: Session, subscription_id: int, owner: str, now: datetime, until: datetime
    ) -> bool:
        """Inside a write: makes ``owner`` the one dispatcher delivering for a subscription
        until ``until``, if nobody else holds it now; one statement, so two dispatchers never
        both win. True when ``owner`` holds it."""
        result = s.execute(
            update(EventSubscriptionRow)
            .where(
                EventSubscriptionRow.id == int(subscription_id),
                or_(
                    EventSubscriptionRow.lease_owner.is_(None),
                    EventSubscriptionRow.lease_owner == owner,
                    and_(
                        EventSubscriptionRow.lease_until.is_not(None), EventSubscriptionRow.lease_until < now
                    ),
                ),
            )
            .values(lease_owner=owner, lease_until=until)
        )
        return bool(_rows(result))

    def release_lease(self, s: Session, subscription_id: int, owner: str) -> None:
        """Inside a write: ``owner`` stops delivering for a subscription (another may start)."""
        s.execute(
            update(EventSubscriptionRow)
            .where(EventSubscriptionRow.id == int(subscription_id), EventSubscriptionRow.lease_owner == owner)
            .values(lease_owner=None, lease_until=None)
        )

    def due_count(self, s: Session, now: datetime) -> int:
        """How many subscriptions have a delivery due at ``now``: their oldest pending one
        (the head of their order) is not waiting for a retry."""
        heads = (
            select(
                EventDeliveryRow.subscription_id.label("sub"),
                func.min(EventDeliveryRow.event_id).label("head"),
            )
            .where(EventDeliveryRow.state == "pending")
            .group_by(EventDeliveryRow.subscription_id)
            .subquery()
        )
        return int(
            s.execute(
                select(func.count())
                .select_from(EventDeliveryRow)
                .join(
                    heads,
                    and_(
                        EventDeliveryRow.subscription_id == heads.c.sub,
                        EventDeliveryRow.event_id == heads.c.head,
                    ),
                )
                .where(EventDeliveryRow.state == "pending", EventDeliveryRow.next_attempt_at <= now)
            ).scalar_one()
        )

"""``/events``: the gallery's event subscriptions (webhooks, MQTT brokers), what they are
owed, and the test and retry of deliveries. Admin keys only: a subscription sends the gallery's
events anywhere, loopback and private networks included. The events themselves are documented
as the OpenAPI document's webhooks (:func:`document_webhooks`)."""

# No `from __future__ import annotations`: FastAPI reads the endpoints' annotations at run
# time.
from typing import Annotated, Any, Literal

from fastapi import APIRouter, FastAPI, Query
from fastapi import Path as PathParam
from fastapi.concurrency import run_in_threadpool

from facedb.events import EVENT_TYPES
from facedb.serialize import delivery_json, new_subscription_json, queued_event_json, subscription_json
from facedb.service.answers import (
    DeliveryAnswer,
    EventAnswer,
    NewSubscriptionAnswer,
    QueuedEventAnswer,
    SubscriptionAnswer,
    answers,
)
from facedb.service.context import Service
from facedb.service.schema import MAX_ID, RetryEvent, RetryRequest, SubscriptionRequest

__all__ = ["document_webhooks", "router"]

#: How long ``POST /events/subscriptions/{id}/test`` waits for the receiver.
TEST_TIMEOUT = 5.0


def router(service: Service) -> APIRouter:
    """The event endpoints of ``service``."""
    db, admin, locked = service.db, service.admin, service.locked
    routes = APIRouter(route_class=service.route_class, tags=["events"], dependencies=[admin])
    subscription_path = PathParam(ge=1, le=MAX_ID)
    links = {
        name: {"operationId": operation, "parameters": {"subscription_id": "$response.body#/id"}}
        for name, operation in (
            ("GetSubscription", "get_subscription"),
            ("TestSubscription", "test_subscription"),
            ("DeleteSubscription", "delete_subscription"),
        )
    }

    @routes.get(
        "/events/subscriptions",
        operation_id="list_subscriptions",
        response_model=None,
        responses=answers(list[SubscriptionAnswer], "every subscription, with what it is owed"),
    )
    async def list_subscriptions() -> list[dict[str, Any]]:
        """The gallery's event subscriptions (never their secrets)."""
        return [subscription_json(s) for s in await run_in_threadpool(db.events.subscriptions)]

    @routes.post(
        "/events/subscriptions",
        operation_id="create_subscription",
        status_code=201,
        response_model=None,
        responses=answers(
            NewSubscriptionAnswer, "the subscription, with its secret (shown only now)", 201, links=links
        ),
    )
    async def create_subscription(body: SubscriptionRequest) -> dict[str, Any]:
        """Subscribes a webhook (http/https) or an MQTT broker (mqtt/mqtts) to the gallery's
        events. A webhook's signing secret is made unless given, and answered only now."""
        made = await run_in_threadpool(
            locked,
            db.events.add,
            body.url,
            secret=body.secret,
            types=body.types,
            home_assistant=body.home_assistant,
        )
        return new_subscription_json(made)

    @routes.get(
        "/events/subscriptions/{subscription_id}",
        operation_id="get_subscription",
        response_model=None,
        responses=answers(SubscriptionAnswer, "the subscription"),
    )
    async def get_subscription(subscription_id: Annotated[int, subscription_path]) -> dict[str, Any]:
        """One subscription."""
        return subscription_json(await run_in_threadpool(db.events.subscription, subscription_id))

    @routes.delete(
        "/events/subscriptions/{subscription_id}",
        operation_id="delete_subscription",
        response_model=None,
        responses=answers(dict[str, int], "the subscription is gone, its secret erased"),
    )
    async def delete_subscription(subscription_id: Annotated[int, subscription_path]) -> dict[str, Any]:
        """Removes a subscription, erasing its secret and dropping what it was owed."""
        await run_in_threadpool(locked, db.events.remove, subscription_id)
        return {"removed": subscription_id}

    @routes.post(
        "/events/subscriptions/{subscription_id}/test",
        operation_id="test_subscription",
        response_model=None,
        responses=answers(DeliveryAnswer, "what the receiver answered (ok false: it refused or was away)"),
    )
    async def test_subscription(subscription_id: Annotated[int, subscription_path]) -> dict[str, Any]:
        """Delivers one subscription.test event at once and reports the receiver's answer."""
        result = await run_in_threadpool(db.events.test, subscription_id, timeout=TEST_TIMEOUT)
        return delivery_json(result)

    @routes.get(
        "/events/queue",
        operation_id="list_queued_events",
        response_model=None,
        responses=answers(list[QueuedEventAnswer], "the events owed, oldest first"),
    )
    async def list_queued_events(
        state: Annotated[
            Literal["pending", "failed"], Query(description="failed: the dead letters")
        ] = "failed",
    ) -> list[dict[str, Any]]:
        """Events the subscriptions are owed: pending, or failed (given up on: the dead letters)."""
        found = await run_in_threadpool(db.events.failed if state == "failed" else db.events.pending)
        return [queued_event_json(e) for e in found]

    @routes.post(
        "/events/retry",
        operation_id="retry_events",
        response_model=None,
        responses=answers(dict[str, int], "how many deliveries were queued again"),
    )
    async def retry_events(body: RetryRequest) -> dict[str, Any]:
        """Queues failed events again: one (``{"event": id}``) or every one (``{"all": true}``)."""
        which = body.event if isinstance(body, RetryEvent) else None
        count = await run_in_threadpool(locked, db.events.retry, which)
        return {"queued": count}

    return routes


def document_webhooks(app: FastAPI) -> None:
    """Describes each event type as one of the OpenAPI document's webhooks (what facedb POSTs
    to a subscription, signed by the Standard Webhooks convention)."""
    for type_, meaning in EVENT_TYPES.items():

        def receive(body: EventAnswer) -> None:
            """An event."""

        app.webhooks.post(
            type_,
            summary=meaning,
            description=(
                f"{meaning}. POSTed as JSON with the headers webhook-id (the event's id), "
                "webhook-timestamp and webhook-signature (v1, base64 HMAC-SHA256 of "
                "id.timestamp.body keyed with the secret's base64-decoded bytes); any 2xx answer "
                "is a delivery, anything else is retried. Published on MQTT as "
                f"<prefix>/{type_} at QoS 1."
            ),
            operation_id=f"event_{type_.replace('.', '_')}",
        )(receive)

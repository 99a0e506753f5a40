"""What the service's OpenAPI document says beside the endpoints: path and query parameter
types, the request and error models, and the error responses every endpoint declares."""

# No `from __future__ import annotations`: pydantic and FastAPI read these at run time.
import re
from datetime import date, datetime
from typing import Annotated, Any, Literal

from fastapi import Path as PathParam
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StrictBool

from facedb.jobs.people import FORBIDDEN_IN_NAMES, INVISIBLE

__all__ = [
    "ERRORS",
    "ID_PATH",
    "JSON_MAX_ID",
    "MAX_ID",
    "NAME_PATTERN",
    "ConfirmRequest",
    "ErrorBody",
    "ErrorDetail",
    "FormBool",
    "Health",
    "NameGroupRequest",
    "RejectRequest",
    "RenameRequest",
    "RetryAll",
    "RetryEvent",
    "RetryRequest",
    "SubscriptionRequest",
    "TimeBound",
    "id_of",
]

#: The largest id a person can have (SQL BIGINT), so that no path parameter overflows.
MAX_ID = 2**63 - 1
#: The largest id a JSON body carries: the largest integer every JSON reader keeps exact
#: (a double's 53 bits; 2**63 - 1 in a body comes back as 2**63 from many).
JSON_MAX_ID = 2**53 - 1
#: An id in a path, for every door of the service (the JSON API's and the web page's): a
#: number from 1 to MAX_ID, so that none overflows the database's integers.
ID_PATH = PathParam(ge=1, le=MAX_ID)


def id_of(text: str | None) -> int | None:
    """An id typed into a form or a query (ASCII digits, 1 to MAX_ID), or None for anything
    else: ``str.isdigit`` also takes "²", which ``int`` then refuses."""
    if text is None or not re.fullmatch(r"[0-9]{1,19}", text):
        return None
    value = int(text)
    return value if 1 <= value <= MAX_ID else None


#: A name: no control character or bidi override, and one visible character (the rule of
#: facedb.jobs.people.check_name, so that the schema says what every door accepts).
NAME_PATTERN = rf"^[^{FORBIDDEN_IN_NAMES}]*[^\s{FORBIDDEN_IN_NAMES}{INVISIBLE}][^{FORBIDDEN_IN_NAMES}]*$"


def _iso_time(value: Any) -> Any:
    # pydantic would take "0" for 1970-01-01: the schema says an ISO date or date-time.
    if isinstance(value, str) and not re.match(r"\d{4}-\d{2}-\d{2}", value):
        raise ValueError("expected an ISO 8601 date (2026-12-01) or date-time (2026-12-01T08:00:00+01:00)")
    return value


def _form_bool(value: Any) -> Any:
    # A form field is text: "true" or "false" as JSON spells them, nothing pydantic's lax
    # mode would also take ("yes", "on", "1", "t").
    if isinstance(value, str):
        if value not in ("true", "false"):
            raise ValueError('expected "true" or "false"')
        return value == "true"
    return value


#: A multipart form field that is a boolean: ``true`` or ``false``.
FormBool = Annotated[bool, BeforeValidator(_form_bool)]

#: A query parameter that is an ISO date or date-time.
TimeBound = Annotated[datetime | date | None, BeforeValidator(_iso_time)]


class RenameRequest(BaseModel):
    """A person's new name."""

    name: str = Field(min_length=1, max_length=500, pattern=NAME_PATTERN)


#: The event types a subscription may ask for (facedb.events.EVENT_TYPES).
EventType = Literal[
    "visit.started",
    "person.identified",
    "person.enrolled",
    "person.renamed",
    "person.removed",
    "group.named",
    "group.dismissed",
]


class SubscriptionRequest(BaseModel):
    """A new event subscription: a webhook (http/https URL) or an MQTT broker
    (mqtt://host:port/topic-prefix). Loopback and private addresses are allowed: only admin keys
    make subscriptions."""

    url: str = Field(min_length=8, max_length=2000, pattern=r"^(https?|mqtts?)://[^\s]+$")
    secret: str | None = Field(
        default=None, max_length=200, description="a webhook's whsec_ secret (default: a new one)"
    )
    types: list[EventType] | None = Field(
        default=None, max_length=7, description="default: every type but person.identified"
    )
    home_assistant: StrictBool = Field(default=False, description="MQTT: publish Home Assistant discovery")


class RetryEvent(BaseModel):
    """One failed event to queue again, by its id."""

    model_config = ConfigDict(extra="forbid")

    event: str = Field(max_length=40, pattern=r"^evt_[0-9a-f]{32}$")


class RetryAll(BaseModel):
    """Every failed event, queued again."""

    model_config = ConfigDict(extra="forbid")

    all: Literal[True]


#: Which failed events to queue again: one (``{"event"}``) or all (``{"all": true}``).
RetryRequest = RetryEvent | RetryAll


class NameGroupRequest(BaseModel):
    """The name to enroll a group's faces as (a new person, or the one person so named)."""

    name: str = Field(min_length=1, max_length=500, pattern=NAME_PATTERN)
    # Strict: JSON's true or false, not the 0, 1 or "yes" that pydantic's lax mode would take
    # and the schema (a boolean) refuses.
    force: StrictBool = Field(default=False, description="skip the likeness checks (admin keys only)")


class RejectRequest(BaseModel):
    """Whom a logged visit was not: a person's id (default: the person it was logged as)."""

    person_id: int | None = Field(default=None, ge=1, le=JSON_MAX_ID)


class ConfirmRequest(BaseModel):
    """Whom a logged visit was; ``force`` skips the mislabel check (admin keys only)."""

    person_id: int = Field(ge=1, le=JSON_MAX_ID)
    force: StrictBool = False


class ErrorDetail(BaseModel):
    """What went wrong: a stable code, a message for people, and the request's id."""

    code: str
    message: str
    request_id: str | None


class ErrorBody(BaseModel):
    """Every error answer of the service."""

    error: ErrorDetail


class Health(BaseModel):
    """Liveness and readiness; the sizes only for a caller with a valid key."""

    status: str = Field(description='"ok", or "unavailable" (HTTP 503)')
    people: int | None = None
    faces: int | None = None
    model: str | None = None
    index: str | None = None
    generation: int | None = None
    threshold: float | None = Field(None, description="the similarity needed to name a person")
    threshold_source: str | None = Field(
        None, description='"explicit", "calibrated" or "prior" (the prior at the gallery\'s size)'
    )
    threshold_rule: str | None = Field(None, description="how the threshold in force was chosen, in words")
    estimated_fpir: float | None = Field(
        None, description="share of strangers' searches estimated to name somebody, at this size"
    )
    target_fpir: float | None = Field(None, description="the FPIR aimed at; null for an explicit threshold")
    calibration_target: str | None = Field(None, description='e.g. "fpir 0.01"; null before a calibration')
    calibrated_people: int | None = Field(None, description="the gallery's size when calibrated")
    calibration_warning: str | None = Field(
        None,
        description="set when the estimated FPIR exceeds the target, or the gallery has grown "
        "well past its calibration: run calibrate",
    )


_RETRY_AFTER = {"Retry-After": {"description": "seconds to wait", "schema": {"type": "integer"}}}
#: The error responses every endpoint declares, by status.
ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorBody, "description": "no API key, or an unknown or revoked one"},
    403: {"model": ErrorBody, "description": "the API key lacks the scope this call needs"},
    404: {"model": ErrorBody, "description": "no such person"},
    409: {
        "model": ErrorBody,
        "description": "a name in use (name_in_use), or the gallery is inconsistent, read-only or busy",
    },
    413: {"model": ErrorBody, "description": "a photo or the request is over the size limit"},
    422: {"model": ErrorBody, "description": "the request or a photo was refused (the code says why)"},
    429: {
        "model": ErrorBody,
        "description": "too many failed API keys from this address",
        "headers": _RETRY_AFTER,
    },
    500: {"model": ErrorBody, "description": "an internal error (details in the server log)"},
    503: {"model": ErrorBody, "description": "the vector store cannot answer now", "headers": _RETRY_AFTER},
}

"""The shapes of the service's answers, for the OpenAPI document: what facedb.serialize
builds, as pydantic models with examples.

They document and do not filter: the endpoints return facedb.serialize's dicts as they are
(``response_model=None``), and tests/test_service.py holds every model to a live answer's
fields, so that the document cannot drift from what is sent.
"""

# No `from __future__ import annotations`: pydantic and FastAPI read these at run time.
from datetime import date, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, JsonValue

from facedb.service.schema import ERRORS

__all__ = [
    "AttendanceAnswer",
    "CandidateAnswer",
    "DeliveryAnswer",
    "DiscoveryAnswer",
    "DismissedAnswer",
    "EnrollmentAnswer",
    "EventAnswer",
    "FaceAnswer",
    "GroupAnswer",
    "GroupFaceAnswer",
    "NamedFaceAnswer",
    "NewSubscriptionAnswer",
    "PersonAnswer",
    "PersonRef",
    "PhotoAnswer",
    "QueuedEventAnswer",
    "RemovedAnswer",
    "SightingAnswer",
    "SubscriptionAnswer",
    "VerificationAnswer",
    "answers",
]

_PERSON: dict[str, JsonValue] = {
    "id": 7,
    "name": "Ada Lovelace",
    "metadata": {"team": "analytics"},
    "face_count": 3,
    "created_at": "2026-12-01T09:30:00+00:00",
}


class PersonRef(BaseModel):
    """A person named inside another answer."""

    id: int
    name: str


class PersonAnswer(BaseModel):
    """Someone in the gallery."""

    model_config = ConfigDict(json_schema_extra={"examples": [_PERSON]})

    id: int
    name: str
    metadata: dict[str, Any]
    face_count: int = Field(description="how many templates they have")
    created_at: datetime


class EnrollmentAnswer(PersonAnswer):
    """An enrollment: the person, the new face ids, and the photos skipped as already enrolled."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{**_PERSON, "added": [31, 32], "skipped": [["ada-2019.jpg", "already enrolled"]]}]
        }
    )

    added: list[int]
    skipped: list[list[str]] = Field(description="[photo, reason] pairs")


class RemovedAnswer(BaseModel):
    """A removal: the person as they were."""

    removed: PersonAnswer


class CandidateAnswer(BaseModel):
    """A person who resembles a face, with their best similarity."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"id": 7, "name": "Ada Lovelace", "similarity": 0.71}]}
    )

    id: int
    name: str
    similarity: float


_FACE: dict[str, JsonValue] = {
    "bbox": [120.5, 80.0, 230.25, 215.0],
    "score": 0.8731,
    "quality": 1.0,
    "quality_reasons": [],
    "person": {"id": 7, "name": "Ada Lovelace"},
    "similarity": 0.7102,
    "ambiguous": False,
    "status": "named",
    "confidence": 0.9991,
    "threshold": 0.3235,
    "candidates": [{"id": 7, "name": "Ada Lovelace", "similarity": 0.7102}],
}


class FaceAnswer(BaseModel):
    """Who one face of a photo is."""

    model_config = ConfigDict(json_schema_extra={"examples": [_FACE]})

    bbox: list[float] = Field(min_length=4, max_length=4, description="[x1, y1, x2, y2] in pixels")
    score: float = Field(description="the detector's confidence")
    quality: float = Field(description="0..1; below 0.5 the face is poor (status poor_quality)")
    quality_reasons: list[str] = Field(
        description='why it is poor: "blurred", "too small", "turned away", ...'
    )
    person: PersonRef | None = Field(description="who it is; null unless status is named")
    similarity: float
    ambiguous: bool
    status: Literal["named", "unknown", "ambiguous", "poor_quality"]
    confidence: float | None = Field(description="probability that the named person is right")
    threshold: float | None = Field(
        description="the naming threshold this answer was given at (it follows the gallery's size "
        "until a calibration)"
    )
    candidates: list[CandidateAnswer]


class PhotoAnswer(BaseModel):
    """The answer for one photo: its faces, left to right."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"image": "door.jpg", "faces": [_FACE]}]})

    image: str
    faces: list[FaceAnswer]


class VerificationAnswer(BaseModel):
    """Whether two photos show the same person."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"similarity": 0.6813, "same_person": True, "threshold": 0.4}]}
    )

    similarity: float
    same_person: bool
    threshold: float


class SightingAnswer(BaseModel):
    """A visit logged by ``facedb watch``."""

    id: int
    person: PersonRef | None
    stranger_id: int | None
    source: str
    first_seen: datetime
    last_seen: datetime
    similarity: float
    bbox: list[float]
    frames: int
    has_thumbnail: bool = Field(description="GET /sightings/{id}/thumbnail has the face the visit began with")


class AttendanceAnswer(BaseModel):
    """First and last sighting of one person (or stranger) on one day."""

    date: date
    person_id: int | None
    name: str | None
    stranger_id: int | None
    first_seen: datetime
    last_seen: datetime
    visits: int


class GroupFaceAnswer(BaseModel):
    """One face of a group of unnamed faces."""

    id: int
    photo: str = Field(description="the photo's name (an upload's, with a hash of its content)")
    bbox: list[float] = Field(min_length=4, max_length=4)
    det_score: float
    quality: float | None
    seen_at: datetime
    has_thumbnail: bool


class GroupAnswer(BaseModel):
    """A group of faces that look like one person nobody has named."""

    id: int
    size: int
    origin: Literal["discover", "watch"]
    first_seen: datetime
    last_seen: datetime
    representative: int | None = Field(description="the id of the face to show for the group")
    faces: list[GroupFaceAnswer]


class NamedFaceAnswer(BaseModel):
    """A face of somebody enrolled, found by discover."""

    photo: str
    bbox: list[float]
    person: PersonRef
    similarity: float


class DiscoveryAnswer(BaseModel):
    """What a discover found."""

    photos: int = Field(description="photos looked at")
    already: int = Field(description="photos skipped as discovered before")
    faces: int = Field(description="faces found in the photos looked at")
    grouped: int = Field(description="how many of them were put in groups")
    new_groups: int = Field(description="how many of the groups these photos started")
    groups: list[GroupAnswer] = Field(
        description="the groups that got a face from these photos, with all their faces (earlier ones too)"
    )
    named: list[NamedFaceAnswer]
    skipped: list[list[str]] = Field(description="[photo, reason] pairs")


class DismissedAnswer(BaseModel):
    """A dismissed group."""

    dismissed: int


_EVENT: dict[str, JsonValue] = {
    "id": "evt_5f0c6a1e9d1b4c8f8a3e2b7d6c5a4f31",
    "type": "visit.started",
    "timestamp": "2026-12-07T08:59:58.400000Z",
    "data": {
        "gallery": "167e7ce7-0fe7-468a-bbb0-1455d1910120",
        "person": {"id": 7, "name": "Ada Lovelace"},
        "stranger": None,
        "similarity": 0.7102,
        "sighting": {"id": 412, "frames": 3, "bbox": [120.5, 80.0, 230.2, 215.0]},
        "source": "0",
    },
}


class EventAnswer(BaseModel):
    """One event, exactly as a webhook's body or an MQTT message's payload carries it: its
    ``id`` is the same on every retry and on every channel (the webhook's ``webhook-id``), its
    ``timestamp`` when it happened (UTC), and ``data`` depends on its type (README, "Events").
    It never carries a template or a path on the server."""

    model_config = ConfigDict(json_schema_extra={"examples": [_EVENT]})

    id: str = Field(description="evt_ and 32 hex digits: the same on every retry")
    type: str = Field(
        description="visit.started, person.identified, person.enrolled, ... or subscription.test"
    )
    timestamp: str = Field(description="when it happened, UTC, ISO 8601 (a visit: its first sighting)")
    data: dict[str, Any] = Field(description="gallery (its uid) and what happened; see README, Events")


_SUBSCRIPTION: dict[str, JsonValue] = {
    "id": 3,
    "kind": "webhook",
    "target": "http://10.0.0.5:8123/api/webhook/facedb",
    "types": ["visit.started", "person.enrolled"],
    "created_at": "2026-12-07T08:00:00+00:00",
    "has_secret": True,
    "home_assistant": False,
    "pending": 0,
    "failed": 0,
}


class SubscriptionAnswer(BaseModel):
    """Where a gallery's events go (its secret is never shown again)."""

    model_config = ConfigDict(json_schema_extra={"examples": [_SUBSCRIPTION]})

    id: int
    kind: Literal["webhook", "mqtt"]
    target: str = Field(description="the webhook URL, or mqtt://host:port/topic-prefix without a password")
    types: list[str]
    created_at: datetime
    has_secret: bool
    home_assistant: bool
    pending: int = Field(description="events queued and not yet delivered")
    failed: int = Field(description="events given up on (dead letters)")


class NewSubscriptionAnswer(SubscriptionAnswer):
    """A subscription just made, with its signing secret: shown only now."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{**_SUBSCRIPTION, "secret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}]
        }
    )

    secret: str | None = Field(description="a webhook's whsec_ secret (null for MQTT)")


class QueuedEventAnswer(BaseModel):
    """An event a subscription is owed (pending) or gave up on (failed)."""

    event: EventAnswer
    subscription_id: int
    state: Literal["pending", "failed"]
    attempts: int
    queued_at: datetime
    next_attempt_at: datetime
    last_error: str | None


class DeliveryAnswer(BaseModel):
    """What a receiver answered a test event."""

    ok: bool
    status: int | None = Field(description="the HTTP status (null for MQTT, or no answer)")
    detail: str
    seconds: float
    event_id: str


def answers(model: Any, description: str, status: int = 200, **extra: Any) -> dict[int | str, dict[str, Any]]:
    """An endpoint's documented responses: its answer's model at ``status``, and the errors."""
    return {**ERRORS, status: {"model": model, "description": description, **extra}}

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
    "DiscoveryAnswer",
    "DismissedAnswer",
    "EnrollmentAnswer",
    "FaceAnswer",
    "GroupAnswer",
    "GroupFaceAnswer",
    "NamedFaceAnswer",
    "PersonAnswer",
    "PersonRef",
    "PhotoAnswer",
    "RemovedAnswer",
    "SightingAnswer",
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


def answers(model: Any, description: str, status: int = 200, **extra: Any) -> dict[int | str, dict[str, Any]]:
    """An endpoint's documented responses: its answer's model at ``status``, and the errors."""
    return {**ERRORS, status: {"model": model, "description": description, **extra}}

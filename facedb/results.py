"""The records the gallery answers with: people, candidates, identifications, enrollments and
the consistency report (frozen dataclasses that cross the public API)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Literal

from facedb.engine import Face

if TYPE_CHECKING:
    from facedb.store import PersonFields

__all__ = [
    "AuditFinding",
    "AuditKind",
    "Candidate",
    "CheckReport",
    "Enrollment",
    "Identification",
    "Person",
    "ReembedReport",
    "Status",
    "person_from_fields",
]

#: What an identification concluded: somebody was named; nobody enrolled passes the
#: threshold; the best two people are too close to tell apart; or the face is too poor (small,
#: blurred, turned away) for any answer to be trusted, so the caller should ask for a better one.
Status = Literal["named", "unknown", "ambiguous", "poor_quality"]


@dataclass(frozen=True, slots=True)
class Person:
    """Someone in the gallery.

    Attributes:
        id: stable, never reused.
        name: a label (several people may share one).
        metadata: what the application stored with them (read-only mapping).
        face_count: how many templates they have.
        created_at: when they were enrolled (UTC).
    """

    id: int
    name: str
    metadata: Mapping[str, Any]
    face_count: int
    created_at: datetime

    def __repr__(self) -> str:
        return f"Person(id={self.id}, name={self.name!r}, face_count={self.face_count})"


@dataclass(frozen=True, slots=True)
class Candidate:
    """A person who resembles a face, with their best similarity over their faces."""

    person: Person
    similarity: float


@dataclass(frozen=True, slots=True)
class Identification:
    """Who one face in a photo is.

    Attributes:
        face: the face found.
        person: who it is, or None when nobody passes the threshold, it is ambiguous, or the
            face is below the quality bar (``face.quality_reasons`` says why).
        similarity: the named person's similarity, else the best candidate's (0 without any).
        candidates: the most similar people, best first (at most k).
        ambiguous: the best two people were too close to tell apart.
        status: ``"named"``, ``"unknown"``, ``"ambiguous"`` or ``"poor_quality"``
            (:data:`Status`).
        confidence: the probability that the named person is right, from the score model in
            force (calibrated or the model's prior) and the gallery's size; None when nobody
            is named.
        threshold: the naming threshold this answer was given at (the one in force, which
            follows the gallery's size before a calibration, or the call's own).
    """

    face: Face
    person: Person | None
    similarity: float
    candidates: list[Candidate]
    ambiguous: bool = False
    status: Status = "unknown"
    confidence: float | None = None
    threshold: float | None = None


@dataclass(frozen=True, slots=True)
class Enrollment:
    """What an enrollment did: the person, the new face ids, and the photos skipped as
    already enrolled (photo, reason). ``replayed``: this is the recorded answer of an earlier
    call with the same request key, which wrote nothing this time."""

    person: Person
    added: list[int]
    skipped: list[tuple[str, str]] = field(default_factory=list)
    replayed: bool = False


@dataclass(frozen=True, slots=True)
class CheckReport:
    """The gallery's consistency: SQL faces against the vector index."""

    ok: bool
    people: int
    faces: int
    indexed: int
    missing_from_index: int
    extra_in_index: int
    repaired: bool
    index_kind: str
    problems: list[str]


@dataclass(frozen=True, slots=True)
class ReembedReport:
    """What :meth:`FaceDB.reembed <facedb.FaceDB.reembed>` did.

    Attributes:
        pack: the pack the gallery's templates are now made by.
        model: that pack's recognizer (its model id).
        faces: faces whose template was made anew (all of them, when nothing was dropped).
        resumed: how many of those an earlier, interrupted run had already made.
        dropped: lines naming what held a template that could not be made anew and was
            deleted (``drop_missing=True``): faces without a kept crop, negative examples,
            discovered groups.
        visits_cleared: visits whose stored template was cleared (the visits stay).
        seconds: how long it took.
    """

    pack: str
    model: str
    faces: int
    resumed: int
    dropped: list[str]
    visits_cleared: int
    seconds: float


#: Why :meth:`FaceDB.audit <facedb.FaceDB.audit>` suspects an enrollment: a face unlike its
#: person's other faces; a face closer to somebody else than to its own person; two people who
#: look like one enrolled twice; a face below the quality bar.
AuditKind = Literal["far_from_own", "closer_to_other", "duplicate_person", "low_quality"]


@dataclass(frozen=True, slots=True)
class AuditFinding:
    """A suspect enrollment found by :meth:`FaceDB.audit <facedb.FaceDB.audit>`.

    Attributes:
        kind: what is suspect (:data:`AuditKind`).
        face_id: the face concerned; None for ``"duplicate_person"`` (a finding about people).
        person: the person the face belongs to (for a duplicate, the first of the two).
        reason: one sentence a user reads: what was measured against what.
        action: the command that fixes it once a human agrees (e.g. ``facedb reject --face 17``).
        similarity: the similarity behind the finding (the quality score for ``"low_quality"``).
        other: the other person involved (``"closer_to_other"``, ``"duplicate_person"``).
    """

    kind: AuditKind
    face_id: int | None
    person: Person
    reason: str
    action: str
    similarity: float | None = None
    other: Person | None = None


def person_from_fields(row: PersonFields, face_count: int) -> Person:
    """A Person from a person's stored fields and how many faces they have."""
    return Person(
        id=int(row.id),
        name=row.name,
        metadata=MappingProxyType(json.loads(row.metadata_json or "{}")),
        face_count=face_count,
        created_at=row.created_at,
    )

"""The JSON shapes of facedb's answers, one function per shape.

The CLI's ``--json`` output and the HTTP service both print through these functions, so a
person, an identification or a verification looks the same everywhere (docs/http.md, "JSON
shapes"). Each function returns plain dicts and lists that ``json.dumps`` takes as they are:
times are ISO 8601 strings, similarities and scores are rounded to 4 places, boxes to 2.
"""

from __future__ import annotations

import math
from dataclasses import fields
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping, Sequence

    from facedb.attendance import AttendanceRow, Sighting
    from facedb.calibration import Calibration
    from facedb.discovery import Discovery, Group, GroupFace
    from facedb.engine import Verification
    from facedb.events import DeliveryResult, NewSubscription, QueuedEvent, Subscription
    from facedb.folders import FolderImport
    from facedb.keys import ApiKey
    from facedb.results import AuditFinding, Candidate, CheckReport, Enrollment, Identification, Person
    from facedb.transfer import CopyReport

__all__ = [
    "attendance_json",
    "audit_json",
    "calibration_json",
    "candidate_json",
    "check_json",
    "copy_json",
    "delivery_json",
    "discovery_json",
    "enrollment_json",
    "error_json",
    "face_json",
    "finding_json",
    "folder_import_json",
    "group_face_json",
    "group_json",
    "identification_json",
    "key_json",
    "new_subscription_json",
    "person_json",
    "person_ref_json",
    "photo_json",
    "queued_event_json",
    "rejection_json",
    "sighting_json",
    "subscription_json",
    "verification_json",
]


def person_ref_json(person_id: int | None, name: str | None) -> dict[str, Any] | None:
    """A reference to a person inside another answer: ``{"id", "name"}``, or None for nobody."""
    return None if person_id is None else {"id": person_id, "name": name}


def person_json(p: Person) -> dict[str, Any]:
    """A person: ``{"id", "name", "metadata", "face_count", "created_at"}``."""
    return {
        "id": p.id,
        "name": p.name,
        "metadata": dict(p.metadata),
        "face_count": p.face_count,
        "created_at": p.created_at.isoformat(),
    }


def enrollment_json(e: Enrollment) -> dict[str, Any]:
    """An enrollment: the person's fields, the new face ids (``added``) and the photos skipped
    as already enrolled (``skipped``: ``[photo, reason]`` pairs)."""
    return {**person_json(e.person), "added": list(e.added), "skipped": [list(s) for s in e.skipped]}


def candidate_json(c: Candidate) -> dict[str, Any]:
    """A candidate: ``{"id", "name", "similarity"}``."""
    return {"id": c.person.id, "name": c.person.name, "similarity": round(c.similarity, 4)}


def identification_json(r: Identification) -> dict[str, Any]:
    """One face's answer: ``{"bbox", "score", "quality", "quality_reasons", "person",
    "similarity", "ambiguous", "status", "confidence", "threshold", "candidates"}``; ``person``
    is ``{"id", "name"}`` or null (unknown, ambiguous or poor quality), ``quality_reasons``
    names why a face is poor (empty otherwise), ``confidence`` a probability or null when
    nobody is named, ``threshold`` the naming threshold the answer was given at."""
    return {
        "bbox": _box(r.face.bbox),
        "score": round(r.face.score, 4),
        # Down, not to nearest, so that a poor face (below 0.5) never reads 0.5.
        "quality": math.floor(r.face.quality * 10_000) / 10_000,
        "quality_reasons": list(r.face.quality_reasons),
        "person": None if r.person is None else person_ref_json(r.person.id, r.person.name),
        "similarity": round(r.similarity, 4),
        "ambiguous": r.ambiguous,
        "status": r.status,
        "confidence": None if r.confidence is None else round(r.confidence, 4),
        "threshold": None if r.threshold is None else round(r.threshold, 4),
        "candidates": [candidate_json(c) for c in r.candidates],
    }


def photo_json(image: str, results: Sequence[Identification]) -> dict[str, Any]:
    """The answer for one photo: ``{"image", "faces": [identification, ...]}``."""
    return {"image": image, "faces": [identification_json(r) for r in results]}


def verification_json(v: Verification) -> dict[str, Any]:
    """A verification: ``{"similarity", "same_person", "threshold"}``."""
    return {"similarity": round(v.similarity, 4), "same_person": v.same_person, "threshold": v.threshold}


def _box(bbox: Iterable[float]) -> list[float]:
    """A face box as every shape gives it: rounded to 2 places (a pixel's hundredth)."""
    return [round(float(v), 2) for v in bbox]


def sighting_json(v: Sighting) -> dict[str, Any]:
    """A visit logged by ``facedb watch``: ``{"id", "person", "stranger_id", "source",
    "first_seen", "last_seen", "similarity", "bbox", "frames", "has_thumbnail"}``."""
    return {
        "id": v.id,
        "person": person_ref_json(v.person_id, v.person_name),
        "stranger_id": v.stranger_id,
        "source": v.source,
        "first_seen": v.first_seen.isoformat(),
        "last_seen": v.last_seen.isoformat(),
        "similarity": round(v.similarity, 4),
        "bbox": _box(v.bbox),
        "frames": v.frames,
        "has_thumbnail": v.has_thumbnail,
    }


def attendance_json(r: AttendanceRow) -> dict[str, Any]:
    """A day of attendance: ``{"date", "person_id", "name", "stranger_id", "first_seen",
    "last_seen", "visits"}``."""
    return {
        "date": r.day.isoformat(),
        "person_id": r.person_id,
        "name": r.name,
        "stranger_id": r.stranger_id,
        "first_seen": r.first_seen.isoformat(),
        "last_seen": r.last_seen.isoformat(),
        "visits": r.visits,
    }


def folder_import_json(r: FolderImport) -> dict[str, Any]:
    """A folder import (``import --json``): ``{"folders", "added": [face ids], "skipped":
    [[photo, reason]]}``."""
    return {"folders": r.folders, "added": list(r.added), "skipped": [list(x) for x in r.skipped]}


def copy_json(r: CopyReport) -> dict[str, Any]:
    """A copy (``copy --json``): every field of :class:`facedb.transfer.CopyReport`."""
    return {f.name: getattr(r, f.name) for f in fields(r)}


def face_json(f: Mapping[str, Any]) -> dict[str, Any]:
    """An enrolled face, as :meth:`facedb.FaceDB.faces` lists it: ``{"id", "bbox", "score",
    "quality", "image", "sha256", "created_at", "has_thumbnail"}``."""
    return {
        **f,
        "bbox": None if f.get("bbox") is None else _box(f["bbox"]),
        "created_at": f["created_at"].isoformat() if f.get("created_at") else None,
    }


def key_json(k: ApiKey) -> dict[str, Any]:
    """An API key's record (never its secret): ``{"id", "name", "prefix", "scope",
    "created_at", "revoked_at"}``."""
    return {
        "id": k.id,
        "name": k.name,
        "prefix": k.prefix,
        "scope": k.scope,
        "created_at": k.created_at.isoformat(),
        "revoked_at": None if k.revoked_at is None else k.revoked_at.isoformat(),
    }


def error_json(code: str, message: str, request_id: str | None) -> dict[str, dict[str, str | None]]:
    """An HTTP error: ``{"error": {"code", "message", "request_id"}}``."""
    return {"error": {"code": code, "message": message, "request_id": request_id}}


def check_json(report: CheckReport) -> dict[str, Any]:
    """A consistency check: every field of :class:`facedb.CheckReport`."""
    return {f.name: getattr(report, f.name) for f in fields(report)}


def calibration_json(c: Calibration) -> dict[str, Any]:
    """A calibration: ``{"threshold", "target", "target_kind", "estimated_fpir",
    "estimated_fnir", "people", "faces", "created_at", "source", "note"}``."""
    return {
        "threshold": round(c.threshold, 4),
        "target": c.target,
        "target_kind": c.target_kind,
        "estimated_fpir": None if c.estimated_fpir is None else float(f"{c.estimated_fpir:.4g}"),
        "estimated_fnir": None if c.estimated_fnir is None else float(f"{c.estimated_fnir:.4g}"),
        "people": c.people,
        "faces": c.faces,
        "created_at": c.created_at.isoformat(),
        "source": c.source,
        "note": c.note,
    }


def finding_json(f: AuditFinding) -> dict[str, Any]:
    """A suspect enrollment: ``{"kind", "face_id", "person", "other", "similarity", "reason",
    "action"}``; ``person`` and ``other`` are ``{"id", "name"}`` (``other`` null when no other
    person is involved, ``face_id`` null for a duplicate person)."""
    return {
        "kind": f.kind,
        "face_id": f.face_id,
        "person": person_ref_json(f.person.id, f.person.name),
        "other": None if f.other is None else person_ref_json(f.other.id, f.other.name),
        "similarity": None if f.similarity is None else round(f.similarity, 4),
        "reason": f.reason,
        "action": f.action,
    }


def audit_json(findings: Sequence[AuditFinding]) -> dict[str, Any]:
    """The audit: ``{"findings": [finding, ...]}``."""
    return {"findings": [finding_json(f) for f in findings]}


def rejection_json(rejection_id: int, face_id: int | None, sighting_id: int | None) -> dict[str, Any]:
    """A "not this person" recorded: ``{"rejection_id", "face_id", "sighting_id"}`` (what was
    rejected: an enrolled face, or a logged visit)."""
    return {"rejection_id": rejection_id, "face_id": face_id, "sighting_id": sighting_id}


def photo_label(photo: str, paths: bool) -> str:
    """How an answer names a photo: as stored, or (``paths=False``, for a client of the
    service) by its file name only, so that no server path leaves the server."""
    return photo if paths else photo.replace("\\", "/").rsplit("/", 1)[-1]


def group_face_json(f: GroupFace, paths: bool = True) -> dict[str, Any]:
    """One face of a group (``paths``: see :func:`photo_label`)."""
    return {
        "id": f.id,
        "photo": photo_label(f.photo, paths),
        "bbox": _box(f.bbox),
        "det_score": round(f.det_score, 4),
        "quality": None if f.quality is None else round(f.quality, 4),
        "seen_at": f.seen_at.isoformat(),
        "has_thumbnail": f.has_thumbnail,
    }


def group_json(g: Group, paths: bool = True) -> dict[str, Any]:
    """A group of unnamed faces (``paths``: see :func:`photo_label`)."""
    rep = g.representative
    return {
        "id": g.id,
        "size": g.size,
        "origin": g.origin,
        "first_seen": g.first_seen.isoformat(),
        "last_seen": g.last_seen.isoformat(),
        "representative": None if rep is None else rep.id,
        "faces": [group_face_json(f, paths) for f in g.faces],
    }


def discovery_json(d: Discovery, paths: bool = True) -> dict[str, Any]:
    """What a discover found (``paths``: see :func:`photo_label`)."""
    return {
        "photos": d.photos,
        "already": d.already,
        "faces": d.faces,
        "grouped": d.grouped,
        "new_groups": d.new_groups,
        "groups": [group_json(g, paths) for g in d.groups],
        "named": [
            {
                "photo": photo_label(n.photo, paths),
                "bbox": _box(n.bbox),
                "person": person_ref_json(n.person.id, n.person.name),
                "similarity": round(n.similarity, 4),
            }
            for n in d.named
        ],
        "skipped": [[photo_label(photo, paths), why] for photo, why in d.skipped],
    }


def subscription_json(s: Subscription) -> dict[str, Any]:
    """An event subscription: ``{"id", "kind", "target", "types", "created_at", "has_secret",
    "home_assistant", "pending", "failed"}`` (never its secret)."""
    return {
        "id": s.id,
        "kind": s.kind,
        "target": s.target,
        "types": list(s.types),
        "created_at": s.created_at.isoformat(),
        "has_secret": s.has_secret,
        "home_assistant": s.home_assistant,
        "pending": s.pending,
        "failed": s.failed,
    }


def new_subscription_json(made: NewSubscription) -> dict[str, Any]:
    """A subscription just made: :func:`subscription_json` and ``"secret"``, shown only now
    (a webhook's ``whsec_...``; null for MQTT)."""
    return {**subscription_json(made.subscription), "secret": made.secret}


def queued_event_json(e: QueuedEvent) -> dict[str, Any]:
    """An event owed to a subscription: ``{"event": {"id", "type", "timestamp", "data"},
    "subscription_id", "state", "attempts", "queued_at", "next_attempt_at", "last_error"}``;
    ``event`` is exactly what the receiver is sent."""
    from facedb.events import envelope

    return {
        "event": envelope(e.id, e.type, e.timestamp, e.data),
        "subscription_id": e.subscription_id,
        "state": e.state,
        "attempts": e.attempts,
        "queued_at": e.queued_at.isoformat(),
        "next_attempt_at": e.next_attempt_at.isoformat(),
        "last_error": e.last_error,
    }


def delivery_json(r: DeliveryResult) -> dict[str, Any]:
    """What a receiver answered a test event: ``{"ok", "status", "detail", "seconds",
    "event_id"}``."""
    return {
        "ok": r.ok,
        "status": r.status,
        "detail": r.detail,
        "seconds": round(r.seconds, 4),
        "event_id": r.event_id,
    }

"""Idempotent enrollments: the answer recorded with a request key, and its replay.

An enrollment made with a request key records its :class:`~facedb.results.Enrollment` in its
own transaction (``Store.remember_request``); a retry with the same key gets that answer back
(``replayed=True``) and writes nothing, and the same key with another request is refused.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from types import MappingProxyType

from facedb.errors import IdempotencyKeyReused
from facedb.results import Enrollment, Person

__all__ = ["IDEMPOTENCY_KEEP", "enrollment_record", "replay"]

#: How long an enrollment's idempotency key is remembered (a retry after that enrolls again).
IDEMPOTENCY_KEEP = timedelta(hours=24)


def enrollment_record(e: Enrollment) -> str:
    """An Enrollment as recorded with its request key."""
    p = e.person
    return json.dumps(
        {
            "person": {
                "id": p.id,
                "name": p.name,
                "metadata": dict(p.metadata),
                "face_count": p.face_count,
                "created_at": p.created_at.isoformat(),
            },
            "added": list(e.added),
            "skipped": [list(s) for s in e.skipped],
        },
        sort_keys=True,
    )


def replay(recorded: tuple[str, str] | None, fingerprint: str) -> Enrollment | None:
    """The Enrollment recorded with a request key, checked against this request's fingerprint."""
    if recorded is None:
        return None
    earlier_fingerprint, text = recorded
    if earlier_fingerprint != fingerprint:
        raise IdempotencyKeyReused(
            "this idempotency key was already used for a different request; use a new key"
        )
    doc = json.loads(text)
    p = doc["person"]
    person = Person(
        id=int(p["id"]),
        name=p["name"],
        metadata=MappingProxyType(p["metadata"]),
        face_count=int(p["face_count"]),
        created_at=datetime.fromisoformat(p["created_at"]),
    )
    skipped = [(str(a), str(b)) for a, b in doc["skipped"]]
    return Enrollment(person=person, added=[int(i) for i in doc["added"]], skipped=skipped, replayed=True)

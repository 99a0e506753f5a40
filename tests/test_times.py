"""Times in the gallery are points in time: stored as UTC, read back aware, on SQLite too
(which keeps no zone: SQLAlchemy alone reads back naive times and stores an aware time's wall
clock, hours off for a time given in another zone)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import numpy as np

import facedb
from facedb.keys import KeyStore
from facedb.serialize import person_json


def test_people_and_keys_come_back_aware_in_utc(tmp_path: Path) -> None:
    with facedb.FaceDB(tmp_path / "g") as db:
        db.import_embeddings(["a"], np.eye(1, 512, dtype=np.float32))
        (person,) = db.people()
        KeyStore(db.store).create("read", "k")
        (listed,) = KeyStore(db.store).list()
    assert person.created_at.tzinfo is not None and person.created_at.utcoffset() == timedelta(0)
    assert abs(person.created_at - datetime.now(UTC)) < timedelta(minutes=5)
    assert person_json(person)["created_at"].endswith("+00:00")
    assert listed.created_at.utcoffset() == timedelta(0)


def test_a_time_in_another_zone_is_stored_as_the_same_moment(tmp_path: Path) -> None:
    with facedb.FaceDB(tmp_path / "g") as db:
        (pid,) = [p.id for p in db.import_embeddings(["a"], np.eye(1, 512, dtype=np.float32))]
        tokyo = timezone(timedelta(hours=9))
        moment = datetime(2026, 12, 1, 18, 0, tzinfo=tokyo)  # 09:00 UTC
        with db.store.write() as s:
            db.store.add_sighting(
                s,
                person_id=pid,
                stranger_id=None,
                source="cam",
                first_seen=moment,
                last_seen=moment,
                similarity=0.9,
                bbox=[0.0, 0.0, 1.0, 1.0],
                frames=3,
            )
        from facedb.attendance import sightings

        (seen,) = sightings(
            db, datetime(2026, 12, 1, 8, 59, tzinfo=UTC), datetime(2026, 12, 1, 9, 1, tzinfo=UTC)
        )
    assert seen.first_seen == moment and seen.first_seen.utcoffset() == timedelta(0)

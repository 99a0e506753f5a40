"""Idempotent enrollments in the gallery (FaceDB._add): the request key is recorded in the
enrollment's own transaction, on SQLite and on PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, update

import facedb
from facedb.errors import EnrollmentRefused, IdempotencyKeyReused
from facedb.models import IdempotencyRow


@pytest.fixture(params=["sqlite", "postgresql"])
def location(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield str(tmp_path / "gallery")
        return
    from tests.helpers import fresh_database, server_url_or_skip

    with fresh_database(server_url_or_skip()) as url:
        yield url


def test_a_keyed_enrollment_happens_once(location: str, tmp_path: Path, engine: Any, faces_dir: Path) -> None:
    obama = faces_dir / "gallery/obama/obama.jpg"
    biden = faces_dir / "gallery/biden/biden.jpg"
    with facedb.FaceDB(location, engine=engine, cache_dir=tmp_path / "cache") as db:
        first = db.create_person("Obama", [obama], {"badge": 1}, request_key="7:a", request_fingerprint="f")
        again = db.create_person("Obama", [obama], {"badge": 1}, request_key="7:a", request_fingerprint="f")
        assert not first.replayed and again.replayed
        assert (again.person.id, again.added, again.person.face_count) == (
            first.person.id,
            first.added,
            first.person.face_count,
        )
        assert again.person.created_at == first.person.created_at and dict(again.person.metadata) == {
            "badge": 1
        }
        assert len(db) == 1
        with pytest.raises(IdempotencyKeyReused):
            db.create_person("Other", [biden], request_key="7:a", request_fingerprint="g")
        assert len(db) == 1
        # A refused enrollment records nothing: the key can be used once the photo is fixed.
        with pytest.raises(EnrollmentRefused):
            db.create_person("Nobody", [b"not a photo"], request_key="7:b", request_fingerprint="h")
        with db.store.read() as s:
            assert db.store.recall_request(s, "7:b") is None
        added = [
            db.add_photos(first.person, [biden], force=True, request_key="7:c", request_fingerprint="i")
            for _ in range(2)
        ]
        assert (
            added[1].replayed and added[0].added == added[1].added and db.get(first.person.id).face_count == 2
        )
    # Another process on the same gallery sees the key (it lives in the gallery database).
    with facedb.FaceDB(location, engine=engine, cache_dir=tmp_path / "cache") as other:
        assert other.create_person(
            "Obama", [obama], {"badge": 1}, request_key="7:a", request_fingerprint="f"
        ).replayed
        assert len(other) == 1


def test_old_keys_are_purged(location: str, tmp_path: Path, engine: Any, faces_dir: Path) -> None:
    photo = faces_dir / "gallery/obama/obama.jpg"
    with facedb.FaceDB(location, engine=engine, cache_dir=tmp_path / "cache") as db:
        db.create_person("Obama", [photo], request_key="old", request_fingerprint="f")
        with db.store.write() as s:
            s.execute(update(IdempotencyRow).values(created_at=datetime.now(UTC) - timedelta(hours=25)))
        db.create_person("Obama 2", [photo], force=True, request_key="new", request_fingerprint="f")
        with db.store.read() as s:
            assert list(s.scalars(select(IdempotencyRow.key))) == ["new"]

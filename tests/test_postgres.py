"""The gallery with its metadata on a real PostgreSQL server (started by `make test`)."""

from __future__ import annotations

import subprocess
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import inspect
from sqlalchemy.engine import make_url

import facedb
from facedb.store import Store, migrate

from .helpers import ROOT, enroll_gallery, postgres_data_or_skip, unit_rows


def test_gallery_on_postgres(
    pg_url: str, tmp_path: Path, faces_dir: Path, expected: dict[str, list[str]]
) -> None:
    with facedb.FaceDB(url=pg_url, cache_dir=tmp_path / "cache") as db:
        enroll_gallery(db, faces_dir)
        for image, names in expected.items():
            got = [r.person.name if r.person else "unknown" for r in db.identify(faces_dir / image)]
            assert got == names, image
        stats = db.stats()
        assert stats["people"] == 5 and stats["index_location"].startswith(str(tmp_path / "cache"))
        assert "postgresql" in stats["location"]
        db.remove(db.resolve("obama"))
    with facedb.FaceDB(url=pg_url, cache_dir=tmp_path / "cache") as db:
        assert len(db) == 4 and db.check().ok
        (r,) = db.identify(faces_dir / "probes/obama1.jpg")
        assert r.person is None


def test_two_machines_share_a_gallery(pg_url: str, tmp_path: Path) -> None:
    """Two openers with separate index caches, as on two machines, see each other's writes."""
    a = facedb.FaceDB(pg_url, cache_dir=tmp_path / "a")
    b = facedb.FaceDB(pg_url, cache_dir=tmp_path / "b")
    x = np.random.default_rng(3).normal(size=(4, 512))
    people = a.import_embeddings(["w", "x", "y", "z"], x)
    assert b.search(x[2], k=1)[0][0].person.id == people[2].id
    b.remove(people[2].id)
    assert all(c.person.id != people[2].id for c in a.search(x[2], k=4)[0])
    a.close()
    b.close()


def test_migrations_round_trip_on_postgres(pg_url: str) -> None:
    store = Store(pg_url)
    tables = set(inspect(store.engine).get_table_names())
    assert {"people", "faces", "gallery", "changes"} <= tables
    with store.engine.connect() as conn, conn.begin():
        migrate(conn, "base")
    assert set(inspect(store.engine).get_table_names()) == {"alembic_version"}
    with store.engine.connect() as conn, conn.begin():
        migrate(conn, "head")
    assert set(inspect(store.engine).get_table_names()) == tables
    store.close()


def test_password_never_appears_in_errors(server_url: str) -> None:
    url = make_url(server_url).set(password="s3cret-pw", database="does_not_exist")
    with pytest.raises(facedb.GalleryError) as info:
        facedb.FaceDB(url=url.render_as_string(hide_password=False))
    assert "s3cret-pw" not in str(info.value)


@pytest.mark.timeout(300)
def test_postgres_restart_is_an_error_never_a_wrong_answer(pg_url: str, tmp_path: Path) -> None:
    """Stops the real server (fast mode: every session cut), keeps it down 5 s and starts it
    again on the same port, under a loop of searches and enrollments. Each call answers right
    or raises DatabaseUnavailable (no SQLAlchemy or psycopg exception, no wrong answer, no
    half-written enrollment); afterwards the same FaceDB works again (stale pooled
    connections are replaced, not reported)."""
    data = postgres_data_or_skip()
    rng = np.random.default_rng(8)
    x = unit_rows(rng, 200)
    with facedb.FaceDB(url=pg_url, cache_dir=tmp_path / "cache") as db:
        people = db.import_embeddings([f"p{i}" for i in range(len(x))], x)
        for _ in range(10):  # fill the connection pool with connections the restart will kill
            db.search(x[0], k=1)
        times: dict[str, float] = {}

        def restart_server() -> None:
            times["began"] = time.monotonic()
            subprocess.run([str(ROOT / "scripts/postgres.sh"), "restart", str(data), "5"], check=True)
            times["ended"] = time.monotonic()

        worker = threading.Thread(target=restart_server)
        worker.start()
        right = wrong = unavailable = enrolled = 0
        first_error = last_error = 0.0
        right_after = 0
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not ("ended" in times and right_after >= 100):
            i = int(rng.integers(len(x)))
            try:
                if right % 20 == 19:
                    db.import_embeddings([f"new{enrolled}"], rng.normal(size=(1, 512)))
                    enrolled += 1
                found = db.search(x[i], k=1)[0]
            except facedb.DatabaseUnavailable as e:
                assert e.code == "database_unavailable" and e.http_status == 503 and e.retry_after > 0
                unavailable += 1
                first_error = first_error or time.monotonic()
                last_error = time.monotonic()
                right_after = 0
                time.sleep(0.05)
                continue
            if found and found[0].person.id == people[i].id:
                right += 1
                right_after += "ended" in times
            else:
                wrong += 1
        worker.join()
        print(
            f"\nPostgreSQL restart: {right} right, {unavailable} DatabaseUnavailable, {wrong} wrong; "
            f"unavailable for {last_error - first_error:.1f} s; {enrolled} enrolled meanwhile"
        )
        assert wrong == 0
        assert unavailable > 0, "the loop never saw the restart"
        assert right_after >= 100, "calls did not work again after the restart"
        # Every enrollment that returned is there; every one that raised left nothing.
        assert len(db) == len(x) + enrolled
        assert db.check(repair=False).ok

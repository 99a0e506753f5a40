"""The SQL store: migrations, SQLite settings, generations and the change log."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import create_engine, inspect, text

import facedb
from facedb.store import FaceInfo, Store, head_revision, migrate


def store_at(tmp_path: Path) -> Store:
    return Store(f"sqlite:///{tmp_path / 'gallery.db'}")


def test_upgrade_from_empty_creates_every_table(tmp_path: Path) -> None:
    store = store_at(tmp_path)
    names = set(inspect(store.engine).get_table_names())
    assert {"gallery", "people", "faces", "changes", "alembic_version"} <= names
    with store.engine.connect() as conn:
        assert conn.execute(text("select version_num from alembic_version")).scalar() == head_revision()
    store.close()


def test_downgrade_and_upgrade_round_trip(tmp_path: Path) -> None:
    store = store_at(tmp_path)
    before = {
        t: sorted(c["name"] for c in inspect(store.engine).get_columns(t))
        for t in inspect(store.engine).get_table_names()
    }
    with store.engine.connect() as conn, conn.begin():
        migrate(conn, "base")
    assert set(inspect(store.engine).get_table_names()) == {"alembic_version"}
    with store.engine.connect() as conn, conn.begin():
        migrate(conn, "head")
    after = {
        t: sorted(c["name"] for c in inspect(store.engine).get_columns(t))
        for t in inspect(store.engine).get_table_names()
    }
    assert before == after
    store.close()


def test_a_gallery_from_a_newer_facedb_is_refused(tmp_path: Path) -> None:
    store_at(tmp_path).close()
    engine = create_engine(f"sqlite:///{tmp_path / 'gallery.db'}")
    with engine.begin() as conn:
        conn.execute(text("update alembic_version set version_num = 'from_the_future'"))
    engine.dispose()
    with pytest.raises(facedb.GalleryError, match="newer facedb"):
        store_at(tmp_path)


def test_sqlite_connections_are_durable_and_erasing(tmp_path: Path) -> None:
    store = store_at(tmp_path)
    with store.engine.connect() as conn:
        pragma = lambda name: conn.exec_driver_sql(f"PRAGMA {name}").scalar()  # noqa: E731
        assert pragma("journal_mode") == "wal"
        assert pragma("foreign_keys") == 1
        assert pragma("secure_delete") == 1
        assert pragma("synchronous") == 2  # FULL
    store.close()


def test_generations_and_change_log(tmp_path: Path) -> None:
    store = store_at(tmp_path)
    store.claim("model-x", 4)
    assert store.generation() == 0
    with store.write() as s:
        (pid,) = store.add_people(s, ["a"], [{}])
        ids = store.add_faces(
            s, [pid, pid], "model-x", np.eye(4, dtype=np.float32)[:2], [FaceInfo(), FaceInfo()]
        )
        assert store.bump(s, added=ids) == 1
    with store.write() as s:
        assert store.bump(s, removed=[ids[0]]) == 2
    with store.read() as s:
        changes = store.changes_after(s, 0)
        assert changes is not None
        assert changes.generation == 2 and changes.added == {ids[1]} and changes.removed == {ids[0]}
        assert store.changes_after(s, 2) == type(changes)(2, frozenset(), frozenset())
        assert store.changes_after(s, 5) is None  # ahead of the database: rebuild
        got_ids, vectors = store.templates(s, ids, 4)
    assert sorted(got_ids.tolist()) == ids
    np.testing.assert_array_equal(vectors[np.argsort(got_ids)], np.eye(4, dtype=np.float32)[:2])
    store.close()


def test_another_model_is_refused(tmp_path: Path) -> None:
    store = store_at(tmp_path)
    store.claim("model-x", 512)
    with pytest.raises(facedb.GalleryError, match="model-x"):
        store.claim("model-y", 512)
    store.close()


def test_a_failed_write_leaves_nothing(tmp_path: Path) -> None:
    store = store_at(tmp_path)
    store.claim("m", 4)
    with pytest.raises(RuntimeError), store.write() as s:
        store.add_people(s, ["half"], [{}])
        raise RuntimeError("crash in the middle")
    with store.read() as s:
        assert s.execute(text("select count(*) from people")).scalar() == 0
    store.close()


def test_unreachable_database_is_a_gallery_error(tmp_path: Path) -> None:
    with pytest.raises(facedb.GalleryError, match="cannot open"):
        Store(f"sqlite:///{tmp_path / 'no' / 'such' / 'folder' / 'g.db'}")
    with pytest.raises(facedb.GalleryError) as info:
        Store("postgresql://nobody:secret@127.0.0.1:1/none")
    assert "secret" not in str(info.value)


def test_migrations_ship_inside_the_package() -> None:
    from importlib import resources

    scripts = resources.files("facedb") / "migrations"
    assert (scripts / "env.py").is_file()
    assert any(p.name.endswith(".py") for p in (scripts / "versions").iterdir())


def test_people_and_faces_compose_in_one_transaction(tmp_path: Path) -> None:
    store = store_at(tmp_path)
    store.claim("m", 4)
    with store.write() as s:
        (pid,) = store.add_people(s, ["a"], [{"team": "x"}])
        infos = [FaceInfo(image_sha256="h1"), FaceInfo()]
        face_ids = store.add_faces(s, [pid, pid], "m", np.eye(4, dtype=np.float32)[:2], infos)
        store.merge_metadata(s, pid, {"desk": 3})
        assert store.rename_person(s, pid, "b")
        assert store.generation(s) == 0 and store.bump(s, added=face_ids) == 1
    with store.read() as s:
        (row,) = store.people_named(s, "b")
        assert row.metadata_json == '{"desk": 3, "team": "x"}'
        assert store.image_hashes(s, pid) == {"h1"}
        assert store.face_ids(s) == set(face_ids) and store.count_faces(s) == 2
    with store.write() as s:
        assert store.remove_face(s, face_ids[0]) and not store.remove_face(s, face_ids[0])
        assert store.remove_person(s, pid) == [face_ids[1]]
        assert store.remove_person(s, pid) is None and not store.rename_person(s, pid, "c")
    with store.read() as s:
        assert store.count_people(s) == 0 and store.count_faces(s) == 0
    store.close()

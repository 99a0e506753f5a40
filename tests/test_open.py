"""What opening a gallery and answering a search cost, in work done (not time): an existing
gallery opens without loading the face engine's models or the migration tool, a search by
template asks SQL only what it must, and the first photo loads the engine and gets the same
answers as ever. A gallery whose installed recognizer is not the one that made its templates
is refused at open, as before."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import event, text

import facedb
from facedb.engine import packs
from facedb.store.schema import SCHEMA_HEAD, head_revision

from .helpers import run_python, unit_rows


@pytest.fixture
def gallery(tmp_path: Path, faces_dir: Path) -> Path:
    """A gallery with a few people from photos and some imported templates."""
    folder = tmp_path / "g"
    with facedb.FaceDB(folder) as db:
        for person in sorted((faces_dir / "gallery").iterdir())[:3]:
            db.enroll(person.name, sorted(person.iterdir())[:1])
        db.import_embeddings([f"imported {i}" for i in range(50)], unit_rows(7, 50))
    return folder


def test_the_schema_head_constant_is_alembics_head() -> None:
    """The open's fast path compares the database's revision with a constant: it must be the
    newest migration's, or every open would take the slow path (or skip a migration)."""
    assert SCHEMA_HEAD == head_revision()


def test_opening_and_searching_by_template_loads_no_model(gallery: Path) -> None:
    code = f"""
import json, sys
import numpy as np
import facedb
from facedb.engine import shared
db = facedb.FaceDB({str(gallery)!r})
found = db.search(np.ones(512, dtype=np.float32), k=3)
loaded_after_search = shared._default is not None or bool(shared._by_pack)
alembic = "alembic" in sys.modules
db.close()
print(json.dumps({{"loaded": loaded_after_search, "alembic": alembic, "found": len(found[0])}}))
"""
    done = run_python(code)
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert seen == {"loaded": False, "alembic": False, "found": 3}


def test_the_first_photo_after_a_lazy_open_names_the_right_person(gallery: Path, faces_dir: Path) -> None:
    person = sorted((faces_dir / "gallery").iterdir())[0]
    other_photo = sorted(person.iterdir())[-1]
    code = f"""
import json
import facedb
from facedb.engine import shared
with facedb.FaceDB({str(gallery)!r}) as db:
    before = shared._default is not None
    named = [r.person.name if r.person else None for r in db.identify({str(other_photo)!r})]
    print(json.dumps({{"before": before, "named": named, "pack": db.engine.pack}}))
"""
    done = run_python(code)
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert seen["before"] is False
    assert seen["named"] == [person.name]
    assert seen["pack"] == "buffalo_s"


def test_a_gallery_of_another_recognizer_is_refused_at_open(gallery: Path) -> None:
    """The installed recognizer is checked at open even though it is not loaded: a search by a
    template the installed model made must never run against another model's templates."""
    from sqlalchemy import create_engine

    sql = create_engine(f"sqlite:///{gallery / 'gallery.db'}")
    with sql.begin() as conn:
        conn.execute(text("UPDATE gallery SET model_id = 'w600k_mbf.onnx:sha256:0000000000000000'"))
    sql.dispose()
    with pytest.raises(facedb.GalleryError, match="0000000000000000"):
        facedb.FaceDB(gallery)


@pytest.fixture
def statements(gallery: Path) -> Iterator[tuple[facedb.FaceDB, list[str]]]:
    """The gallery open, with every SQL statement it sends from now on."""
    seen: list[str] = []
    with facedb.FaceDB(gallery) as db:

        def note(conn: object, cursor: object, statement: str, *args: object) -> None:
            if statement.strip().upper() != "BEGIN":  # a transaction's start asks nothing
                seen.append(statement)

        event.listen(db.store.engine, "before_cursor_execute", note)
        yield db, seen
        event.remove(db.store.engine, "before_cursor_execute", note)


def test_a_search_asks_sql_twice_when_nobody_was_rejected(
    statements: tuple[facedb.FaceDB, list[str]],
) -> None:
    """One query for the generation (is the index current, is the key still ours) and one for
    the hits' owners, which also says whether any of them has negative examples."""
    db, seen = statements
    rng = np.random.default_rng(3)
    db.search(rng.standard_normal(512).astype(np.float32), k=5)
    seen.clear()
    db.search(rng.standard_normal(512).astype(np.float32), k=5)
    assert len(seen) == 2, seen


def test_negative_examples_still_count_when_owners_are_asked_once(
    statements: tuple[facedb.FaceDB, list[str]],
) -> None:
    """A candidate with negative examples costs one more query, and a probe close to one of
    them drops that candidate, as before."""
    db, seen = statements
    templates = unit_rows(7, 50)
    probe = templates[3] + 0.02 * unit_rows(9, 1)[0]
    probe = (probe / np.linalg.norm(probe)).astype(np.float32)
    first = db.search(probe, k=1)[0][0]
    assert first.person.name == "imported 3"
    db.reject(probe, first.person)
    seen.clear()
    again = db.search(probe, k=1)[0]
    assert all(c.person.name != "imported 3" for c in again)
    assert len(seen) == 3, seen


def test_the_owners_of_hits_are_read_from_an_index_not_from_the_faces_rows(
    statements: tuple[facedb.FaceDB, list[str]],
) -> None:
    """A face's row holds its template, thumbnail and crop: at a million faces the table is
    gigabytes, and reading one row per hit from it costs a page read each once it is out
    of the page cache. The hits' owners come from a covering index instead."""
    db, _ = statements
    captured: list[tuple[str, object]] = []

    def note(conn: object, cursor: object, statement: str, parameters: object, *args: object) -> None:
        captured.append((statement, parameters))

    event.listen(db.store.engine, "before_cursor_execute", note)
    db.search(unit_rows(11, 1)[0], k=3)
    event.remove(db.store.engine, "before_cursor_execute", note)
    owners = [(sql, params) for sql, params in captured if "face_count" in sql]
    assert len(owners) == 1
    sql, params = owners[0]
    with db.store.engine.connect() as conn:
        plan = [row[-1] for row in conn.exec_driver_sql("EXPLAIN QUERY PLAN " + sql, params)]
    faces_lookups = [
        step for step in plan if step.startswith("SEARCH f ") or step.startswith("SEARCH faces ")
    ]
    assert faces_lookups and all("COVERING INDEX" in step for step in faces_lookups), plan


def test_the_recognizers_identity_is_remembered_between_processes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A new process opens a gallery without reading the 13 MB recognizer: its hash is kept
    in the cache folder, under a key that changes with the file (path, inode, size, time)."""
    monkeypatch.setenv("FACEDB_CACHE", str(tmp_path))
    monkeypatch.setattr(packs, "_identities", {})
    first = packs.installed_identity("buffalo_s")
    assert first is not None and first[1] == 512
    lines = (tmp_path / packs.IDENTITIES_FILE).read_text().splitlines()
    assert len(lines) == 1 and lines[0].endswith("\t" + first[0])
    key = lines[0].split("\t")[0]
    # What is remembered for the file as it is now is used as it is ...
    (tmp_path / packs.IDENTITIES_FILE).write_text(f"{key}\tremembered:sha256:0\n")
    monkeypatch.setattr(packs, "_identities", {})
    assert packs.installed_identity("buffalo_s") == ("remembered:sha256:0", 512)
    # ... and a line for the file as it was (another modification time) is not.
    path, dev, ino, size, _ = key.split("|")
    (tmp_path / packs.IDENTITIES_FILE).write_text(f"{path}|{dev}|{ino}|{size}|1\tstale:sha256:0\n")
    monkeypatch.setattr(packs, "_identities", {})
    assert packs.installed_identity("buffalo_s") == first


def test_an_unwritable_cache_folder_only_means_hashing_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    blocked = tmp_path / "a file, not a folder"
    blocked.write_text("")
    monkeypatch.setenv("FACEDB_CACHE", str(blocked))
    monkeypatch.setattr(packs, "_identities", {})
    found = packs.installed_identity("buffalo_s")
    assert found is not None and found[0].startswith("w600k_mbf.onnx:sha256:")

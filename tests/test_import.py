"""The bulk import (facedb/jobs/enrollment.py, Enroller.import_embeddings): everything checked
before anything is written, a batch a transaction, templates scaled a batch at a time as the
whole array would be, and the index saved a few batches at a time (faiss/sync.py,
SyncedIndex.bulk), caught up from SQL after a crash."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy.exc import OperationalError

import facedb
from facedb import FaceDB
from facedb.faiss import sync
from facedb.jobs import enrollment
from facedb.templates import unit_rows as scaled

from .helpers import run_python, unit_rows


@pytest.fixture
def small_batches(monkeypatch: pytest.MonkeyPatch) -> None:
    """Batches of 10 rows, the index saved after every 25 rows of a bulk write."""
    monkeypatch.setattr(enrollment, "IMPORT_BATCH", 10)
    monkeypatch.setattr(sync, "BULK_SAVE_ROWS", 25)


def index_generation(folder: Path) -> int:
    """The generation the saved index files are stamped with."""
    return int(json.loads((folder / "index" / "index.json").read_text())["generation"])


def test_an_import_in_batches_stores_what_one_batch_would(tmp_path: Path, small_batches: None) -> None:
    rng = np.random.default_rng(5)
    x = (rng.standard_normal((47, 512)) * rng.uniform(0.5, 40, (47, 1))).astype(np.float32)
    folder = tmp_path / "g"
    with FaceDB(folder) as db:
        people = db.import_embeddings([f"p{i}" for i in range(47)], x, [{"row": i} for i in range(47)])
        assert [p.name for p in people] == [f"p{i}" for i in range(47)]
        assert [dict(p.metadata) for p in people] == [{"row": i} for i in range(47)]
        assert len({p.id for p in people}) == 47 and len(db.vectors) == 47
        store = db._ctx.store
        with store.read() as s:
            face_ids = store.face_ids_of(s, [p.id for p in people])
            ids, templates = store.templates(s, face_ids, 512)
        # bit for bit what scaling the whole array at once gives
        expected = scaled(x, "x")
        owners = {f: i for i, f in enumerate(sorted(face_ids))}
        assert np.array_equal(templates, expected[[owners[int(i)] for i in ids]])
        assert db.check().ok
    # the last, partly filled save happened when the import ended
    with FaceDB(folder) as db:
        assert index_generation(folder) == db._ctx.store.generation()
        assert db.search(x[30], k=1)[0][0].person.id == people[30].id


@pytest.mark.parametrize(
    "bad, match",
    [
        ("nan", "NaN or infinite values .* row\\(s\\) 25"),
        ("zero", "row\\(s\\) 31 are all zeros"),
        ("metadata", "metadata of row 33 cannot be stored as JSON"),
    ],
)
def test_bad_input_in_a_later_batch_writes_nothing(
    tmp_path: Path, small_batches: None, bad: str, match: str
) -> None:
    x = unit_rows(3, 50)
    metadata: list[dict[str, object]] = [{} for _ in range(50)]
    if bad == "nan":
        x[25, 7] = np.nan
    elif bad == "zero":
        x[31] = 0
    else:
        metadata[33] = {"when": object()}
    with FaceDB(tmp_path / "g") as db:
        before = db._ctx.store.generation()
        with pytest.raises(facedb.ConfigError, match=match):
            db.import_embeddings([f"p{i}" for i in range(50)], x, metadata)
        assert len(db) == 0 and len(db.vectors) == 0
        assert db._ctx.store.generation() == before


def test_a_failing_batch_leaves_the_batches_before_it_and_nothing_of_itself(
    tmp_path: Path, small_batches: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A full disk in the third batch: a GalleryError; the first two batches are committed and
    searchable, none of the third (its people were inserted, then rolled back)."""
    x = unit_rows(4, 50)
    folder = tmp_path / "g"
    with FaceDB(folder) as db:
        store = db._ctx.store
        add_faces = store.add_faces
        calls = []

        def full_disk(*args: object, **kwargs: object) -> list[int]:
            calls.append(1)
            if len(calls) == 3:
                raise OperationalError("INSERT INTO faces", {}, Exception("database or disk is full"))
            return add_faces(*args, **kwargs)  # type: ignore[arg-type]

        monkeypatch.setattr(store, "add_faces", full_disk)
        with pytest.raises(facedb.GalleryError, match="disk is full"):
            db.import_embeddings([f"p{i}" for i in range(50)], x)
        monkeypatch.undo()
        assert sorted(p.name for p in db.people()) == sorted(f"p{i}" for i in range(20))
        assert len(db.vectors) == 20 and db.check().ok
        assert db.search(x[15], k=1)[0][0].person.name == "p15"
    with FaceDB(folder) as db:
        assert len(db) == 20 and len(db.vectors) == 20
        assert index_generation(folder) == db._ctx.store.generation()


def test_a_crash_after_a_commit_before_the_index_is_saved_is_caught_up(tmp_path: Path) -> None:
    """A real second process imports in batches whose index saves are deferred, and dies
    (os._exit) right after its fifth batch is committed to SQL: the index files are still at
    the generation before the import. The next open catches them up from the change log: every
    committed person is searchable, and nothing of the batches never written appears."""
    folder = tmp_path / "g"
    code = textwrap.dedent(
        f"""
        import os, sys
        sys.path.insert(0, {str(Path(__file__).parent)!r})
        from helpers import unit_rows
        import facedb
        from facedb import writes
        from facedb.faiss import sync
        from facedb.jobs import enrollment

        enrollment.IMPORT_BATCH = 10
        sync.BULK_SAVE_ROWS = 10**9  # nothing saved until the import ends
        with facedb.FaceDB({str(folder)!r}) as db:
            db.import_embeddings(["first"], unit_rows(1, 1))  # saved: generation 1
            after = writes.Writes._after

            def crash_after_fifth(self, change):
                after(self, change)
                if change.generation == 6:
                    os._exit(0)

            writes.Writes._after = crash_after_fifth
            db.import_embeddings([f"p{{i}}" for i in range(100)], unit_rows(2, 100))
        print("not reached")
        """
    )
    result = run_python(code)
    assert result.returncode == 0 and "not reached" not in result.stdout, result.stderr
    assert index_generation(folder) == 1  # the crash left the index behind SQL
    x = unit_rows(2, 100)
    with FaceDB(folder) as db:
        assert db._ctx.store.generation() == 6
        assert sorted(p.name for p in db.people()) == sorted(["first", *(f"p{i}" for i in range(50))])
        assert len(db.vectors) == 51 and db.check().ok
        for i in (0, 17, 49):
            assert db.search(x[i], k=1)[0][0].person.name == f"p{i}"
        assert db.search(x[50], k=1)[0][0].similarity < 0.5  # never written
    assert index_generation(folder) == 6  # caught up and saved by the open


def test_an_import_on_postgres_takes_its_ids_from_the_sequences(
    pg_url: str, tmp_path: Path, small_batches: None
) -> None:
    """On PostgreSQL the bulk path reserves ids from each table's sequence and inserts them
    explicitly: they stay unique and in order beside other writes, and the sequence moves on."""
    x = unit_rows(6, 35)
    with FaceDB(pg_url, cache_dir=tmp_path / "cache") as db:
        first = db.import_embeddings(["a"], x[:1])
        people = db.import_embeddings([f"p{i}" for i in range(34)], x[1:], [{"i": i} for i in range(34)])
        last = db.import_embeddings(["z"], x[:1] * -1)
        ids = [first[0].id, *(p.id for p in people), last[0].id]
        assert ids == sorted(ids) and len(set(ids)) == 36
        assert {p.id: p.name for p in db.people()} == {
            first[0].id: "a",
            **{p.id: f"p{i}" for i, p in enumerate(people)},
            last[0].id: "z",
        }
        assert db.get(people[20].id).metadata == {"i": 20}
        assert len(db.vectors) == 36 and db.check().ok
        assert db.search(x[21], k=1)[0][0].person.id == people[20].id

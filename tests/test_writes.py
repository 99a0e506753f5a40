"""The one write path (facedb.writes): every kind of write commits, bumps the generation and
logs its change in one transaction, then updates the vector store; when the vector store fails
after the commit, the call still succeeds (what is acknowledged is durable) and the change is
replayed from the log by the next call, in this process or another."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import facedb
from facedb import FaceDB

from .helpers import unit_rows


class Failing:
    """Makes the vector store's apply fail (a full disk, Milvus away) while switched on."""

    def __init__(self, db: FaceDB, monkeypatch: pytest.MonkeyPatch) -> None:
        self.on = False
        self.calls = 0
        real = db._ctx.vectors.apply

        def apply(*args: Any, **kwargs: Any) -> None:
            self.calls += 1
            if self.on:
                raise OSError(28, "No space left on device")
            real(*args, **kwargs)

        monkeypatch.setattr(db._ctx.vectors, "apply", apply)


def in_sync(db: FaceDB) -> bool:
    """Whether the vector store holds exactly the SQL faces (ids and templates), after the
    catch-up every call does first; nothing is repaired."""
    return db.check(repair=False).ok


@pytest.fixture
def gallery(tmp_path: Path, faces_dir: Path, wheel_photos: Path) -> Any:
    db = FaceDB(tmp_path / "g")
    db.enroll("obama", faces_dir / "gallery/obama/obama.jpg")
    db.enroll("biden", faces_dir / "gallery/biden/biden.jpg")
    db.discover([faces_dir / "closeups/kit_harington.jpg", faces_dir / "closeups/rose_leslie.jpg"])
    yield db
    db.close()


def writes(faces_dir: Path, wheel_photos: Path) -> dict[str, Callable[[FaceDB], Any]]:
    """One call of each kind of write that changes templates or asks every process to reload."""
    obama = faces_dir / "gallery/obama/obama2.jpg"

    def second_face_of(db: FaceDB, name: str) -> int:
        return int(db.faces(db.find(name)[0])[-1]["id"])

    return {
        "create_person": lambda db: db.create_person("yao", wheel_photos / "yaoming.jpg"),
        "enroll": lambda db: db.enroll("obama", obama),
        "add_faces": lambda db: db.add_faces("biden", faces_dir / "gallery/biden/biden2.jpg"),
        "import_embeddings": lambda db: db.import_embeddings(["x"], unit_rows(3, 1)),
        "remove_face": lambda db: (
            db.add_faces("biden", faces_dir / "gallery/biden/biden2.jpg"),
            db.remove_face(second_face_of(db, "biden")),
        ),
        "remove": lambda db: db.remove("obama"),
        "reject_face": lambda db: (db.add_faces("obama", obama), db.reject_face(second_face_of(db, "obama"))),
        "confirm": lambda db: db.confirm(db.identify(faces_dir / "closeups/obama.jpg")[0], "obama"),
        "name_group": lambda db: db.name_group(db.groups()[0], "kit"),
        "dismiss_group": lambda db: db.dismiss_group(db.groups()[0]),
        "calibrate": lambda db: db.calibrate(target_fpir=0.01),
    }


@pytest.mark.parametrize(
    "kind",
    [
        "create_person",
        "enroll",
        "add_faces",
        "import_embeddings",
        "remove_face",
        "remove",
        "reject_face",
        "confirm",
        "name_group",
        "dismiss_group",
        "calibrate",
    ],
)
def test_a_vector_store_failure_after_the_commit_is_replayed(
    gallery: FaceDB, kind: str, faces_dir: Path, wheel_photos: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    failing = Failing(gallery, monkeypatch)
    before = gallery.store.generation()
    failing.on = True
    writes(faces_dir, wheel_photos)[kind](gallery)  # succeeds: the change is committed
    if kind != "dismiss_group":  # a group's faces are in no vector store: nothing to log
        assert gallery.store.generation() > before, "the write bumped no generation"
    failing.on = False
    assert in_sync(gallery), f"{kind}: the change was not replayed from the log"
    # Another process opening the gallery sees the same.
    with FaceDB(gallery.location) as other:
        assert other.check(repair=False).ok


def test_a_write_that_fails_inside_writes_nothing(gallery: FaceDB, faces_dir: Path) -> None:
    before = (gallery.store.generation(), len(gallery), gallery.stats()["faces"])
    with pytest.raises(facedb.EnrollmentRefused):
        gallery.create_person("nobody", faces_dir / "more/obama_partial_face.jpg")
    with pytest.raises(facedb.NameInUse):
        gallery.create_person("obama", faces_dir / "closeups/biden.jpg")
    assert (gallery.store.generation(), len(gallery), gallery.stats()["faces"]) == before
    assert np.isfinite(gallery.threshold)

"""Importing a folder of people: the retry that leaves refused photos out, without models."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

import facedb
from facedb.folders import import_folder


class Refuses:
    """Stands in for FaceDB.enroll_photos: refuses the listed photos one round at a time, the
    way a new person's photos judged against each other can refuse another after the first."""

    location = "/a/gallery/elsewhere"

    def __init__(self, rounds: list[set[str]]) -> None:
        self.rounds = rounds
        self.calls: list[list[str]] = []

    def enroll_photos(self, name: str, photos: list[str], **_: Any) -> Any:
        self.calls.append(list(photos))
        if self.rounds:
            refused = self.rounds.pop(0)
            raise facedb.EnrollmentRefused(
                "refused", [(p, "a likely mislabel") for p in photos if Path(p).name in refused]
            )
        return SimpleNamespace(added=list(range(len(photos))), skipped=[])


def folder_of(tmp_path: Path, *names: str) -> Path:
    person = tmp_path / "people" / "ann"
    person.mkdir(parents=True)
    for name in names:
        (person / name).write_bytes(b"")
    return tmp_path / "people"


def test_a_second_refusal_leaves_out_more_photos_and_the_rest_is_enrolled(tmp_path: Path) -> None:
    db = Refuses([{"a.jpg"}, {"b.jpg"}])
    result = import_folder(db, folder_of(tmp_path, "a.jpg", "b.jpg", "c.jpg"))  # type: ignore[arg-type]
    assert [[Path(p).name for p in call] for call in db.calls] == [
        ["a.jpg", "b.jpg", "c.jpg"],
        ["b.jpg", "c.jpg"],
        ["c.jpg"],
    ]
    assert len(result.added) == 1
    assert [Path(p).name for p, _ in result.skipped] == ["a.jpg", "b.jpg"]


def test_every_photo_refused_is_every_photo_skipped(tmp_path: Path) -> None:
    db = Refuses([{"a.jpg", "b.jpg"}])
    result = import_folder(db, folder_of(tmp_path, "a.jpg", "b.jpg"))  # type: ignore[arg-type]
    assert result.added == [] and len(result.skipped) == 2 and len(db.calls) == 1


def test_a_refusal_that_names_no_photo_is_raised(tmp_path: Path) -> None:
    db = Refuses([set()])
    with pytest.raises(facedb.EnrollmentRefused):
        import_folder(db, folder_of(tmp_path, "a.jpg"))  # type: ignore[arg-type]


def test_no_gallery_is_made_in_a_folder_of_photos_at_any_depth(tmp_path: Path, faces_dir: Path) -> None:
    """`facedb --db photos import photos/` with README's layout (photos/<name>/*.jpg) wrote
    gallery.db and index/ among the photos: the guard looked only at the folder's own files."""
    photos = tmp_path / "photos"
    (photos / "Ada Lovelace").mkdir(parents=True)
    (photos / "Ada Lovelace" / "1.jpg").write_bytes((faces_dir / "gallery/biden/biden.jpg").read_bytes())
    with pytest.raises(facedb.GalleryError, match="holds photos"):
        facedb.FaceDB(photos)
    assert sorted(p.name for p in photos.iterdir()) == ["Ada Lovelace"]  # nothing written


def test_an_import_never_reads_the_gallery_inside_it(tmp_path: Path, faces_dir: Path) -> None:
    photos = tmp_path / "photos"
    (photos / "biden").mkdir(parents=True)
    (photos / "biden" / "1.jpg").write_bytes((faces_dir / "gallery/biden/biden.jpg").read_bytes())
    with facedb.FaceDB(photos / "gallery") as db:  # a folder of its own, but inside the import
        with pytest.raises(facedb.ConfigError, match="inside the folder to import"):
            import_folder(db, photos)
        assert len(db) == 0

"""Importing a folder of people: one sub-folder of photos per person, named after them.

:meth:`facedb.FaceDB.import_folder` delegates here; ``facedb import FOLDER`` prints its
:class:`FolderImport`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from facedb.errors import ConfigError, EnrollmentRefused
from facedb.locations import PHOTO_SUFFIXES
from facedb.results import Enrollment


class Enrolls(Protocol):
    """What an import needs of a gallery: where it is, and an enrollment of photos."""

    @property
    def location(self) -> str:
        """The gallery's folder or URL."""
        ...

    def enroll_photos(
        self, name: str, photos: list[str], *, force: bool = ..., largest_face: bool = ...
    ) -> Enrollment:
        """Enrolls photos as the one person of this name (all or nothing)."""
        ...


__all__ = ["FolderImport", "import_folder", "person_folders"]


@dataclass(frozen=True, slots=True)
class FolderImport:
    """What an import did.

    Attributes:
        folders: how many person folders were read.
        added: the new face ids.
        skipped: the photos (or empty folders) not enrolled, with the reason.
    """

    folders: int
    added: list[int] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)


def person_folders(folder: str | Path, gallery: str | Path | None = None) -> list[Path]:
    """The person sub-folders of an import folder, by name.

    Raises:
        ConfigError: not a folder, a folder without sub-folders, or one that holds
            ``gallery`` (a gallery folder or URL, if given).
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise ConfigError(f"{folder} is not a folder (expected one sub-folder of photos per person)")
    if gallery is not None and "://" not in str(gallery):
        inside, photos = Path(gallery).resolve(), folder.resolve()
        if inside == photos or photos in inside.parents:
            raise ConfigError(
                f"the gallery {gallery} is inside the folder to import, {folder}: a gallery is "
                f"kept in a folder of its own (e.g. --db {photos.name}-gallery), never among the photos"
            )
    people = sorted(p for p in folder.iterdir() if p.is_dir())
    if not people:
        raise ConfigError(f"{folder} has no sub-folders (expected one per person)")
    return people


def import_folder(
    db: Enrolls,
    folder: str | Path,
    *,
    force: bool = False,
    largest_face: bool = False,
    on_folder: Callable[[str], None] | None = None,
) -> FolderImport:
    """Enrolls each sub-folder's photos as the person it is named after. A person's refused
    photos are skipped with their reasons and the rest enrolled (one refused photo does not
    keep the others out); ``on_folder`` is called with each folder's name when it is done."""
    people = person_folders(folder, db.location)
    added: list[int] = []
    skipped: list[tuple[str, str]] = []
    for person_dir in people:
        photos = sorted(str(p) for p in person_dir.iterdir() if p.suffix.lower() in PHOTO_SUFFIXES)
        if not photos:
            skipped.append((str(person_dir), "no photos"))
            if on_folder is not None:
                on_folder(person_dir.name)
            continue
        result: Enrollment | None = None
        remaining = photos
        while remaining:
            try:
                result = db.enroll_photos(person_dir.name, remaining, force=force, largest_face=largest_face)
                break
            except EnrollmentRefused as e:
                # Without the refused photos the others may be judged again (a new person's
                # photos are checked against each other), so retry until a set passes.
                skipped += e.refused
                refused = {photo for photo, _ in e.refused}
                rest = [p for p in remaining if p not in refused]
                if len(rest) == len(remaining):
                    raise  # a refusal that names none of the photos: nothing to leave out
                remaining = rest
        if result is not None:
            added += result.added
            skipped += result.skipped
        if on_folder is not None:
            on_folder(person_dir.name)
    return FolderImport(folders=len(people), added=added, skipped=skipped)

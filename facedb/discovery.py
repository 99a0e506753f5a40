"""Faces nobody has named yet: ``discover`` finds every face in a pile of photos, names those
of enrolled people, and groups the rest by identity, so that a group can be named (which
enrolls its faces) or dismissed.

The groups are the gallery's strangers (a watch's strangers are groups too) and the grouping
is :class:`facedb.grouping.Grouping`, resumed from the stored groups: discovering more photos
later extends the groups instead of starting over, and a photo already discovered is not
discovered twice. This module holds the records and how photos are listed; the job itself
(discover, name, dismiss) is facedb.jobs.groups.
"""

from __future__ import annotations

import glob
import hashlib
import logging
import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from facedb.engine import Face
from facedb.errors import (
    ConfigError,
    ImageNotFound,
)
from facedb.locations import PHOTO_SUFFIXES
from facedb.results import Person

if TYPE_CHECKING:
    from facedb.models import StrangerFaceRow, StrangerRow

__all__ = [
    "Discovery",
    "Group",
    "GroupFace",
    "NamedFace",
    "PhotoItem",
    "expand_photos",
    "group_id_of",
    "group_of",
    "photo_items",
    "photo_paths",
]

log = logging.getLogger("facedb.discovery")

#: Photos run through the pipeline (and written) together.
CHUNK = 32


@dataclass(frozen=True, slots=True)
class GroupFace:
    """One face of a group.

    Attributes:
        id: the face's id among the groups' faces.
        photo: the photo's path (for a watch's stranger: its video source).
        bbox: ``[x1, y1, x2, y2]`` in the photo's pixels.
        det_score: the detector's confidence.
        quality: the face's quality (0..1), None when unknown.
        seen_at: when it was discovered (or seen by the watch).
        has_thumbnail: whether a thumbnail is stored (:meth:`facedb.FaceDB.group_thumbnail`).
    """

    id: int
    photo: str
    bbox: list[float]
    det_score: float
    quality: float | None
    seen_at: datetime
    has_thumbnail: bool


@dataclass(frozen=True, slots=True)
class Group:
    """A group of faces that look like one person nobody has named.

    Attributes:
        id: the group's id (name it with :meth:`facedb.FaceDB.name_group`).
        faces: its faces, oldest first.
        origin: ``"discover"`` or ``"watch"`` (a stranger a watch saw).
        first_seen, last_seen: when it was started and when it last grew.
    """

    id: int
    faces: tuple[GroupFace, ...]
    origin: str
    first_seen: datetime
    last_seen: datetime

    @property
    def size(self) -> int:
        """How many faces the group has."""
        return len(self.faces)

    @property
    def representative(self) -> GroupFace | None:
        """The face to show for the group: its best (quality, then detector score)."""
        if not self.faces:
            return None
        return max(
            self.faces, key=lambda f: (f.quality if f.quality is not None else 0.5, f.det_score, -f.id)
        )


@dataclass(frozen=True, slots=True)
class NamedFace:
    """A face of somebody enrolled, found by ``discover``."""

    photo: str
    bbox: list[float]
    person: Person
    similarity: float


@dataclass(frozen=True, slots=True)
class Discovery:
    """What a ``discover`` found; iterating it gives the groups.

    Attributes:
        groups: the groups that got a face from these photos (with all their faces, earlier
            ones too), biggest first.
        named: the faces of enrolled people.
        skipped: ``(photo, reason)`` for each photo that could not be read and each face
            left out of the groups (too small, too uncertain, of poor quality, or too alike
            to two people to tell).
        photos: photos looked at; ``already``: photos skipped as discovered before.
        faces: faces found in the photos looked at (each is named, grouped or skipped).
        grouped: how many of them were put in groups (the groups hold earlier faces too).
        new_groups: how many of the groups these photos started.
        threshold: the grouping threshold the faces were grouped at (by default the
            gallery's pairwise threshold: :attr:`facedb.FaceDB.thresholds`).
    """

    groups: list[Group]
    named: list[NamedFace] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    photos: int = 0
    already: int = 0
    faces: int = 0
    grouped: int = 0
    new_groups: int = 0
    threshold: float = 0.0

    def __iter__(self) -> Iterator[Group]:
        return iter(self.groups)

    def __len__(self) -> int:
        return len(self.groups)

    def __getitem__(self, i: int) -> Group:
        return self.groups[i]


def photo_paths(given: str | os.PathLike[str]) -> list[Path]:
    """The photos one path names, as paths that start the way it was given: a photo itself,
    every photo below a folder (recursively), or what a glob pattern (``2024/*.jpg``, ``**``
    for any depth) matches; a folder's and a pattern's photos sorted.

    Raises:
        ImageNotFound: a path that does not exist, or a pattern or folder with no photo.
    """
    text = os.fspath(given)
    path = Path(text).expanduser()
    if path.is_dir():
        found = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in PHOTO_SUFFIXES)
        if not found:
            raise ImageNotFound(f"no photo in {text} (looked for {', '.join(sorted(PHOTO_SUFFIXES))})")
        return found
    if path.is_file():
        return [path]
    if glob.has_magic(text):
        matched = sorted(Path(p) for p in glob.glob(os.path.expanduser(text), recursive=True))
        photos = [p for p in matched if p.is_file() and p.suffix.lower() in PHOTO_SUFFIXES]
        if not photos:
            raise ImageNotFound(f"no photo matches {text}")
        return photos
    raise ImageNotFound(f"no such photo or folder: {text}")


def expand_photos(paths: Iterable[str | os.PathLike[str]] | str | os.PathLike[str]) -> list[Path]:
    """The photos that paths name (see :func:`photo_paths`): absolute, each once, in the order
    given (a folder's and a pattern's photos sorted).

    Raises:
        ImageNotFound: a path that does not exist, or a pattern or folder with no photo.
    """
    if isinstance(paths, str | os.PathLike):
        paths = [paths]
    out: list[Path] = []
    seen: set[Path] = set()
    for given in paths:
        for path in photo_paths(given):
            resolved = path.resolve()
            if resolved not in seen:
                seen.add(resolved)
                out.append(resolved)
    return out


def _box(face: Face) -> str:
    return "[" + ", ".join(f"{v:.0f}" for v in face.bbox) + "]"


PhotoSource = str | os.PathLike[str] | bytes


@dataclass(frozen=True, slots=True)
class PhotoItem:
    """One photo ``discover`` is given: ``key`` names its content (``sha256:`` and the hash of
    its bytes), by which a photo discovered before is recognised wherever it comes from (a
    copy in another folder, an upload of it); ``label`` is what answers call it (its absolute
    path, or an upload's name and the start of its hash); ``legacy`` is the name galleries
    recorded it by before content keys (its path, or its label), still honoured."""

    key: str
    label: str
    legacy: str
    photo: str | bytes


def _file_key(path: Path) -> str:
    try:
        with open(path, "rb") as f:
            return "sha256:" + hashlib.file_digest(f, "sha256").hexdigest()
    except OSError as error:
        raise ImageNotFound(f"cannot read {path}: {error.strerror or error}") from error


def photo_items(
    photos: Iterable[PhotoSource] | PhotoSource, names: Sequence[str] | None = None
) -> list[PhotoItem]:
    """What ``discover`` looks at: an item for each photo that paths, folders and patterns
    name, and for each photo given as bytes (labelled by its ``names`` entry, or ``<N
    bytes>``); a photo whose content came earlier in the list is left out."""
    if isinstance(photos, str | os.PathLike | bytes):
        photos = [photos]
    photos = list(photos)
    if names is not None and (len(names) != len(photos) or not all(isinstance(n, str) for n in names)):
        raise ConfigError(f"photo_names must be one string per photo: {len(photos)} photos")
    items: list[PhotoItem] = []
    seen: set[str] = set()

    def add(item: PhotoItem) -> None:
        if item.key not in seen:
            seen.add(item.key)
            items.append(item)

    for i, photo in enumerate(photos):
        if isinstance(photo, bytes | bytearray | memoryview):
            data = bytes(photo)
            label = names[i] if names is not None else f"<{len(data)} bytes>"
            digest = hashlib.sha256(data).hexdigest()
            named = f"{label}#{digest[:16]}"  # two uploads of one name told apart
            add(PhotoItem(f"sha256:{digest}", named, named, data))
            continue
        if not isinstance(photo, str | os.PathLike):
            raise TypeError(f"discover takes paths, folders, patterns or bytes, got {type(photo).__name__}")
        for path in expand_photos([photo]):
            add(PhotoItem(_file_key(path), str(path), str(path), str(path)))
    return items


def group_of(row: StrangerRow, faces: Sequence[tuple[StrangerFaceRow, bool]]) -> Group:
    """A stored group as the API gives it."""
    return Group(
        id=int(row.id),
        faces=tuple(
            GroupFace(
                id=int(f.id),
                photo=str(f.photo),
                bbox=[float(f.x1), float(f.y1), float(f.x2), float(f.y2)],
                det_score=float(f.det_score),
                quality=None if f.quality is None else float(f.quality),
                seen_at=f.seen_at,
                has_thumbnail=pictured,
            )
            for f, pictured in faces
        ),
        origin=row.origin or "watch",
        first_seen=row.first_seen,
        last_seen=row.last_seen,
    )


def group_id_of(group: Group | int) -> int:
    """The id of a group given as a Group or an id."""
    if isinstance(group, Group):
        return group.id
    if isinstance(group, bool) or not isinstance(group, int | np.integer):
        raise ConfigError(f"a group is a Group or its id, got {group!r}")
    return int(group)

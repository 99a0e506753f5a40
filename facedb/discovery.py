"""Faces nobody has named yet: ``discover`` finds every face in a pile of photos, names those
of enrolled people, and groups the rest by identity, so that a group can be named (which
enrolls its faces) or dismissed.

The groups are the gallery's strangers (a watch's strangers are groups too) and the grouping
is :class:`facedb.grouping.Grouping`, resumed from the stored groups: discovering more photos
later extends the groups instead of starting over, and a photo already discovered is not
discovered twice. :meth:`facedb.FaceDB.discover` delegates here.
"""

from __future__ import annotations

import glob
import hashlib
import logging
import math
import os
from collections.abc import Callable, Hashable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from facedb.engine import Face
from facedb.enrollment import Accepted, poor_quality_reason
from facedb.errors import (
    ConfigError,
    EnrollmentRefused,
    FaceDBError,
    GroupNotFound,
    ImageNotFound,
    PersonNotFound,
)
from facedb.grouping import Grouping
from facedb.locations import PHOTO_SUFFIXES
from facedb.results import Enrollment, Person, person_from_fields
from facedb.store import FaceInfo, GroupFaceInfo
from facedb.store.database import utc_now
from facedb.thumbnails import thumbnail

if TYPE_CHECKING:
    from facedb.gallery import FaceDB
    from facedb.models import StrangerFaceRow, StrangerRow

__all__ = [
    "Discovery",
    "Group",
    "GroupFace",
    "NamedFace",
    "discover",
    "dismiss_group",
    "expand_photos",
    "group_id_of",
    "group_of",
    "name_group",
    "photo_items",
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
        faces: faces found in the photos looked at.
    """

    groups: list[Group]
    named: list[NamedFace] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    photos: int = 0
    already: int = 0
    faces: int = 0

    def __iter__(self) -> Iterator[Group]:
        return iter(self.groups)

    def __len__(self) -> int:
        return len(self.groups)

    def __getitem__(self, i: int) -> Group:
        return self.groups[i]


def expand_photos(paths: Iterable[str | os.PathLike[str]] | str | os.PathLike[str]) -> list[Path]:
    """The photos that paths name: a photo itself, every photo below a folder (recursively),
    or what a glob pattern (``2024/*.jpg``, ``**`` for any depth) matches; absolute, each
    once, in the order given (a folder's and a pattern's photos sorted).

    Raises:
        ImageNotFound: a path that does not exist, or a pattern or folder with no photo.
    """
    if isinstance(paths, str | os.PathLike):
        paths = [paths]
    out: list[Path] = []
    seen: set[Path] = set()

    def add(path: Path) -> None:
        resolved = path.resolve()
        if resolved not in seen:
            seen.add(resolved)
            out.append(resolved)

    for given in paths:
        text = os.fspath(given)
        path = Path(text).expanduser()
        if path.is_dir():
            found = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in PHOTO_SUFFIXES)
            if not found:
                raise ImageNotFound(f"no photo in {text} (looked for {', '.join(sorted(PHOTO_SUFFIXES))})")
            for p in found:
                add(p)
        elif path.is_file():
            add(path)
        elif glob.has_magic(text):
            matched = sorted(Path(p) for p in glob.glob(os.path.expanduser(text), recursive=True))
            photos = [p for p in matched if p.is_file() and p.suffix.lower() in PHOTO_SUFFIXES]
            if not photos:
                raise ImageNotFound(f"no photo matches {text}")
            for p in photos:
                add(p)
        else:
            raise ImageNotFound(f"no such photo or folder: {text}")
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


def discover(
    db: FaceDB,
    photos: Iterable[PhotoSource] | PhotoSource,
    *,
    threshold: float | None = None,
    progress: Callable[[int, int], None] | None = None,
    photo_names: Sequence[str] | None = None,
) -> Discovery:
    """The body of :meth:`facedb.FaceDB.discover`."""
    db._check_writable()
    limit = db.threshold if threshold is None else float(threshold)
    if not 0.0 < limit <= 1.0:
        raise ConfigError(f"threshold must be in (0, 1], got {threshold}")
    items = photo_items(photos, photo_names)
    with db.store.read() as s:
        already = db.store.discovered_photos(s, [i.key for i in items] + [i.legacy for i in items])
        state = db.store.group_state(s, db.facts.dimension)
    todo = [i for i in items if i.key not in already and i.legacy not in already]
    grouping = Grouping(db.facts.dimension, limit)
    for group_id, centroid, count, in_photos in state:
        grouping.add_group(group_id, centroid, count, sorted(in_photos))
    result = _Run(db, grouping)
    done = len(items) - len(todo)
    if progress is not None:
        progress(done, len(items))
    for start in range(0, len(todo), CHUNK):
        chunk = todo[start : start + CHUNK]
        found = db.engine.detect_many([item.photo for item in chunk], errors="return")
        for item, faces in zip(chunk, found, strict=True):
            result.photo(item, faces)
        result.write()
        done += len(chunk)
        if progress is not None:
            progress(done, len(items))
    result.merge()
    with db.store.read() as s:
        groups = [group_of(row, faces) for row, faces in db.store.group_rows(s, sorted(result.touched))]
    return Discovery(
        groups,
        result.named,
        result.skipped,
        photos=len(todo),
        already=len(items) - len(todo),
        faces=result.faces,
    )


class _Run:
    """One ``discover`` call's faces: named, skipped, or placed in groups and written a chunk
    at a time (a new group gets its id when its chunk is written)."""

    def __init__(self, db: FaceDB, grouping: Grouping) -> None:
        self.db = db
        self.grouping = grouping
        self.named: list[NamedFace] = []
        self.skipped: list[tuple[str, str]] = []
        self.faces = 0
        self.touched: set[int] = set()
        self._pending: list[tuple[object, GroupFaceInfo]] = []  # (group key, face)
        self._looked: list[str] = []  # the chunk's photos, recorded as discovered with it
        self._unplaced: list[tuple[str, list[GroupFaceInfo]]] = []  # the chunk's, to group
        self._new = 0

    def photo(self, item: PhotoItem, found: list[Face] | FaceDBError) -> None:
        name, photo = item.label, item.photo
        if isinstance(found, FaceDBError):
            self.skipped.append((name, str(found)))  # not recorded: it may be readable later
            return
        self._looked.append(item.key)
        self.faces += len(found)
        if not found:
            return
        grouped: list[Face] = []
        for face, r in zip(found, self.db.identify_faces(found, 2), strict=True):
            if r.person is not None:
                self.named.append(NamedFace(name, [float(v) for v in face.bbox], r.person, r.similarity))
                continue
            if face.is_poor_quality:  # too poor to tell anybody by: it would only blur a group
                self.skipped.append((name, f"face at {_box(face)}: {poor_quality_reason(face)}"))
            elif r.status == "ambiguous":
                self.skipped.append((name, f"face at {_box(face)}: too alike to two people to tell"))
            else:
                grouped.append(face)
        if not grouped:
            return
        pictures: list[bytes | None] = [None] * len(grouped)
        if self.db.thumbnails:
            try:
                pixels = self.db.engine.decode(photo)
                pictures = [thumbnail(pixels, f.landmarks) for f in grouped]
            except (FaceDBError, ValueError) as error:
                log.warning("no thumbnails for %s: %s", name, error)
        now = utc_now()
        infos = [
            GroupFaceInfo(
                name,
                [float(v) for v in face.bbox],
                face.score,
                None if math.isnan(face.quality) else float(face.quality),
                face.embedding,
                picture,
                now,
            )
            for face, picture in zip(grouped, pictures, strict=True)
        ]
        self._unplaced.append((name, infos))

    def place(self) -> None:
        """Puts the chunk's faces in their groups (one matrix product for the chunk)."""
        photos = []
        for name, infos in self._unplaced:
            keys: list[Hashable] = []
            for _ in infos:
                self._new += 1
                keys.append(("new", self._new))
            photos.append(([f.template for f in infos], keys, name))
        placed = self.grouping.place_photos(photos)
        for (_, infos), groups in zip(self._unplaced, placed, strict=True):
            self._pending += list(zip(groups, infos, strict=True))
        self._unplaced = []

    def write(self) -> None:
        """Writes the chunk's faces, new groups and moved centroids in one transaction."""
        self.place()
        if not self._pending and not self._looked:
            return
        pending, self._pending = self._pending, []
        looked, self._looked = self._looked, []
        now = utc_now()
        with self.db.store.write() as s:
            self.db.store.add_discovered_photos(s, looked, now)
            ids: dict[object, int] = {}
            for key, _ in pending:
                if key in ids:
                    continue
                if isinstance(key, int):
                    if self.db.store.group(s, key, lock=True) is None:
                        # Named or dismissed by somebody else meanwhile: this face starts anew.
                        ids[key] = self.db.store.add_group(s, self.grouping.centroid(key), "discover", now)
                    else:
                        ids[key] = key
                else:
                    ids[key] = self.db.store.add_group(s, self.grouping.centroid(key), "discover", now)
            self.db.store.add_group_faces(s, [ids[k] for k, _ in pending], [f for _, f in pending])
            for key, group_id in ids.items():
                self.db.store.set_group_centroid(s, group_id, self.grouping.centroid(key), now)
        for key, group_id in ids.items():
            if key != group_id:
                self.grouping.rename(key, group_id)
            self.touched.add(group_id)

    def merge(self) -> None:
        """Joins the groups this call changed with any group of the same person (one write)."""
        joins = self.grouping.merge()
        if not joins:
            return
        now = utc_now()
        with self.db.store.write() as s:
            for kept, gone in joins:
                assert isinstance(kept, int) and isinstance(gone, int)
                if (
                    self.db.store.group(s, kept, lock=True) is None
                    or self.db.store.group(s, gone, lock=True) is None
                ):
                    continue  # one was named or dismissed meanwhile: the two stay as they are
                self.db.store.merge_groups(s, kept, gone)
                if kept in self.grouping:
                    self.db.store.set_group_centroid(s, kept, self.grouping.centroid(kept), now)
        for kept, gone in joins:
            assert isinstance(kept, int) and isinstance(gone, int)
            self.touched.discard(gone)
            self.touched.add(kept)


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


def name_group(db: FaceDB, group: Group | int, name: str, *, force: bool = False) -> Enrollment:
    """The body of :meth:`facedb.FaceDB.name_group`."""

    db._check_writable()
    group_id = group_id_of(group)
    existing = db.find(name) if name.strip() else []
    if len(existing) > 1:
        ids = ", ".join(str(p.id) for p in existing)
        raise PersonNotFound(f"{len(existing)} people are named {name!r} (ids {ids}): name the group by id")
    person = existing[0] if existing else None
    with db.store.read() as s:
        if db.store.group(s, group_id) is None:
            raise GroupNotFound(f"no group with id {group_id}: named or dismissed meanwhile?")
        faces = db.store.group_templates(s, group_id, db.facts.dimension)
    if not faces:
        raise EnrollmentRefused(f"group {group_id} has no faces to enroll", [])
    accepted: list[Accepted] = []
    too_small: list[tuple[str, str]] = []
    kept = []
    for face_id, row in faces:
        label = f"{Path(row.photo).name} (face {face_id})"
        face = Face(
            bbox=np.array(row.bbox, dtype=np.float32),
            score=float(row.det_score),
            landmarks=np.zeros((5, 2), dtype=np.float32),
            embedding=row.template,
            quality=float("nan") if row.quality is None else float(row.quality),
            quality_reasons=(),
        )
        small = db.policy.check_size(face)
        if small is not None:  # not enrolled (and erased with the group), the others are
            too_small.append((label, small))
            continue
        accepted.append(Accepted(label, face, None, len(accepted)))
        kept.append((face_id, row))
    refused = [] if accepted else too_small
    if accepted and not force:
        refused = db._mislabels(person, name, accepted)
    if refused:
        lines = "; ".join(f"{what}: {reason}" for what, reason in refused)
        raise EnrollmentRefused(
            f"nothing enrolled for {name!r}: {len(refused)} of {len(kept) or len(faces)} face(s) "
            f"of group {group_id} refused: {lines}",
            refused,
        )
    templates = np.vstack([row.template for _, row in kept]).astype(np.float32)
    infos = [
        FaceInfo(
            bbox=list(row.bbox),
            det_score=float(row.det_score),
            image_name=Path(row.photo).name[:1000],
            quality=row.quality,
            thumbnail=row.thumbnail if db.thumbnails else None,
        )
        for _, row in kept
    ]
    with db.store.write() as s:
        if db.store.group(s, group_id, lock=True) is None:
            raise GroupNotFound(f"group {group_id} was named or dismissed meanwhile")
        if db.store.group_size(s, group_id) != len(faces):
            raise GroupNotFound(f"group {group_id} changed meanwhile: look at it again and name it then")
        if person is None:
            (person_id,) = db.store.add_people(s, [name], [{}])
        else:
            if db.store.person(s, person.id, lock="share") is None:
                raise PersonNotFound(f"person {person.id} was removed meanwhile")
            person_id = person.id
        added = db.store.add_faces(s, [person_id] * len(kept), db.facts.model_id, templates, infos)
        db.store.assign_group_sightings(s, group_id, person_id)
        db.store.remove_group(s, group_id)
        generation = db.store.bump(s, added=added)
        person_row = db.store.person(s, person_id)
        assert person_row is not None
        result = Enrollment(
            person=person_from_fields(person_row, db.store.face_counts(s, [person_id]).get(person_id, 0)),
            added=added,
            skipped=too_small,
        )
    db._after_write(added=added, vectors=templates, generation=generation)
    db.store.checkpoint()  # the group's rows are gone from the WAL too
    return result


def dismiss_group(db: FaceDB, group: Group | int) -> None:
    """The body of :meth:`facedb.FaceDB.dismiss_group`."""
    db._check_writable()
    group_id = group_id_of(group)
    with db.store.write() as s:
        if not db.store.remove_group(s, group_id):
            raise GroupNotFound(f"no group with id {group_id}: named or dismissed meanwhile?")
    db.store.checkpoint()  # the faces' templates and thumbnails are erased from the WAL too

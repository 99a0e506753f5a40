"""Faces nobody has named yet, the job: ``discover`` names the faces of enrolled people in a
pile of photos and groups the rest by identity (facedb.grouping), incrementally; a group can
then be named (its faces enrolled through the gate, as every enrollment) or dismissed
(erased). The records and how photos are listed are in facedb.discovery."""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Hashable, Iterable, Sequence
from pathlib import Path

import numpy as np

from facedb.context import GalleryContext
from facedb.discovery import (
    CHUNK,
    Discovery,
    Group,
    NamedFace,
    PhotoItem,
    PhotoSource,
    _box,
    group_id_of,
    group_of,
    photo_items,
)
from facedb.engine import Face
from facedb.enrollment import Accepted, poor_quality_reason
from facedb.errors import (
    ConfigError,
    EnrollmentRefused,
    FaceDBError,
    FaceNotFound,
    GroupNotFound,
    PersonNotFound,
)
from facedb.events import person_ref
from facedb.grouping import Grouping
from facedb.jobs.enrollment import Enroller
from facedb.jobs.people import People, check_name
from facedb.jobs.recognition import Recognition
from facedb.results import Enrollment
from facedb.store import FaceInfo, GroupFaceInfo
from facedb.store.database import utc_now
from facedb.thumbnails import thumbnail

__all__ = ["Groups"]

log = logging.getLogger("facedb.discovery")


class Groups:
    """Discover, and the groups of unnamed faces, of one gallery (:class:`facedb.FaceDB`
    delegates here)."""

    def __init__(
        self, ctx: GalleryContext, people: People, recognition: Recognition, enroller: Enroller
    ) -> None:
        self.ctx = ctx
        self.people = people
        self.recognition = recognition
        self.enroller = enroller

    def discover(
        self,
        photos: Iterable[PhotoSource] | PhotoSource,
        *,
        threshold: float | None = None,
        progress: Callable[[int, int], None] | None = None,
        photo_names: Sequence[str] | None = None,
    ) -> Discovery:
        """Finds every face in some photos: the faces of enrolled people are named, the rest
        grouped by identity with the groups found before (a watch's strangers included), so
        that each group can be named (:meth:`name_group`) or dismissed. A photo already
        discovered is not looked at again; adding photos later extends the groups.

        Args:
            photos: photos, folders (every photo below them), glob patterns, and photos as
                encoded bytes (an upload's).
            photo_names: what to call each photo in ``photos`` given as bytes (an upload's
                file name); a path's name is its absolute path.
            threshold: cosine similarity to a group's centroid at which a face joins it;
                default: the pairwise threshold in force (:attr:`FaceDB.thresholds`: the
                FMR-based one, never below naming).
            progress: called with (photos done, photos in all) after each batch.

        Example:
            >>> groups = db.discover(["party/", "2024/*.jpg"])
            >>> for g in groups:
            ...     print(g.id, g.size, g.representative.photo)
            >>> db.name_group(groups[0], "Alice")

        Raises:
            ImageNotFound: a path or pattern that names no photo (nothing is looked at).
        """
        self.ctx.check_writable()
        # Every face against every group: the pairwise threshold, not naming's (which comes
        # down to about 0.23 in a gallery of one person, where strangers would join).
        self.ctx.refresh_calibration()
        limit = self.ctx.thresholds.pairwise if threshold is None else float(threshold)
        if not 0.0 < limit <= 1.0:
            raise ConfigError(f"threshold must be in (0, 1], got {threshold}")
        items = photo_items(photos, photo_names)
        with self.ctx.store.read() as s:
            already = self.ctx.store.discovered_photos(s, [i.key for i in items] + [i.legacy for i in items])
            state = self.ctx.store.group_state(s, self.ctx.facts.dimension)
        todo = [i for i in items if i.key not in already and i.legacy not in already]
        grouping = Grouping(self.ctx.facts.dimension, limit)
        for group_id, centroid, count, in_photos in state:
            grouping.add_group(group_id, centroid, count, sorted(in_photos))
        result = _Run(self.ctx, self.recognition, grouping)
        done = len(items) - len(todo)
        if progress is not None:
            progress(done, len(items))
        for start in range(0, len(todo), CHUNK):
            chunk = todo[start : start + CHUNK]
            found = self.ctx.engine.detect_many([item.photo for item in chunk], errors="return")
            for item, faces in zip(chunk, found, strict=True):
                result.photo(item, faces)
            result.write()
            done += len(chunk)
            if progress is not None:
                progress(done, len(items))
        result.merge()
        with self.ctx.store.read() as s:
            groups = [
                group_of(row, faces) for row, faces in self.ctx.store.group_rows(s, sorted(result.touched))
            ]
        return Discovery(
            groups,
            result.named,
            result.skipped,
            photos=len(todo),
            already=len(items) - len(todo),
            faces=result.faces,
            grouped=result.grouped,
            # A group started here and merged into another here is not among the groups.
            new_groups=len(result.started & result.touched),
            threshold=limit,
        )

    def groups(self) -> list[Group]:
        """Every group of unnamed faces (from discover, and a watch's strangers), biggest
        first. A stranger stored by an older facedb, without faces, is not listed."""
        self.ctx.check_open()
        with self.ctx.store.read() as s:
            return [group_of(row, faces) for row, faces in self.ctx.store.group_rows(s) if faces]

    def group(self, group: Group | int) -> Group:
        """One group, as it is now.

        Raises:
            GroupNotFound: no group with that id (named or dismissed meanwhile).
        """
        self.ctx.check_open()
        group_id = group_id_of(group)
        with self.ctx.store.read() as s:
            found = [group_of(row, faces) for row, faces in self.ctx.store.group_rows(s, [group_id])]
        if not found:
            raise GroupNotFound(f"no group with id {group_id}: named or dismissed meanwhile?")
        return found[0]

    def group_thumbnail(self, face_id: int) -> bytes | None:
        """The JPEG thumbnail of a group's face (None: none was kept).

        Raises:
            FaceNotFound: no group face with that id.
        """
        self.ctx.check_open()
        with self.ctx.store.read() as s:
            exists, picture = self.ctx.store.group_face_thumbnail(s, int(face_id))
        if not exists:
            raise FaceNotFound(f"no face with id {face_id} in any group")
        return picture

    def name_group(self, group: Group | int, name: str, *, force: bool = False) -> Enrollment:
        """Enrolls a group's faces as the person of this name (a new one, or the one person
        already called so) through the enrollment gate and removes the group; a watch
        stranger's visits become the person's. Faces smaller than ``min_face_size`` are not
        enrolled (``skipped``, with the reason); the likeness checks are all or nothing.

        Raises:
            GroupNotFound: no such group, or it was named, dismissed or grew meanwhile.
            EnrollmentRefused: every face too small, or (unless ``force``) a face looking like
                somebody else more, or unlike the group's other faces (with the reasons).
            PersonNotFound: several people already have this name.
        """
        name = check_name(name)
        self.ctx.check_writable()
        group_id = group_id_of(group)
        existing = self.people.find(name) if name.strip() else []
        if len(existing) > 1:
            ids = ", ".join(str(p.id) for p in existing)
            raise PersonNotFound(
                f"{len(existing)} people are named {name!r} (ids {ids}): name the group by id"
            )
        person = existing[0] if existing else None
        with self.ctx.store.read() as s:
            if self.ctx.store.group(s, group_id) is None:
                raise GroupNotFound(f"no group with id {group_id}: named or dismissed meanwhile?")
            faces = self.ctx.store.group_templates(s, group_id, self.ctx.facts.dimension)
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
            small = self.ctx.policy.check_size(face)
            if small is not None:  # not enrolled (and erased with the group), the others are
                too_small.append((label, small))
                continue
            accepted.append(Accepted(label, face, None, len(accepted)))
            kept.append((face_id, row))
        refused = [] if accepted else too_small
        if accepted and not force:
            refused = self.enroller.mislabels(person, name, accepted)
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
                thumbnail=row.thumbnail if self.ctx.thumbnails else None,
            )
            for _, row in kept
        ]
        store = self.ctx.store
        with self.ctx.writes.change() as change:
            s = change.session
            if store.group(s, group_id, lock=True) is None:
                raise GroupNotFound(f"group {group_id} was named or dismissed meanwhile")
            if store.group_size(s, group_id) != len(faces):
                raise GroupNotFound(f"group {group_id} changed meanwhile: look at it again and name it then")
            # The same step as every enrollment's: a new person or the existing one, locked.
            person_id = self.enroller.person_for(change, person, name, {}, namesake=False)
            added = store.add_faces(s, [person_id] * len(kept), self.ctx.facts.model_id, templates, infos)
            change.added(added, templates)
            store.assign_group_sightings(s, group_id, person_id)
            store.remove_group(s, group_id)
            change.erased()  # the group's rows are gone from the WAL too
            result = self.enroller.enrollment_of(change, person_id, added, too_small)
            who = person_ref(person_id, result.person.name)
            change.event(
                "person.enrolled", {"person": who, "faces_added": len(added), "new_person": person is None}
            )
            change.event("group.named", {"group": {"id": group_id}, "person": who, "faces_added": len(added)})
            return result

    def dismiss_group(self, group: Group | int) -> None:
        """Removes a group with its faces, thumbnails and a stranger's visits (erased: they
        are biometric data).

        Raises:
            GroupNotFound: no such group (named or dismissed meanwhile).
        """
        self.ctx.check_writable()
        group_id = group_id_of(group)
        with self.ctx.writes.change() as change:
            if not self.ctx.store.remove_group(change.session, group_id):
                raise GroupNotFound(f"no group with id {group_id}: named or dismissed meanwhile?")
            change.erased()  # the faces' templates and thumbnails are erased from the WAL too
            change.event("group.dismissed", {"group": {"id": group_id}})


class _Run:
    """One ``discover`` call's faces: named, skipped, or placed in groups and written a chunk
    at a time (a new group gets its id when its chunk is written)."""

    def __init__(self, ctx: GalleryContext, recognition: Recognition, grouping: Grouping) -> None:
        self.ctx = ctx
        self.recognition = recognition
        self.grouping = grouping
        self.named: list[NamedFace] = []
        self.skipped: list[tuple[str, str]] = []
        self.faces = 0
        self.grouped = 0  # faces put in groups
        self.touched: set[int] = set()
        self.started: set[int] = set()  # the groups this run created
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
        for face, r in zip(found, self.recognition.identify_faces(found, 2), strict=True):
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
        if self.ctx.thumbnails:
            try:
                pixels = self.ctx.engine.decode(photo)
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
            self.grouped += len(infos)
        self._unplaced = []

    def write(self) -> None:
        """Writes the chunk's faces, new groups and moved centroids in one transaction."""
        self.place()
        if not self._pending and not self._looked:
            return
        pending, self._pending = self._pending, []
        looked, self._looked = self._looked, []
        now = utc_now()
        with self.ctx.writes.change() as change:
            s = change.session
            self.ctx.store.add_discovered_photos(s, looked, now)
            ids: dict[object, int] = {}
            for key, _ in pending:
                if key in ids:
                    continue
                if isinstance(key, int):
                    if self.ctx.store.group(s, key, lock=True) is None:
                        # Named or dismissed by somebody else meanwhile: this face starts anew.
                        ids[key] = self.ctx.store.add_group(s, self.grouping.centroid(key), "discover", now)
                    else:
                        ids[key] = key
                else:
                    ids[key] = self.ctx.store.add_group(s, self.grouping.centroid(key), "discover", now)
            self.ctx.store.add_group_faces(s, [ids[k] for k, _ in pending], [f for _, f in pending])
            for key, group_id in ids.items():
                self.ctx.store.set_group_centroid(s, group_id, self.grouping.centroid(key), now)
        for key, group_id in ids.items():
            if key != group_id:  # a group this write created
                self.grouping.rename(key, group_id)
                self.started.add(group_id)
            self.touched.add(group_id)

    def merge(self) -> None:
        """Joins the groups this call changed with any group of the same person (one write)."""
        joins = self.grouping.merge()
        if not joins:
            return
        now = utc_now()
        with self.ctx.writes.change() as change:
            s = change.session
            for kept, gone in joins:
                assert isinstance(kept, int) and isinstance(gone, int)
                if (
                    self.ctx.store.group(s, kept, lock=True) is None
                    or self.ctx.store.group(s, gone, lock=True) is None
                ):
                    continue  # one was named or dismissed meanwhile: the two stay as they are
                self.ctx.store.merge_groups(s, kept, gone)
                if kept in self.grouping:
                    self.ctx.store.set_group_centroid(s, kept, self.grouping.centroid(kept), now)
        for kept, gone in joins:
            assert isinstance(kept, int) and isinstance(gone, int)
            self.touched.discard(gone)
            self.touched.add(kept)

"""The gallery: people enrolled from photos, and "who is this?" for any new photo.

SQL (facedb.store) is the source of truth; the vector index (facedb.faiss) is derived from
it, saved beside it, and caught up or rebuilt whenever it lags behind.

:class:`FaceDB` orchestrates; its parts live in rooms of their own: where a gallery lives
(facedb.locations), the enrollment gate (facedb.enrollment), ranking and the joint
face-to-person assignment (facedb.ranking), the records it answers with (facedb.results),
idempotent enrollments (facedb.idempotency), template checks (facedb.templates) and folder
imports (facedb.folders).
"""

from __future__ import annotations

import hashlib
import logging
import math
import os
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from types import MappingProxyType
from typing import Any, cast, overload

import numpy as np
from numpy.typing import NDArray

from facedb import calibration
from facedb.calibration import Calibration
from facedb.discovery import (
    Discovery,
    Group,
    PhotoSource,
    discover,
    dismiss_group,
    group_id_of,
    group_of,
    name_group,
)
from facedb.engine import (
    DEFAULT_THRESHOLD,
    Color,
    Face,
    FaceEngine,
    ImageInput,
    Verification,
    as_photo,
    default_engine,
    photo_name,
)
from facedb.enrollment import ALREADY_ENROLLED, Accepted, EnrollmentPolicy, Screened
from facedb.errors import (
    ConfigError,
    EnrollmentRefused,
    FaceDBError,
    FaceNotFound,
    GalleryError,
    GroupNotFound,
    LastFace,
    NameInUse,
    PersonNotFound,
    ReadOnlyGallery,
)
from facedb.extras import require
from facedb.feedback import Feedback
from facedb.folders import FolderImport, import_folder
from facedb.idempotency import IDEMPOTENCY_KEEP, enrollment_record, replay
from facedb.locations import index_folder, parse_location, prepare_folder, sqlite_url
from facedb.ranking import assign_faces, check_k, faces_to_fetch, rank_people
from facedb.results import (
    Candidate,
    CheckReport,
    Enrollment,
    Identification,
    Person,
    Status,
    person_from_fields,
)
from facedb.store import FaceInfo, Store
from facedb.templates import check_matrix, unit_rows
from facedb.thumbnails import pixels_of, thumbnail
from facedb.vectors import open_vectors

__all__ = ["FaceDB"]

log = logging.getLogger("facedb")


def _content_hash(photo: ImageInput) -> str | None:
    """sha256 of an encoded photo's bytes (None for arrays and unreadable paths)."""
    try:
        if isinstance(photo, str | os.PathLike):
            digest = hashlib.sha256()
            with open(photo, "rb") as f:
                for block in iter(lambda: f.read(1 << 20), b""):
                    digest.update(block)
            return digest.hexdigest()
        if isinstance(photo, bytes | bytearray | memoryview):
            return hashlib.sha256(photo).hexdigest()
        return hashlib.sha256(np.ascontiguousarray(photo).tobytes()).hexdigest()
    except OSError:
        return None


class FaceDB(Feedback):
    """A gallery of people: enroll from photos, then identify the faces in any photo.

    Args:
        path: a folder (created if missing) holding gallery.db and the index; or a SQL URL
            (anything containing ``://``), like ``url``.
        url: a SQLAlchemy URL for the metadata (``postgresql://user@host/db``). A
            ``vectors=`` query parameter in it names the vector store (stripped before
            SQLAlchemy sees the URL).
        vectors: the vector store: None for a FAISS index (in the folder, or in ``cache_dir``
            for a SQL URL), or ``milvus://host:port/collection`` for Milvus.
        engine: the face engine; default: :func:`facedb.default_engine`.
        threshold: similarity at which a face is taken to be a person; None (the default):
            the threshold in force, the gallery's newest calibration (:meth:`calibrate`) or,
            before one, the model's prior (README, "Calibration").
        min_face_size: enrollment refuses faces whose box's short side is smaller (pixels).
        min_det_score: enrollment refuses faces the detector is less sure of.
        ambiguity_margin: a face whose best two people are closer than this is ambiguous.
        index: ``"auto"`` (exact while small, approximate past a size), ``"exact"`` or
            ``"approximate"``.
        cache_dir: where a SQL-URL gallery keeps its vector index.
        read_only: open without writing anything (a replica, a container image, a backup):
            people, identify and search work; every write raises :class:`ReadOnlyGallery`.
            The gallery must exist and be of this facedb's schema; an index that lags is
            caught up in memory only.
        create: make the gallery if there is none (never inside a folder of photos). With
            ``create=False`` a missing gallery is a :class:`GalleryError`: a mistyped path
            must not become an empty gallery that calls everybody unknown.

    Example:
        >>> with facedb.FaceDB("gallery") as db:
        ...     db.enroll("Tom Hanks", ["tom.png", "hanks.jpg"])
        ...     for r in db.identify("group.jpg"):
        ...         print(r.person.name if r.person else "unknown", r.similarity)
    """

    def __init__(
        self,
        path: str | os.PathLike[str] | None = None,
        *,
        url: str | None = None,
        engine: FaceEngine | None = None,
        threshold: float | None = None,
        min_face_size: float = 48.0,
        min_det_score: float = 0.6,
        ambiguity_margin: float = 0.05,
        index: str = "auto",
        cache_dir: str | os.PathLike[str] | None = None,
        vectors: str | None = None,
        read_only: bool = False,
        create: bool = True,
        thumbnails: bool = True,
    ) -> None:
        where = parse_location(path, url, vectors)
        if threshold is not None:
            _check_unit("threshold", threshold)
        for name, value in (
            ("ambiguity_margin", ambiguity_margin),
            ("min_det_score", min_det_score),
        ):
            _check_unit(name, value)
        if min_face_size < 0:
            raise ConfigError(f"min_face_size must be >= 0, got {min_face_size}")
        #: The gate's settings and the naming threshold, one copy (the properties below).
        self.policy = EnrollmentPolicy(
            float(min_face_size), float(min_det_score), DEFAULT_THRESHOLD if threshold is None else threshold
        )
        #: An explicit threshold (argument or setter) overrides the one in force.
        self._explicit_threshold = None if threshold is None else float(threshold)
        self._calibration: Calibration | None = None
        self._calibration_generation = -1
        self._people_seen = 0
        self.ambiguity_margin = float(ambiguity_margin)
        #: Whether a 112x112 JPEG of each new face is kept with it (for the web page).
        self.thumbnails = bool(thumbnails)
        self.engine = engine or default_engine()
        self._lock = threading.RLock()
        self._closed = False

        self.read_only = bool(read_only)
        if where.vectors is not None and where.vectors.startswith("milvus://"):
            require("milvus", "a Milvus vector store")  # before a gallery is made for it
        if where.folder is not None:
            prepare_folder(where.folder, read_only=self.read_only, create=create)
            self.location = str(where.folder)
            self.store = Store(sqlite_url(where.folder), read_only=self.read_only)
        else:
            assert where.url is not None
            self.store = Store(where.url, read_only=self.read_only, create=create)
            self.location = self.store.safe_url
        try:
            self.facts = self.store.claim(self.engine.model_id, self.engine.embedding_size)
            self.vectors = open_vectors(
                where.vectors,
                folder=index_folder(where, self.store.safe_url, self.facts.uid, cache_dir),
                dimension=self.facts.dimension,
                model_id=self.facts.model_id,
                gallery_uid=self.facts.uid,
                kind=index,
                store=self.store,
            )
        except BaseException:
            self.store.close()
            raise
        #: The model's prior: the score model and threshold in force before a calibration.
        self._prior, self._prior_threshold, self._prior_source = calibration.model_prior(self.facts.model_id)
        if self._prior_source.startswith("no prior for"):
            log.warning("%s: %s", self.location, self._prior_source)

    # -- lifecycle -------------------------------------------------------------------------

    @property
    def threshold(self) -> float:
        """Similarity at which a face is taken to be a person (identify and the gate): the
        explicit one if set, else the calibration in force, else the model's prior."""
        if not self._closed:
            self._refresh_calibration()
        return self.policy.threshold

    @threshold.setter
    def threshold(self, value: float) -> None:
        self._explicit_threshold = _check_unit("threshold", value)
        self.policy = replace(self.policy, threshold=self._explicit_threshold)

    @property
    def calibration(self) -> Calibration | None:
        """The calibration in force (the gallery's newest for its model), None before one."""
        self._check_open()
        self._refresh_calibration()
        return self._calibration

    def _refresh_calibration(self) -> None:
        """Reloads the calibration in force and the gallery's size when the generation moved
        (a calibration bumps it): one cheap query while nothing changed."""
        generation = self.store.generation()
        if generation == self._calibration_generation:
            return
        with self.store.read() as s:
            row = self.store.calibration_in_force(s, self.facts.model_id)
            found = None if row is None else calibration.calibration_from_row(row)
            people = self.store.count_people(s)
        with self._lock:
            self._calibration = found
            self._people_seen = people
            self._calibration_generation = generation
            if self._explicit_threshold is None:
                limit = self._prior_threshold if found is None else found.threshold
                self.policy = replace(self.policy, threshold=limit)

    @property
    def min_face_size(self) -> float:
        """Enrollment refuses faces whose box's short side is smaller (pixels)."""
        return self.policy.min_face_size

    @min_face_size.setter
    def min_face_size(self, value: float) -> None:
        if value < 0:
            raise ConfigError(f"min_face_size must be >= 0, got {value}")
        self.policy = replace(self.policy, min_face_size=float(value))

    @property
    def min_det_score(self) -> float:
        """Enrollment refuses faces the detector is less sure of."""
        return self.policy.min_det_score

    @min_det_score.setter
    def min_det_score(self, value: float) -> None:
        self.policy = replace(self.policy, min_det_score=_check_unit("min_det_score", value))

    def close(self) -> None:
        """Saves the index, checkpoints the database and releases files. Idempotent."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self.vectors.close()
            self.store.close()

    def __enter__(self) -> FaceDB:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        if not getattr(self, "_closed", True):
            try:
                self.close()
            except Exception:
                pass

    def _check_open(self) -> None:
        if self._closed:
            raise GalleryError(f"the gallery {self.location} is closed")

    def _check_writable(self) -> None:
        self._check_open()
        if self.read_only:
            raise ReadOnlyGallery(f"the gallery {self.location} is open read-only: nothing can be changed")

    def _sync(self) -> None:
        """Catches the index up with SQL (another process may have written)."""
        self._check_open()
        self.vectors.sync(self.store)

    def sync_vectors(self) -> None:
        """Brings the vector store up to date with the SQL side now: replays the change log
        after the generation it holds (every call does this first, so only code that wrote
        through :attr:`store` itself needs it, as ``facedb copy`` does after each batch).

        Example::

            with db.store.write() as s:
                db.store.insert_faces(s, rows)
                db.store.bump(s, added=[r["id"] for r in rows])
            db.sync_vectors()
        """
        with self._lock:
            self._sync()

    # -- people ----------------------------------------------------------------------------

    def __len__(self) -> int:
        """How many people the gallery holds."""
        self._check_open()
        with self.store.read() as s:
            return self.store.count_people(s)

    def people(self) -> list[Person]:
        """Everybody, by id."""
        self._check_open()
        with self.store.read() as s:
            rows = self.store.people(s)
            counts = self.store.face_counts(s, [r.id for r in rows]) if rows else {}
            return [person_from_fields(r, counts.get(r.id, 0)) for r in rows]

    def get(self, person_id: int) -> Person:
        """The person with this id.

        Raises:
            PersonNotFound: nobody has it.
        """
        self._check_open()
        with self.store.read() as s:
            row = self.store.person(s, int(person_id))
            if row is None:
                raise PersonNotFound(f"no person with id {person_id} in {self.location}")
            return person_from_fields(row, self.store.face_counts(s, [row.id]).get(row.id, 0))

    def find(self, name: str) -> list[Person]:
        """Everybody with exactly this name (names are labels, so maybe several)."""
        self._check_open()
        with self.store.read() as s:
            rows = self.store.people_named(s, name)
            counts = self.store.face_counts(s, [r.id for r in rows]) if rows else {}
            return [person_from_fields(r, counts.get(r.id, 0)) for r in rows]

    def resolve(self, who: Person | int | str) -> Person:
        """A person given as a Person, an id, or an exact name (a number is an id first).

        Raises:
            PersonNotFound: no such person, or a name that several people share (the message
                lists their ids).
        """
        if isinstance(who, Person):
            return self.get(who.id)
        if isinstance(who, int) or (isinstance(who, str) and who.strip().isdigit()):
            try:
                return self.get(int(who))
            except PersonNotFound:
                if isinstance(who, int):
                    raise
        matches = self.find(str(who))
        if not matches:
            what = "with id or name" if str(who).strip().isdigit() else "named"
            raise PersonNotFound(f"no person {what} {who!r} in {self.location}")
        if len(matches) > 1:
            ids = ", ".join(str(p.id) for p in matches)
            raise PersonNotFound(f"{len(matches)} people are named {who!r} (ids {ids}): give an id")
        return matches[0]

    def rename(self, person: Person | int | str, name: str) -> Person:
        """Gives a person a new name."""
        self._check_writable()
        _check_name(name)
        target = self.resolve(person)
        with self.store.write() as s:
            if not self.store.rename_person(s, target.id, name):
                raise PersonNotFound(f"no person with id {target.id} in {self.location}")
        return self.get(target.id)

    def remove(self, person: Person | int | str) -> None:
        """Removes a person and erases their templates from the database, its WAL and the
        index files. The erasure is complete when this returns if no other process has the
        gallery open, otherwise when the last one closes it."""
        self._check_writable()
        target = self.resolve(person)
        with self.store.write() as s:
            # Their row is locked before their faces are listed (see Store.remove_person).
            face_ids = self.store.remove_person(s, target.id)
            if face_ids is None:
                raise PersonNotFound(f"no person with id {target.id} in {self.location}")
            generation = self.store.bump(s, removed=face_ids)
        self._after_write(removed=face_ids, generation=generation)

    def remove_face(self, face_id: int, *, last: bool = False) -> None:
        """Removes one template (and erases it like :meth:`remove`).

        Args:
            last: remove it even if it is its person's last face (which leaves a person
                nobody can be recognised as: the same as removing them, and a door lets only
                whoever may remove the person do it).

        Raises:
            FaceNotFound: no face has this id.
            LastFace: it is its person's last face and ``last`` is False.
        """
        self._check_writable()
        self._check_open()
        with self.store.write() as s:
            row = self.store.face(s, int(face_id), lock=True)
            if row is None:
                raise FaceNotFound(
                    f"no face with id {face_id} in {self.location} (`facedb faces PERSON` lists them)"
                )
            if not last and self.store.face_counts(s, [row.person_id]).get(row.person_id, 0) <= 1:
                raise LastFace(
                    f"face {face_id} is the last face of person {row.person_id}: removing it is removing "
                    f"them (remove the person, or ask for the last face: last=True, --last)"
                )
            self.store.remove_face(s, int(face_id))
            generation = self.store.bump(s, removed=[int(face_id)])
        self._after_write(removed=[int(face_id)], generation=generation)

    def faces(self, person: Person | int | str) -> list[dict[str, Any]]:
        """The faces of a person: id, box, detector score, quality at enrollment (None for an
        imported template), source photo name and hash, and whether it has a thumbnail
        (:meth:`thumbnail`)."""
        target = self.resolve(person)
        with self.store.read() as s:
            rows = self.store.faces_of(s, target.id)
            return [
                {
                    "id": int(r.id),
                    "bbox": None if r.x1 is None else [r.x1, r.y1, r.x2, r.y2],
                    "score": r.det_score,
                    "quality": r.quality,
                    "image": r.image_name,
                    "sha256": r.image_sha256,
                    "created_at": r.created_at,
                    "has_thumbnail": r.thumbnail is not None,
                }
                for r in rows
            ]

    def thumbnail(self, face_id: int) -> bytes | None:
        """The 112x112 JPEG of one face (:mod:`facedb.thumbnails`), or None for a face that
        has none (an imported template, a gallery opened with ``thumbnails=False``).

        Raises:
            FaceNotFound: no face has this id.
        """
        self._check_open()
        with self.store.read() as s:
            picture = self.store.face_thumbnail(s, int(face_id))
        if picture is None:
            raise FaceNotFound(
                f"no face with id {face_id} in {self.location} (`facedb faces PERSON` lists them)"
            )
        return picture[0]

    def portraits(self) -> dict[int, int]:
        """For each person with a thumbnail: the id of their first face that has one (what
        a list of people shows of each)."""
        self._check_open()
        with self.store.read() as s:
            return self.store.first_thumbnails(s)

    # -- enrollment ------------------------------------------------------------------------

    def enroll(
        self,
        name: str,
        photos: Iterable[ImageInput] | ImageInput,
        metadata: Mapping[str, Any] | None = None,
        *,
        force: bool = False,
        largest_face: bool = False,
        color: Color = "bgr",
    ) -> Person:
        """Adds photos to the one person of this name, or creates them.

        All or nothing: if one photo is refused, nothing is written and the
        :class:`EnrollmentRefused` error names each refused photo with its reason. A photo
        already enrolled for this person (same content) is skipped and logged.

        Args:
            metadata: stored with a new person (merged into an existing one's).
            force: enroll a photo even if it looks more like somebody else.
            largest_face: take the largest face of a photo with several instead of refusing it.
            color: the channel order of array photos: ``"bgr"`` (OpenCV's) or ``"rgb"`` (PIL's,
                imageio's); see :func:`facedb.detect`.

        Raises:
            EnrollmentRefused: some photo had no face, several faces, a face too small or
                uncertain, or a face closer to another person.
            PersonNotFound: several people already have this name.
        """
        return self.enroll_photos(
            name, photos, metadata, force=force, largest_face=largest_face, color=color
        ).person

    def enroll_photos(
        self,
        name: str,
        photos: Iterable[ImageInput] | ImageInput,
        metadata: Mapping[str, Any] | None = None,
        *,
        force: bool = False,
        largest_face: bool = False,
        color: Color = "bgr",
        photo_names: Sequence[str] | None = None,
        request_key: str | None = None,
        request_fingerprint: str = "",
    ) -> Enrollment:
        """Like :meth:`enroll`, returning what was added and what was skipped.

        Args:
            photo_names: what to call each photo in refusals, skips and the stored record (an
                upload's file name, an object store's key); default: its path's name, or
                ``<N bytes>`` for data.
            request_key: makes the call idempotent: the key is recorded in the enrollment's
                own transaction, and a later call with the same key writes nothing and
                returns the first call's Enrollment (``replayed=True``).
            request_fingerprint: what the request was (e.g. a hash of its fields); the same
                key with another fingerprint raises :class:`IdempotencyKeyReused`.
        """
        _check_name(name)
        self._check_open()
        if request_key is not None:
            earlier = self._recall(request_key, request_fingerprint)
            if earlier is not None:
                return earlier
        existing = self.find(name)
        if len(existing) > 1:
            ids = ", ".join(str(p.id) for p in existing)
            raise PersonNotFound(f"{len(existing)} people are named {name!r} (ids {ids}): add faces by id")
        person = existing[0] if existing else None
        return self._add(
            person,
            name,
            _as_list(photos, color),
            dict(metadata or {}),
            force,
            largest_face,
            names=photo_names,
            request_key=request_key,
            request_fingerprint=request_fingerprint,
        )

    def add_faces(
        self,
        person: Person | int | str,
        photos: Iterable[ImageInput] | ImageInput,
        *,
        force: bool = False,
        largest_face: bool = False,
        color: Color = "bgr",
    ) -> Person:
        """Adds photos of an existing person (same gate and rules as :meth:`enroll`)."""
        return self.add_photos(person, photos, force=force, largest_face=largest_face, color=color).person

    def add_photos(
        self,
        person: Person | int | str,
        photos: Iterable[ImageInput] | ImageInput,
        *,
        force: bool = False,
        largest_face: bool = False,
        color: Color = "bgr",
        photo_names: Sequence[str] | None = None,
        request_key: str | None = None,
        request_fingerprint: str = "",
    ) -> Enrollment:
        """Like :meth:`add_faces`, returning what was added and what was skipped;
        ``photo_names``, ``request_key`` and ``request_fingerprint`` as in :meth:`enroll_photos`."""
        if request_key is not None:
            self._check_open()
            earlier = self._recall(request_key, request_fingerprint)
            if earlier is not None:
                return earlier
        target = self.resolve(person)
        return self._add(
            target,
            target.name,
            _as_list(photos, color),
            {},
            force,
            largest_face,
            names=photo_names,
            request_key=request_key,
            request_fingerprint=request_fingerprint,
        )

    def create_person(
        self,
        name: str,
        photos: Iterable[ImageInput] | ImageInput,
        metadata: Mapping[str, Any] | None = None,
        *,
        force: bool = False,
        largest_face: bool = False,
        color: Color = "bgr",
        namesake: bool = False,
        photo_names: Sequence[str] | None = None,
        request_key: str | None = None,
        request_fingerprint: str = "",
    ) -> Enrollment:
        """Enrolls a new person; same gate and rules as :meth:`enroll`; ``photo_names``,
        ``request_key`` and ``request_fingerprint`` as in :meth:`enroll_photos`.

        Names are labels, not keys, but a second person with a name already in use is made
        only when asked for: otherwise the photos of somebody already enrolled would become a
        new person of the same name, whom nobody could tell apart afterwards.

        Args:
            namesake: create the person even if somebody already has this name.

        Raises:
            NameInUse: somebody has this name and ``namesake`` is False (the message names
                their ids; :meth:`add_faces` adds photos to them).
        """
        _check_name(name)
        self._check_open()
        if request_key is not None:  # before the inference: a retry costs one lookup
            earlier = self._recall(request_key, request_fingerprint)
            if earlier is not None:
                return earlier
        if not namesake:  # before the inference too; checked again in the write
            _refuse_namesake(name, [p.id for p in self.find(name)])
        return self._add(
            None,
            name,
            _as_list(photos, color),
            dict(metadata or {}),
            force,
            largest_face,
            names=photo_names,
            request_key=request_key,
            request_fingerprint=request_fingerprint,
            namesake=namesake,
        )

    def _recall(self, request_key: str, fingerprint: str) -> Enrollment | None:
        """The recorded answer of an earlier request with this key (None: there was none)."""
        with self.store.read() as s:
            return replay(self.store.recall_request(s, request_key), fingerprint)

    def _add(
        self,
        person: Person | None,
        name: str,
        photos: list[ImageInput],
        metadata: dict[str, Any],
        force: bool,
        largest_face: bool,
        *,
        names: Sequence[str] | None = None,
        request_key: str | None = None,
        request_fingerprint: str = "",
        namesake: bool = False,
    ) -> Enrollment:
        self._check_writable()
        if not photos:
            raise EnrollmentRefused(f"no photos given to enroll {name!r}")
        if names is not None and (len(names) != len(photos) or not all(isinstance(n, str) for n in names)):
            raise ConfigError(f"photo_names must be one string per photo: {len(photos)} photos")
        screened = self._gate(person, name, photos, largest_face, force, names)
        accepted, refused, skipped = screened.accepted, screened.refused, screened.skipped
        if refused:
            lines = "; ".join(f"{photo}: {reason}" for photo, reason in refused)
            raise EnrollmentRefused(
                f"nothing enrolled for {name!r}: {len(refused)} of {len(photos)} photo(s) refused: {lines}",
                refused,
            )
        pictures = dict(zip(accepted, self._thumbnails(photos, accepted), strict=True))
        with self.store.write() as s:
            if request_key is not None:
                # Another process may have finished the same request since the lookup.
                earlier = replay(self.store.recall_request(s, request_key), request_fingerprint)
                if earlier is not None:
                    return earlier
            if person is None:
                if not namesake:  # somebody of this name may have been enrolled meanwhile
                    _refuse_namesake(name, self.store.claim_name(s, name))
                (person_id,) = self.store.add_people(s, [name], [metadata])
            else:
                # Shared lock: a concurrent removal of this person waits for us, or we for it.
                if self.store.person(s, person.id, lock="share") is None:
                    raise PersonNotFound(f"person {person.id} was removed meanwhile")
                person_id = person.id
                if metadata:
                    self.store.merge_metadata(s, person_id, metadata)
            # Another writer may have enrolled the same photo since the gate looked.
            known = self.store.image_hashes(s, person_id)
            fresh = [a for a in accepted if a.sha256 is None or a.sha256 not in known]
            skipped += [(a.photo, ALREADY_ENROLLED) for a in accepted if a not in fresh]
            templates = np.vstack([a.face.embedding for a in fresh]) if fresh else None
            added: list[int] = []
            generation = None
            if templates is not None:
                infos = [
                    FaceInfo(
                        bbox=[float(v) for v in a.face.bbox],
                        det_score=a.face.score,
                        image_sha256=a.sha256,
                        image_name=Path(a.photo).name[:1000],
                        quality=None if math.isnan(a.face.quality) else a.face.quality,
                        thumbnail=pictures[a],
                    )
                    for a in fresh
                ]
                added = self.store.add_faces(
                    s, [person_id] * len(fresh), self.facts.model_id, templates, infos
                )
                generation = self.store.bump(s, added=added)
            # The answer is taken inside the transaction, so that a replay of it is the same.
            row = self.store.person(s, person_id)
            assert row is not None
            result = Enrollment(
                person=person_from_fields(row, self.store.face_counts(s, [person_id]).get(person_id, 0)),
                added=added,
                skipped=skipped,
            )
            if request_key is not None:
                # In the enrollment's transaction: both are committed, or neither.
                self.store.remember_request(
                    s, request_key, request_fingerprint, enrollment_record(result), IDEMPOTENCY_KEEP
                )
        for photo, reason in skipped:
            log.info("skipped %s for %s: %s", photo, name, reason)
        if generation is not None and templates is not None:
            self._after_write(added=added, vectors=templates, generation=generation)
        return result

    def _thumbnails(self, photos: Sequence[ImageInput], faces: Sequence[Accepted]) -> list[bytes | None]:
        """The thumbnail of each accepted face (None each when thumbnails are off)."""
        if not self.thumbnails:
            return [None] * len(faces)
        out: list[bytes | None] = []
        for a in faces:
            try:
                out.append(thumbnail(pixels_of(self.engine, photos[a.index]), a.face.landmarks))
            except (FaceDBError, IndexError, TypeError, ValueError) as error:  # the face stays, unpictured
                log.warning("no thumbnail for %s: %s", a.photo, error)
                out.append(None)
        return out

    def _gate(
        self,
        person: Person | None,
        name: str,
        photos: list[ImageInput],
        largest_face: bool,
        force: bool,
        names: Sequence[str] | None = None,
    ) -> Screened:
        """Checks every photo against the enrollment policy: the photos' faces, the content
        already enrolled for this person, and (unless forced) whether each looks like the
        person's own faces and not more like somebody else."""
        if names is None:
            names = [photo_name(p) for p in photos]
        hashes = [_content_hash(p) for p in photos]
        known: set[str] = set()
        if person is not None:
            with self.store.read() as s:
                known = self.store.image_hashes(s, person.id)
        results = list(self.engine.detect_many(photos, errors="return"))
        screened = self.policy.screen(names, hashes, results, known, largest_face)
        if not force:
            screened.refused.extend(self._mislabels(person, name, screened.accepted))
        return screened

    def _mislabels(self, person: Person | None, name: str, accepted: list[Accepted]) -> list[tuple[str, str]]:
        """The faces (already detected, screened and accepted) that look like somebody else
        more than this person, or like none of the person's own faces: ``(photo, reason)``."""
        if not accepted:
            return []
        self._sync()
        self._refresh_calibration()  # the threshold in force, whoever calls (gate, confirm)
        new = np.vstack([a.face.embedding for a in accepted])
        enrolled = None
        if person is not None:
            with self.store.read() as s:
                face_ids = self.store.face_ids_of(s, [person.id])
                enrolled = self.store.templates(s, face_ids, self.facts.dimension)[1]
        # Who a photo looks like more is the better reason; failing that, looking like
        # none of the person's own faces (its owner need not be enrolled).
        closer = self.policy.likely_mislabels(
            accepted,
            self._candidates(new, 3),
            enrolled,
            None if person is None else person.id,
        )
        named = {photo for photo, _ in closer}
        unlike = self.policy.unlike_own(accepted, enrolled, name)
        return closer + [r for r in unlike if r[0] not in named]

    def import_folder(
        self,
        folder: str | os.PathLike[str],
        *,
        force: bool = False,
        largest_face: bool = False,
        on_folder: Callable[[str], None] | None = None,
    ) -> FolderImport:
        """Imports a folder of people: each sub-folder's photos are enrolled as the person it
        is named after (as :meth:`enroll_photos`); a person's refused photos are skipped with
        their reasons and the others enrolled. ``on_folder`` is called with each sub-folder's
        name when it is done (a progress bar).

        Example:
            >>> with facedb.FaceDB("gallery") as db:
            ...     result = db.import_folder("photos/")  # photos/Tom Hanks/1.jpg, ...
            ...     print(len(result.added), "faces added;", len(result.skipped), "skipped")

        Raises:
            ConfigError: not a folder, or one without sub-folders.
        """
        return import_folder(self, Path(folder), force=force, largest_face=largest_face, on_folder=on_folder)

    # -- faces nobody has named yet ------------------------------------------------------

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
                default: the naming threshold in force.
            progress: called with (photos done, photos in all) after each batch.

        Example:
            >>> groups = db.discover(["party/", "2024/*.jpg"])
            >>> for g in groups:
            ...     print(g.id, g.size, g.representative.photo)
            >>> db.name_group(groups[0], "Alice")

        Raises:
            ImageNotFound: a path or pattern that names no photo (nothing is looked at).
        """
        self._check_open()
        return discover(self, photos, threshold=threshold, progress=progress, photo_names=photo_names)

    def groups(self) -> list[Group]:
        """Every group of unnamed faces (from :meth:`discover`, and a watch's strangers),
        biggest first. A stranger stored by an older facedb, without faces, is not listed."""
        self._check_open()
        with self.store.read() as s:
            return [group_of(row, faces) for row, faces in self.store.group_rows(s) if faces]

    def group(self, group: Group | int) -> Group:
        """One group, as it is now.

        Raises:
            GroupNotFound: no group with that id (named or dismissed meanwhile).
        """
        self._check_open()
        group_id = group_id_of(group)
        with self.store.read() as s:
            found = [group_of(row, faces) for row, faces in self.store.group_rows(s, [group_id])]
        if not found:
            raise GroupNotFound(f"no group with id {group_id}: named or dismissed meanwhile?")
        return found[0]

    def group_thumbnail(self, face_id: int) -> bytes | None:
        """The JPEG thumbnail of a group's face (None: none was kept).

        Raises:
            FaceNotFound: no group face with that id.
        """
        self._check_open()
        with self.store.read() as s:
            exists, picture = self.store.group_face_thumbnail(s, int(face_id))
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
        _check_name(name)
        self._check_open()
        return name_group(self, group, name, force=force)

    def dismiss_group(self, group: Group | int) -> None:
        """Removes a group with its faces, thumbnails and a stranger's visits (erased: they
        are biometric data).

        Raises:
            GroupNotFound: no such group (named or dismissed meanwhile).
        """
        self._check_open()
        dismiss_group(self, group)

    def import_embeddings(
        self,
        names: Sequence[str],
        embeddings: NDArray[np.floating[Any]],
        metadata: Sequence[Mapping[str, Any]] | None = None,
    ) -> list[Person]:
        """Bulk import: one new person per row of ``embeddings`` (float32[N, D]), trusted
        (the per-photo gates do not apply). Rows are L2-normalised.

        Raises:
            ConfigError: wrong shape, dtype or dimension, non-finite values, or names and
                rows that do not pair up.
        """
        self._check_writable()
        matrix = check_matrix(embeddings, self.facts.dimension, "embeddings")
        if len(names) != len(matrix):
            raise ConfigError(f"{len(names)} names for {len(matrix)} embeddings")
        if metadata is not None and len(metadata) != len(matrix):
            raise ConfigError(f"{len(metadata)} metadata entries for {len(matrix)} embeddings")
        for name in names:
            _check_name(name)
        matrix = unit_rows(matrix, "embeddings")
        people: list[Person] = []
        batch = 20_000
        for start in range(0, len(matrix), batch):
            part = matrix[start : start + batch]
            part_names = list(names[start : start + batch])
            part_meta = (
                [dict(m) for m in metadata[start : start + batch]]
                if metadata is not None
                else [{}] * len(part)
            )
            created = datetime.now(UTC)
            with self.store.write() as s:
                person_ids = self.store.add_people(s, part_names, part_meta, created)
                face_ids = self.store.add_faces(
                    s, person_ids, self.facts.model_id, part, [FaceInfo()] * len(part)
                )
                generation = self.store.bump(s, added=face_ids)
            people += [
                Person(id=pid, name=n, metadata=MappingProxyType(m), face_count=1, created_at=created)
                for pid, n, m in zip(person_ids, part_names, part_meta, strict=True)
            ]
            self._after_write(added=face_ids, vectors=part, generation=generation)
        return people

    def _after_write(
        self,
        *,
        generation: int,
        added: Sequence[int] = (),
        vectors: NDArray[np.float32] | None = None,
        removed: Sequence[int] = (),
    ) -> None:
        """Applies a committed change to the vector store; erasure after removals.

        The change is committed and logged in SQL (the change log is the outbox), so the call
        that made it has succeeded whatever happens here: a vector store that fails now (a
        full disk, Milvus away) is caught up from the log later, by this process or any other,
        and the failure is a warning in the log, not an error for the caller to retry."""
        with self._lock:
            try:
                self.vectors.apply(
                    generation, added=added, vectors=vectors, removed=removed, store=self.store
                )
            except Exception as e:
                log.warning(
                    "generation %d is committed, but updating the vector store %s failed (%s): "
                    "it will be caught up from the change log",
                    generation,
                    self.vectors.location,
                    e,
                    exc_info=not isinstance(e, FaceDBError | OSError),
                )
            if removed:
                try:
                    self.store.checkpoint()
                except FaceDBError as e:
                    log.warning("checkpointing the database after a removal failed: %s", e)

    # -- search ----------------------------------------------------------------------------

    def search(self, embeddings: NDArray[np.floating[Any]], k: int = 5) -> list[list[Candidate]]:
        """The k people most similar to each template (no photo needed), best first.

        Args:
            embeddings: float32[D] or float32[N, D]; an all-zero row resembles nobody ([]).

        Raises:
            ConfigError: wrong shape, NaN or infinite values (as float32), a norm beyond
                float32's range, or k outside 1..MAX_K (4096).
        """
        k = check_k(k)
        self._sync()
        matrix = check_matrix(np.atleast_2d(np.asarray(embeddings)), self.facts.dimension, "embeddings")
        # An all-zero template has no direction: nobody resembles it (an empty answer for its
        # row), where a stored one would be refused.
        nonzero = np.abs(matrix).max(axis=1) > 0
        if not nonzero.any():
            return [[] for _ in range(len(matrix))]
        probes = unit_rows(matrix[nonzero], "embeddings")
        found = iter(self._respect_rejections(probes, self._candidates(probes, k)))
        return [next(found) if keep else [] for keep in nonzero]

    def _candidates(self, matrix: NDArray[np.float32], k: int) -> list[list[Candidate]]:
        # No len() here: counting a Milvus collection is a consistent read that waits for
        # the server's next time tick, 100 ms or more.
        sims, ids = self.vectors.search(matrix, faces_to_fetch(k))
        # Hits are checked against SQL: a face removed by any process is never returned.
        owners, rows = self.store.face_owners(sorted({int(i) for i in ids.ravel() if i >= 0}))
        people = {pid: person_from_fields(row, count) for pid, (row, count) in rows.items()}
        return [
            [Candidate(people[pid], sim) for pid, sim in ranked]
            for ranked in rank_people(sims, ids, owners, k)
        ]

    @overload
    def identify(
        self, photo: ImageInput, k: int = 5, *, threshold: float | None = None, color: Color = "bgr"
    ) -> list[Identification]: ...

    @overload
    def identify(
        self,
        photo: list[ImageInput] | tuple[ImageInput, ...],
        k: int = 5,
        *,
        threshold: float | None = None,
        color: Color = "bgr",
    ) -> list[list[Identification]]: ...

    def identify(
        self,
        photo: ImageInput | list[ImageInput] | tuple[ImageInput, ...],
        k: int = 5,
        *,
        threshold: float | None = None,
        color: Color = "bgr",
    ) -> list[Identification] | list[list[Identification]]:
        """Who each face in the photo is, one Identification per face, left to right; for a
        list (or tuple) of photos, one such list per photo, in order (detected as a batch).

        In one photo a person is named at most once: faces are assigned jointly, best match
        first. A face whose best two people are within ``ambiguity_margin`` is ambiguous
        and named nobody. A face below the quality bar (``Face.quality_reasons``) has status
        ``"poor_quality"`` and names nobody, whatever its candidates (kept for information).
        A photo without faces gives ``[]``.

        Raises:
            ConfigError: ``k`` outside 1..4096, a threshold outside 0..1, or a bad ``color``.
            ImageError: a photo that cannot be read (in a list: the first such photo; to
                answer the others, identify them one by one).
        """
        limit = self._limit(threshold)
        k = check_k(k)
        if isinstance(photo, list | tuple):
            found = self.engine.detect_many(photo, color=color)
            return [self._identify_faces(cast(list[Face], faces), k, limit) for faces in found]
        return self._identify_faces(self.engine.detect(photo, color=color), k, limit)

    def identify_faces(
        self, faces: Sequence[Face], k: int = 5, *, threshold: float | None = None
    ) -> list[Identification]:
        """:meth:`identify` for faces already detected (by this gallery's engine, from one
        photo): the same answer as ``identify`` of their photo. For callers that run the
        recognizer themselves, e.g. on the faces of several photos in one batch.

        Raises:
            ConfigError: ``k`` outside 1..4096 or a threshold outside 0..1.
        """
        limit = self._limit(threshold)
        return self._identify_faces(list(faces), check_k(k), limit)

    def verify(
        self, a: ImageInput, b: ImageInput, *, threshold: float | None = None, color: Color = "bgr"
    ) -> Verification:
        """Whether the largest faces of two photos are the same person, at the threshold in
        force in this gallery (a calibration's, a user's, else the model's), the one
        :meth:`identify` names people at; ``threshold`` overrides it for this call.

        Raises:
            NoFaceError: either photo shows no face (the message names which).
            ConfigError: a threshold outside 0..1.
        """
        self._check_open()
        return self.engine.verify(a, b, threshold=self._limit(threshold), color=color)

    def _limit(self, threshold: float | None) -> float:
        """The threshold to name people at: the one given, or the one in force (the
        calibration reloaded when another process changed it)."""
        if threshold is None:
            return self.threshold
        limit = _check_unit("threshold", threshold)
        self._refresh_calibration()  # the confidence's score model and gallery size
        return limit

    def _identify_faces(self, faces: list[Face], k: int, limit: float) -> list[Identification]:
        """The answer for the faces of one photo (identify's body, after detection)."""
        if not faces:
            return []
        self._sync()
        matrix = np.vstack([f.embedding for f in faces]).astype(np.float32)
        candidates = self._respect_rejections(matrix, self._candidates(matrix, max(k, 2)))
        # A face below the quality bar names nobody, so it cannot take a person from another.
        assigned = assign_faces(
            [
                [] if face.is_poor_quality else [(c.person.id, c.similarity) for c in cands]
                for face, cands in zip(faces, candidates, strict=True)
            ],
            limit,
            self.ambiguity_margin,
        )
        model = self._prior if self._calibration is None else self._calibration.model
        named = [a.similarity for a in assigned if a.person_id is not None and a.similarity is not None]
        confidences = iter(model.confidence(named, max(self._people_seen, 1)).tolist() if named else [])
        results = []
        for face, cands, a in zip(faces, candidates, assigned, strict=True):
            person = None
            similarity = cands[0].similarity if cands else 0.0
            if a.person_id is not None and a.similarity is not None:
                person = next(c.person for c in cands if c.person.id == a.person_id)
                similarity = a.similarity
            status: Status = (
                "poor_quality"
                if face.is_poor_quality
                else "named"
                if person is not None
                else "ambiguous"
                if a.ambiguous
                else "unknown"
            )
            confidence = next(confidences) if person is not None else None
            results.append(
                Identification(face, person, similarity, cands[:k], a.ambiguous, status, confidence)
            )
        return results

    # -- calibration -----------------------------------------------------------------------

    def calibrate(
        self, *, target_fpir: float | None = None, target_fmr: float | None = None, seed: int = 0
    ) -> Calibration:
        """Chooses the naming threshold for a target error rate from the gallery's own
        templates (the model's prior while it is small), stores it, and puts it in force for
        every process (README, "Calibration").

        Args:
            target_fpir: the share of strangers' searches that may name somebody (e.g. 0.01).
            target_fmr: or the share of stranger-against-person comparisons (e.g. 1e-4).
            seed: the sampling's seed.

        Example:
            >>> cal = db.calibrate(target_fpir=0.01)
            >>> cal.threshold, cal.estimated_fpir, cal.source

        Raises:
            ConfigError: both targets or neither, or one outside (0, 1).
        """
        self._check_writable()
        kind, target = calibration.check_target(target_fpir, target_fmr)
        self._sync()
        with self.store.read() as s:
            face_ids, owners, matrix = self.store.owned_templates(s, self.facts.dimension)
        owner_of = dict(zip(face_ids.tolist(), owners.tolist(), strict=True))

        def ranked(rows: NDArray[np.float32]) -> list[list[tuple[int, float]]]:
            # As identify ranks (the best over a person's templates), owners known already.
            sims, ids = self.vectors.search(rows, faces_to_fetch(2))
            return rank_people(sims, ids, owner_of, 2)

        people = len(np.unique(owners))
        sample = None
        if people >= calibration.MIN_PEOPLE:
            probes = calibration.probes_for(kind, target)
            sample = calibration.gallery_scores(owners, matrix, ranked, seed=seed, probes=probes)
        found = calibration.calibrate(
            sample,
            kind=kind,
            target=target,
            people=people,
            faces=len(owners),
            prior=self._prior,
            created_at=datetime.now(UTC),
        )
        with self.store.write() as s:
            self.store.add_calibration(s, calibration.calibration_fields(found, self.facts.model_id))
            self.store.bump(s)  # every process reloads the threshold in force
        self._refresh_calibration()
        return found

    # -- maintenance -----------------------------------------------------------------------

    def check(self, *, repair: bool = True) -> CheckReport:
        """Compares the SQL faces with the vector index, ids and content (a digest of every
        template); rebuilds the index when they disagree (``repair=False``, or a read-only
        gallery, only reports)."""
        self._check_open()
        repair = repair and not self.read_only
        with self._lock:
            self.vectors.sync(self.store)
            with self.store.read() as s:
                sql_ids = self.store.face_ids(s)
                people = self.store.count_people(s)
                models = self.store.face_models(s)
            indexed = self.vectors.ids()
            with self.store.read() as s:
                sql_digest, unusable_ids = self.store.audit_templates(s, self.facts.dimension)
            unusable = set(unusable_ids)
            missing = sql_ids - indexed - unusable
            extra = indexed - (sql_ids - unusable)
            problems = []
            if unusable:
                shown = ", ".join(str(i) for i in sorted(unusable)[:10])
                problems.append(
                    f"{len(unusable)} face(s) hold unusable templates (NaN, infinite or zero; ids {shown}), "
                    "skipped by the index: remove them (remove-face) and enroll those people again"
                )
            if missing:
                problems.append(f"{len(missing)} face(s) in the database are missing from the index")
            if extra:
                problems.append(f"{len(extra)} face(s) in the index are not in the database")
            differ = False
            if not missing and not extra:
                differ = self.vectors.digest() != sql_digest
                if differ:
                    problems.append("the index holds other templates than the database under the same ids")
            foreign = models - {self.facts.model_id}
            if foreign:
                problems.append(f"faces of other models in the database: {', '.join(sorted(foreign))}")
            repaired = False
            if (missing or extra or differ) and repair:
                self.vectors.rebuild(self.store)
                repaired = True
            return CheckReport(
                ok=not problems,
                people=people,
                faces=len(sql_ids),
                indexed=len(self.vectors),
                missing_from_index=len(missing),
                extra_in_index=len(extra),
                repaired=repaired,
                index_kind=self.vectors.kind,
                problems=problems,
            )

    def rebuild_index(self) -> None:
        """Rebuilds the vector index from the database's templates."""
        self._check_writable()
        with self._lock:
            self.vectors.rebuild(self.store)

    def stats(self, *, catch_up: bool = True) -> dict[str, Any]:
        """Sizes and settings: people, faces, model, index kind and folder, the threshold in
        force and where it came from (``threshold_source``, ``calibration_*``; a
        ``calibration_warning`` once the gallery has grown well past its calibration).

        ``catch_up=False`` reads the SQL store only, without bringing the index up to date
        first: it never writes (what the service's ``/health`` answers with).
        """
        self._check_open()
        if catch_up:
            self._sync()
        with self.store.read() as s:
            people = self.store.count_people(s)
            faces = self.store.count_faces(s)
        return {
            "location": self.location,
            "people": people,
            "faces": faces,
            "model": self.facts.model_id,
            "dimension": self.facts.dimension,
            "generation": self.store.generation(),
            "index": self.vectors.kind,
            "index_location": self.vectors.location,
            "threshold": self.threshold,
            **self._threshold_stats(people),
        }

    def _threshold_stats(self, people: int) -> dict[str, Any]:
        """Where the threshold in force came from, for stats and /health: ``threshold_source``
        ("explicit", "calibrated" or "prior"), the calibration's target, size, source and
        time (None before one), and a warning once the gallery has outgrown it."""
        found = self._calibration
        source = (
            "explicit" if self._explicit_threshold is not None else "prior" if found is None else "calibrated"
        )
        return {
            "threshold_source": source,
            "prior": self._prior_source,
            "calibration_target": None if found is None else f"{found.target_kind} {found.target:g}",
            "calibrated_people": None if found is None else found.people,
            "calibration_source": None if found is None else found.source,
            "calibrated_at": None if found is None else found.created_at.isoformat(),
            "calibration_warning": None if found is None else calibration.staleness_warning(found, people),
        }

    def __repr__(self) -> str:
        return f"FaceDB({self.location!r})"


def _as_list(photos: Iterable[ImageInput] | ImageInput, color: Color) -> list[ImageInput]:
    """One photo or several, each as the engine takes it (an open file read once, a PIL image
    or an RGB array turned into BGR pixels), so that the gate and the engine see the same."""
    single = isinstance(photos, str | bytes | bytearray | memoryview | os.PathLike | np.ndarray)
    if single or callable(getattr(photos, "read", None)) or not isinstance(photos, Iterable):
        return [cast(ImageInput, as_photo(cast(ImageInput, photos), color))]
    return [cast(ImageInput, as_photo(cast(ImageInput, p), color)) for p in photos]


def _check_name(name: str) -> None:
    if not isinstance(name, str) or not name.strip():
        raise ConfigError(f"a person's name must be a non-empty string, got {name!r}")
    if len(name) > 500:
        raise ConfigError(f"a person's name is limited to 500 characters, got {len(name)}")


def _refuse_namesake(name: str, ids: Sequence[int]) -> None:
    """Raises NameInUse when ``ids`` (the people named ``name``) is not empty."""
    if not ids:
        return
    who = f"person {ids[0]}" if len(ids) == 1 else "people " + ", ".join(str(i) for i in ids)
    raise NameInUse(
        f"{name!r} is already the name of {who}: to add these photos to them, add faces by id "
        f"(add_faces({ids[0]}, ...), `facedb enroll --id {ids[0]} PHOTO...`, POST /people/{ids[0]}/faces); "
        f"to enroll somebody else of the same name, ask for a namesake "
        f"(namesake=True, --namesake, namesake=true)",
        list(ids),
    )


def _check_unit(name: str, value: float) -> float:
    if not 0.0 <= float(value) <= 1.0:
        raise ConfigError(f"{name} must be between 0 and 1, got {value}")
    return float(value)

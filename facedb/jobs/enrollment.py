"""Enrollment: photos through the gate (their faces, the content already enrolled, and whether
each looks like the person and not more like somebody else), then one write; bulk templates;
and the rule on names in use (a namesake only when asked for)."""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from types import MappingProxyType
from typing import Any, cast

import numpy as np
from numpy.typing import NDArray

from facedb.context import GalleryContext
from facedb.crops import crops_of
from facedb.engine import Color, ImageInput, about_photo, photo_name
from facedb.engine.photos import as_named_photo
from facedb.enrollment import ALREADY_ENROLLED, Accepted, Screened
from facedb.errors import (
    ConfigError,
    EnrollmentRefused,
    FaceDBError,
    NameInUse,
    PersonNotFound,
)
from facedb.events import person_ref
from facedb.idempotency import IDEMPOTENCY_KEEP, enrollment_record, replay
from facedb.jobs.people import People, check_name
from facedb.jobs.recognition import Recognition
from facedb.results import Enrollment, Person, person_from_fields
from facedb.store import FaceInfo
from facedb.templates import check_norms, row_norms, unit_part
from facedb.thumbnails import pixels_of, thumbnail
from facedb.writes import Change

__all__ = ["IMPORT_BATCH", "Enroller", "as_list", "refuse_namesake"]

log = logging.getLogger("facedb")


def content_hash(photo: ImageInput) -> str | None:
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


def as_list(
    photos: Iterable[ImageInput] | ImageInput, color: Color, names: Sequence[str] | None = None
) -> tuple[list[ImageInput], Sequence[str]]:
    """One photo or several, each as the engine takes it (an open file read once, a PIL image
    or an RGB array turned into BGR pixels), so that the gate and the engine see the same; and
    what to call each: ``names`` when given, else as :func:`facedb.engine.photo_name` names
    the photo given (a PIL image by its file name, not by the pixels it became)."""
    single = isinstance(photos, str | bytes | bytearray | memoryview | os.PathLike | np.ndarray)
    if single or callable(getattr(photos, "read", None)) or not isinstance(photos, Iterable):
        photos = [cast(ImageInput, photos)]
    converted = [as_named_photo(cast(ImageInput, p), color) for p in photos]
    found = [cast(ImageInput, photo) for photo, _ in converted]
    return found, [name for _, name in converted] if names is None else names


def refuse_namesake(name: str, ids: Sequence[int]) -> None:
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


class Enroller:
    """Every enrollment of one gallery (:class:`facedb.FaceDB` delegates here)."""

    def __init__(self, ctx: GalleryContext, people: People, recognition: Recognition) -> None:
        self.ctx = ctx
        self.people = people
        self.recognition = recognition

    @property
    def location(self) -> str:
        """The gallery's location (a folder import checks it is not inside the folder)."""
        return self.ctx.location

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
        """Adds photos to the one person of this name, or creates them; what was added and
        what was skipped.

        All or nothing: if one photo is refused, nothing is written and the
        :class:`EnrollmentRefused` error names each refused photo with its reason. A photo
        already enrolled for this person (same content) is skipped and logged.

        Args:
            metadata: stored with a new person (merged into an existing one's).
            force: enroll a photo even if it looks more like somebody else.
            largest_face: take the largest face of a photo with several instead of refusing it.
            color: the channel order of array photos: ``"bgr"`` (OpenCV's) or ``"rgb"`` (PIL's,
                imageio's); see :func:`facedb.detect`.
            photo_names: what to call each photo in refusals, skips and the stored record (an
                upload's file name, an object store's key); default: its path's name, or
                ``<N bytes>`` for data.
            request_key: makes the call idempotent: the key is recorded in the enrollment's
                own transaction, and a later call with the same key writes nothing and
                returns the first call's Enrollment (``replayed=True``).
            request_fingerprint: what the request was (e.g. a hash of its fields); the same
                key with another fingerprint raises :class:`IdempotencyKeyReused`.

        Raises:
            EnrollmentRefused: some photo had no face, several faces, a face too small or
                uncertain, or a face closer to another person.
            PersonNotFound: several people already have this name (add faces by id).
        """
        name = check_name(name)
        self.ctx.check_open()
        earlier = self.recall(request_key, request_fingerprint)
        if earlier is not None:
            return earlier
        existing = self.people.find(name)
        if len(existing) > 1:
            ids = ", ".join(str(p.id) for p in existing)
            raise PersonNotFound(f"{len(existing)} people are named {name!r} (ids {ids}): add faces by id")
        person = existing[0] if existing else None
        given, names = as_list(photos, color, photo_names)
        return self.add(
            person,
            name,
            given,
            dict(metadata or {}),
            force,
            largest_face,
            names=names,
            request_key=request_key,
            request_fingerprint=request_fingerprint,
        )

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
        """Adds photos of an existing person (same gate and rules as :meth:`enroll_photos`);
        ``photo_names``, ``request_key`` and ``request_fingerprint`` as there."""
        earlier = self.recall(request_key, request_fingerprint)
        if earlier is not None:
            return earlier
        target = self.people.resolve(person)
        given, names = as_list(photos, color, photo_names)
        return self.add(
            target,
            target.name,
            given,
            {},
            force,
            largest_face,
            names=names,
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
        name = check_name(name)
        self.ctx.check_open()
        earlier = self.recall(request_key, request_fingerprint)  # before the inference
        if earlier is not None:
            return earlier
        if not namesake:  # before the inference too; checked again in the write
            refuse_namesake(name, [p.id for p in self.people.find(name)])
        given, names = as_list(photos, color, photo_names)
        return self.add(
            None,
            name,
            given,
            dict(metadata or {}),
            force,
            largest_face,
            names=names,
            request_key=request_key,
            request_fingerprint=request_fingerprint,
            namesake=namesake,
        )

    def recall(self, request_key: str | None, fingerprint: str) -> Enrollment | None:
        """The recorded answer of an earlier request with this key (None: there was none, or
        no key was given); a retry costs one lookup, before any inference."""
        if request_key is None:
            return None
        self.ctx.check_open()
        with self.ctx.store.read() as s:
            return replay(self.ctx.store.recall_request(s, request_key), fingerprint)

    def person_for(
        self, change: Change, person: Person | None, name: str, metadata: Mapping[str, Any], namesake: bool
    ) -> int:
        """Inside a write: the id of the person faces are added to: a new one (refused when
        the name is in use, unless a namesake was asked for), or ``person``, share-locked so
        that a concurrent removal waits for this write, or this write for it."""
        store = self.ctx.store
        if person is None:
            if not namesake:  # somebody of this name may have been enrolled meanwhile
                refuse_namesake(name, store.claim_name(change.session, name))
            (person_id,) = store.add_people(change.session, [name], [dict(metadata)])
            return person_id
        if store.person(change.session, person.id, lock="share") is None:
            raise PersonNotFound(f"person {person.id} was removed meanwhile")
        if metadata:
            store.merge_metadata(change.session, person.id, metadata)
        return person.id

    def enrollment_of(
        self, change: Change, person_id: int, added: list[int], skipped: list[tuple[str, str]]
    ) -> Enrollment:
        """Inside a write: the answer, taken in the transaction (so that a replay is the same)."""
        row = self.ctx.store.person(change.session, person_id)
        assert row is not None
        count = self.ctx.store.face_counts(change.session, [person_id]).get(person_id, 0)
        return Enrollment(person=person_from_fields(row, count), added=added, skipped=skipped)

    def add(
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
        """Gate, then one write: the enrollment of ``photos`` as ``person`` (None: a new one)."""
        self.ctx.check_writable()
        if not photos:
            raise EnrollmentRefused(f"no photos given to enroll {name!r}")
        if names is not None and (len(names) != len(photos) or not all(isinstance(n, str) for n in names)):
            raise ConfigError(f"photo_names must be one string per photo: {len(photos)} photos")
        screened = self.gate(person, name, photos, largest_face, force, names)
        accepted, refused, skipped = screened.accepted, screened.refused, screened.skipped
        if refused:
            lines = "; ".join(about_photo(photo, reason) for photo, reason in refused)
            raise EnrollmentRefused(
                f"nothing enrolled for {name!r}: {len(refused)} of {len(photos)} photo(s) refused: {lines}",
                refused,
            )
        pictures = dict(zip(accepted, self.pictures(photos, accepted), strict=True))
        store = self.ctx.store
        with self.ctx.writes.change() as change:
            s = change.session
            if request_key is not None:
                # Another process may have finished the same request since the lookup.
                earlier = replay(store.recall_request(s, request_key), request_fingerprint)
                if earlier is not None:
                    return earlier
            person_id = self.person_for(change, person, name, metadata, namesake)
            # Another writer may have enrolled the same photo since the gate looked.
            known = store.image_hashes(s, person_id)
            fresh = [a for a in accepted if a.sha256 is None or a.sha256 not in known]
            skipped += [(a.photo, ALREADY_ENROLLED) for a in accepted if a not in fresh]
            added: list[int] = []
            if fresh:
                templates = np.vstack([a.face.embedding for a in fresh]).astype(np.float32)
                infos = [
                    FaceInfo(
                        bbox=[float(v) for v in a.face.bbox],
                        det_score=a.face.score,
                        image_sha256=a.sha256,
                        image_name=Path(a.photo).name[:1000],
                        quality=None if math.isnan(a.face.quality) else a.face.quality,
                        thumbnail=pictures[a][0],
                        crop=pictures[a][1],
                    )
                    for a in fresh
                ]
                added = store.add_faces(
                    s, [person_id] * len(fresh), self.ctx.facts.model_id, templates, infos
                )
                change.added(added, templates)
            result = self.enrollment_of(change, person_id, added, skipped)
            if added:
                change.event(
                    "person.enrolled",
                    {
                        "person": person_ref(person_id, result.person.name),
                        "faces_added": len(added),
                        "new_person": person is None,
                    },
                )
            if request_key is not None:
                # In the enrollment's transaction: both are committed, or neither.
                store.remember_request(
                    s, request_key, request_fingerprint, enrollment_record(result), IDEMPOTENCY_KEEP
                )
        for photo, reason in skipped:
            log.info("skipped %s for %s: %s", photo, name, reason)
        return result

    def pictures(
        self, photos: Sequence[ImageInput], faces: Sequence[Accepted]
    ) -> list[tuple[bytes | None, bytes | None]]:
        """The thumbnail and the lossless aligned crop (facedb.crops) of each accepted face;
        None for what the gallery does not keep (``thumbnails=False``, ``crops=False``)."""
        if not (self.ctx.thumbnails or self.ctx.crops):
            return [(None, None)] * len(faces)
        out: list[tuple[bytes | None, bytes | None]] = []
        for a in faces:
            picture: bytes | None = None
            crop: bytes | None = None
            try:
                pixels = pixels_of(self.ctx.engine, photos[a.index])
                if self.ctx.thumbnails:
                    picture = thumbnail(pixels, a.face.landmarks)
                if self.ctx.crops:
                    crop = crops_of(self.ctx.engine, pixels, [a.face])[0]
            except (FaceDBError, IndexError, TypeError, ValueError) as error:  # the face stays
                log.warning("no thumbnail or crop for %s: %s (it cannot be re-embedded)", a.photo, error)
            out.append((picture, crop))
        return out

    def gate(
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
        hashes = [content_hash(p) for p in photos]
        known: set[str] = set()
        if person is not None:
            with self.ctx.store.read() as s:
                known = self.ctx.store.image_hashes(s, person.id)
        results = list(self.ctx.engine.detect_many(photos, errors="return"))
        screened = self.ctx.policy.screen(names, hashes, results, known, largest_face)
        if not force:
            screened.refused.extend(self.mislabels(person, name, screened.accepted))
        return screened

    def mislabels(self, person: Person | None, name: str, accepted: list[Accepted]) -> list[tuple[str, str]]:
        """The faces (already detected, screened and accepted) that look like somebody else
        more than this person, or like none of the person's own faces: ``(photo, reason)``."""
        if not accepted:
            return []
        self.ctx.sync()
        self.ctx.refresh_calibration()  # the threshold in force, whoever calls (gate, confirm)
        new = np.vstack([a.face.embedding for a in accepted])
        enrolled = None
        if person is not None:
            with self.ctx.store.read() as s:
                face_ids = self.ctx.store.face_ids_of(s, [person.id])
                enrolled = self.ctx.store.templates(s, face_ids, self.ctx.facts.dimension)[1]
        # Who a photo looks like more is the better reason; failing that, looking like
        # none of the person's own faces (its owner need not be enrolled).
        closer = self.ctx.policy.likely_mislabels(
            accepted,
            self.recognition.candidates(new, 3),
            enrolled,
            None if person is None else person.id,
        )
        named = {photo for photo, _ in closer}
        unlike = self.ctx.policy.unlike_own(accepted, enrolled, name)
        return closer + [r for r in unlike if r[0] not in named]

    def import_embeddings(
        self,
        names: Sequence[str],
        embeddings: NDArray[np.floating[Any]],
        metadata: Sequence[Mapping[str, Any]] | None = None,
    ) -> list[Person]:
        """Bulk import: one new person per row of ``embeddings`` (float32[N, D]), trusted
        (the per-photo gates do not apply). Rows are L2-normalised.

        Everything is checked before anything is written; then the rows are written in
        batches of :data:`IMPORT_BATCH`, each its own transaction, scaled a batch at a time
        (no copy of the whole array is made). A failure while writing (a full disk) raises
        with the batches before it committed and none of the failing one.

        Raises:
            ConfigError: wrong shape, dtype or dimension, non-finite values, zero rows, names
                and rows that do not pair up, or metadata that is not JSON.
        """
        self.ctx.check_writable()
        array, norms = row_norms(embeddings, self.ctx.facts.dimension, "embeddings")
        if len(names) != len(array):
            raise ConfigError(f"{len(names)} names for {len(array)} embeddings")
        if metadata is not None and len(metadata) != len(array):
            raise ConfigError(f"{len(metadata)} metadata entries for {len(array)} embeddings")
        names = [check_name(name) for name in names]
        check_norms(norms, "embeddings")
        kept: list[dict[str, Any]] | None = None
        serialised: list[str] | None = None
        if metadata is not None:
            kept = [dict(m) for m in metadata]
            serialised = [_metadata_json(m, row) for row, m in enumerate(kept)]
        with self.ctx.vectors.bulk():
            people = self._import_batches(array, norms, names, kept, serialised)
        return people

    def _import_batches(
        self,
        array: NDArray[Any],
        norms: NDArray[np.float64],
        names: list[str],
        kept: list[dict[str, Any]] | None,
        serialised: list[str] | None,
    ) -> list[Person]:
        """The writes of :meth:`import_embeddings`, checked already: a transaction a batch."""
        empty: Mapping[str, Any] = MappingProxyType({})  # one for every person without metadata
        store = self.ctx.store
        people: list[Person] = []
        for start in range(0, len(array), IMPORT_BATCH):
            stop = min(start + IMPORT_BATCH, len(array))
            part = unit_part(array[start:stop], norms[start:stop], "embeddings")
            part_names = names[start:stop]
            created = datetime.now(UTC)
            with self.ctx.writes.change() as change:
                s = change.session
                person_ids = store.add_people(
                    s,
                    part_names,
                    created_at=created,
                    metadata_json=None if serialised is None else serialised[start:stop],
                )
                face_ids = store.add_faces(s, person_ids, self.ctx.facts.model_id, part)
                change.added(face_ids, part)
            del part, change  # the batch's templates go before the next batch's are made
            if kept is None:
                people += [
                    Person(id=pid, name=n, metadata=empty, face_count=1, created_at=created)
                    for pid, n in zip(person_ids, part_names, strict=True)
                ]
            else:
                people += [
                    Person(id=pid, name=n, metadata=MappingProxyType(m), face_count=1, created_at=created)
                    for pid, n, m in zip(person_ids, part_names, kept[start:stop], strict=True)
                ]
        return people


#: Rows a bulk import writes per transaction.
IMPORT_BATCH = 20_000


def _metadata_json(metadata: Mapping[str, Any], row: int) -> str:
    """A person's metadata as stored (sorted keys).

    Raises:
        ConfigError: it is not JSON (naming the row).
    """
    try:
        return json.dumps(metadata, sort_keys=True)
    except (TypeError, ValueError) as e:
        raise ConfigError(f"metadata of row {row} cannot be stored as JSON: {e}") from None

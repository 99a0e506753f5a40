"""Feedback on the gallery's answers: "not this person" (reject), "yes, it's them" (confirm,
through the enrollment gate), and the audit of suspect enrollments.

What they decide lives in pure functions elsewhere: which candidates a rejection takes away
(facedb.ranking.drop_rejected, applied by facedb.jobs.recognition) and what the audit finds
(facedb.audit).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

import numpy as np
from numpy.typing import NDArray

from facedb.audit import (
    best_other_faces,
    best_own_similarities,
    duplicate_people,
    low_quality_faces,
    positions_of,
    suspect_faces,
)
from facedb.context import GalleryContext
from facedb.engine import Face
from facedb.enrollment import Accepted
from facedb.errors import (
    ConfigError,
    EnrollmentRefused,
    FaceNotFound,
    GalleryError,
    PersonNotFound,
    SightingNotFound,
)
from facedb.events import person_ref
from facedb.jobs.enrollment import Enroller
from facedb.jobs.people import People
from facedb.jobs.recognition import Recognition
from facedb.quality import POOR_QUALITY
from facedb.results import AuditFinding, Enrollment, Identification, Person, person_from_fields
from facedb.store import FaceInfo, template_array
from facedb.store.templates import usable
from facedb.templates import check_matrix, unit_rows

__all__ = ["SAME_FACE", "FaceLike", "Feedback"]

#: What :meth:`FaceDB.reject` and :meth:`FaceDB.confirm` take as a face: a detected Face, an
#: Identification (its face), or a template (float32[D]).
FaceLike = Face | Identification | NDArray[np.floating[Any]]

#: Similarity at which a negative example is the confirmed face itself (the same visit, or
#: another frame of it), not a look-alike: the naming threshold is far below it, and a
#: look-alike said "not them" scored above the threshold against them in the first place.
SAME_FACE = 0.85

#: How many nearest faces the audit looks at per face to find the closest other person's.
_AUDIT_NEIGHBOURS = 32
#: Faces the audit asks the vector store about at once: the approximate search re-ranks a
#: few hundred templates per query in memory (4,096 queries at once peaked at 860 MB).
_AUDIT_QUERIES = 256


class Feedback:
    """reject, confirm and audit for one gallery (:class:`facedb.FaceDB` delegates here)."""

    def __init__(
        self, ctx: GalleryContext, people: People, recognition: Recognition, enroller: Enroller
    ) -> None:
        self.ctx = ctx
        self.people = people
        self.recognition = recognition
        self.enroller = enroller

    # -- "not this person", confirmations and the audit --------------------------------------

    def reject(self, face: FaceLike, person: Person | int | str) -> int:
        """ "Not this person": keeps the face's template as a negative example of ``person``.
        From now on, in every process, a face at least as close to it as to the person's own
        faces is not named them by :meth:`identify` or :meth:`search` (the next candidate may
        be). The example is erased with the person and copied by ``facedb copy``.

        Args:
            face: a :class:`Face` (from :meth:`identify` or :func:`facedb.detect`), an
                :class:`Identification`, or a template (float32[D]).
            person: a Person, an id or an exact name.

        Returns:
            The rejection's id.

        Example:
            >>> r = db.identify("door.jpg")[0]
            >>> db.reject(r, r.person)  # it was not her

        Raises:
            PersonNotFound: no such person, or they were removed meanwhile (nothing written).
            ConfigError: a template of the wrong shape, or not finite.
        """
        self.ctx.check_writable()
        template = self._template_of(face)
        target = self.people.resolve(person)
        with self.ctx.writes.change() as change:
            self._lock_person(change.session, target.id)
            return self.ctx.store.add_rejection(change.session, target.id, template, self.ctx.facts.model_id)

    def reject_face(self, face_id: int) -> int:
        """An enrolled face that is not its person: removed from them and kept as their
        negative example, in one transaction (its template erased from the index like
        :meth:`remove_face`'s). Returns the rejection's id.

        Raises:
            FaceNotFound: no face has this id.
        """
        self.ctx.check_writable()
        with self.ctx.store.read() as s:
            row = self.ctx.store.face(s, int(face_id))
            owner = None if row is None else int(row.person_id)
        if owner is None:
            raise FaceNotFound(f"no face with id {face_id} in {self.ctx.location}")
        with self.ctx.writes.change() as change:
            s = change.session
            # The person's row first, as a removal locks it: then the face, which may be gone.
            self._lock_person(s, owner)
            row = self.ctx.store.face(s, int(face_id), lock=True)
            if row is None:
                raise FaceNotFound(f"no face with id {face_id} in {self.ctx.location}")
            template = template_array(row.template, self.ctx.facts.dimension)
            self.ctx.store.remove_face(s, int(face_id))
            rejection = self.ctx.store.add_rejection(s, owner, template, self.ctx.facts.model_id)
            change.removed([int(face_id)])
        return rejection

    def sighting_thumbnail(self, sighting_id: int) -> bytes | None:
        """The JPEG thumbnail of a logged visit's face, as the visit began (what a reviewer
        looks at before :meth:`confirm_sighting` or :meth:`reject_sighting`); None when none
        was kept (a gallery without thumbnails, a visit logged by an older facedb).

        Raises:
            SightingNotFound: no visit has this id.
        """
        self.ctx.check_open()
        with self.ctx.store.read() as s:
            exists, picture = self.ctx.store.sighting_thumbnail(s, int(sighting_id))
        if not exists:
            raise SightingNotFound(f"no sighting with id {sighting_id} in {self.ctx.location}")
        return picture

    def reject_sighting(self, sighting_id: int, person: Person | int | str | None = None) -> int:
        """A visit logged by a watch that was not ``person`` (default: the person it was
        logged as): its face becomes their negative example, as :meth:`reject`, and a visit
        logged as them leaves the attendance log. Returns the rejection's id.

        Raises:
            SightingNotFound: no such visit.
            GalleryError: a visit logged without a template (before facedb kept them).
            ConfigError: a stranger's visit and no person given.
            PersonNotFound: no such person, or removed meanwhile.
        """
        self.ctx.check_writable()
        logged_as, template, _ = self._sighting(sighting_id)
        if person is None and logged_as is None:
            raise ConfigError(f"sighting {sighting_id} is a stranger's: say which person it is not")
        target = self.people.resolve(person if person is not None else cast(int, logged_as))
        with self.ctx.writes.change() as change:
            s = change.session
            self._lock_person(s, target.id)
            rejection = self.ctx.store.add_rejection(s, target.id, template, self.ctx.facts.model_id)
            if logged_as == target.id:
                self.ctx.store.remove_sighting(s, int(sighting_id))
                change.erased()  # the visit's template is erased from the WAL too
        return rejection

    def confirm(self, face: FaceLike, person: Person | int | str, *, force: bool = False) -> Enrollment:
        """ "Yes, it's them": adds the face to ``person`` through the enrollment gate (a face
        too small or too uncertain is refused; one that looks like somebody else more, or
        like none of the person's faces, is refused unless ``force``). A bare template has no
        box or detector score: only the likeness checks apply to it.

        Example:
            >>> r = db.identify("door.jpg")[0]
            >>> db.confirm(r, "Ann")

        Raises:
            EnrollmentRefused: the gate refused the face (with the reason).
            PersonNotFound: no such person, or removed meanwhile (nothing written).
        """
        self.ctx.check_writable()
        target = self.people.resolve(person)
        given = face.face if isinstance(face, Identification) else face
        if isinstance(given, Face):
            verdict = self.ctx.policy.check_faces([given])
            accepted = Accepted("the face", given, None)
            refused = [] if isinstance(verdict, Face) else [("the face", verdict)]
        else:
            accepted = Accepted("the template", _bare_face(self._template_of(given)), None)
            refused = []
        return self._confirm(target, accepted, refused, force, None)

    def confirm_sighting(
        self, sighting_id: int, person: Person | int | str, *, force: bool = False
    ) -> Enrollment:
        """A visit logged by a watch that was ``person``: its face is added to them through
        the enrollment gate (its box's size and the likeness checks; no detector score was
        kept), and the visit becomes theirs in the attendance log.

        Raises:
            SightingNotFound: no such visit.
            GalleryError: a visit logged without a template.
            EnrollmentRefused, PersonNotFound: as :meth:`confirm`.
        """
        self.ctx.check_writable()
        target = self.people.resolve(person)
        _, template, box = self._sighting(sighting_id)
        seen = _bare_face(template, box)
        too_small = self.ctx.policy.check_size(seen)
        label = f"sighting {sighting_id}"
        refused = [] if too_small is None else [(label, too_small)]
        return self._confirm(target, Accepted(label, seen, None), refused, force, int(sighting_id))

    def _confirm(
        self,
        person: Person,
        accepted: Accepted,
        refused: list[tuple[str, str]],
        force: bool,
        sighting_id: int | None,
    ) -> Enrollment:
        if not refused and not force:
            refused = self.enroller.mislabels(person, person.name, [accepted])
        if refused:
            lines = "; ".join(f"{what}: {reason}" for what, reason in refused)
            raise EnrollmentRefused(f"nothing added to {person.name!r}: {lines}", refused)
        face = accepted.face
        finite_box = bool(np.isfinite(face.bbox).all())
        info = FaceInfo(
            bbox=[float(v) for v in face.bbox] if finite_box else None,
            det_score=face.score if np.isfinite(face.score) else None,
            image_name=accepted.photo if sighting_id is not None else None,
            quality=float(face.quality) if np.isfinite(face.quality) else None,
        )
        template = face.embedding.reshape(1, -1).astype(np.float32)
        with self.ctx.writes.change() as change:
            s = change.session
            self._lock_person(s, person.id)
            added = self.ctx.store.add_faces(s, [person.id], self.ctx.facts.model_id, template, [info])
            # A negative example that is this very face (a visit rejected, then confirmed) is
            # withdrawn; one merely like it (a look-alike said not to be them, who scored above
            # the threshold against them in the first place) stays.
            ids, negatives = self.ctx.store.rejections_of(s, person.id, self.ctx.facts.dimension)
            self.ctx.store.remove_rejections(s, ids[negatives @ face.embedding >= SAME_FACE].tolist())
            if sighting_id is not None:
                self.ctx.store.assign_sighting(s, sighting_id, person.id)
            change.added(added, template)
            result = self.enroller.enrollment_of(change, person.id, added, [])
            change.event(
                "person.enrolled",
                {"person": person_ref(person.id, result.person.name), "faces_added": 1, "new_person": False},
            )
        return result

    def _lock_person(self, s: Any, person_id: int) -> None:
        """Inside a write: takes a shared lock on the person's row (a concurrent removal waits
        for us, or we for it), or raises PersonNotFound when they are gone."""
        if self.ctx.store.person(s, person_id, lock="share") is None:
            raise PersonNotFound(f"person {person_id} was removed meanwhile")

    def _sighting(self, sighting_id: int) -> tuple[int | None, NDArray[np.float32], list[float]]:
        """The person a visit was logged as (None: a stranger), its face's template and box,
        read in one transaction."""
        self.ctx.check_open()
        with self.ctx.store.read() as s:
            row = self.ctx.store.sighting(s, int(sighting_id))
            if row is None:
                raise SightingNotFound(f"no sighting with id {sighting_id} in {self.ctx.location}")
            if row.template is None:
                raise GalleryError(
                    f"sighting {sighting_id} was logged without its face's template (by an older "
                    "facedb): it cannot be confirmed or rejected"
                )
            box = [float(row.x1), float(row.y1), float(row.x2), float(row.y2)]
            return row.person_id, template_array(row.template, self.ctx.facts.dimension), box

    def _template_of(self, face: FaceLike) -> NDArray[np.float32]:
        """The unit template of a Face, an Identification or a template handed in."""
        if isinstance(face, Identification):
            face = face.face
        if isinstance(face, Face):
            return face.embedding.astype(np.float32)
        matrix = check_matrix(np.atleast_2d(np.asarray(face)), self.ctx.facts.dimension, "face")
        if len(matrix) != 1:
            raise ConfigError(f"one template expected, got {len(matrix)} rows")
        template: NDArray[np.float32] = unit_rows(matrix, "face")[0]
        return template

    def audit(
        self, *, min_own_similarity: float | None = None, min_quality: float | None = POOR_QUALITY
    ) -> list[AuditFinding]:
        """Suspect enrollments, each with a reason and the command that fixes it: faces unlike
        their person's other faces, faces closer to somebody else than to their own person,
        people who look like one person enrolled twice, and faces whose quality score (stored
        when they were enrolled) is below the quality bar. Nothing is changed: a human decides.

        "Closer to somebody else" and "enrolled twice" are measured against the naming
        :attr:`threshold`, as the enrollment gate's likely-mislabel check is.

        Args:
            min_own_similarity: a face less similar than this to every other face of its
                person is suspect (default: the gate's, 0.35).
            min_quality: report faces whose stored quality is below this (default: the
                quality bar, 0.5, below which a face is poor; None: no quality findings).
                Imported templates have no quality and are never reported.

        Example:
            >>> for finding in db.audit():
            ...     print(finding.face_id, finding.person.name, finding.reason, finding.action)
        """
        self.ctx.check_open()
        self.ctx.sync()
        self.ctx.refresh_calibration()
        # Many faces against many people: the pairwise threshold (never below naming).
        limit = self.ctx.thresholds.pairwise
        own_bar = self.ctx.policy.min_own_similarity if min_own_similarity is None else min_own_similarity
        with self.ctx.store.read() as s:
            counts = self.ctx.store.all_face_counts(s)
            people = {
                int(row.id): person_from_fields(row, counts.get(int(row.id), 0))
                for row in self.ctx.store.people(s)
            }
            qualities = self.ctx.store.face_qualities(s) if min_quality is not None else []
            # Filled in place, row by row: one copy of the templates in memory, not three.
            total = self.ctx.store.count_faces(s)
            face_ids = np.empty(total, dtype=np.int64)
            person_ids = np.empty(total, dtype=np.int64)
            templates = np.empty((total, self.ctx.facts.dimension), dtype=np.float32)
            n = 0
            for face_id, person_id, blob in self.ctx.store.face_templates(s):
                if n == total:  # added since the count (a later audit sees it)
                    break
                face_ids[n], person_ids[n] = face_id, person_id
                templates[n] = template_array(blob, self.ctx.facts.dimension)
                n += 1
        keep = usable(templates[:n])  # `check` reports the unusable ones
        if n < total or not keep.all():
            face_ids, person_ids, templates = face_ids[:n][keep], person_ids[:n][keep], templates[:n][keep]
        best_own = best_own_similarities(person_ids, templates)
        other_sims = np.full(len(face_ids), np.nan, dtype=np.float32)
        other_people = np.full(len(face_ids), -1, dtype=np.int64)
        other_faces = np.full(len(face_ids), -1, dtype=np.int64)
        for start in range(0, len(face_ids), _AUDIT_QUERIES):
            block = slice(start, start + _AUDIT_QUERIES)
            sims, ids = self.ctx.vectors.search(
                templates[block], min(_AUDIT_NEIGHBOURS, max(len(face_ids), 1))
            )
            at = positions_of(face_ids, ids)  # a face gone from SQL since: -1, no owner
            hit_owners = np.where(at >= 0, person_ids[at], -1)
            other_sims[block], other_people[block], other_faces[block] = best_other_faces(
                person_ids[block], sims, hit_owners, ids
            )
        at = positions_of(face_ids, other_faces)
        other_own = np.where(at >= 0, best_own[at], np.nan).astype(np.float32)
        pairs = {
            (min(int(a), int(b)), max(int(a), int(b)))
            for a, b, sim in zip(person_ids, other_people, other_sims, strict=True)
            if b >= 0 and sim >= limit
        }
        duplicates = duplicate_people(pairs, person_ids, templates, people, limit)
        found = {(f.person.id, f.other.id) for f in duplicates if f.other is not None}
        findings = suspect_faces(
            face_ids,
            person_ids,
            best_own,
            other_sims,
            other_people,
            people,
            other_own=other_own,
            min_own_similarity=own_bar,
            threshold=limit,
            duplicates=found,
        )
        if min_quality is not None:
            findings += low_quality_faces(qualities, people, min_quality)
        return duplicates + findings


def _bare_face(template: NDArray[np.float32], box: Sequence[float] | None = None) -> Face:
    """A Face for a template without a detection (a sighting's, or one handed in): its box
    where known (NaN otherwise), no detector score and no quality (NaN), no landmarks."""
    bbox = np.asarray(box if box is not None else [np.nan] * 4, dtype=np.float32)
    return Face(
        bbox=bbox,
        score=float("nan"),
        landmarks=np.zeros((5, 2), dtype=np.float32),
        embedding=template,
        quality=float("nan"),  # not measured: no crop to measure
        quality_reasons=(),
    )

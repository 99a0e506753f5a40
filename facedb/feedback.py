"""Feedback on the gallery's answers: "not this person" (reject), "yes, it's them" (confirm,
through the enrollment gate), and the audit of suspect enrollments.

:class:`Feedback` is a part of :class:`facedb.FaceDB`, which inherits it: its methods use the
gallery's SQL store, vector index and enrollment gate. What they decide lives in pure
functions elsewhere: which candidates a rejection takes away (facedb.ranking.drop_rejected)
and what the audit finds (facedb.audit).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, cast

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
from facedb.engine import Face
from facedb.enrollment import Accepted, EnrollmentPolicy
from facedb.errors import (
    ConfigError,
    EnrollmentRefused,
    FaceNotFound,
    GalleryError,
    PersonNotFound,
    SightingNotFound,
)
from facedb.quality import POOR_QUALITY
from facedb.ranking import drop_rejected
from facedb.results import AuditFinding, Candidate, Enrollment, Identification, Person, person_from_fields
from facedb.store import FaceInfo, template_array
from facedb.store.templates import usable
from facedb.templates import check_matrix, unit_rows

if TYPE_CHECKING:
    from facedb.store import GalleryFacts, Store
    from facedb.vectors import GalleryVectors

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
    """reject, confirm and audit, as methods of :class:`facedb.FaceDB` (see the module)."""

    if TYPE_CHECKING:
        # What FaceDB provides to these methods.
        store: Store
        facts: GalleryFacts
        policy: EnrollmentPolicy
        location: str
        vectors: GalleryVectors

        @property
        def threshold(self) -> float: ...
        def resolve(self, who: Person | int | str) -> Person: ...
        def _check_open(self) -> None: ...
        def _check_writable(self) -> None: ...
        def _sync(self) -> None: ...
        def _mislabels(
            self, person: Person | None, name: str, accepted: list[Accepted]
        ) -> list[tuple[str, str]]: ...
        def _after_write(
            self,
            *,
            generation: int,
            added: Sequence[int] = (),
            vectors: NDArray[np.float32] | None = None,
            removed: Sequence[int] = (),
        ) -> None: ...

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
        self._check_writable()
        template = self._template_of(face)
        target = self.resolve(person)
        with self.store.write() as s:
            self._lock_person(s, target.id)
            return self.store.add_rejection(s, target.id, template, self.facts.model_id)

    def reject_face(self, face_id: int) -> int:
        """An enrolled face that is not its person: removed from them and kept as their
        negative example, in one transaction (its template erased from the index like
        :meth:`remove_face`'s). Returns the rejection's id.

        Raises:
            FaceNotFound: no face has this id.
        """
        self._check_writable()
        with self.store.read() as s:
            row = self.store.face(s, int(face_id))
            owner = None if row is None else int(row.person_id)
        if owner is None:
            raise FaceNotFound(f"no face with id {face_id} in {self.location}")
        with self.store.write() as s:
            # The person's row first, as a removal locks it: then the face, which may be gone.
            self._lock_person(s, owner)
            row = self.store.face(s, int(face_id), lock=True)
            if row is None:
                raise FaceNotFound(f"no face with id {face_id} in {self.location}")
            template = template_array(row.template, self.facts.dimension)
            self.store.remove_face(s, int(face_id))
            rejection = self.store.add_rejection(s, owner, template, self.facts.model_id)
            generation = self.store.bump(s, removed=[int(face_id)])
        self._after_write(removed=[int(face_id)], generation=generation)
        return rejection

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
        self._check_writable()
        logged_as, template, _ = self._sighting(sighting_id)
        if person is None and logged_as is None:
            raise ConfigError(f"sighting {sighting_id} is a stranger's: say which person it is not")
        target = self.resolve(person if person is not None else cast(int, logged_as))
        with self.store.write() as s:
            self._lock_person(s, target.id)
            rejection = self.store.add_rejection(s, target.id, template, self.facts.model_id)
            if logged_as == target.id:
                self.store.remove_sighting(s, int(sighting_id))
        self.store.checkpoint()  # the visit's template is erased from the WAL too
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
        self._check_writable()
        target = self.resolve(person)
        given = face.face if isinstance(face, Identification) else face
        if isinstance(given, Face):
            verdict = self.policy.check_faces([given])
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
        self._check_writable()
        target = self.resolve(person)
        _, template, box = self._sighting(sighting_id)
        seen = _bare_face(template, box)
        too_small = self.policy.check_size(seen)
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
            refused = self._mislabels(person, person.name, [accepted])
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
        with self.store.write() as s:
            self._lock_person(s, person.id)
            added = self.store.add_faces(s, [person.id], self.facts.model_id, template, [info])
            # A negative example that is this very face (a visit rejected, then confirmed) is
            # withdrawn; one merely like it (a look-alike said not to be them, who scored above
            # the threshold against them in the first place) stays.
            ids, negatives = self.store.rejections_of(s, person.id, self.facts.dimension)
            self.store.remove_rejections(s, ids[negatives @ face.embedding >= SAME_FACE].tolist())
            if sighting_id is not None:
                self.store.assign_sighting(s, sighting_id, person.id)
            generation = self.store.bump(s, added=added)
            row = self.store.person(s, person.id)
            assert row is not None
            result = Enrollment(
                person_from_fields(row, self.store.face_counts(s, [person.id])[person.id]), added
            )
        self._after_write(added=added, vectors=template, generation=generation)
        return result

    def _lock_person(self, s: Any, person_id: int) -> None:
        """Inside a write: takes a shared lock on the person's row (a concurrent removal waits
        for us, or we for it), or raises PersonNotFound when they are gone."""
        if self.store.person(s, person_id, lock="share") is None:
            raise PersonNotFound(f"person {person_id} was removed meanwhile")

    def _sighting(self, sighting_id: int) -> tuple[int | None, NDArray[np.float32], list[float]]:
        """The person a visit was logged as (None: a stranger), its face's template and box,
        read in one transaction."""
        self._check_open()
        with self.store.read() as s:
            row = self.store.sighting(s, int(sighting_id))
            if row is None:
                raise SightingNotFound(f"no sighting with id {sighting_id} in {self.location}")
            if row.template is None:
                raise GalleryError(
                    f"sighting {sighting_id} was logged without its face's template (by an older "
                    "facedb): it cannot be confirmed or rejected"
                )
            box = [float(row.x1), float(row.y1), float(row.x2), float(row.y2)]
            return row.person_id, template_array(row.template, self.facts.dimension), box

    def _template_of(self, face: FaceLike) -> NDArray[np.float32]:
        """The unit template of a Face, an Identification or a template handed in."""
        if isinstance(face, Identification):
            face = face.face
        if isinstance(face, Face):
            return face.embedding.astype(np.float32)
        matrix = check_matrix(np.atleast_2d(np.asarray(face)), self.facts.dimension, "face")
        if len(matrix) != 1:
            raise ConfigError(f"one template expected, got {len(matrix)} rows")
        template: NDArray[np.float32] = unit_rows(matrix, "face")[0]
        return template

    def _respect_rejections(
        self, matrix: NDArray[np.float32], candidates: list[list[Candidate]]
    ) -> list[list[Candidate]]:
        """The candidates without those each face was said not to be (:func:`drop_rejected`):
        the negative examples of the candidates only, read in one indexed query, so that a
        rejection made by any process counts at once."""
        people = sorted({c.person.id for cands in candidates for c in cands})
        with self.store.read() as s:
            owners, negatives = self.store.negatives(s, people, self.facts.dimension)
        if len(owners) == 0:
            return candidates
        sims = matrix @ negatives.T
        closest = [{int(pid): float(row[owners == pid].max()) for pid in np.unique(owners)} for row in sims]
        kept = drop_rejected([[(c.person.id, c.similarity) for c in cands] for cands in candidates], closest)
        return [
            [c for c in cands if c.person.id in {pid for pid, _ in keep}]
            for cands, keep in zip(candidates, kept, strict=True)
        ]

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
        self._check_open()
        self._sync()
        own_bar = self.policy.min_own_similarity if min_own_similarity is None else min_own_similarity
        with self.store.read() as s:
            counts = self.store.all_face_counts(s)
            people = {
                int(row.id): person_from_fields(row, counts.get(int(row.id), 0))
                for row in self.store.people(s)
            }
            qualities = self.store.face_qualities(s) if min_quality is not None else []
            # Filled in place, row by row: one copy of the templates in memory, not three.
            total = self.store.count_faces(s)
            face_ids = np.empty(total, dtype=np.int64)
            person_ids = np.empty(total, dtype=np.int64)
            templates = np.empty((total, self.facts.dimension), dtype=np.float32)
            n = 0
            for face_id, person_id, blob in self.store.face_templates(s):
                if n == total:  # added since the count (a later audit sees it)
                    break
                face_ids[n], person_ids[n] = face_id, person_id
                templates[n] = template_array(blob, self.facts.dimension)
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
            sims, ids = self.vectors.search(templates[block], min(_AUDIT_NEIGHBOURS, max(len(face_ids), 1)))
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
            if b >= 0 and sim >= self.threshold
        }
        duplicates = duplicate_people(pairs, person_ids, templates, people, self.threshold)
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
            threshold=self.threshold,
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

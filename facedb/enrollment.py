"""The enrollment gate: which photos may become a person's templates, and why the others may not.

An :class:`EnrollmentPolicy` holds the gate's settings and its checks. The checks take what
the gallery gathered (the detector's faces per photo, the content hashes already enrolled,
the gallery's nearest people and the person's own templates) as plain values and arrays, so
they run, and are tested, without models or a database. Every refusal reason is a message a
user reads (and tests match).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from facedb.engine import DEFAULT_THRESHOLD, Face
from facedb.engine import largest_face as pick_largest
from facedb.errors import EnrollmentRefused, FaceDBError
from facedb.quality import POOR_QUALITY
from facedb.results import Candidate

#: How the library spells "enroll anyway" and "take the largest face" in a refusal; the CLI
#: and the service say them in their own terms (EnrollmentRefused.message_for).
FORCE = EnrollmentRefused.FORCE
LARGEST_FACE = EnrollmentRefused.LARGEST_FACE

__all__ = ["OWN_FLOOR", "Accepted", "EnrollmentPolicy", "Screened", "poor_quality_reason"]

#: Why a photo is skipped when its content is already among the person's faces.
ALREADY_ENROLLED = "already enrolled for this person"


def poor_quality_reason(face: Face) -> str:
    """Why a face below the quality bar is refused, its reasons named.

    Example:
        >>> import numpy as np
        >>> z = np.zeros(4, dtype=np.float32)
        >>> poor_quality_reason(Face(z, 0.9, np.zeros((5, 2), np.float32), z, 0.31, ("blurred",)))
        'face of poor quality: blurred (quality 0.31, need 0.50)'
    """
    reasons = ", ".join(face.quality_reasons)
    return f"face of poor quality: {reasons} (quality {face.quality:.2f}, need {POOR_QUALITY:.2f})"


@dataclass(frozen=True, slots=True, eq=False)
class Accepted:
    """A photo that passed the per-photo checks: its name, its face, its content hash.

    Compared by identity: two photos may share a name (two uploads called photo.jpg), and
    comparing their faces' arrays has no truth value. ``index``: the photo's place in the
    call (-1: not from a photo of the call)."""

    photo: str
    face: Face
    sha256: str | None
    index: int = -1


@dataclass(frozen=True, slots=True)
class Screened:
    """The per-photo checks' verdicts: accepted faces, refused and skipped photos
    (``(photo, reason)`` pairs)."""

    accepted: list[Accepted]
    refused: list[tuple[str, str]]
    skipped: list[tuple[str, str]]


#: The gate's own likeness floor: below it lie the scores of two different people.
OWN_FLOOR = 0.35


@dataclass(frozen=True, slots=True)
class EnrollmentPolicy:
    """The enrollment gate's settings and checks. A face below the engine's quality bar
    (``Face.quality_reasons``, :mod:`facedb.quality`) is refused too, with its reasons.

    Attributes:
        min_face_size: faces whose box's short side is smaller are refused (pixels).
        min_det_score: faces the detector is less sure of are refused.
        threshold: similarity at which a face is taken to be a person (a photo at least this
            close to somebody else, and closer than to its own person, is a likely mislabel).
        min_own_similarity: a photo must be at least this similar to one of the person's own
            faces (those enrolled; for a new person, the other photos of the call), or it is a
            likely mislabel: below 0.35 lie the scores of two different people. A gallery holds
            it at the stricter of 0.35 and its naming threshold (an enrolled photo is durable:
            never held to less than a face identify names; facedb.calibration.in_force). Measured
            (docs/gallery.md): the highest impostor pair seen is 0.329 (two of
            players.jpg's 22 strangers; 0.157 on ../shared/faces), the lowest genuine pair
            0.560.

    Example:
        >>> policy = EnrollmentPolicy(min_face_size=64)
        >>> policy.check_faces([])
        'no face found'
    """

    min_face_size: float = 48.0
    min_det_score: float = 0.6
    threshold: float = DEFAULT_THRESHOLD
    min_own_similarity: float = OWN_FLOOR

    def floor_rule(self) -> str:
        """Why the likeness floor is what it is, for a refusal's message."""
        if self.min_own_similarity > OWN_FLOOR and self.min_own_similarity <= self.threshold:
            return (
                "the naming threshold in force: an enrolled photo must be as like its person "
                "as a face identify names"
            )
        return "where different people score"

    def check_faces(self, found: Sequence[Face] | FaceDBError, largest_face: bool = False) -> Face | str:
        """The face to enroll from one photo's detection result, or why there is none."""
        if isinstance(found, FaceDBError):
            return str(found)
        if not found:
            return "no face found"
        if len(found) > 1 and not largest_face:
            return f"{len(found)} faces found; enrollment needs one (or {LARGEST_FACE})"
        face = pick_largest(found)
        too_small = self.check_size(face)
        if too_small is not None:
            return too_small
        if face.score < self.min_det_score:
            return f"face too uncertain (detector score {face.score:.2f}, need {self.min_det_score:.2f})"
        if face.quality_reasons:
            return poor_quality_reason(face)
        return face

    def check_size(self, face: Face) -> str | None:
        """Why a face is too small to enroll, or None (the one check a face without a
        detector score, such as a sighting's, can take)."""
        short_side = min(face.width, face.height)
        if short_side < self.min_face_size:
            return f"face too small ({short_side:.0f} px, need {self.min_face_size:.0f})"
        return None

    def screen(
        self,
        names: Sequence[str],
        hashes: Sequence[str | None],
        detections: Sequence[Sequence[Face] | FaceDBError],
        known: set[str],
        largest_face: bool = False,
    ) -> Screened:
        """Checks each photo: skipped when its content is already enrolled (``known``, or an
        earlier photo of this call), refused when :meth:`check_faces` finds no face to take."""
        accepted: list[Accepted] = []
        refused: list[tuple[str, str]] = []
        skipped: list[tuple[str, str]] = []
        seen: set[str] = set()
        for index, (photo, digest, found) in enumerate(zip(names, hashes, detections, strict=True)):
            if digest is not None and (digest in known or digest in seen):
                skipped.append((photo, ALREADY_ENROLLED))
                continue
            verdict = self.check_faces(found, largest_face)
            if isinstance(verdict, str):
                refused.append((photo, verdict))
                continue
            if digest is not None:
                seen.add(digest)
            accepted.append(Accepted(photo, verdict, digest, index))
        return Screened(accepted, refused, skipped)

    def unlike_own(
        self, accepted: Sequence[Accepted], enrolled: NDArray[np.float32] | None, name: str
    ) -> list[tuple[str, str]]:
        """Photos that look like none of the person's own faces: the enrolled ones, or for a
        new person (``enrolled`` None or empty) the other photos of this call. Whoever the
        photo shows need not be enrolled for this to catch it.

        Example:
            >>> EnrollmentPolicy().unlike_own([], None, "ann")
            []
        """
        if not accepted:
            return []
        new = np.vstack([a.face.embedding for a in accepted])
        existing = enrolled is not None and len(enrolled) > 0
        problems = []
        for i, a in enumerate(accepted):
            if existing:
                assert enrolled is not None
                sims = enrolled @ a.face.embedding
            else:
                sims = np.delete(new, i, axis=0) @ a.face.embedding
            if len(sims) == 0:
                continue  # one photo of a new person: nothing to compare with
            best = float(sims.max())
            if best < self.min_own_similarity:
                whose = f"{name}'s other photos" if existing else f"{name}'s other photos in this call"
                problems.append(
                    (
                        a.photo,
                        f"does not look like {whose}: best similarity {best:.2f}, "
                        f"{self.min_own_similarity - best:.2f} short of the enrollment floor "
                        f"{self.min_own_similarity:.2f} ({self.floor_rule()}): a likely mislabel "
                        f"({FORCE} to enroll)",
                    )
                )
        return problems

    def likely_mislabels(
        self,
        accepted: Sequence[Accepted],
        candidates: Sequence[Sequence[Candidate]],
        enrolled: NDArray[np.float32] | None,
        person_id: int | None,
    ) -> list[tuple[str, str]]:
        """Photos closer to somebody else than to this person's own faces.

        Args:
            accepted: the new photos, in order.
            candidates: per accepted photo, the gallery's most similar people, best first.
            enrolled: float32[M, D], the person's enrolled templates (None for a new person);
                the other new photos of this call count as the person's own faces too.
            person_id: the person enrolled into (None for a new person).
        """
        new = np.vstack([a.face.embedding for a in accepted])
        own = new if enrolled is None else np.vstack([new, enrolled])
        problems = []
        for i, (a, people) in enumerate(zip(accepted, candidates, strict=True)):
            others = [c for c in people if person_id is None or c.person.id != person_id]
            if not others or others[0].similarity < self.threshold:
                continue
            own_sims = own @ a.face.embedding
            own_sims[i] = -1.0  # not the photo itself
            best_own = float(own_sims.max()) if len(own_sims) > 1 else -1.0
            if others[0].similarity > best_own:
                who = others[0].person
                # Against the person's own faces when there are any to compare with.
                versus = "" if len(own_sims) <= 1 else f" more than this person ({best_own:.2f})"
                problems.append(
                    (
                        a.photo,
                        f"looks like {who.name} (id {who.id}, similarity {others[0].similarity:.2f}, "
                        f"at or above the naming threshold {self.threshold:.2f}: identify would name "
                        f"them){versus}: a likely mislabel ({FORCE} to enroll)",
                    )
                )
        return problems

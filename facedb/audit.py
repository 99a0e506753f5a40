"""The enrollment audit: which enrolled faces and people look wrong, from the templates alone.

Pure functions over numpy arrays (the gallery gathers the templates and the vector store's
nearest faces; :meth:`facedb.FaceDB.audit` composes them), tested without models
(tests/test_audit.py). Four kinds of finding (:data:`facedb.results.AuditKind`):

- ``far_from_own``: a face whose best similarity to its person's other faces is below
  ``min_own_similarity`` (the enrollment gate's, 0.35: below it lie the scores of two
  different people).
- ``closer_to_other``: a face at least ``threshold`` (the naming threshold) similar to
  somebody else's face, and closer to it than to any of its own person's faces.
- ``duplicate_person``: two people whose faces are on average at least ``threshold`` similar
  to each other's: one person enrolled twice under two names.
- ``low_quality``: a face whose stored quality score is below a bar.

Memory stays linear in the faces: own similarities are computed person by person in blocks,
and the closest other faces come from the vector store's nearest neighbours.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from collections.abc import Set as AbstractSet
from typing import Any

import numpy as np
from numpy.typing import NDArray

from facedb.results import AuditFinding, Person

__all__ = [
    "best_other_faces",
    "best_own_similarities",
    "duplicate_people",
    "low_quality_faces",
    "positions_of",
    "suspect_faces",
]

#: Similarities computed at once at most (a block of rows times their columns): 64 MB.
_BLOCK = 1 << 24


def best_own_similarities(
    person_ids: NDArray[np.integer[Any]], templates: NDArray[np.float32]
) -> NDArray[np.float32]:
    """Per face, its best similarity to the other faces of its own person (NaN for a person's
    only face), person by person in blocks of rows.

    Example:
        >>> t = np.eye(3, dtype=np.float32)
        >>> best_own_similarities(np.array([1, 1, 2]), t).tolist()
        [0.0, 0.0, nan]
    """
    best = np.full(len(person_ids), np.nan, dtype=np.float32)
    if len(person_ids) == 0:
        return best
    order = np.argsort(person_ids, kind="stable")
    starts = np.flatnonzero(np.r_[True, np.diff(person_ids[order]) != 0])
    ends = np.r_[starts[1:], len(order)]
    for start, end in zip(starts, ends, strict=True):
        rows = order[start:end]
        if len(rows) < 2:
            continue
        own = templates[rows]
        step = max(1, _BLOCK // len(rows))
        for i in range(0, len(rows), step):
            sims = own[i : i + step] @ own.T
            sims[np.arange(len(sims)), np.arange(i, i + len(sims))] = -np.inf  # not itself
            best[rows[i : i + step]] = sims.max(axis=1)
    return best


def positions_of(face_ids: NDArray[np.integer[Any]], wanted: NDArray[np.integer[Any]]) -> NDArray[np.int64]:
    """Where each of ``wanted`` (any shape) is in ``face_ids``, or -1 when it is not there
    (padding, a face removed since): one sort and a binary search, no Python loop.

    Example:
        >>> positions_of(np.array([7, 3, 5]), np.array([[5, -1], [3, 9]])).tolist()
        [[2, -1], [1, -1]]
    """
    order = np.argsort(face_ids, kind="stable")
    ordered = face_ids[order]
    at = np.searchsorted(ordered, wanted)
    clipped = np.minimum(at, max(len(ordered) - 1, 0))
    found = (
        (at < len(ordered)) & (ordered[clipped] == wanted) if len(ordered) else np.zeros(wanted.shape, bool)
    )
    return np.where(found, order[clipped] if len(ordered) else -1, -1).astype(np.int64)


def best_other_faces(
    person_ids: NDArray[np.integer[Any]],
    hit_sims: NDArray[np.floating[Any]],
    hit_owners: NDArray[np.integer[Any]],
    hit_ids: NDArray[np.integer[Any]],
) -> tuple[NDArray[np.float32], NDArray[np.int64], NDArray[np.int64]]:
    """Per face, its nearest face of another person among its nearest neighbours: the
    similarity (NaN when none was among them), that person's id and that face's id (-1).

    Args:
        person_ids: int[N], each face's person.
        hit_sims: float[N, M], the similarities of each face's nearest faces.
        hit_owners: int[N, M], the persons owning those faces (-1 for padding or a face gone).
        hit_ids: int[N, M], those faces' ids.
    """
    n = len(person_ids)
    if hit_sims.shape[1] == 0:
        none = np.full(n, -1, dtype=np.int64)
        return np.full(n, np.nan, dtype=np.float32), none, none.copy()
    other = (hit_owners != person_ids[:, None]) & (hit_owners >= 0)
    masked = np.where(other, hit_sims, -np.inf)
    pick = masked.argmax(axis=1)
    rows = np.arange(n)
    found = other[rows, pick]
    sims = np.where(found, masked[rows, pick], np.nan).astype(np.float32)
    owners = np.where(found, hit_owners[rows, pick], -1).astype(np.int64)
    faces = np.where(found, hit_ids[rows, pick], -1).astype(np.int64)
    return sims, owners, faces


def duplicate_people(
    pairs: set[tuple[int, int]],
    person_ids: NDArray[np.integer[Any]],
    templates: NDArray[np.float32],
    people: Mapping[int, Person],
    threshold: float,
) -> list[AuditFinding]:
    """Of the candidate pairs of people (``(a, b)``, a < b: a face of one near a face of the
    other), those whose faces are on average at least ``threshold`` similar to each other's:
    one person enrolled twice. The action removes the newer of the two (its photos
    re-enrolled under the first if they are wanted)."""
    if not pairs:
        return []
    wanted = sorted({p for pair in pairs for p in pair})
    # The mean of every cross pair's similarity is the dot product of the (unnormalised) mean
    # templates: one mislabelled face among a person's faces moves it a little, where a
    # normalised mean would follow it.
    means = {pid: templates[person_ids == pid].mean(axis=0) for pid in wanted}
    findings = []
    for a, b in sorted(pairs):
        sim = float(means[a] @ means[b])
        if sim < threshold:
            continue
        first, second = people[a], people[b]
        findings.append(
            AuditFinding(
                kind="duplicate_person",
                face_id=None,
                person=first,
                reason=(
                    f"{first.name} (id {first.id}) and {second.name} (id {second.id}) look like one "
                    f"person enrolled twice: their faces are {sim:.2f} similar on average (threshold "
                    f"{threshold:.2f}); keep one, and enroll the other's photos under it if wanted"
                ),
                action=f"facedb remove {second.id}",
                similarity=sim,
                other=second,
            )
        )
    return findings


def suspect_faces(
    face_ids: NDArray[np.integer[Any]],
    person_ids: NDArray[np.integer[Any]],
    best_own: NDArray[np.floating[Any]],
    best_other: NDArray[np.floating[Any]],
    other_person: NDArray[np.integer[Any]],
    people: Mapping[int, Person],
    *,
    other_own: NDArray[np.floating[Any]] | None = None,
    min_own_similarity: float,
    threshold: float,
    duplicates: AbstractSet[tuple[int, int]] = frozenset(),
) -> list[AuditFinding]:
    """Faces unlike their person's other faces (``far_from_own``) and faces closer to somebody
    else than to their own person (``closer_to_other``), from :func:`best_own_similarities`
    and :func:`best_other_faces`. A face is reported once, ``closer_to_other`` first (the
    more telling reason); not for a pair of people already found to be ``duplicates``, whose
    finding covers it. A person's only face has nothing of its own to be compared with.

    ``other_own`` is, per face, the ``best_own`` of the other person's face it is nearest
    to: of two faces of two people that look alike, the one less like its own person's other
    faces is the likely mislabel, and only it is reported ``closer_to_other`` (the other face
    is where it belongs)."""
    findings = []
    for i in range(len(face_ids)):
        fid, pid = int(face_ids[i]), int(person_ids[i])
        own, other, who = float(best_own[i]), float(best_other[i]), int(other_person[i])
        if np.isnan(own):
            continue
        person = people[pid]
        neighbour_fits_worse = other_own is not None and float(other_own[i]) < own
        if who >= 0 and not np.isnan(other) and other >= threshold and other > own:
            if (min(pid, who), max(pid, who)) in duplicates:
                continue
            if neighbour_fits_worse:  # the neighbour is the mislabel, not this face
                continue
            rival = people[who]
            findings.append(
                AuditFinding(
                    kind="closer_to_other",
                    face_id=fid,
                    person=person,
                    reason=(
                        f"face {fid} of {person.name} (id {pid}) looks like {rival.name} (id {who}, "
                        f"similarity {other:.2f}) more than {person.name}'s other faces ({own:.2f}): "
                        "a likely mislabel"
                    ),
                    action=f"facedb reject --face {fid}",
                    similarity=other,
                    other=rival,
                )
            )
        elif own < min_own_similarity:
            findings.append(
                AuditFinding(
                    kind="far_from_own",
                    face_id=fid,
                    person=person,
                    reason=(
                        f"face {fid} of {person.name} (id {pid}) looks like none of their other "
                        f"faces (best similarity {own:.2f}, below {min_own_similarity:.2f}, where "
                        "different people score): a likely mislabel, or a photo too poor to keep"
                    ),
                    action=f"facedb reject --face {fid}",
                    similarity=own,
                )
            )
    return findings


def low_quality_faces(
    qualities: Sequence[tuple[int, int, float]], people: Mapping[int, Person], bar: float
) -> list[AuditFinding]:
    """Faces whose stored quality score (``faces.quality``: ``(face id, person id, quality)``)
    is below ``bar``: templates too poor to recognise anybody by.

    Example:
        >>> low_quality_faces([], {}, 0.5)
        []
    """
    findings = []
    for fid, pid, quality in qualities:
        if quality >= bar:
            continue
        person = people[pid]
        findings.append(
            AuditFinding(
                kind="low_quality",
                face_id=fid,
                person=person,
                reason=f"face {fid} of {person.name} (id {pid}) has quality {quality:.2f}, below {bar:.2f}",
                action=f"facedb remove-face {fid}",
                similarity=quality,
            )
        )
    return findings

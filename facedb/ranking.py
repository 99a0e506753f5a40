"""Ranking and assignment: from the nearest faces to the people they belong to, and from the
faces of one photo to the people they are, jointly.

Pure functions over numpy arrays and plain ``(person_id, similarity)`` pairs: the gallery
searches the vector store and asks SQL who owns each face, and these decide the answer, so
they are tested without models or a database (tests/test_ranking.py).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from facedb.errors import ConfigError

__all__ = [
    "MAX_K",
    "Assignment",
    "assign_faces",
    "check_k",
    "drop_rejected",
    "faces_to_fetch",
    "rank_people",
]

#: A candidate as ranking sees it: a person's id and their best similarity.
Ranked = tuple[int, float]


#: The most candidates one face may ask for: 4 x 4096 nearest faces fetched is also the
#: largest top-k Milvus serves (16,384).
MAX_K = 4096


def check_k(k: object) -> int:
    """``k`` as every search entry point takes it: an integer from 1 to :data:`MAX_K`.

    Raises:
        ConfigError: anything else (a bool, a float, 0, a negative number, more than MAX_K).

    Example:
        >>> check_k(5)
        5
    """
    if isinstance(k, bool) or not isinstance(k, int | np.integer) or not 1 <= int(k) <= MAX_K:
        raise ConfigError(f"k must be an integer from 1 to {MAX_K}, got {k!r}")
    return int(k)


def faces_to_fetch(k: int) -> int:
    """How many nearest faces to fetch for the k most similar people: a person may own several
    of the nearest faces, so more faces than people are wanted."""
    return max(4 * k, 16)


def rank_people(
    sims: NDArray[np.floating[Any]],
    ids: NDArray[np.integer[Any]],
    owners: Mapping[int, int],
    k: int,
) -> list[list[Ranked]]:
    """The k most similar people for each query row, best first.

    Args:
        sims: float[N, M], the similarities of each query's nearest faces.
        ids: int[N, M], those faces' ids (-1 where the store had fewer).
        owners: face id -> person id; a face not in it (removed, or padding) is ignored.
        k: how many people to keep per row.

    Returns:
        Per row, ``(person_id, similarity)`` pairs: each person once, with the best similarity
        over their faces; equal similarities keep the order in which the people were met.

    Example:
        >>> rank_people(np.array([[0.9, 0.8, 0.7]]), np.array([[1, 2, 3]]), {1: 10, 2: 10, 3: 20}, 2)
        [[(10, 0.9), (20, 0.7)]]
    """
    out = []
    for row_sims, row_ids in zip(sims, ids, strict=True):
        per_person: dict[int, float] = {}
        for sim, face_id in zip(row_sims, row_ids, strict=True):
            pid = owners.get(int(face_id))
            if pid is not None and float(sim) > per_person.get(pid, -2.0):
                per_person[pid] = float(sim)
        out.append(sorted(per_person.items(), key=lambda kv: -kv[1])[:k])
    return out


def drop_rejected(
    candidates: Sequence[Sequence[Ranked]], negatives: Sequence[Mapping[int, float]]
) -> list[list[Ranked]]:
    """Per face, its candidates without those it was said not to be ("not this person"): a
    candidate is dropped when the face is at least as close to one of their negative examples
    as to their own best face; the others keep their order, so the next may be named.

    Args:
        candidates: per face, its ``(person_id, similarity)`` pairs, best first.
        negatives: per face, person id -> the face's best similarity to that person's negative
            examples (people without any are absent).

    Example:
        >>> drop_rejected([[(10, 0.8), (20, 0.6)]], [{10: 0.85}])
        [[(20, 0.6)]]
    """
    return [
        [(pid, sim) for pid, sim in cands if pid not in negs or negs[pid] < sim]
        for cands, negs in zip(candidates, negatives, strict=True)
    ]


@dataclass(frozen=True, slots=True)
class Assignment:
    """Who one face of a photo is.

    Attributes:
        person_id: the person named, or None.
        similarity: the named person's similarity (None when nobody is named).
        ambiguous: the face's best two people were too close to tell apart.
    """

    person_id: int | None
    similarity: float | None
    ambiguous: bool


def assign_faces(
    candidates: Sequence[Sequence[Ranked]], threshold: float, ambiguity_margin: float
) -> list[Assignment]:
    """Names the faces of one photo jointly: best (face, person) pairs first, each person and
    each face at most once, nobody below ``threshold``; a face whose best two candidates are
    within ``ambiguity_margin`` (and the best passes the threshold) is ambiguous and named
    nobody.

    Args:
        candidates: per face, its ``(person_id, similarity)`` pairs, best first.

    Example:
        >>> [a.person_id for a in assign_faces([[(1, 0.9)], [(1, 0.8), (2, 0.5)]], 0.4, 0.05)]
        [1, 2]
    """
    pairs = sorted(
        ((sim, i, pid) for i, cands in enumerate(candidates) for pid, sim in cands if sim >= threshold),
        reverse=True,
    )
    ambiguous = [
        len(c) >= 2 and c[0][1] >= threshold and c[0][1] - c[1][1] < ambiguity_margin for c in candidates
    ]
    named: dict[int, tuple[int, float]] = {}
    taken: set[int] = set()
    for sim, i, pid in pairs:
        if i in named or pid in taken or ambiguous[i]:
            continue
        named[i] = (pid, sim)
        taken.add(pid)
    return [
        Assignment(named[i][0], named[i][1], ambiguous[i])
        if i in named
        else Assignment(None, None, ambiguous[i])
        for i in range(len(candidates))
    ]

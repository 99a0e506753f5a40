"""Ranking and the joint face-to-person assignment (facedb/ranking.py), without models or a
database: known answers on hand-made hits, and properties of the assignment on random ones."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from facedb.errors import ConfigError
from facedb.ranking import Assignment, assign_faces, drop_rejected, faces_to_fetch, rank_people


def test_more_faces_are_fetched_than_people_wanted() -> None:
    assert faces_to_fetch(1) == 16
    assert faces_to_fetch(5) == 20
    assert faces_to_fetch(10) == 40


def test_a_person_is_ranked_once_by_their_best_face() -> None:
    sims = np.array([[0.9, 0.85, 0.7, 0.6]], dtype=np.float32)
    ids = np.array([[1, 2, 3, 4]])
    owners = {1: 10, 2: 10, 3: 20, 4: 30}
    ranked = rank_people(sims, ids, owners, 5)
    assert [[pid for pid, _ in row] for row in ranked] == [[10, 20, 30]]
    assert ranked[0][0][1] == np.float32(0.9)


def test_ranking_keeps_k_people_and_ignores_unknown_faces() -> None:
    sims = np.array([[0.9, 0.8, 0.7, 0.6], [0.5, 0.4, -1.0, -1.0]], dtype=np.float32)
    ids = np.array([[7, 1, 2, 3], [3, 2, -1, -1]])
    owners = {1: 10, 2: 20, 3: 30}  # face 7 was removed: no owner
    assert rank_people(sims, ids, owners, 2) == [
        [(10, float(np.float32(0.8))), (20, float(np.float32(0.7)))],
        [(30, 0.5), (20, float(np.float32(0.4)))],
    ]


def test_equal_similarities_keep_the_order_met() -> None:
    sims = np.array([[0.5, 0.5, 0.5]])
    ids = np.array([[3, 1, 2]])
    assert [pid for pid, _ in rank_people(sims, ids, {1: 1, 2: 2, 3: 3}, 3)[0]] == [3, 1, 2]


def test_a_person_is_named_once_in_a_photo_best_pair_first() -> None:
    # Both faces look most like person 1; the second is the better match, so the first face
    # gets its next candidate.
    candidates = [[(1, 0.7), (2, 0.6)], [(1, 0.9), (3, 0.5)]]
    assert assign_faces(candidates, 0.4, 0.05) == [
        Assignment(2, 0.6, False),
        Assignment(1, 0.9, False),
    ]


def test_nobody_below_the_threshold_is_named() -> None:
    assert assign_faces([[(1, 0.39)], []], 0.4, 0.05) == [
        Assignment(None, None, False),
        Assignment(None, None, False),
    ]


def test_a_face_between_two_close_people_is_ambiguous_and_unnamed() -> None:
    result = assign_faces([[(1, 0.62), (2, 0.60)], [(2, 0.8)]], 0.4, 0.05)
    assert result == [Assignment(None, None, True), Assignment(2, 0.8, False)]
    # Below the threshold a close second is not ambiguity: nobody was going to be named.
    assert assign_faces([[(1, 0.30), (2, 0.29)]], 0.4, 0.05) == [Assignment(None, None, False)]


@st.composite
def photo_candidates(draw: st.DrawFn) -> list[list[tuple[int, float]]]:
    """Per face, distinct people with similarities, best first (as rank_people returns)."""
    faces = draw(st.integers(0, 6))
    out = []
    for _ in range(faces):
        people = draw(st.lists(st.integers(1, 8), unique=True, max_size=5))
        sims = sorted(
            draw(st.lists(st.floats(-1, 1, allow_nan=False), min_size=len(people), max_size=len(people))),
            reverse=True,
        )
        out.append(list(zip(people, sims, strict=True)))
    return out


@given(
    candidates=photo_candidates(),
    threshold=st.floats(0, 1, allow_nan=False),
    margin=st.floats(0, 1, allow_nan=False),
)
def test_the_assignment_names_each_person_once_and_nobody_below_the_threshold(
    candidates: list[list[tuple[int, float]]], threshold: float, margin: float
) -> None:
    result = assign_faces(candidates, threshold, margin)
    assert len(result) == len(candidates)
    named = [a.person_id for a in result if a.person_id is not None]
    assert len(named) == len(set(named)), "a person assigned to two faces of one photo"
    for a, cands in zip(result, candidates, strict=True):
        if a.person_id is None:
            assert a.similarity is None
            continue
        assert a.similarity is not None and a.similarity >= threshold
        assert (a.person_id, a.similarity) in cands  # one of the face's own candidates
        assert not a.ambiguous
    # A face left unnamed while a candidate above the threshold was free is ambiguous.
    for a, cands in zip(result, candidates, strict=True):
        if a.person_id is None and not a.ambiguous:
            assert all(sim < threshold or pid in named for pid, sim in cands)


def test_k_has_one_rule_for_every_entry_point() -> None:
    from facedb.ranking import MAX_K, check_k

    assert check_k(1) == 1 and check_k(np.int64(MAX_K)) == MAX_K
    for bad in (0, -1, MAX_K + 1, 10**9, 2.0, True, "5", None):
        with pytest.raises(ConfigError, match=f"k must be an integer from 1 to {MAX_K}"):
            check_k(bad)


# -- "not this person" -----------------------------------------------------------------------


def test_a_candidate_whose_negative_is_closer_is_dropped_and_the_next_may_be_named() -> None:
    candidates = [[(10, 0.8), (20, 0.6)], [(10, 0.9)]]
    negatives = [{10: 0.85}, {10: 0.5}]  # face 0 is nearer a face rejected for 10 than to 10
    kept = drop_rejected(candidates, negatives)
    assert kept == [[(20, 0.6)], [(10, 0.9)]]
    assert [a.person_id for a in assign_faces(kept, 0.4, 0.05)] == [20, 10]


def test_a_negative_exactly_as_close_as_the_own_face_drops_the_candidate() -> None:
    assert drop_rejected([[(10, 0.7)]], [{10: 0.7}]) == [[]]


def test_without_negatives_nothing_changes() -> None:
    candidates = [[(1, 0.9), (2, 0.3)], []]
    assert drop_rejected(candidates, [{}, {}]) == candidates


@given(
    st.lists(
        st.lists(
            st.tuples(st.integers(0, 6), st.floats(-1, 1), st.one_of(st.none(), st.floats(-1, 1))),
            max_size=6,
            unique_by=lambda t: t[0],
        ),
        max_size=5,
    )
)
def test_dropping_keeps_order_and_removes_exactly_the_rejected(
    rows: list[list[tuple[int, float, float | None]]],
) -> None:
    candidates = [sorted(((pid, sim) for pid, sim, _ in row), key=lambda c: -c[1]) for row in rows]
    negatives = [{pid: neg for pid, _, neg in row if neg is not None} for row in rows]
    kept = drop_rejected(candidates, negatives)
    for cands, negs, out in zip(candidates, negatives, kept, strict=True):
        assert out == [c for c in cands if c in out]  # a subsequence: order kept
        for pid, sim in cands:
            rejected = pid in negs and negs[pid] >= sim
            assert ((pid, sim) in out) is not rejected

"""The enrollment audit's pure parts (facedb/audit.py) on hand-made and random templates:
known answers, and the blocked computations against brute force."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from types import MappingProxyType

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

import facedb.audit as audit
from facedb.audit import (
    best_other_faces,
    best_own_similarities,
    duplicate_people,
    low_quality_faces,
    positions_of,
    suspect_faces,
)
from facedb.results import Person

from .helpers import unit_rows


def person(pid: int) -> Person:
    return Person(pid, f"p{pid}", MappingProxyType({}), 1, datetime(2026, 1, 1, tzinfo=UTC))


PEOPLE = {pid: person(pid) for pid in range(10)}


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(0, 4), min_size=1, max_size=40), st.integers(0, 2**32 - 1))
def test_best_own_matches_brute_force_in_any_block_size(owners: list[int], seed: int) -> None:
    pids = np.asarray(owners)
    t = unit_rows(seed, len(pids), 16)
    sims = t @ t.T
    np.fill_diagonal(sims, -np.inf)
    expected = np.where(pids[:, None] == pids[None, :], sims, -np.inf).max(axis=1)
    expected[np.isneginf(expected)] = np.nan
    for block in (1, 7, 1 << 24):
        old = audit._BLOCK
        audit._BLOCK = block
        try:
            got = best_own_similarities(pids, t)
        finally:
            audit._BLOCK = old
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)


def test_best_other_skips_own_faces_and_padding() -> None:
    sims, owners, faces = best_other_faces(
        np.array([1, 2]),
        np.array([[0.9, 0.8, 0.5], [0.7, -1.0, -1.0]]),
        np.array([[1, 3, 2], [2, -1, -1]]),
        np.array([[50, 51, 52], [53, -1, -1]]),
    )
    assert sims[0] == np.float32(0.8) and owners.tolist() == [3, -1] and np.isnan(sims[1])
    assert faces.tolist() == [51, -1]


def test_a_face_nearer_another_person_and_a_face_unlike_its_own() -> None:
    found = suspect_faces(
        np.array([10, 11, 12, 13]),
        np.array([1, 1, 2, 3]),
        best_own=np.array([0.3, 0.7, 0.2, np.nan]),
        best_other=np.array([0.1, 0.8, np.nan, 0.9]),
        other_person=np.array([2, 2, -1, 1]),
        people=PEOPLE,
        min_own_similarity=0.35,
        threshold=0.4,
    )
    assert [(f.kind, f.face_id) for f in found] == [
        ("far_from_own", 10),
        ("closer_to_other", 11),
        ("far_from_own", 12),
    ]  # face 13 is its person's only one: nothing to compare with
    assert found[1].other == PEOPLE[2] and found[1].action == "facedb reject --face 11"
    assert "0.80" in found[1].reason and "0.70" in found[1].reason
    # A pair already reported as one person enrolled twice is not reported face by face.
    quiet = suspect_faces(
        np.array([11]),
        np.array([1]),
        np.array([0.7]),
        np.array([0.8]),
        np.array([2]),
        PEOPLE,
        min_own_similarity=0.35,
        threshold=0.4,
        duplicates={(1, 2)},
    )
    assert quiet == []


def test_of_two_look_alike_faces_only_the_one_unlike_its_own_is_the_mislabel() -> None:
    """Face 20 (person 1, like its own at 0.6) and face 21 (person 2, unlike its own at 0.03)
    are 0.92 alike: 21 is the mislabel; 20 is where it belongs."""
    found = suspect_faces(
        np.array([20, 21]),
        np.array([1, 2]),
        best_own=np.array([0.6, 0.03]),
        best_other=np.array([0.92, 0.92]),
        other_person=np.array([2, 1]),
        people=PEOPLE,
        other_own=np.array([0.03, 0.6]),
        min_own_similarity=0.35,
        threshold=0.4,
    )
    assert [(f.kind, f.face_id) for f in found] == [("closer_to_other", 21)]


def test_people_enrolled_twice_by_mean_similarity() -> None:
    rng = np.random.default_rng(3)
    a, b = unit_rows(rng, 2)
    noisy = np.vstack([a + 0.3 * v for v in unit_rows(rng, 4)])
    noisy /= np.linalg.norm(noisy, axis=1, keepdims=True)
    templates = np.vstack([noisy[:2], noisy[2:], b[None, :]]).astype(np.float32)
    pids = np.array([1, 1, 2, 2, 3])
    found = duplicate_people({(1, 2), (1, 3)}, pids, templates, PEOPLE, 0.4)
    assert [(f.person.id, f.other.id if f.other else None) for f in found] == [(1, 2)]
    assert found[0].action == "facedb remove 2" and found[0].face_id is None
    assert duplicate_people(set(), pids, templates, PEOPLE, 0.4) == []


def test_low_quality_faces_against_the_bar() -> None:
    found = low_quality_faces([(5, 1, 0.2), (6, 1, 0.5), (7, 2, 0.9)], PEOPLE, 0.5)
    assert [(f.kind, f.face_id, f.action) for f in found] == [("low_quality", 5, "facedb remove-face 5")]


@given(st.lists(st.integers(0, 50), unique=True, max_size=20), st.lists(st.integers(-1, 60), max_size=20))
def test_positions_of_matches_a_dictionary(face_ids: list[int], wanted: list[int]) -> None:
    where = {f: i for i, f in enumerate(face_ids)}
    got = positions_of(np.asarray(face_ids, dtype=np.int64), np.asarray(wanted, dtype=np.int64))
    assert got.tolist() == [where.get(w, -1) for w in wanted]


def test_the_gallery_audit_reports_faces_below_the_quality_bar_by_default(
    tmp_path: Path, faces_dir: Path
) -> None:
    """A face enrolled under a laxer bar (its stored quality below today's) is reported;
    with min_quality=None it is not."""
    import sqlite3

    import facedb

    with facedb.FaceDB(tmp_path / "g") as db:
        person = db.enroll(
            "obama", [faces_dir / "gallery/obama/obama.jpg", faces_dir / "gallery/obama/obama2.jpg"]
        )
        first = db.faces(person)[0]["id"]
        connection = sqlite3.connect(tmp_path / "g" / "gallery.db")
        with connection:
            connection.execute("UPDATE faces SET quality = 0.3 WHERE id = ?", (first,))
        connection.close()
        (finding,) = [f for f in db.audit() if f.kind == "low_quality"]
        assert finding.face_id == first and finding.action == f"facedb remove-face {first}"
        assert not [f for f in db.audit(min_quality=None) if f.kind == "low_quality"]

"""The enrollment gate's checks (facedb/enrollment.py) on hand-made faces, without models or a
database; the gate on real photos is tested through FaceDB in test_gallery.py."""

from __future__ import annotations

from datetime import UTC, datetime
from types import MappingProxyType

import numpy as np

from facedb.engine import Face
from facedb.enrollment import Accepted, EnrollmentPolicy
from facedb.errors import ImageError
from facedb.results import Candidate, Person


def face(
    size: float = 100.0,
    score: float = 0.9,
    direction: int = 0,
    x: float = 0.0,
    quality_reasons: tuple[str, ...] = (),
) -> Face:
    embedding = np.zeros(4, dtype=np.float32)
    embedding[direction] = 1.0
    return Face(
        bbox=np.array([x, 0, x + size, size], dtype=np.float32),
        score=score,
        landmarks=np.zeros((5, 2), dtype=np.float32),
        embedding=embedding,
        quality=0.3 if quality_reasons else 0.9,
        quality_reasons=quality_reasons,
    )


def person(pid: int, name: str) -> Person:
    return Person(
        id=pid, name=name, metadata=MappingProxyType({}), face_count=1, created_at=datetime.now(UTC)
    )


def test_each_refusal_says_why() -> None:
    policy = EnrollmentPolicy()
    assert policy.check_faces(ImageError("cannot decode x.jpg")) == "cannot decode x.jpg"
    assert policy.check_faces([]) == "no face found"
    assert policy.check_faces([face(), face(x=200)]) == (
        "2 faces found; enrollment needs one (or largest_face=True)"
    )
    assert policy.check_faces([face(size=30)]) == "face too small (30 px, need 48)"
    assert policy.check_faces([face(score=0.5)]) == "face too uncertain (detector score 0.50, need 0.60)"
    assert policy.check_faces([face(quality_reasons=("blurred", "turned away"))]) == (
        "face of poor quality: blurred, turned away (quality 0.30, need 0.50)"
    )
    one = face()
    assert policy.check_faces([one]) is one


def test_largest_face_takes_the_largest() -> None:
    small, large = face(size=60), face(size=120, x=100)
    assert EnrollmentPolicy().check_faces([small, large], largest_face=True) is large


def test_content_already_enrolled_or_repeated_is_skipped() -> None:
    policy = EnrollmentPolicy()
    screened = policy.screen(
        ["a.jpg", "b.jpg", "c.jpg", "d.jpg"],
        ["h1", "h2", "h2", None],
        [[face()], [face()], [face()], []],
        known={"h1"},
    )
    assert [a.photo for a in screened.accepted] == ["b.jpg"]
    assert screened.skipped == [
        ("a.jpg", "already enrolled for this person"),
        ("c.jpg", "already enrolled for this person"),
    ]
    assert screened.refused == [("d.jpg", "no face found")]


def test_a_photo_closer_to_somebody_else_is_a_likely_mislabel() -> None:
    policy = EnrollmentPolicy(threshold=0.4)
    accepted = [Accepted("x.jpg", face(direction=0), None)]
    other = person(2, "Bob")
    problems = policy.likely_mislabels(
        accepted, [[Candidate(other, 0.9)]], np.eye(4, dtype=np.float32)[[1]], 1
    )
    assert problems == [
        (
            "x.jpg",
            "looks like Bob (id 2, similarity 0.90, at or above the naming threshold 0.40: identify "
            "would name them) more than this person (0.00): a likely mislabel (force=True to enroll)",
        )
    ]
    # Closer to the person's own enrolled face: fine; and the person themself is no mislabel.
    own = np.eye(4, dtype=np.float32)[[0]]
    assert policy.likely_mislabels(accepted, [[Candidate(other, 0.9)]], own, 1) == []
    assert policy.likely_mislabels(accepted, [[Candidate(person(1, "Al"), 0.9)]], None, 1) == []
    # Below the threshold nobody else counts.
    assert policy.likely_mislabels(accepted, [[Candidate(other, 0.3)]], None, None) == []

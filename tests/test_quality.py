"""The quality score (facedb/quality.py): pose from hand-made landmarks and the score's parts
without models; then the default bar on real photos: every photo that must be accepted is,
and degraded versions of them are poor for the right reason."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

import facedb
from facedb.quality import (
    ARCFACE_LANDMARKS,
    BLURRED,
    LOW_SCORE,
    OVEREXPOSED,
    POOR_QUALITY,
    TILTED,
    TOO_DARK,
    TOO_SMALL,
    TURNED_AWAY,
    CropMeasures,
    QualityPolicy,
    estimate_pose,
)

GOOD_CROP = (1500.0, 0.5, 0.18, 0.0)  # relative sharpness 0.71, mid-grey, nothing clipped
BOX = np.array([10, 10, 130, 160], dtype=np.float32)


def rotated(landmarks: np.ndarray, degrees: float) -> np.ndarray:
    """The landmarks turned in the picture's plane about their centre (clockwise on screen)."""
    t = np.radians(degrees)
    r = np.array([[np.cos(t), -np.sin(t)], [np.sin(t), np.cos(t)]])
    centre = landmarks.mean(axis=0)
    return (landmarks - centre) @ r.T + centre


def test_frontal_template_is_frontal_and_roll_is_the_eye_line() -> None:
    pose = estimate_pose(ARCFACE_LANDMARKS)
    assert abs(pose.yaw) < 1 and abs(pose.pitch) < 1 and abs(pose.roll) < 1
    # Rolling the face in the picture changes roll only: the pose is read in the eyes' frame.
    tilted = estimate_pose(rotated(ARCFACE_LANDMARKS, 30.0))
    assert tilted.roll == pytest.approx(30.0, abs=0.5)
    assert abs(tilted.yaw) < 1 and abs(tilted.pitch) < 1


def test_nose_toward_an_eye_is_yaw_and_toward_the_mouth_is_pitch() -> None:
    eyes = 73.5318 - 38.2946
    turned = ARCFACE_LANDMARKS.copy()
    turned[2, 0] += 0.5 * eyes  # nose tip half the eye distance to the right: atan(1) = 45 deg
    assert estimate_pose(turned).yaw == pytest.approx(45.0, abs=1.0)
    turned[2, 0] -= eyes  # and to the left
    assert estimate_pose(turned).yaw == pytest.approx(-45.0, abs=1.0)
    down = ARCFACE_LANDMARKS.copy()
    down[2, 1] += 10.0
    up = ARCFACE_LANDMARKS.copy()
    up[2, 1] -= 10.0
    assert estimate_pose(down).pitch > 15 and estimate_pose(up).pitch < -15


def test_degenerate_landmarks_are_as_far_from_frontal_as_it_gets() -> None:
    same_point = np.full((5, 2), 40.0, dtype=np.float32)
    assert TURNED_AWAY in QualityPolicy().assess(BOX, 0.9, same_point, GOOD_CROP).reasons
    mirrored = ARCFACE_LANDMARKS.copy()
    mirrored[:, 1] = 112 - mirrored[:, 1]  # the mouth above a level eye line
    assert TURNED_AWAY in QualityPolicy().assess(BOX, 0.9, mirrored, GOOD_CROP).reasons
    # Upside down is a half turn in the picture's plane: tilted, not turned.
    assert QualityPolicy().assess(BOX, 0.9, rotated(ARCFACE_LANDMARKS, 180.0), GOOD_CROP).reasons == (TILTED,)


def test_a_good_face_scores_one_and_names_no_reason() -> None:
    q = QualityPolicy().assess(BOX, 0.9, ARCFACE_LANDMARKS, GOOD_CROP)
    assert q.score == 1.0 and q.reasons == () and not q.is_poor
    assert q.size == 120.0 and q.crop == CropMeasures(*GOOD_CROP)


@pytest.mark.parametrize(
    ("box", "score", "landmarks", "crop", "reason"),
    [
        ([0, 0, 20, 30], 0.9, None, GOOD_CROP, TOO_SMALL),
        (None, 0.55, None, GOOD_CROP, LOW_SCORE),
        (None, 0.9, "turned", GOOD_CROP, TURNED_AWAY),
        (None, 0.9, "rolled", GOOD_CROP, TILTED),
        (None, 0.9, None, (20.0, 0.5, 0.18, 0.0), BLURRED),
        (None, 0.9, None, (1500.0, 0.08, 0.18, 0.0), TOO_DARK),
        (None, 0.9, None, (1500.0, 0.92, 0.18, 0.0), OVEREXPOSED),
        (None, 0.9, None, (1500.0, 0.6, 0.18, 0.4), OVEREXPOSED),
        (None, 0.9, None, (1500.0, 0.3, 0.18, 0.4), TOO_DARK),
    ],
)
def test_each_measure_below_its_bar_is_named(
    box: list[float] | None,
    score: float,
    landmarks: str | None,
    crop: tuple[float, float, float, float],
    reason: str,
) -> None:
    points = ARCFACE_LANDMARKS.copy()
    if landmarks == "turned":
        points[2, 0] += 0.7 * (73.5318 - 38.2946)  # atan(1.4): about 54 degrees
    elif landmarks == "rolled":
        points = rotated(points, 75.0)
    q = QualityPolicy().assess(BOX if box is None else box, score, points, crop)
    assert q.reasons == (reason,)
    assert q.score < POOR_QUALITY and q.is_poor


def test_score_is_half_at_the_bar_and_falls_below_it() -> None:
    policy = QualityPolicy()
    at_bar = policy.assess([0, 0, 32, 40], 0.9, ARCFACE_LANDMARKS, GOOD_CROP)
    assert at_bar.score == pytest.approx(0.5) and at_bar.reasons == ()
    below = policy.assess([0, 0, 31, 40], 0.9, ARCFACE_LANDMARKS, GOOD_CROP)
    assert below.score < 0.5 and below.reasons == (TOO_SMALL,)
    # Several measures below their bars: all named, in REASONS order; the weakest sets the score.
    both = policy.assess([0, 0, 20, 40], 0.5, ARCFACE_LANDMARKS, (1500.0, 0.05, 0.18, 0.0))
    assert both.reasons == (TOO_SMALL, LOW_SCORE, TOO_DARK)
    # Parts: size 0.5 + 0.5 * (20 - 32) / 48 = 0.375; score and brightness 0.5 - 0.5 / 1.5 = 1/6.
    assert both.score == pytest.approx(1 / 6)


def test_a_flat_or_non_finite_crop_is_poor() -> None:
    flat = QualityPolicy().assess(BOX, 0.9, ARCFACE_LANDMARKS, (0.0, 0.5, 0.0, 0.0))
    assert BLURRED in flat.reasons
    nan = QualityPolicy().assess(BOX, 0.9, ARCFACE_LANDMARKS, (float("nan"), 0.5, 0.18, 0.0))
    assert BLURRED in nan.reasons


def test_a_policy_whose_good_level_is_on_the_wrong_side_is_refused() -> None:
    with pytest.raises(facedb.ConfigError, match="min_face_size"):
        QualityPolicy(min_face_size=100.0, good_face_size=80.0)
    with pytest.raises(facedb.ConfigError, match="max_yaw"):
        QualityPolicy(max_yaw=20.0)


# -- the default bar on real photos ----------------------------------------------------------------


def must_pass(faces_dir: Path, wheel_photos: Path) -> list[Path]:
    """CONTRACTS.md: the photos the default gates accept."""
    return [
        *sorted((faces_dir / "gallery").glob("*/*")),
        *sorted((faces_dir / "closeups").glob("*")),
        wheel_photos / "yaoming.jpg",
    ]


def test_every_photo_that_must_pass_does_with_a_margin(
    engine: facedb.FaceEngine, faces_dir: Path, wheel_photos: Path
) -> None:
    photos = must_pass(faces_dir, wheel_photos)
    assert len(photos) >= 14
    for photo in photos:
        face = facedb.engine.largest_face(engine.detect(photo))
        assert face.quality_reasons == (), (photo, face.quality_reasons)
        assert face.quality >= 0.75, (photo, face.quality)  # measured lowest: 0.87


def degraded(image: np.ndarray, side: float, how: str) -> np.ndarray:
    """As benchmarks/quality.py degrades a photo whose face's short side is ``side``."""
    if how == BLURRED:
        return cv2.GaussianBlur(image, (0, 0), sigmaX=0.03 * side)
    if how == TOO_SMALL:
        return cv2.resize(image, None, fx=24 / side, fy=24 / side, interpolation=cv2.INTER_AREA)
    if how == TOO_DARK:
        return (image.astype(np.float32) * 0.15).round().astype(np.uint8)
    return np.clip(image.astype(np.float32) * 3.0, 0, 255).astype(np.uint8)


@pytest.mark.parametrize("how", [BLURRED, TOO_SMALL, TOO_DARK, OVEREXPOSED])
@pytest.mark.parametrize("photo", ["gallery/biden/biden.jpg", "closeups/kit_harington.jpg", "yaoming.jpg"])
def test_degraded_photos_are_poor_for_the_right_reason(
    engine: facedb.FaceEngine, faces_dir: Path, wheel_photos: Path, photo: str, how: str
) -> None:
    path = wheel_photos / photo if photo == "yaoming.jpg" else faces_dir / photo
    image = cv2.imread(str(path))
    original = facedb.engine.largest_face(engine.detect(image))
    assert original.quality_reasons == ()
    faces = engine.detect(degraded(image, min(original.width, original.height), how))
    assert faces, f"{photo} {how}: no face found"  # measured: found in all these
    face = facedb.engine.largest_face(faces)
    assert how in face.quality_reasons and face.quality < POOR_QUALITY, (face, face.quality_reasons)
    if how in (TOO_DARK, OVEREXPOSED, BLURRED):
        assert face.quality_reasons == (how,)


def test_a_strongly_turned_face_is_turned_away(engine: facedb.FaceEngine, wheel_photos: Path) -> None:
    faces = engine.detect(wheel_photos / "gdp.jpg")
    turned = max(faces, key=lambda f: abs(estimate_pose(f.landmarks).yaw))
    assert abs(estimate_pose(turned.landmarks).yaw) > 45
    assert turned.quality_reasons == (TURNED_AWAY,)
    # The frontal faces of the same photo, as large, are fine.
    assert [f.quality_reasons for f in faces if f.width > 60 and f is not turned] == [(), ()]


def test_the_engine_scores_faces_against_the_policy_it_is_given(wheel_photos: Path) -> None:
    strict = facedb.FaceEngine(quality=facedb.QualityPolicy(min_face_size=200.0, good_face_size=300.0))
    (face,) = strict.detect(wheel_photos / "yaoming.jpg")  # a 107x140 face
    assert face.quality_reasons == (TOO_SMALL,) and face.is_poor_quality
    assert 0.0 <= face.quality < POOR_QUALITY

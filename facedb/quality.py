"""How usable a face is for recognition: a quality score from 0 to 1 and the named reasons
when it falls below the bar.

Everything here comes from what the pipeline already has: the box (size), the detector's
score, the five landmarks (a pose estimate) and the measures Rust takes on the aligned
112x112 crop (sharpness and exposure, ``facedb._native``). The module is pure: it works on
numbers and arrays, so it is tested without models.

Each measure has a *bar* (below it the face is poor) and a *good* level; its part score is
0.5 at the bar, 1 at or beyond the good level, and falls linearly to 0 as far below the bar as
the good level is above it. The face's quality is its weakest part, so ``quality < 0.5``
exactly when at least one measure is below its bar, and ``reasons`` names those measures.
The defaults were measured on real photos (docs/engine.md, "Face quality"; benchmarks/quality.py).

Example:
    >>> import numpy as np
    >>> from facedb.quality import ARCFACE_LANDMARKS, QualityPolicy
    >>> q = QualityPolicy().assess(np.array([0, 0, 120, 150]), 0.85, ARCFACE_LANDMARKS,
    ...                            (1500.0, 0.5, 0.18, 0.0))
    >>> q.reasons, q.is_poor
    ((), False)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from facedb.errors import ConfigError

__all__ = [
    "ARCFACE_LANDMARKS",
    "BLURRED",
    "LOW_SCORE",
    "OVEREXPOSED",
    "POOR_QUALITY",
    "REASONS",
    "TILTED",
    "TOO_DARK",
    "TOO_SMALL",
    "TURNED_AWAY",
    "CropMeasures",
    "Pose",
    "Quality",
    "QualityPolicy",
    "estimate_pose",
]

#: Where ArcFace puts the five landmarks in its 112x112 crop (rust/align.rs): a frontal face.
ARCFACE_LANDMARKS: NDArray[np.float32] = np.array(
    [[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366], [41.5493, 92.3655], [70.7299, 92.2041]],
    dtype=np.float32,
)

#: The reasons a face can be poor, as ``Face.quality_reasons`` names them.
TOO_SMALL = "too small"
LOW_SCORE = "uncertain detection"
TURNED_AWAY = "turned away"
TILTED = "tilted"
BLURRED = "blurred"
TOO_DARK = "too dark"
OVEREXPOSED = "overexposed"
REASONS = (TOO_SMALL, LOW_SCORE, TURNED_AWAY, TILTED, BLURRED, TOO_DARK, OVEREXPOSED)

#: Quality below which a face is poor (every part score is 0.5 at its bar).
POOR_QUALITY = 0.5

# Depth of the nose tip in front of the eyes, as a fraction of the distance between the eyes
# (yaw) and of the eye-to-mouth distance (pitch): an average adult face. The pose is an
# estimate from 2-D points, good to about 10 degrees, enough to tell "turned away".
_NOSE_DEPTH_EYES = 0.5
_NOSE_DEPTH_HEIGHT = 0.43
# Where the nose sits between the eye line and the mouth line on a frontal face (ArcFace's
# template: 20.1 of 40.7 px).
_NOSE_HEIGHT_FRONTAL = 0.494


@dataclass(frozen=True, slots=True)
class Pose:
    """Head pose estimated from the five landmarks, in degrees.

    Attributes:
        yaw: turned to the side (positive: the nose toward the right of the picture).
        pitch: nodding (positive: looking down).
        roll: the eye line's angle in the picture (positive: clockwise).
    """

    yaw: float
    pitch: float
    roll: float


def estimate_pose(landmarks: ArrayLike) -> Pose:
    """Yaw, pitch and roll from the five landmarks (left eye, right eye, nose, left and right
    mouth corner, as seen in the picture).

    In the frame of the eye line, a turned head moves the nose tip sideways from the eyes'
    midpoint (``tan(yaw)`` times its depth) and a nodding one moves it up or down between the
    eye line and the mouth.

    Example:
        >>> estimate_pose(ARCFACE_LANDMARKS)
        Pose(yaw=0.0, pitch=0.1, roll=-0.3)
    """
    p = np.asarray(landmarks, dtype=np.float64).reshape(5, 2)
    left, right = p[0], p[1]
    axis = right - left
    eyes = float(np.hypot(axis[0], axis[1]))
    if not math.isfinite(eyes) or eyes == 0.0:
        return Pose(90.0, 90.0, 0.0)  # no measurable eye line: as far from frontal as it gets
    roll = math.degrees(math.atan2(axis[1], axis[0]))
    cos, sin = axis / eyes
    # Coordinates in the frame of the eye line: x along it, y down the face.
    local = (p - (left + right) / 2) @ np.array([[cos, -sin], [sin, cos]])
    yaw = math.degrees(math.atan2(local[2, 0] / eyes, _NOSE_DEPTH_EYES))
    mouth = float((local[3, 1] + local[4, 1]) / 2)
    if mouth <= 0.0:
        return Pose(round(yaw, 1), 90.0, round(roll, 1))  # mouth above the eyes: upside down
    pitch = math.degrees(math.atan2(local[2, 1] / mouth - _NOSE_HEIGHT_FRONTAL, _NOSE_DEPTH_HEIGHT))
    return Pose(round(yaw, 1), round(pitch, 1), round(roll, 1))


@dataclass(frozen=True, slots=True)
class CropMeasures:
    """What Rust measured on the aligned crop's face region (see ``facedb._native``).

    Attributes:
        sharpness: variance of the grey Laplacian (grey levels 0..255).
        brightness: mean grey level, 0 (black) to 1 (white).
        contrast: standard deviation of the grey level, 0 to 0.5.
        clipped: fraction of the pixels clipped to black or white.
    """

    sharpness: float
    brightness: float
    contrast: float
    clipped: float

    @property
    def relative_sharpness(self) -> float:
        """The Laplacian's variance over the grey level's variance: the share of fine detail
        in the face, which darkening or a flat light does not change (the raw variance falls
        with the square of the contrast) but blur does."""
        grey_variance = (self.contrast * 255.0) ** 2
        return self.sharpness / grey_variance if grey_variance >= 1.0 else 0.0


@dataclass(frozen=True, slots=True)
class Quality:
    """A face's quality: the score, the reasons it is poor (empty when it is not), and the
    measures both come from.

    Attributes:
        score: 0 to 1; below :data:`POOR_QUALITY` (0.5) the face is poor.
        reasons: the measures below their bar, in :data:`REASONS` order.
        size: the box's short side, pixels.
        det_score: the detector's score.
        pose: the estimated head pose.
        crop: the aligned crop's measures.
    """

    score: float
    reasons: tuple[str, ...]
    size: float
    det_score: float
    pose: Pose
    crop: CropMeasures

    @property
    def is_poor(self) -> bool:
        """Whether the face is below the bar (some reason is named)."""
        return bool(self.reasons)


def _part(value: float, bar: float, good: float) -> float:
    """0.5 at ``bar``, 1 at ``good`` (either side of the bar), linear and clipped to [0, 1]."""
    if not math.isfinite(value):
        return 0.0
    return min(1.0, max(0.0, 0.5 + 0.5 * (value - bar) / (good - bar)))


@dataclass(frozen=True, slots=True)
class QualityPolicy:
    """The quality bar: for each measure, the value below which a face is poor and the value
    at which it counts as fully good.

    The defaults accept every face of ../shared/faces/gallery, closeups and yaoming.jpg with
    a margin, and refuse Gaussian-blurred, downscaled, darkened, overexposed and strongly
    turned versions with the right reason (docs/engine.md, "Face quality").

    Attributes:
        min_face_size, good_face_size: the box's short side, pixels ("too small").
        min_det_score, good_det_score: the detector's score ("uncertain detection").
        max_yaw, good_yaw: degrees either way; also the bar for pitch ("turned away").
        max_pitch, good_pitch: degrees either way ("turned away").
        max_roll, good_roll: degrees either way ("tilted"); alignment undoes roll, so only
            a face near sideways is poor for it.
        min_sharpness, good_sharpness: :attr:`CropMeasures.relative_sharpness` ("blurred").
        min_brightness, good_brightness: mean grey level ("too dark").
        max_brightness, good_max_brightness: mean grey level ("overexposed").
        max_clipped, good_clipped: share of clipped pixels ("overexposed", or "too dark" when
            the face is darker than mid-grey).

    Raises:
        ConfigError: a bar or good level that is not finite, or a good level on the wrong
            side of its bar.

    Example:
        >>> strict = QualityPolicy(min_face_size=64.0, good_face_size=112.0)
    """

    min_face_size: float = 32.0
    good_face_size: float = 80.0
    min_det_score: float = 0.6
    good_det_score: float = 0.75
    max_yaw: float = 45.0
    good_yaw: float = 25.0
    max_pitch: float = 40.0
    good_pitch: float = 20.0
    max_roll: float = 60.0
    good_roll: float = 30.0
    min_sharpness: float = 0.03
    good_sharpness: float = 0.12
    min_brightness: float = 0.12
    good_brightness: float = 0.25
    max_brightness: float = 0.85
    good_max_brightness: float = 0.7
    max_clipped: float = 0.25
    good_clipped: float = 0.05

    def __post_init__(self) -> None:
        pairs = [
            ("min_face_size", self.min_face_size, self.good_face_size, 1),
            ("min_det_score", self.min_det_score, self.good_det_score, 1),
            ("max_yaw", self.max_yaw, self.good_yaw, -1),
            ("max_pitch", self.max_pitch, self.good_pitch, -1),
            ("max_roll", self.max_roll, self.good_roll, -1),
            ("min_sharpness", self.min_sharpness, self.good_sharpness, 1),
            ("min_brightness", self.min_brightness, self.good_brightness, 1),
            ("max_brightness", self.max_brightness, self.good_max_brightness, -1),
            ("max_clipped", self.max_clipped, self.good_clipped, -1),
        ]
        for name, bar, good, direction in pairs:
            if not (math.isfinite(bar) and math.isfinite(good)) or (good - bar) * direction <= 0:
                side = "above" if direction > 0 else "below"
                raise ConfigError(
                    f"{name}'s good level must lie {side} the bar, got bar {bar} and good {good}"
                )

    def assess(
        self,
        bbox: ArrayLike,
        det_score: float,
        landmarks: ArrayLike,
        crop: CropMeasures | Sequence[float],
    ) -> Quality:
        """The quality of one face from its box ``[x1, y1, x2, y2]``, detector score, five
        landmarks and crop measures (``(sharpness, brightness, contrast, clipped)`` as the
        native module gives them)."""
        box = np.asarray(bbox, dtype=np.float64).reshape(4)
        size = float(max(0.0, min(box[2] - box[0], box[3] - box[1])))
        measures = crop if isinstance(crop, CropMeasures) else CropMeasures(*(float(v) for v in crop))
        pose = estimate_pose(landmarks)
        dark = measures.brightness < 0.5
        parts = {
            TOO_SMALL: [_part(size, self.min_face_size, self.good_face_size)],
            LOW_SCORE: [_part(float(det_score), self.min_det_score, self.good_det_score)],
            TURNED_AWAY: [
                _part(abs(pose.yaw), self.max_yaw, self.good_yaw),
                _part(abs(pose.pitch), self.max_pitch, self.good_pitch),
            ],
            TILTED: [_part(abs(pose.roll), self.max_roll, self.good_roll)],
            BLURRED: [_part(measures.relative_sharpness, self.min_sharpness, self.good_sharpness)],
            TOO_DARK: [_part(measures.brightness, self.min_brightness, self.good_brightness)],
            OVEREXPOSED: [_part(measures.brightness, self.max_brightness, self.good_max_brightness)],
        }
        # Clipping is blamed on the side the face leans to.
        parts[TOO_DARK if dark else OVEREXPOSED].append(
            _part(measures.clipped, self.max_clipped, self.good_clipped)
        )
        lowest = {reason: min(scores) for reason, scores in parts.items()}
        reasons = tuple(r for r in REASONS if lowest[r] < POOR_QUALITY)
        score = min(lowest.values())
        return Quality(score, reasons, size, float(det_score), pose, measures)

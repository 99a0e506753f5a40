"""The faces the engine finds: :class:`Face` (with its template), :class:`Detection` (where
it is, without one), :class:`AlignedFaces` (crops ready for the recognizer), and the
largest-face rule.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

__all__ = ["AlignedFaces", "Detection", "Face", "largest_face"]


@dataclass(frozen=True, slots=True)
class Face:
    """A face found in a photo.

    Attributes:
        bbox: float32[4], the box ``[x1, y1, x2, y2]`` in the photo's pixels.
        score: the detector's confidence, 0 to 1.
        landmarks: float32[5, 2], left eye, right eye, nose, left and right mouth corner
            (as seen in the picture), ``[x, y]`` each.
        embedding: float32[512], the L2-normalised template.
        quality: how usable the face is for recognition, 0 to 1; below 0.5 it is poor
            (:mod:`facedb.quality`): enrollment refuses it, identify answers "poor_quality".
        quality_reasons: why it is poor (``"too small"``, ``"blurred"``, ``"turned away"``,
            ...; :data:`facedb.quality.REASONS`); empty when it is not.
    """

    bbox: NDArray[np.float32]
    score: float
    landmarks: NDArray[np.float32]
    embedding: NDArray[np.float32]
    quality: float
    quality_reasons: tuple[str, ...]

    @property
    def width(self) -> float:
        """Box width in pixels."""
        return float(self.bbox[2] - self.bbox[0])

    @property
    def height(self) -> float:
        """Box height in pixels."""
        return float(self.bbox[3] - self.bbox[1])

    @property
    def area(self) -> float:
        """Box area in square pixels."""
        return max(self.width, 0.0) * max(self.height, 0.0)

    @property
    def is_poor_quality(self) -> bool:
        """Whether the face is below the quality bar (``quality_reasons`` says why)."""
        return bool(self.quality_reasons)

    def __repr__(self) -> str:
        box = ", ".join(f"{v:.1f}" for v in self.bbox)
        return f"Face(bbox=[{box}], score={self.score:.3f}, quality={self.quality:.2f})"


@dataclass(frozen=True, slots=True, eq=False)
class Detection:
    """A face found by :meth:`FaceEngine.locate`, without its template: where it is.

    Attributes:
        bbox: float32[4], the box ``[x1, y1, x2, y2]`` in the photo's pixels.
        score: the detector's confidence, 0 to 1.
        landmarks: float32[5, 2], as :attr:`Face.landmarks`.
    """

    bbox: NDArray[np.float32]
    score: float
    landmarks: NDArray[np.float32]

    @property
    def area(self) -> float:
        """Box area in square pixels."""
        return max(float(self.bbox[2] - self.bbox[0]), 0.0) * max(float(self.bbox[3] - self.bbox[1]), 0.0)


@dataclass(frozen=True, slots=True, eq=False)
class AlignedFaces:
    """Some faces of one photo aligned for the recognizer (:meth:`FaceEngine.align`).

    Attributes:
        detections: the faces, in the order given.
        crops: float32[N, 3, 112, 112], the aligned crops as the recognizer takes them.
        measures: each crop's (sharpness, brightness, contrast, clipped), for the quality bar.
    """

    detections: tuple[Detection, ...]
    crops: NDArray[np.float32]
    measures: tuple[tuple[float, float, float, float], ...]

    def __len__(self) -> int:
        return len(self.detections)


def largest_face(faces: Sequence[Face]) -> Face:
    """The largest of ``faces`` by box area, the first of equally large ones: the rule Rust's
    ``FaceEngine::embedding`` applies (a test holds the two to the same answer)."""
    best = faces[0]
    for face in faces[1:]:
        if face.area > best.area:
            best = face
    return best

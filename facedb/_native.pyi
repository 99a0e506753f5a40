"""The compiled face engine (Rust). Private: use :mod:`facedb` instead.

Photos are paths (str), encoded bytes (bytes, bytearray, memoryview) or uint8 numpy arrays in
OpenCV's layout (HxWx3 BGR, HxWx4 BGRA, HxW or HxWx1 gray, any strides). Errors are raised
as the classes of :mod:`facedb.errors`.
"""

from collections.abc import Iterable
from os import PathLike
from typing import TypeAlias, final

import numpy as np
from numpy.typing import NDArray

from facedb.errors import FaceDBError

__all__ = ["Engine", "__version__", "similarity"]
__version__: str

_RawFace: TypeAlias = tuple[NDArray[np.float32], float, NDArray[np.float32], NDArray[np.float32]]

@final
class Engine:
    """Detector and recognizer sessions with their configuration; thread-safe."""

    def __new__(
        cls,
        *,
        detector: str | PathLike[str] | None = None,
        recognizer: str | PathLike[str] | None = None,
        ort_library: str | PathLike[str] | None = None,
        python: str | PathLike[str] | None = None,
        det_size: int = 640,
        det_threshold: float = 0.5,
        coarse_size: int | None = ...,  # 128; None turns the coarse pass off
        coarse_threshold: float = 0.7,
        nms_threshold: float = 0.4,
        threads: int | None = None,
        sessions: int | None = None,
        max_pixels: int = 40000000,
        max_bytes: int = 268435456,
    ) -> Engine:
        """Finds ONNX Runtime and the models (explicit, environment, then the wheels that
        ``python`` sees) and loads them."""

    def detect(self, image: object) -> list[_RawFace]:
        """Faces of one photo, sorted by the box's left edge: (bbox, score, landmarks, embedding)."""

    def detect_many(self, images: Iterable[object], workers: int = 0) -> list[list[_RawFace] | FaceDBError]:
        """Faces of every photo in input order; a failed photo gives its exception instance."""

    def decode(self, image: object) -> NDArray[np.uint8]:
        """Decodes a path or bytes into an HxWx3 RGB array, EXIF orientation applied."""

    @property
    def detector_path(self) -> str:
        """The detector's model file."""

    @property
    def recognizer_path(self) -> str:
        """The recognizer's model file."""

    @property
    def embedding_size(self) -> int:
        """Length of the templates."""

    @property
    def ort_library(self) -> str | None:
        """The ONNX Runtime library in use."""

def similarity(a: Iterable[float], b: Iterable[float]) -> float:
    """Cosine similarity of two templates."""

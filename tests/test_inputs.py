"""What a photo may be: paths, bytes, open files, PIL images, BGR and RGB arrays, the same
face whatever a caller holds (an RGB array taken as BGR silently lowered the similarity of a
photo to itself from 1.0 to about 0.9)."""

from __future__ import annotations

import io
from pathlib import Path

import cv2
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from PIL import Image

import facedb
from facedb.engine import as_photo

from .helpers import CHILD_ENV


def photo_of(faces_dir: Path) -> Path:
    """A gallery photo with one face."""
    return sorted((faces_dir / "gallery").rglob("*.jpg"))[0]


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.dot(a, b))


def test_an_rgb_array_is_the_same_face_as_its_bgr_pixels(engine: facedb.FaceEngine, faces_dir: Path) -> None:
    bgr = cv2.imread(str(photo_of(faces_dir)))
    rgb = np.ascontiguousarray(bgr[:, :, ::-1])
    reference = engine.embedding(bgr)
    assert np.array_equal(engine.embedding(rgb, color="rgb"), reference)
    assert np.array_equal(facedb.embedding(rgb, color="rgb"), reference)
    # What the default does to an RGB array: the face is still found, but it is a worse
    # template (this is why `color=` exists).
    assert cosine(engine.embedding(rgb), reference) < 0.99
    [face] = engine.detect(rgb, color="rgb")
    assert np.array_equal(face.embedding, reference)
    assert (
        engine.verify(rgb, bgr, color="rgb").similarity
        < engine.verify(rgb, rgb, color="rgb").similarity + 1e-6
    )


def test_pil_images_and_open_files_are_photos(engine: facedb.FaceEngine, faces_dir: Path) -> None:
    path = photo_of(faces_dir)
    from_path = engine.embedding(path)
    with open(path, "rb") as f:
        assert np.array_equal(engine.embedding(f), from_path), "a file is its bytes"
    assert np.array_equal(engine.embedding(io.BytesIO(path.read_bytes())), from_path)
    with Image.open(path) as image:
        # PIL's JPEG decoder is not the engine's: the pixels differ by rounding only.
        assert cosine(engine.embedding(image), from_path) > 0.99
        assert cosine(engine.embedding(image.convert("L")), from_path) > 0.9
        rgba = image.convert("RGBA")
        assert cosine(engine.embedding(rgba), from_path) > 0.99
        assert cosine(engine.embedding(np.asarray(image), color="rgb"), from_path) > 0.99
    with open(path) as text, pytest.raises(TypeError, match="binary mode"):
        engine.detect(text)  # type: ignore[arg-type]


def test_a_pil_image_is_turned_upright_as_a_path_is(engine: facedb.FaceEngine, faces_dir: Path) -> None:
    """A photo whose EXIF says "rotate": the path and the PIL image give the same face."""
    path = photo_of(faces_dir)
    with Image.open(path) as image:
        sideways = image.rotate(90, expand=True)
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: turn 90 degrees clockwise to view (rotate(90) turned it anticlockwise)
    buffer = io.BytesIO()
    sideways.save(buffer, format="JPEG", quality=95, exif=exif)
    data = buffer.getvalue()
    upright = engine.embedding(data)
    with Image.open(io.BytesIO(data)) as image:
        assert cosine(engine.embedding(image), upright) > 0.99


def test_a_bad_color_is_a_config_error(engine: facedb.FaceEngine, faces_dir: Path) -> None:
    with pytest.raises(facedb.ConfigError, match="color must be 'bgr' or 'rgb'"):
        engine.detect(photo_of(faces_dir), color="hsv")  # type: ignore[arg-type]


def test_the_gallery_takes_what_the_engine_takes(
    tmp_path: Path, engine: facedb.FaceEngine, faces_dir: Path
) -> None:
    path = photo_of(faces_dir)
    rgb = np.ascontiguousarray(cv2.imread(str(path))[:, :, ::-1])
    with facedb.FaceDB(tmp_path / "g", engine=engine) as db:
        with open(path, "rb") as f:
            person = db.enroll("someone", f)
        assert person.face_count == 1
        # The same content again from an open file: skipped as already enrolled (by hash).
        with open(path, "rb") as f:
            assert db.enroll_photos("someone", [f]).added == []
        [named] = db.identify(rgb, color="rgb")
        assert named.person is not None and named.person.id == person.id and named.similarity > 0.99
        with Image.open(path) as image:
            [named] = db.identify(image)
        assert named.person is not None and named.person.id == person.id
        assert db.add_photos(person.id, rgb, color="rgb").added, "an RGB array is a new photo"


@settings(max_examples=50, deadline=None)
@given(
    arrays(
        np.uint8,
        st.tuples(st.integers(1, 6), st.integers(1, 6), st.sampled_from([3, 4])),
    )
)
def test_rgb_arrays_are_reordered_to_bgr_and_nothing_else_changes(pixels: np.ndarray) -> None:
    converted = as_photo(pixels, "rgb")
    assert isinstance(converted, np.ndarray) and converted.flags.c_contiguous
    assert np.array_equal(converted[:, :, :3], pixels[:, :, 2::-1])
    if pixels.shape[2] == 4:
        assert np.array_equal(converted[:, :, 3], pixels[:, :, 3]), "alpha stays last"
    assert as_photo(pixels, "bgr") is pixels
    gray = pixels[:, :, 0]
    assert as_photo(gray, "rgb") is gray, "a gray image has no channel order"


def test_similarity_of_photos_points_to_verify(faces_dir: Path) -> None:
    photo = faces_dir / "gallery/obama/obama.jpg"
    for a, b in ((str(photo), str(photo)), (photo, np.zeros(512)), (photo.read_bytes(), np.zeros(512))):
        with pytest.raises(facedb.ConfigError, match="verify"):
            facedb.similarity(a, b)  # type: ignore[arg-type]
    with pytest.raises(facedb.ConfigError, match="not a template"):
        facedb.similarity([{"x": 1}], [1.0])  # type: ignore[list-item]


def test_a_new_person_refused_as_a_mislabel_is_not_compared_with_nothing(
    tmp_path: Path, faces_dir: Path
) -> None:
    with facedb.FaceDB(tmp_path / "g") as db:
        db.enroll("obama", [faces_dir / "gallery/obama/obama.jpg"])
        with pytest.raises(facedb.EnrollmentRefused) as e:
            db.create_person("someone", [faces_dir / "gallery/obama/obama2.jpg"])
    message = str(e.value)
    assert "looks like obama" in message and "-1.00" not in message and "more than this person" not in message


def test_photo_names_name_data_in_refusals_and_records(tmp_path: Path, faces_dir: Path) -> None:
    good = (faces_dir / "gallery/obama/obama.jpg").read_bytes()
    group = (faces_dir / "probes/obama_and_biden.jpg").read_bytes()
    with facedb.FaceDB(tmp_path / "g") as db:
        with pytest.raises(facedb.EnrollmentRefused) as e:
            db.create_person("x", [good, group], photo_names=["me.jpg", "team.jpg"])
        assert e.value.refused[0][0] == "team.jpg" and "bytes>" not in str(e.value)
        person = db.create_person("obama", [good], photo_names=["me.jpg"]).person
        assert [f["image"] for f in db.faces(person)] == ["me.jpg"]
        with pytest.raises(facedb.ConfigError, match="one string per photo"):
            db.add_photos(person, [good], photo_names=["a", "b"])


@pytest.mark.timeout(120)
def test_a_pil_image_keeps_its_name(tmp_path: Path, faces_dir: Path) -> None:
    """A PIL image was named by the array it became: `<array 825x1100x3>` in errors and faces()."""
    from facedb.engine import photo_name

    opened = faces_dir / "gallery/obama/obama.jpg"
    with Image.open(opened) as image:
        assert photo_name(image) == str(opened)
    made = Image.new("RGB", (200, 100))
    assert photo_name(made) == "<PIL image 200x100>"
    with facedb.FaceDB(tmp_path / "g") as db:
        with Image.open(opened) as image:
            person = db.enroll("obama", image)
        assert [f["image"] for f in db.faces(person)] == ["obama.jpg"]  # as for the path
        with pytest.raises(facedb.EnrollmentRefused, match=r"<PIL image 200x100>: no face found"):
            db.enroll("nobody", made)
        with Image.open(faces_dir / "probes/obama_and_biden.jpg") as group:
            with pytest.raises(facedb.EnrollmentRefused, match="obama_and_biden.jpg: 3 faces found"):
                db.enroll("group", group)
        with pytest.raises(facedb.NoFaceError, match=r"^no face found in <PIL image 200x100>$"):
            db.engine.embedding(made)
        with pytest.raises(facedb.NoFaceError, match=r"<PIL image 200x100>"):
            db.verify(made, Image.open(opened))
        failed = list(db.engine.detect_many([Image.new("RGB", (0, 0)), made], errors="return"))
        assert isinstance(failed[0], facedb.ImageError) and "<PIL image 0x0>" in str(failed[0])


def test_identify_takes_a_list_of_photos(tmp_path: Path, faces_dir: Path) -> None:
    with facedb.FaceDB(tmp_path / "g") as db:
        db.enroll("obama", [faces_dir / "gallery/obama/obama.jpg"])
        photos = [faces_dir / "probes/obama1.jpg", (faces_dir / "probes/obama_and_biden.jpg").read_bytes()]
        batch = db.identify(photos)
        assert len(batch) == 2
        for answer, photo in zip(batch, photos, strict=True):
            one = db.identify(photo)
            assert [(r.status, r.person and r.person.id) for r in answer] == [
                (r.status, r.person and r.person.id) for r in one
            ]
        assert [len(a) for a in db.identify(tuple(photos))] == [len(a) for a in batch]
        assert db.identify([]) == []


def test_two_different_photos_of_the_same_name_enroll(tmp_path: Path, faces_dir: Path) -> None:
    """Was a 500 over HTTP (found by schemathesis): two uploads both called photo.jpg made the
    gate compare the faces' arrays."""
    one = (faces_dir / "gallery/obama/obama.jpg").read_bytes()
    two = (faces_dir / "gallery/obama/obama2.jpg").read_bytes()
    with facedb.FaceDB(tmp_path / "g") as db:
        done = db.create_person("obama", [one, two], photo_names=["photo.jpg", "photo.jpg"])
        assert len(done.added) == 2
        again = db.add_photos(done.person, [two, one], photo_names=["photo.jpg", "photo.jpg"])
        assert again.added == [] and len(again.skipped) == 2


def _chunk(kind: bytes, data: bytes) -> bytes:
    import struct
    import zlib

    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def iccp_bomb(inflated: int = 1 << 30) -> bytes:
    """A 64x64 PNG whose iCCP chunk (an ICC profile, read with the headers) inflates to
    ``inflated`` bytes of zeros: about 1 MB on disk for 1 GB."""
    import struct
    import zlib

    squeeze = zlib.compressobj(9)
    block = bytes(1 << 20)
    profile = b"".join(squeeze.compress(block) for _ in range(inflated >> 20)) + squeeze.flush()
    pixels = zlib.compress(b"".join(b"\0" + bytes(64 * 3) for _ in range(64)))
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", struct.pack(">IIBBBBB", 64, 64, 8, 2, 0, 0, 0))
        + _chunk(b"iCCP", b"bomb\0\0" + profile)
        + _chunk(b"IDAT", pixels)
        + _chunk(b"IEND", b"")
    )


@pytest.mark.timeout(120)
def test_a_decompression_bomb_in_the_metadata_is_refused_cheaply(tmp_path: Path) -> None:
    """A 1 MB PNG whose iCCP chunk inflates to 1 GB was answered (no faces) after costing the
    server about 510 MiB: the decoder's limits were set only after it had read the headers.
    In a fresh process, so that its peak memory is its own."""
    import subprocess
    import sys

    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(iccp_bomb())
    assert bomb.stat().st_size < 1_200_000
    code = (
        "import resource, sys, facedb\n"
        "before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        "engine = facedb.default_engine()\n"
        "warm = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        "try:\n"
        "    engine.detect(open(sys.argv[1], 'rb').read())\n"
        "    print('accepted')\n"
        "except facedb.ImageError as e:\n"
        "    print('refused', e)\n"
        "print('grew', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - warm)\n"
    )
    run = subprocess.run(
        [sys.executable, "-c", code, str(bomb)], capture_output=True, text=True, timeout=100, env=CHILD_ENV
    )
    assert run.returncode == 0, run.stderr
    lines = run.stdout.splitlines()
    assert lines[0].startswith("refused") and "Png decoding failed" in lines[0], run.stdout
    grew_kib = int(lines[-1].split()[1])
    assert grew_kib < 50 * 1024, f"decoding the bomb grew the process by {grew_kib} KiB"


def test_a_png_with_a_real_icc_profile_still_decodes(engine: facedb.FaceEngine, faces_dir: Path) -> None:
    from PIL import ImageCms

    profile = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    out = io.BytesIO()
    Image.open(photo_of(faces_dir)).save(out, "PNG", icc_profile=profile)
    assert len(engine.detect(out.getvalue())) == 1

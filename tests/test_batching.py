"""The service's recognizer batches (facedb.service.batching): requests that arrive together
share one recognizer run and get the answers they would have got alone."""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

import facedb
from facedb.engine import AlignedFaces, Face
from facedb.service import ServiceSettings
from facedb.service.batching import Recognition, _Pending

from .helpers import CHILD_ENV, FACEDB, Server, cli

PHOTOS = [
    "probes/kit_with_rose.jpg",
    "probes/obama_and_biden.jpg",
    "more/obama2.jpg",
    "gallery/biden/biden.jpg",
]


@pytest.fixture(scope="module")
def gallery(tmp_path_factory: pytest.TempPathFactory, faces_dir: Path) -> tuple[Path, str]:
    db = tmp_path_factory.mktemp("batching") / "gallery"
    cli(db, "import", str(faces_dir / "gallery"))
    return db, cli(db, "keys", "create", "--scope", "read")


def identify_all(url: str, key: str, photos: list[tuple[str, bytes]]) -> list[list[dict[str, Any]]]:
    """Every photo identified by 8 concurrent clients; the faces of each answer, in order."""

    def one(item: tuple[str, bytes]) -> list[dict[str, Any]]:
        name, data = item
        answer = httpx.post(
            url + "/identify", headers={"X-API-Key": key}, files={"photo": (name, data)}, timeout=120
        )
        assert answer.status_code == 200, answer.text
        return list(answer.json()["faces"])

    with ThreadPoolExecutor(8) as pool:
        return list(pool.map(one, photos))


@pytest.mark.timeout(300)
def test_batched_answers_are_the_unbatched_ones(
    gallery: tuple[Path, str], faces_dir: Path, wheel_photos: Path
) -> None:
    """The same photos, concurrently, to a batching server (a long window, so that batches
    hold several requests) and to one without batching: the same answers, face for face."""
    db, key = gallery
    photos = [(p, (faces_dir / p).read_bytes()) for p in PHOTOS] * 3
    photos += [("players.jpg", (wheel_photos / "players.jpg").read_bytes())]
    photos += [("blank.png", _blank_png())]
    batched = Server(db, "--batch-window-ms", "50")
    try:
        with_batches = identify_all(batched.url, key, photos)
        # A strong read goes the batched way too (the recognizer's faces, then identify_faces).
        name, data = photos[0]
        strong = httpx.post(
            batched.url + "/identify",
            params={"consistency": "strong"},
            headers={"X-API-Key": key},
            files={"photo": (name, data)},
            timeout=120,
        )
        assert strong.status_code == 200, strong.text
        # (Compared as batched answers are below: a batch's floats may differ in the last bits.)
        got = [(f["person"], f["status"]) for f in strong.json()["faces"]]
        assert got == [(f["person"], f["status"]) for f in with_batches[0]]
    finally:
        batched.stop()
    alone = Server(db)  # the default: no batches
    try:
        without = identify_all(alone.url, key, photos)
    finally:
        alone.stop()
    assert [len(f) for f in with_batches] == [len(f) for f in without]
    assert sum(len(f) for f in without) >= 3 * 5 + 22 and without[-1] == []
    for got, want in zip(with_batches, without, strict=True):
        for a, b in zip(got, want, strict=True):
            assert a["person"] == b["person"] and a["status"] == b["status"]
            assert a["bbox"] == pytest.approx(b["bbox"], abs=1e-3)
            assert a["similarity"] == pytest.approx(b["similarity"], abs=1e-5)


def _blank_png() -> bytes:
    import io

    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (64, 48), (128, 128, 128)).save(out, format="PNG")
    return out.getvalue()


@pytest.fixture(scope="module")
def recognition(engine: facedb.FaceEngine) -> Iterator[Recognition]:
    # The longest window there is: every request of a test lands in one batch.
    r = Recognition(engine, window_ms=1000)
    yield r
    r.close()


def test_requests_arriving_together_share_one_recognizer_run(
    recognition: Recognition, engine: facedb.FaceEngine, faces_dir: Path
) -> None:
    photos = [(faces_dir / p).read_bytes() for p in PHOTOS]

    async def all_at_once() -> list[list[Face]]:
        return list(await asyncio.gather(*(recognition.faces(p) for p in photos)))

    before = recognition.batches
    found = asyncio.run(all_at_once())
    assert recognition.batches == before + 1
    for photo, faces in zip(photos, found, strict=True):
        alone = engine.detect(photo)
        assert len(faces) == len(alone) > 0
        for f, g in zip(faces, alone, strict=True):
            assert np.allclose(f.bbox, g.bbox, atol=1e-3)
            assert float(f.embedding @ g.embedding) > 1 - 1e-5
            assert f.quality_reasons == g.quality_reasons


def test_a_bad_request_fails_alone_and_its_batch_is_answered(
    recognition: Recognition, engine: facedb.FaceEngine, faces_dir: Path
) -> None:
    """A batch whose recognizer run fails is run again request by request: the bad one gets
    its error, the others their faces."""
    good = [engine.align(str(faces_dir / p), engine.locate(str(faces_dir / p))) for p in PHOTOS[:2]]
    bad = AlignedFaces(good[0].detections, np.zeros((len(good[0]), 3, 64, 64), np.float32), good[0].measures)
    answers: dict[int, list[Face] | BaseException] = {}

    def pending(i: int, aligned: AlignedFaces) -> _Pending:
        return _Pending(aligned, lambda result: answers.__setitem__(i, result))

    recognition._embed([pending(0, good[0]), pending(1, bad), pending(2, good[1])])
    assert isinstance(answers[1], facedb.ConfigError) and "112" in str(answers[1])
    for i, aligned in ((0, good[0]), (2, good[1])):
        faces = answers[i]
        assert isinstance(faces, list) and len(faces) == len(aligned.detections) > 0


def test_identify_of_a_photo_that_cannot_be_read_is_an_image_error(recognition: Recognition) -> None:
    with pytest.raises(facedb.ImageError):
        asyncio.run(recognition.faces(b"not a photo"))
    assert asyncio.run(recognition.faces(_blank_png())) == []


def test_bad_batch_settings_are_refused_up_front(gallery: tuple[Path, str]) -> None:
    for bad in ({"batch_window_ms": 5000.0}, {"batch_window_ms": -1.0}, {"workers": 0}):
        with pytest.raises(facedb.ConfigError):
            ServiceSettings(**bad)
    db, _ = gallery
    done = subprocess.run(
        [str(FACEDB), "--db", str(db), "serve", "--batch-window-ms", "5000"],
        capture_output=True,
        text=True,
        timeout=60,
        env=CHILD_ENV,
    )
    assert done.returncode != 0 and "batch window" in done.stderr and "Traceback" not in done.stderr

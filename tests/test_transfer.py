"""`facedb copy`: a gallery moved between stores, resumably, and compared at the end."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import facedb
from facedb import transfer
from facedb.transfer import copy_gallery

from .helpers import fresh_database, run_cli, server_url_or_skip


@pytest.fixture
def source(tmp_path: Path, faces_dir: Path) -> facedb.FaceDB:
    db = facedb.FaceDB(tmp_path / "src")
    db.enroll("obama", [faces_dir / "gallery/obama/obama.jpg", faces_dir / "gallery/obama/obama2.jpg"])
    db.import_embeddings(
        [f"p{i}" for i in range(40)],
        np.random.default_rng(5).normal(size=(40, 512)),
        metadata=[{"n": i} for i in range(40)],
    )
    db.remove("p3")
    db.reject(np.random.default_rng(6).normal(size=512), "obama")  # "not this person"
    yield db
    db.close()


def test_copy_folder_to_folder_keeps_ids(source: facedb.FaceDB, tmp_path: Path, faces_dir: Path) -> None:
    with facedb.FaceDB(tmp_path / "dst") as dst:
        report = copy_gallery(source, dst)
        assert report.identical and report.people_copied == 40 and report.faces_copied == 41
        assert report.rejections_copied == 1
        with dst.store.read() as s:
            assert dst.store.count_rejections(s, source.resolve("obama").id) == 1
        assert [(p.id, p.name, dict(p.metadata)) for p in dst.people()] == [
            (p.id, p.name, dict(p.metadata)) for p in source.people()
        ]
        (r,) = dst.identify(faces_dir / "probes/obama1.jpg")
        assert r.person is not None and r.person.id == source.resolve("obama").id
        again = copy_gallery(source, dst)
        assert again.identical and again.people_copied == 0 and again.faces_copied == 0
        assert again.rejections_copied == 0
        new = dst.import_embeddings(["after"], np.ones((1, 512)))[0]
        assert new.id > max(p.id for p in source.people())


def test_an_interrupted_copy_resumes(
    source: facedb.FaceDB, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(transfer, "_BATCH", 10)

    def stop_after_first_batch(done: int, total: int) -> None:
        raise KeyboardInterrupt

    with facedb.FaceDB(tmp_path / "dst") as dst:
        with pytest.raises(KeyboardInterrupt):
            copy_gallery(source, dst, stop_after_first_batch)
        assert dst.stats()["faces"] == 10
        report = copy_gallery(source, dst)
        assert report.identical and report.faces_copied == 31


def test_refuses_a_destination_that_is_not_a_copy(source: facedb.FaceDB, tmp_path: Path) -> None:
    with facedb.FaceDB(tmp_path / "other") as other:
        other.import_embeddings(["someone else"], np.ones((1, 512)))
        with pytest.raises(facedb.GalleryError, match="neither empty nor a copy"):
            copy_gallery(source, other)


def test_copy_to_postgres_and_back_through_the_cli(source: facedb.FaceDB, tmp_path: Path) -> None:
    with fresh_database(server_url_or_skip()) as url:
        source.close()
        env = {"XDG_CACHE_HOME": str(tmp_path / "cache")}
        there = run_cli("copy", str(tmp_path / "src"), url, env=env)
        assert there.returncode == 0, there.stderr
        assert "both galleries hold the same people, faces and templates" in there.stdout
        back = run_cli("copy", url, str(tmp_path / "back"), env=env)
        assert back.returncode == 0, back.stderr
        assert url.split("@")[-1] in there.stdout or "postgresql" in there.stdout


def test_a_copy_keeps_the_calibration_in_force(source: facedb.FaceDB, tmp_path: Path) -> None:
    cal = source.calibrate(target_fmr=1e-3)
    with facedb.FaceDB(tmp_path / "dst") as dst:
        assert dst.calibration is None
        assert copy_gallery(source, dst).identical
        assert dst.calibration == cal and dst.threshold == cal.threshold
        copy_gallery(source, dst)  # again: nothing doubled
        with dst.store.read() as s:
            assert dst.store.count_rows(s, "calibrations") == 1


def test_copy_carries_keys_and_the_attendance_log(source: facedb.FaceDB, tmp_path: Path) -> None:
    """Was: API keys and the attendance log stayed behind without a word."""
    from datetime import UTC, datetime

    from facedb.attendance import sightings
    from facedb.keys import KeyStore

    _, secret = KeyStore(source.store).create("read", "door")
    obama = source.resolve("obama").id
    when = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)
    template = np.eye(1, 512, dtype=np.float32)[0]
    with source.store.write() as s:
        stranger = source.store.add_stranger(s, template, when, when)
        for person, unknown in ((obama, None), (None, stranger)):
            source.store.add_sighting(
                s,
                person_id=person,
                stranger_id=unknown,
                source="door",
                first_seen=when,
                last_seen=when,
                similarity=0.8,
                bbox=[0.0, 0.0, 10.0, 10.0],
                frames=3,
            )
    with facedb.FaceDB(tmp_path / "dst") as dst:
        report = copy_gallery(source, dst)
        assert report.identical, report.problems
        assert report.rows_copied["api_keys"] == 1 and report.rows_copied["sightings"] == 2
        assert report.rows_copied["strangers"] == 1
        key = KeyStore(dst.store).authenticate(secret)
        assert key is not None and key.name == "door"
        copied = sightings(dst, when.date(), None)
        assert {(v.id, v.person_id, v.stranger_id) for v in copied} == {
            (v.id, v.person_id, v.stranger_id) for v in sightings(source, when.date(), None)
        }
        assert copy_gallery(source, dst).rows_copied["sightings"] == 0  # resumable, by id


def test_a_copy_with_rows_of_its_own_is_refused_before_anything_is_written(
    source: facedb.FaceDB, tmp_path: Path
) -> None:
    """Was: the copy's own calibration (id 1) made the source's look copied: identical=True,
    and the copy kept a threshold that names almost anybody."""
    source.calibrate(target_fmr=1e-3)
    with facedb.FaceDB(tmp_path / "dst") as dst:
        dst.calibrate(target_fmr=0.1)
        with pytest.raises(facedb.GalleryError, match="calibrations rows are its own"):
            copy_gallery(source, dst)
        assert len(dst) == 0  # nothing written


def test_a_rerun_carries_revocations_and_removals(source: facedb.FaceDB, tmp_path: Path) -> None:
    from datetime import UTC, datetime

    from facedb.keys import KeyStore

    record, secret = KeyStore(source.store).create("read", "door")
    when = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)
    with source.store.write() as s:
        stranger = source.store.add_stranger(s, np.eye(1, 512, dtype=np.float32)[0], when, when)
    with facedb.FaceDB(tmp_path / "dst") as dst:
        assert copy_gallery(source, dst).identical
        assert KeyStore(dst.store).authenticate(secret) is not None
        KeyStore(source.store).revoke(record.id)
        with source.store.write() as s:
            source.store.delete_rows(s, "strangers", [stranger])
        again = copy_gallery(source, dst)
        assert again.identical, again.problems
        assert KeyStore(dst.store).authenticate(secret) is None  # revoked in the copy too
        with dst.store.read() as s:
            assert dst.store.count_rows(s, "strangers") == 0  # the erased template is gone

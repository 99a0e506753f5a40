"""Faults for real: a disk that fills up, a read-only volume (CI runs as root: a small tmpfs and
a read-only bind mount)."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest

import facedb
from facedb import FaceDB

from .helpers import missing, run_cli, unit_rows


def mount(*args: str) -> None:
    if shutil.which("mount") is None:
        missing("no mount command")
    done = subprocess.run(["mount", *args], capture_output=True, text=True)
    if done.returncode != 0:
        missing(f"cannot mount ({' '.join(args)}): {done.stderr.strip()} (needs root)")


@contextmanager
def small_disk(path: Path, megabytes: int) -> Iterator[Path]:
    """A tmpfs of this size at `path`, unmounted afterwards."""
    path.mkdir()
    mount("-t", "tmpfs", "-o", f"size={megabytes}m", "tmpfs", str(path))
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


@contextmanager
def read_only_view(source: Path, path: Path) -> Iterator[Path]:
    """`source` seen read-only at `path` (a read-only bind mount, as a replica or a container
    image would be)."""
    path.mkdir()
    mount("--bind", str(source), str(path))
    try:
        mount("-o", "remount,bind,ro", str(path))
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


@pytest.mark.timeout(300)
def test_a_full_disk_fails_calls_cleanly_and_loses_nothing(tmp_path: Path) -> None:
    """100 people a call into a gallery on a 24 MB volume until it is full: each call either
    succeeds or raises a GalleryError having written nothing; once the volume is larger, exactly
    the acknowledged people are there and found."""
    disk = tmp_path / "small"
    with small_disk(disk, 24):
        folder = disk / "g"
        acknowledged: dict[int, np.ndarray] = {}
        failures = 0
        with FaceDB(folder) as db:
            for call in range(200):
                x = unit_rows(call, 100)
                try:
                    people = db.import_embeddings([f"p{call}-{i}" for i in range(100)], x)
                except facedb.GalleryError:
                    failures += 1
                    if failures >= 3:
                        break
                    continue
                acknowledged.update({p.id: x[i] for i, p in enumerate(people)})
        assert failures == 3, "the volume never filled up"
        print(f"disk full: {call + 1} calls, {len(acknowledged)} people acknowledged, {failures} refused")
        mount("-o", "remount,size=512m", str(disk))
        with FaceDB(folder) as db:
            assert {p.id for p in db.people()} == set(acknowledged)
            for pid in list(acknowledged)[::37]:
                assert db.search(acknowledged[pid], k=1)[0][0].person.id == pid
            report = db.check(repair=False)
            assert report.ok, report.problems


def test_a_read_only_gallery_opens_and_answers_without_writing(tmp_path: Path) -> None:
    folder = tmp_path / "g"
    x = unit_rows(7, 5)
    with FaceDB(folder) as db:
        people = db.import_embeddings(list("abcde"), x)
    before = {p: p.stat().st_mtime_ns for p in folder.rglob("*")}
    with read_only_view(folder, tmp_path / "ro") as view, FaceDB(view, read_only=True) as db:
        assert len(db) == 5 and [p.name for p in db.people()] == list("abcde")
        assert db.search(x[3], k=1)[0][0].person.id == people[3].id
        assert db.stats()["people"] == 5
        for write in (
            lambda: db.import_embeddings(["f"], x[:1]),
            lambda: db.remove(people[0].id),
            lambda: db.rename(people[0].id, "z"),
            lambda: db.remove_face(1),
            lambda: db.rebuild_index(),
        ):
            with pytest.raises(facedb.ReadOnlyGallery, match="read-only"):
                write()
    assert {p: p.stat().st_mtime_ns for p in folder.rglob("*")} == before


def test_read_only_never_writes_even_where_it_could(tmp_path: Path) -> None:
    """On a writable folder too, read_only=True changes neither the database nor the index (on
    a writable folder SQLite may add its empty -wal/-shm coordination files, so that a writer
    in another process and this reader see consistent pages)."""
    folder = tmp_path / "g"
    with FaceDB(folder) as db:
        db.import_embeddings(["a"], unit_rows(1, 1))

    def state() -> dict[Path, tuple[int, int]]:
        return {
            p: (p.stat().st_mtime_ns, p.stat().st_size)
            for p in folder.rglob("*")
            if not p.name.endswith(("-wal", "-shm"))
        }

    before = state()
    with FaceDB(folder, read_only=True) as db:
        assert len(db) == 1
        with pytest.raises(facedb.ReadOnlyGallery):
            db.import_embeddings(["b"], unit_rows(2, 1))
    assert state() == before
    assert all(p.stat().st_size == 0 for p in folder.glob("*-wal"))


def test_a_read_only_gallery_that_does_not_exist_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(facedb.GalleryError, match="no gallery"):
        FaceDB(tmp_path / "nothing", read_only=True)
    assert not (tmp_path / "nothing").exists()


def test_cli_read_only(tmp_path: Path) -> None:
    folder = tmp_path / "g"
    with FaceDB(folder) as db:
        db.import_embeddings(["ann"], unit_rows(4, 1))
    with read_only_view(folder, tmp_path / "ro") as view:
        people = run_cli("--read-only", "people", db=view, timeout=120)
        assert people.returncode == 0 and "ann" in people.stdout, people.stderr
        rename = run_cli("--read-only", "rename", "ann", "bob", db=view, timeout=120)
        assert rename.returncode == 6
        assert rename.stderr.strip().startswith("facedb: error: ") and "read-only" in rename.stderr
        assert len(rename.stderr.strip().splitlines()) == 1

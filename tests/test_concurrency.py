"""Several processes writing one gallery at once, as several `facedb serve` behind a load
balancer do: every acknowledged addition is found and every removal is gone, in every process."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from sqlalchemy import select

import facedb
from facedb.models import ChangeRow, FaceRow
from facedb.store import Store

from .helpers import CHILD_ENV, fresh_database, join_all, server_url_or_skip

WRITER = Path(__file__).with_name("concurrent_writer.py")
WRITERS = 3
PEOPLE = 40


def run_writers(gallery: str, tmp_path: Path) -> list[dict[str, object]]:
    """Starts the writers together on `gallery` (each with its own index cache, as on separate
    machines), lets them write at once, then has each check everybody's survivors."""
    children = [
        subprocess.Popen(
            [sys.executable, str(WRITER), gallery, str(tmp_path / f"cache{w}"), str(w), str(PEOPLE)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=CHILD_ENV,
        )
        for w in range(WRITERS)
    ]
    try:

        def expect(child: subprocess.Popen[str], word: str) -> str:
            assert child.stdout is not None
            line = child.stdout.readline()
            if not line.startswith(word):
                _, err = child.communicate(timeout=30)
                raise AssertionError(f"writer said {line!r}, expected {word}; stderr:\n{err[-3000:]}")
            return line[len(word) :].strip()

        for child in children:
            expect(child, "READY")
        for child in children:  # all at once
            assert child.stdin is not None
            child.stdin.write("go\n")
            child.stdin.flush()
        done = [json.loads(expect(child, "DONE")) for child in children]
        everyone = {
            "alive": [a for d in done for a in d["alive"]],
            "removed": [r for d in done for r in d["removed"]],
        }
        for child in children:
            assert child.stdin is not None
            child.stdin.write(json.dumps(everyone) + "\n")
            child.stdin.flush()
        results = [json.loads(expect(child, "RESULT")) for child in children]
        for child in children:
            assert child.wait(timeout=60) == 0
        for r in results:
            r["expected_people"] = len(everyone["alive"])
        return results
    finally:
        for child in children:
            if child.poll() is None:
                child.kill()
                child.wait()


def assert_nothing_lost(results: list[dict[str, object]]) -> None:
    for r in results:
        assert r["missing"] == [] and r["resurrected"] == [], r
        assert r["check_ok"], r["problems"]
        assert r["people"] == r["expected_people"]


@pytest.mark.timeout(600)
def test_concurrent_writers_on_postgres_lose_nobody(tmp_path: Path) -> None:
    with fresh_database(server_url_or_skip()) as url:
        assert_nothing_lost(run_writers(url, tmp_path))
        with facedb.FaceDB(url, cache_dir=tmp_path / "after") as db:
            with db.store.read() as s:
                generations = list(s.scalars(select(ChangeRow.generation).distinct()))
            # One generation per write, none shared: 40 imports and 13 removals per writer.
            writes = WRITERS * (PEOPLE + PEOPLE // 3)
            assert db.store.generation() == writes
            assert len(generations) == writes


@pytest.mark.timeout(600)
def test_concurrent_writers_on_postgres_and_milvus_lose_nobody(
    milvus_url: str, pg_url: str, tmp_path: Path
) -> None:
    assert_nothing_lost(run_writers(f"{pg_url}?vectors={milvus_url}", tmp_path))


def test_removal_racing_an_addition_logs_both(
    tmp_path: Path, faces_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A person removed while another process adds a face to them: the added face is either
    refused or logged as removed with the rest; no template outlives its person."""
    photo = sorted((faces_dir / "gallery" / "obama").iterdir())
    with fresh_database(server_url_or_skip()) as url:
        remover = facedb.FaceDB(url, cache_dir=tmp_path / "remover")
        adder = facedb.FaceDB(url, cache_dir=tmp_path / "adder")
        try:
            person = remover.enroll("obama", photo[:1])
            outcome: list[object] = []

            def add() -> None:
                try:
                    outcome.append(adder.add_faces(person.id, photo[1:2]))
                except facedb.FaceDBError as e:
                    outcome.append(e)

            thread = threading.Thread(target=add)
            real = Store.face_ids_of
            main = threading.current_thread()

            def face_ids_then_let_the_adder_in(self, s, person_ids):  # type: ignore[no-untyped-def]
                ids = real(self, s, person_ids)
                if threading.current_thread() is main and not thread.is_alive() and not outcome:
                    thread.start()
                    thread.join(timeout=3)  # with the person locked, the adder waits for us
                return ids

            monkeypatch.setattr(Store, "face_ids_of", face_ids_then_let_the_adder_in)
            remover.remove(person.id)
            join_all([thread], 30)
            (result,) = outcome
            assert isinstance(result, facedb.PersonNotFound), result
            for db in (remover, adder):
                report = db.check(repair=False)
                assert report.ok, report.problems
                assert db.vectors.ids() == set()
            with remover.store.read() as s:
                assert list(s.scalars(select(FaceRow.id))) == []
        finally:
            remover.close()
            adder.close()


def test_two_processes_migrate_a_fresh_database_at_once(tmp_path: Path) -> None:
    with fresh_database(server_url_or_skip()) as url:
        code = "import sys, facedb; facedb.FaceDB(sys.argv[1], cache_dir=sys.argv[2]).close(); print('ok')"
        children = [
            subprocess.Popen(
                [sys.executable, "-c", code, url, str(tmp_path / f"c{i}")],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                env=CHILD_ENV,
            )
            for i in range(4)
        ]
        outputs = [c.communicate(timeout=120) for c in children]
        for (out, err), child in zip(outputs, children, strict=True):
            assert child.returncode == 0 and out.strip() == "ok", err[-2000:]

"""Crash safety: a writer killed with SIGKILL at random moments during enroll, import and
remove loses no acknowledged write and brings back no acknowledged removal."""

from __future__ import annotations

import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

import facedb

from .conftest import join_all
from .crash_writer import template

WRITER = Path(__file__).with_name("crash_writer.py")
KILLS = 6


def run_and_kill(folder: Path | str, seed: int, photos: list[Path], delay: float) -> list[str]:
    child = subprocess.Popen(
        [sys.executable, str(WRITER), str(folder), str(seed), *map(str, photos)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: list[str] = []
    ready = threading.Event()

    def read() -> None:
        assert child.stdout is not None
        for line in child.stdout:
            if line.strip() == "READY":
                ready.set()
            else:
                lines.append(line.strip())

    reader = threading.Thread(target=read)
    reader.start()
    if not ready.wait(120):
        child.kill()
        raise AssertionError(f"the writer did not start: {child.stderr.read() if child.stderr else ''}")
    time.sleep(delay)
    child.send_signal(signal.SIGKILL)
    child.wait(60)
    join_all([reader], 60)
    assert child.returncode == -signal.SIGKILL, child.stderr.read() if child.stderr else ""
    return [line for line in lines if line.startswith(("ADD ", "DEL ", "REMOVING "))]


def test_sigkill_loses_no_acknowledged_write(tmp_path: Path, faces_dir: Path) -> None:
    photos = [faces_dir / "gallery/obama/obama.jpg", faces_dir / "gallery/biden/biden2.jpg"]
    kill_and_check(tmp_path / "gallery", photos, KILLS)


def kill_and_check(folder: Path | str, photos: list[Path], kills: int) -> None:
    """Kills a writer `kills` times and checks the reopened gallery after each kill."""
    rnd = random.Random(20261125)
    added: dict[int, int] = {}
    removed: set[int] = set()
    in_doubt: set[int] = set()  # removals under way at the kill: either outcome is right
    for round_ in range(kills):
        announced: set[int] = set()
        for line in run_and_kill(folder, round_ + 1, photos, rnd.uniform(0.3, 2.5)):
            op, pid, *rest = line.split()
            if op == "ADD":
                added[int(pid)] = int(rest[0])
            elif op == "REMOVING":
                announced.add(int(pid))
            else:
                removed.add(int(pid))
        in_doubt |= announced - removed
        with facedb.FaceDB(folder) as db:
            report = db.check(repair=False)
            assert report.ok, report.problems
            for pid in removed:
                with pytest.raises(facedb.PersonNotFound):
                    db.get(pid)
            survivors = {pid: s for pid, s in added.items() if pid not in removed | in_doubt}
            for pid in survivors:
                db.get(pid)
            imported = {pid: s for pid, s in survivors.items() if s >= 0}
            if imported:
                ids = sorted(imported)
                answers = db.search(np.vstack([template(imported[i]) for i in ids]), k=3)
                for pid, cands in zip(ids, answers, strict=True):
                    assert cands[0].person.id == pid and cands[0].similarity > 0.999
                    assert not {c.person.id for c in cands} & removed
    assert added and removed, "the writer should have both added and removed"

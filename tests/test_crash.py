"""Crash safety: a writer killed with SIGKILL at random moments during enroll, import and
remove loses no acknowledged write and brings back no acknowledged removal."""

from __future__ import annotations

from pathlib import Path

from .helpers import kill_and_check

KILLS = 6


def test_sigkill_loses_no_acknowledged_write(tmp_path: Path, faces_dir: Path) -> None:
    photos = [faces_dir / "gallery/obama/obama.jpg", faces_dir / "gallery/biden/biden2.jpg"]
    kill_and_check(tmp_path / "gallery", photos, KILLS)

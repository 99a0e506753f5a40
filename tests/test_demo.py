"""`make demo` (facedb.demo): what a newcomer sees first."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from .helpers import CHILD_ENV, run_command


@pytest.mark.timeout(180)
def test_the_demo_names_its_photos_by_a_short_runnable_path(tmp_path: Path, wheel_photos: Path) -> None:
    out = tmp_path / "demo-output"
    result = run_command(
        [sys.executable, "-m", "facedb.demo", str(out)], env=CHILD_ENV, cwd=tmp_path, timeout=170
    )
    assert result.returncode == 0, result.stderr
    shown = result.stdout + result.stderr
    # Not the wheel's folder inside site-packages: the photo by a path a user can type again.
    assert str(wheel_photos) not in shown and "site-packages" not in shown, shown
    assert "players.jpg: 22 face(s)" in shown and "Yao Ming (id 1)" in shown
    assert (out / "players-identified.jpg").stat().st_size > 50_000

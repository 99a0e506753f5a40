"""The documentation: a short README, and the site under docs/ built strictly (a broken link,
a missing anchor or a page left out of the navigation fails)."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest

from tests.helpers import ROOT, run_command

pytestmark = pytest.mark.timeout(120)


def test_the_readme_fits_on_a_few_screens_and_names_only_what_a_user_has() -> None:
    text = (ROOT / "README.md").read_text()
    assert len(text.splitlines()) <= 150
    # A user has no ../shared (the project's test photos), and no history of the project.
    assert "../shared" not in text and "stop 19" not in text
    assert "non-commercial" in text.split("## Install")[0]  # the models' licence, up front


def test_the_documentation_site_builds_strictly(tmp_path: Path) -> None:
    mkdocs = Path(sys.executable).with_name("mkdocs")
    if not mkdocs.exists():
        mkdocs = Path(shutil.which("mkdocs") or "mkdocs")
    built = run_command(
        [
            str(mkdocs),
            "build",
            "--strict",
            "--config-file",
            str(ROOT / "mkdocs.yml"),
            "--site-dir",
            str(tmp_path),
        ],
        cwd=ROOT,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
        timeout=100,
    )
    assert built.returncode == 0, built.stderr[-3000:]
    assert (tmp_path / "index.html").is_file() and (tmp_path / "calibration" / "index.html").is_file()
    assert (tmp_path / "assets" / "demo-players.jpg").is_file()
    # The Python reference is generated from the docstrings.
    reference = (tmp_path / "reference" / "index.html").read_text()
    assert "enroll_photos" in reference and "EncryptionKeyError" in reference
    pages = {p.stem for p in (ROOT / "docs").glob("*.md")}
    assert pages <= {p.name for p in tmp_path.iterdir() if p.is_dir()}, "a page is missing from the site"

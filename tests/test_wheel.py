"""facedb installed the way users install it: a wheel built by maturin, in a fresh venv,
used from a folder outside the repository (models, migrations and the CLI must be found)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from .helpers import ROOT, run_command


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A venv outside the repository with the freshly built wheel installed; its bin folder."""
    base = tmp_path_factory.mktemp("wheel")
    maturin = Path(sys.executable).with_name("maturin")
    subprocess.run(
        [str(maturin), "build", "--release", "--quiet", "--out", str(base / "dist")],
        cwd=ROOT,
        check=True,
        timeout=900,
    )
    (wheel,) = (base / "dist").glob("facedb-*.whl")
    subprocess.run([sys.executable, "-m", "venv", str(base / "venv")], check=True, timeout=300)
    pip = base / "venv" / "bin" / "pip"
    subprocess.run([str(pip), "install", "--quiet", str(wheel)], check=True, timeout=900)
    return base / "venv" / "bin"


def test_wheel_has_no_top_level_migrations(installed: Path) -> None:
    site = next((installed.parent / "lib").glob("python3*/site-packages"))
    assert not (site / "migrations").exists()
    assert (site / "facedb" / "migrations" / "env.py").is_file()
    assert (site / "facedb" / "py.typed").is_file() and (site / "facedb" / "_native.pyi").is_file()
    # The model's prior (the default threshold) is package data, not a file of the checkout.
    assert (site / "facedb" / "priors.json").is_file()


def test_installed_package_works_from_elsewhere(installed: Path, tmp_path: Path, wheel_photos: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["PATH"] = f"{installed}{os.pathsep}{env.get('PATH', '')}"
    code = (
        "import facedb, sys\n"
        "assert 'site-packages' in facedb.__file__, facedb.__file__\n"
        # The wheel's compiled module and its errors.py agree on every code.
        "from facedb import _native, errors\n"
        "assert all(getattr(errors, c).code == k for k, c in _native.error_kinds())\n"
        f"faces = facedb.detect({str(wheel_photos / 'players.jpg')!r})\n"
        "print(len(faces))\n"
    )
    result = run_command(
        [str(installed / "python"), "-c", code],
        cwd=tmp_path,
        env=env,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "22"
    gallery = tmp_path / "g"
    cli = [str(installed / "facedb"), "--db", str(gallery)]
    enrolled = run_command(
        [*cli, "enroll", "Yao Ming", str(wheel_photos / "yaoming.jpg")],
        cwd=tmp_path,
        env=env,
        timeout=300,
    )
    assert enrolled.returncode == 0, enrolled.stderr
    found = run_command(
        [*cli, "identify", str(wheel_photos / "players.jpg")],
        cwd=tmp_path,
        env=env,
        timeout=300,
    )
    assert found.returncode == 0, found.stderr
    assert found.stdout.count("Yao Ming (id 1)") == 1

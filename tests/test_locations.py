"""Database URLs as users spell them (issue 13): every SQLAlchemy spelling works, the
hosting providers' ``postgres://`` is PostgreSQL, and anything else is a GalleryError that
names what is supported and what to install, never a raw SQLAlchemy or import error."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

import facedb
from facedb.errors import ConfigError, GalleryError
from facedb.locations import parse_location, split_vectors
from facedb.store.database import normalise_url


def _template(seed: int) -> np.ndarray:
    v = np.random.default_rng(seed).standard_normal(512).astype(np.float32)
    return v / np.linalg.norm(v)


@pytest.mark.parametrize(
    ("url", "kept"),
    [
        ("sqlite:////abs/path/gallery.db", "sqlite:////abs/path/gallery.db"),
        ("sqlite:///rel.db", "sqlite:///rel.db"),
        ("sqlite:///rel.db?vectors=milvus://m:19530/faces", "sqlite:///rel.db"),
        ("sqlite:////abs.db?timeout=5&vectors=milvus://m:1/c", "sqlite:////abs.db?timeout=5"),
        ("postgresql://u:p@h:5/db?sslmode=require", "postgresql://u:p@h:5/db?sslmode=require"),
    ],
)
def test_split_vectors_keeps_the_url_as_spelled(url: str, kept: str) -> None:
    assert split_vectors(url)[0] == kept


def test_parse_location_keeps_four_slashes() -> None:
    where = parse_location("sqlite:////tmp/x/gallery.db", None, None)
    assert where.url == "sqlite:////tmp/x/gallery.db"


def test_absolute_sqlite_url_opens_where_it_says(tmp_path: Path) -> None:
    target = tmp_path / "g.db"
    url = f"sqlite:///{target}"  # four slashes: the path is absolute
    assert url.startswith("sqlite:////")
    with facedb.FaceDB(url=url, cache_dir=tmp_path / "cache") as db:
        db.import_embeddings(["a"], _template(1)[None])
        assert len(db) == 1
    assert target.is_file()


def test_relative_sqlite_url_is_relative_to_the_working_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    with facedb.FaceDB(url="sqlite:///rel.db", cache_dir=tmp_path / "cache") as db:
        assert len(db) == 0
    assert (tmp_path / "rel.db").is_file()


def test_postgres_scheme_is_postgresql() -> None:
    assert normalise_url("postgres://u@h/db").drivername == "postgresql+psycopg"
    assert normalise_url("postgresql://u@h/db").drivername == "postgresql+psycopg"
    assert normalise_url("postgresql+psycopg://u@h/db").drivername == "postgresql+psycopg"


@pytest.mark.skipif(not os.environ.get("FACEDB_TEST_POSTGRES_URL"), reason="no PostgreSQL for the tests")
def test_postgres_scheme_opens_a_postgresql_gallery(tmp_path: Path) -> None:
    url = os.environ["FACEDB_TEST_POSTGRES_URL"]
    scheme, rest = url.split("://", 1)
    assert scheme.startswith("postgresql")
    with facedb.FaceDB(url="postgres://" + rest, cache_dir=tmp_path) as db:
        assert db.store.url.drivername == "postgresql+psycopg"


@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("mysql://u@h/db", ["mysql", "SQLite", "PostgreSQL", "install"]),
        ("foo://x/y", ["foo", "SQLite", "PostgreSQL"]),
        ("not a url://", ["URL"]),
        ("sqlite:/one-slash.db", ["URL"]),
        ("sqlite://", ["in-memory", "SQLite"]),
        ("sqlite:///:memory:", ["in-memory"]),
    ],
)
def test_unsupported_or_broken_urls_are_gallery_errors(tmp_path: Path, url: str, words: list[str]) -> None:
    with pytest.raises(GalleryError) as e:
        facedb.FaceDB(url=url, cache_dir=tmp_path)
    for word in words:
        assert word in str(e.value)


def test_both_a_folder_and_a_url_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError):
        facedb.FaceDB(tmp_path / "g", url="sqlite:///x.db")


def test_missing_driver_names_the_package_to_install(tmp_path: Path) -> None:
    pytest.importorskip("sqlalchemy")
    try:
        import psycopg2  # noqa: F401
    except ImportError:
        pass
    else:
        pytest.skip("psycopg2 is installed here")
    with pytest.raises(GalleryError) as e:
        facedb.FaceDB(url="postgresql+psycopg2://u@127.0.0.1:1/db", cache_dir=tmp_path)
    assert "psycopg2-binary" in str(e.value)

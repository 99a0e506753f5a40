"""Where a gallery lives: a folder or a SQL URL, the vector store named with it, and the
folder that holds its vector index.

:class:`facedb.FaceDB` accepts a folder, a SQL URL, or a folder-looking string that is a URL;
this module turns what it was given into one :class:`Location` and checks a folder before a
gallery is made in it. Nothing here opens a database.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qsl, urlencode

from facedb.errors import ConfigError, GalleryError

__all__ = [
    "PHOTO_SUFFIXES",
    "Location",
    "holds_photos",
    "index_folder",
    "parse_location",
    "prepare_folder",
    "split_vectors",
    "sqlite_url",
]

#: What a folder of photos holds: a gallery is never created among them.
PHOTO_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff", ".gif"})


@dataclass(frozen=True, slots=True)
class Location:
    """A gallery's place: exactly one of ``folder`` and ``url`` is set.

    Attributes:
        folder: the gallery's folder (gallery.db and index/ inside).
        url: a SQLAlchemy URL, its ``vectors=`` parameter stripped.
        vectors: the vector store (None: a FAISS index beside the gallery or in the cache).
    """

    folder: Path | None
    url: str | None
    vectors: str | None


def parse_location(path: str | os.PathLike[str] | None, url: str | None, vectors: str | None) -> Location:
    """The gallery's place from FaceDB's ``path``, ``url`` and ``vectors`` arguments.

    A ``path`` containing ``://`` is a URL; a URL's ``vectors=`` parameter names the vector
    store like the ``vectors`` argument does.

    Example:
        >>> parse_location(None, "postgresql://h/db?vectors=milvus://m:19530/faces", None)
        Location(folder=None, url='postgresql://h/db', vectors='milvus://m:19530/faces')

    Raises:
        ConfigError: both or neither of a folder and a URL, or two different vector stores.
    """
    if path is not None and url is not None:
        raise ConfigError("give a folder or a url, not both")
    text_path = None if path is None else str(os.fspath(path))
    if text_path is not None and "://" in text_path:
        path, url = None, text_path
    if path is None and url is None:
        raise ConfigError("FaceDB needs a folder or a url")
    if url is not None:
        url, from_url = split_vectors(url)
        if from_url and vectors and from_url != vectors:
            raise ConfigError("the URL's vectors= and the vectors argument name different stores")
        vectors = vectors or from_url
        return Location(folder=None, url=url, vectors=vectors)
    assert path is not None
    return Location(folder=Path(path), url=None, vectors=vectors)


def split_vectors(url: str) -> tuple[str, str | None]:
    """Separates a ``vectors=`` query parameter (the vector store) from a SQL URL; the rest of
    the URL is kept as it was spelled (``sqlite:////abs/path.db`` keeps its four slashes).

    Example:
        >>> split_vectors("sqlite:////srv/g.db?vectors=milvus://m:19530/faces")
        ('sqlite:////srv/g.db', 'milvus://m:19530/faces')
    """
    base, sep, query = url.partition("?")
    if not sep:
        return url, None
    pairs = parse_qsl(query, keep_blank_values=True)
    vectors = [v for k, v in pairs if k == "vectors"]
    if not vectors:
        return url, None
    rest = urlencode([(k, v) for k, v in pairs if k != "vectors"])
    return (f"{base}?{rest}" if rest else base), vectors[-1]


#: How many entries :func:`holds_photos` looks at before it calls a folder too full to check.
MAX_ENTRIES_CHECKED = 50_000


def holds_photos(folder: Path) -> bool:
    """Whether the folder holds a photo at any depth (``photos/<name>/1.jpg`` counts), or
    more entries than :data:`MAX_ENTRIES_CHECKED` (too full to be a new gallery's folder);
    an unreadable folder holds none."""
    seen = 0
    for _, dirs, files in os.walk(folder, onerror=None, followlinks=False):
        if any(Path(f).suffix.lower() in PHOTO_SUFFIXES for f in files):
            return True
        seen += len(dirs) + len(files)
        if seen > MAX_ENTRIES_CHECKED:
            return True
    return False


def prepare_folder(folder: Path, *, read_only: bool, create: bool) -> None:
    """Checks a gallery folder and creates it when a gallery may be made there.

    Raises:
        GalleryError: no gallery there and none may be made (read-only, ``create=False``), a
            folder of photos, a folder that cannot be created, or not a folder.
    """
    exists = (folder / "gallery.db").is_file()
    if not exists and (read_only or not create):
        raise GalleryError(
            f"no gallery at {folder}; create one with `facedb --db {folder} import PHOTOS/` "
            "(or FaceDB(path) in Python)"
        )
    if not exists and holds_photos(folder):
        raise GalleryError(
            f"{folder} holds photos (at some depth): a gallery is made in a folder of its own "
            f"(e.g. --db {folder.name}-gallery), never among the photos"
        )
    if not read_only:
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise GalleryError(f"cannot create the gallery folder {folder}: {e.strerror}") from None
    if not folder.is_dir():
        raise GalleryError(f"{folder} is not a folder")


def sqlite_url(folder: Path) -> str:
    """The SQLAlchemy URL of a folder gallery's database."""
    return f"sqlite:///{folder.resolve() / 'gallery.db'}"


def index_folder(
    location: Location, safe_url: str, gallery_uid: str, cache_dir: str | os.PathLike[str] | None
) -> Path:
    """Where the gallery's FAISS index lives: ``index/`` in a folder gallery; for a SQL URL,
    a folder of ``cache_dir`` (default ``$XDG_CACHE_HOME/facedb`` or ``~/.cache/facedb``)."""
    if location.folder is not None:
        return location.folder / "index"
    base = Path(cache_dir) if cache_dir else Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    # Keyed by the gallery's identity too: a database recreated at the same URL gets
    # a cache of its own (the index files are stamped with it as well).
    key = hashlib.sha256(f"{safe_url} {gallery_uid}".encode()).hexdigest()[:16]
    return (base / "facedb" / key) if not cache_dir else base / key

"""What of an error message a client may read: the server's file paths and URLs are elided,
and the words of the message are kept.

The gallery's own places (its folder, database file, SQL URL, index folder) become "the
gallery"; any other absolute path or URL becomes ``<path>`` or ``<url>``. Only whole paths and
URLs are replaced, never a substring of a word: a gallery kept in a folder called ``people``
does not turn "different people" into "different the gallery". A folder name without a slash
says nothing about the server's disk and stays as it is, and so do the service's own routes
(``POST /people/4/faces``), which a message may name as the way forward.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from facedb.gallery import FaceDB

__all__ = ["ROUTES", "public_message_of", "redactor"]

#: The first segments of the service's own paths: a message may name them.
ROUTES = frozenset(
    {"people", "groups", "sightings", "identify", "verify", "discover", "attendance", "audit", "faces", "web"}
)
_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*://[^\s'\"]*[^\s'\".:,;)]")
# An absolute path: a slash that does not follow a word, a dot or another path character; a
# colon or full stop after it ends the sentence, not the path.
_PATH = re.compile(r"(?<![\w.\-/])/[^\s'\",;)]*[^\s'\",;).:]")


def redactor(places: Iterable[str]) -> Callable[[str], str]:
    """A function that elides ``places`` (as whole paths or URLs: "the gallery") and any other
    absolute path or URL from a message. Places without a slash are not paths, and are kept."""
    kept = sorted({p for p in places if p and "/" in p}, key=len, reverse=True)
    # A place counts where it is a whole path: not inside a longer word or path.
    gallery = (
        re.compile(r"(?<![\w.\-/])(?:" + "|".join(re.escape(p) for p in kept) + r")(?![\w\-/])")
        if kept
        else None
    )

    def elide_path(match: re.Match[str]) -> str:
        text = match.group(0)
        first = text.lstrip("/").split("/", 1)[0]
        return text if first in ROUTES else "<path>"

    def public(message: str) -> str:
        if gallery is not None:
            message = gallery.sub("the gallery", message)
        return _PATH.sub(elide_path, _URL.sub("<url>", message))

    return public


def public_message_of(db: FaceDB) -> Callable[[str], str]:
    """The redactor of an open gallery's error messages (its folder, file, URLs and index)."""
    places = {db.location, db.store.safe_url, str(db.store.url), db.vectors.location}
    if "://" not in db.location:
        places.add(str(Path(db.location).resolve()))
        places.add(str(Path(db.location).resolve() / "gallery.db"))
    return redactor(places)

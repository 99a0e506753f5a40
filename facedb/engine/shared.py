"""The shared default engine, created on first use, and the module-level functions over it
(``facedb.detect``, ``facedb.verify``, ...).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable, Iterator
from typing import Literal

import numpy as np
from numpy.typing import NDArray

from facedb.engine.comparison import Verification
from facedb.engine.face_engine import FaceEngine
from facedb.engine.faces import Face
from facedb.engine.packs import DEFAULT_PACK
from facedb.engine.photos import Color, ImageInput
from facedb.errors import ConfigError, FaceDBError

__all__ = ["default_engine", "detect", "detect_many", "embedding", "pack_engine", "use_runtime", "verify"]


_default: FaceEngine | None = None
_default_runtime: str | None = None
_default_lock = threading.Lock()


def _runtime() -> str:
    """The shared engines' runtime: :func:`use_runtime`'s, else ``$FACEDB_RUNTIME``, else auto."""
    return _default_runtime or os.environ.get("FACEDB_RUNTIME") or "auto"


def default_engine() -> FaceEngine:
    """The engine behind the module-level functions, created on first use, with the runtime
    of :func:`use_runtime`, else ``$FACEDB_RUNTIME``, else ``"auto"``."""
    global _default
    with _default_lock:
        if _default is None:
            _default = FaceEngine(runtime=_runtime())
        return _default


_by_pack: dict[str, FaceEngine] = {}


def pack_engine(pack: str) -> FaceEngine:
    """A shared engine of ``pack`` with the default settings (the default engine for the
    default pack), created on first use: what a gallery opened without ``engine=`` runs."""
    if pack == DEFAULT_PACK:
        return default_engine()
    with _default_lock:
        found = _by_pack.get(pack)
        if found is None:
            found = _by_pack[pack] = FaceEngine(pack=pack, runtime=_runtime())
        return found


def use_runtime(runtime: str) -> None:
    """Sets the runtime of the default engine (``facedb --runtime``) before its first use.

    Raises:
        ConfigError: the default engine already runs with another runtime.
    """
    global _default_runtime
    with _default_lock:
        if _default is not None and runtime != _default_runtime:
            raise ConfigError(f"the default engine is already loaded; runtime={runtime!r} comes too late")
        _default_runtime = runtime


def detect(image: ImageInput, *, color: Color = "bgr") -> list[Face]:
    """All faces in the photo with the default engine (see :meth:`FaceEngine.detect`)."""
    return default_engine().detect(image, color=color)


def detect_many(
    images: Iterable[ImageInput], *, errors: Literal["raise", "return"] = "raise", color: Color = "bgr"
) -> Iterator[list[Face] | FaceDBError]:
    """The faces of every photo, in input order (see :meth:`FaceEngine.detect_many`)."""
    return default_engine().detect_many(images, errors=errors, color=color)


def embedding(image: ImageInput, *, color: Color = "bgr") -> NDArray[np.float32]:
    """The largest face's template with the default engine (see :meth:`FaceEngine.embedding`)."""
    return default_engine().embedding(image, color=color)


def verify(
    a: ImageInput, b: ImageInput, *, threshold: float | None = None, color: Color = "bgr"
) -> Verification:
    """Whether two photos show the same person (see :meth:`FaceEngine.verify`)."""
    return default_engine().verify(a, b, threshold=threshold, color=color)

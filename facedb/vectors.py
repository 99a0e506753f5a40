"""The gallery's vector store, whichever it is: the one interface the gallery talks to.

Two stores stand behind it: a FAISS index in a local folder (facedb.faiss, the embedded
default) and a Milvus collection shared by every machine (facedb.milvus). Both are derived
from the SQL store and kept at its generation; nothing else in facedb knows which is in use.
:func:`content_digest` is how the SQL store and either vector store show they hold the
same templates.

Freshness: a search sees every write of its own process. Another process's additions are
seen at once by the FAISS store (every call first catches up with the SQL generation) and,
on Milvus, within its staleness bound at the collection's consistency, or at once by a
search that asks for ``consistency="strong"`` (docs/scaling.md).
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from typing import TYPE_CHECKING, Literal, Protocol

import numpy as np
from numpy.typing import NDArray

from facedb.errors import ConfigError
from facedb.templates import content_digest

if TYPE_CHECKING:
    from facedb.store import Store

__all__ = ["Consistency", "GalleryVectors", "check_consistency", "content_digest", "open_vectors"]

#: What a search may ask of the vector store beyond its own setting: ``"strong"`` = see every
#: write acknowledged before the search began, whichever process made it.
Consistency = Literal["strong"]


def check_consistency(consistency: object) -> Consistency | None:
    """`consistency` as a search option: None (the store's own setting) or ``"strong"``.

    Raises:
        ConfigError: anything else.
    """
    if consistency is None:
        return None
    if consistency == "strong":
        return "strong"
    raise ConfigError(f"consistency must be 'strong' or left out, got {consistency!r}")


class GalleryVectors(Protocol):
    """Face id -> template, searched by cosine, kept in step with the SQL store."""

    @property
    def kind(self) -> str:
        """The search structure in use, for statistics."""
        ...

    @property
    def location(self) -> str:
        """Where the vectors are (a folder or a URL without credentials)."""
        ...

    def __len__(self) -> int:
        """How many templates the store holds."""
        ...

    def sync(self, store: Store) -> None:
        """Catches up with the SQL store if another process (or a crash) left it behind."""
        ...

    def bulk(self) -> AbstractContextManager[None]:
        """A bulk write (an import) in progress: within it, changes applied may be written out
        together rather than one by one (each is committed to SQL already, so a crash loses
        nothing: the store catches up from the change log); all is written when it ends."""
        ...

    def apply(
        self,
        generation: int,
        *,
        added: Sequence[int] = (),
        vectors: NDArray[np.float32] | None = None,
        removed: Sequence[int] = (),
        store: Store,
    ) -> None:
        """Applies a change just committed to SQL as `generation`; erases removed templates."""
        ...

    def search(
        self, queries: NDArray[np.float32], k: int, *, consistency: Consistency | None = None
    ) -> tuple[NDArray[np.float32], NDArray[np.int64]]:
        """Top-k face ids per query: (similarities, ids), -1 where there are fewer.

        ``consistency="strong"``: every addition acknowledged before the call, by any
        process, is searched (None: the store's own setting; see the module docstring).
        """
        ...

    def ids(self) -> set[int]:
        """Every face id in the store."""
        ...

    def digest(self) -> str:
        """A digest of every (id, template) the store holds, equal to the SQL store's
        :meth:`~facedb.store.Store.audit_templates` digest when they hold the same templates."""
        ...

    def rebuild(self, store: Store) -> None:
        """Makes the store hold exactly the SQL store's templates."""
        ...

    def rekey(self, store: Store) -> None:
        """The SQL store's key changed (``rekey``): files the store keeps are sealed anew."""
        ...

    def close(self) -> None:
        """Releases connections, memory and files."""
        ...


def open_vectors(
    url: str | None, *, folder: Path, dimension: int, model_id: str, gallery_uid: str, kind: str, store: Store
) -> GalleryVectors:
    """The gallery's vector store: FAISS in `folder` when `url` is None, else the store the
    URL names (``milvus://host:port/collection``)."""
    if url is None:
        from facedb.faiss import SyncedIndex

        return SyncedIndex.open(
            folder, dimension=dimension, model_id=model_id, gallery_uid=gallery_uid, kind=kind, store=store
        )
    if url.startswith("milvus://"):
        from facedb.milvus import SyncedMilvus

        return SyncedMilvus.open(
            url, dimension=dimension, model_id=model_id, gallery_uid=gallery_uid, store=store
        )
    scheme = url.split("://", 1)[0] if "://" in url else url
    raise ConfigError(
        f"unknown vector store {scheme!r}: use milvus://host:port/collection (or none for FAISS)"
    )

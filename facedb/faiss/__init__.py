"""The gallery's FAISS vector index: face id -> template, searched by cosine similarity.

The SQL database is the source of truth; this index is derived from it and can always be
rebuilt. It is built from small parts, the way FAISS composes ``IndexIDMap``,
``IndexFlatIP``, ``IndexBinaryFlat`` and ``IndexRefine``:

- :mod:`~facedb.faiss.segments`: the templates in segments (memory-mapped from their files
  once saved), with their ids and sign codes in memory;
- :mod:`~facedb.faiss.exact`: the exact searcher (every template scored);
- :mod:`~facedb.faiss.signbits`: the sign-bit Hamming scan with an exact rerank;
- :mod:`~facedb.faiss.search`: what both share (top-k, one OpenMP thread per thread);
- :mod:`~facedb.faiss.format`: the segment files (laid out so that opening reads the ids
  and codes, not the templates), the manifest that commits them, and the erasure of removed
  templates;
- :mod:`~facedb.faiss.locking`: the readers-writer lock;
- :mod:`~facedb.faiss.store`: :class:`FaissStore`, which validates input and composes them;
- :mod:`~facedb.faiss.sync`: :class:`SyncedIndex`, a FaissStore kept at the SQL store's
  generation (the gallery's :class:`~facedb.vectors.GalleryVectors` when no Milvus URL is
  given).

Inside this package ``import faiss`` is the FAISS library itself (absolute imports).
"""

from __future__ import annotations

from facedb.faiss.format import MANIFEST_NAME, wipe_folder
from facedb.faiss.store import DEFAULT_RERANK, DEFAULT_SEGMENT_SIZE, EXACT_LIMIT, FaissStore, Mode
from facedb.faiss.sync import SyncedIndex

__all__ = [
    "DEFAULT_RERANK",
    "DEFAULT_SEGMENT_SIZE",
    "EXACT_LIMIT",
    "MANIFEST_NAME",
    "FaissStore",
    "Mode",
    "SyncedIndex",
    "wipe_folder",
]

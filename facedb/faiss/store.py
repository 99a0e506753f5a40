"""FaissStore: the gallery's FAISS index, composed of small parts.

:class:`FaissStore` validates its input once and composes the parts, the way FAISS composes
``IndexIDMap(IndexFlatIP)``: the rows in memory (:class:`~facedb.faiss.segments.Segments`),
two searchers (:class:`~facedb.faiss.exact.FlatSearch`, every template scored, and
:class:`~facedb.faiss.signbits.SignBitSearch`, a sign-bit scan then an exact rerank), the
files (:class:`~facedb.faiss.format.SegmentFiles`) and a readers-writer lock.

Search
    While the store is small (``EXACT_LIMIT`` templates or fewer) every template is scored.
    Above it, ``mode="auto"`` switches to the sign-bit scan keeping the ``rerank`` best
    candidates, which are then scored exactly; ``mode="exact"`` or ``"approximate"``
    overrides the choice. See :mod:`facedb.faiss.search` for threads.

Threads and processes
    One readers-writer lock per store: any number of :meth:`~FaissStore.search`,
    :meth:`~FaissStore.contains` and :meth:`~FaissStore.ids` calls run together; ``add``,
    ``remove`` and ``close`` wait for them and run alone. ``save`` runs beside searches
    (it only reads the templates) but not beside ``add``/``remove`` nor another ``save``. A
    search that starts after ``remove()`` returned never returns a removed id. One process
    writes a folder at a time; other processes may open it to read.

Errors
    :class:`~facedb.errors.ConfigError` for malformed arguments (a setting out of range,
    wrong array rank, ids not integers or negative, ids and vectors of different lengths,
    NaN or infinity, vectors not of unit length); :class:`~facedb.errors.GalleryError` for
    what does not fit the index (a template of another dimension, an id already present, a
    closed store, a failed write). Removing ids that are not in the index is not an error:
    they are ignored and :meth:`~FaissStore.remove` returns how many were removed.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from types import TracebackType
from typing import Final, Literal

import numpy as np
import numpy.typing as npt

from facedb.encryption import Cipher
from facedb.errors import ConfigError, GalleryError
from facedb.faiss.exact import FlatSearch
from facedb.faiss.format import SegmentFiles
from facedb.faiss.locking import RWLock
from facedb.faiss.search import BatchThreads, Searcher
from facedb.faiss.segments import F32, I64, PRECISIONS, Precision, Segments
from facedb.faiss.signbits import SignBitSearch, sign_codes
from facedb.templates import content_digest

__all__ = ["DEFAULT_RERANK", "DEFAULT_SEGMENT_SIZE", "EXACT_LIMIT", "FaissStore", "Mode"]

Mode = Literal["auto", "exact", "approximate"]
"""How :class:`FaissStore` searches: ``"auto"`` picks exact up to ``EXACT_LIMIT`` templates."""

EXACT_LIMIT: Final = 32_768
"""In ``"auto"`` mode, stores of at most this many templates are searched exactly."""

DEFAULT_SEGMENT_SIZE: Final = 16_384
"""Templates per segment file (32 MB of 512-d float32): the unit rewritten by a removal."""

DEFAULT_RERANK: Final = 64
"""Candidates of the sign-bit scan that the approximate search scores exactly."""

_NORM_TOLERANCE: Final = 1e-3
_MAX_ID: Final = np.iinfo(np.int64).max


def _preview(values: list[int] | list[float], limit: int = 5) -> str:
    shown = ", ".join(str(v) for v in values[:limit])
    return shown + (f" and {len(values) - limit} more" if len(values) > limit else "")


class FaissStore:
    """The gallery's vector index on FAISS kernels, persisted as segment files in a folder:
    face id -> unit template, top-k search by cosine similarity.

    ``FaissStore(folder, dim=..., model=...)`` makes a new, empty store bound to ``folder``
    (nothing is written until :meth:`save`, which then replaces any index of this format in
    the folder); :meth:`FaissStore.open` loads a saved one. See the module documentation for
    the search structures and thread safety, and :mod:`facedb.faiss.format` for the files
    and erasure.

    Args:
        folder: where the index files live (created by :meth:`save` if missing).
        dim: template dimension (512 for ArcFace).
        model: a string identifying the model that made the templates; an index saved with
            another one is reported as foreign.
        mode: ``"auto"`` (exact up to ``exact_limit`` templates, approximate above),
            ``"exact"`` or ``"approximate"``.
        exact_limit: the size up to which ``"auto"`` searches exactly.
        segment_size: templates per segment file.
        rerank: candidates of the sign-bit scan that are scored exactly (at least ``k``).
        threads: Python threads a batch of queries is spread over, each on one OpenMP
            thread (None: ``os.cpu_count()``). The default is 1: on the busy 2-core machine
            where this was measured, two threads ran batches at 0.25x (exact) to 1.05x
            (approximate) the speed of one; give more on an idle many-core machine.
        cipher: the gallery key's cipher (facedb.encryption): the files are sealed with it
            and read into memory (not memory-mapped) to be decrypted; None: plaintext.
        precision: how the templates are stored and re-ranked: ``"float32"`` (the default)
            or ``"float16"`` (half the disk and page cache; scores differ from float32 by
            about 1e-3, see docs/scaling.md). The sign codes are the same either way.
    """

    def __init__(
        self,
        folder: str | os.PathLike[str],
        *,
        dim: int,
        model: str,
        mode: Mode = "auto",
        exact_limit: int = EXACT_LIMIT,
        segment_size: int = DEFAULT_SEGMENT_SIZE,
        rerank: int = DEFAULT_RERANK,
        threads: int | None = 1,
        cipher: Cipher | None = None,
        precision: Precision = "float32",
    ) -> None:
        for name, value, low in (
            ("dim", dim, 1),
            ("exact_limit", exact_limit, 0),
            ("segment_size", segment_size, 1),
            ("rerank", rerank, 1),
        ):
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ConfigError(f"{name} must be an integer >= {low}, got {value!r}")
        if mode not in ("auto", "exact", "approximate"):
            raise ConfigError(f"mode must be 'auto', 'exact' or 'approximate', got {mode!r}")
        if precision not in PRECISIONS:
            raise ConfigError(f"precision must be 'float32' or 'float16', got {precision!r}")
        if not isinstance(model, str) or not model:
            raise ConfigError(f"model must be a non-empty string, got {model!r}")
        if threads is None:
            threads = os.cpu_count() or 1
        if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
            raise ConfigError(f"threads must be an integer >= 1, got {threads!r}")
        self._folder = Path(folder)
        self._dim = dim
        self._model = model
        self._mode: Mode = mode
        self._exact_limit = exact_limit
        self._generation: int | None = None
        self._segments = Segments(dim, segment_size, f"the vector index in {self._folder}", precision)
        self._files = SegmentFiles(self._folder, dim, model, cipher, precision)
        self._exact = FlatSearch()
        self._signbits = SignBitSearch(rerank)
        self._threads = BatchThreads(threads)
        self._lock = RWLock()
        self._save_lock = threading.Lock()
        self._closed = False

    # ----------------------------------------------------------------- properties

    @property
    def folder(self) -> Path:
        """The folder holding the index files."""
        return self._folder

    @property
    def dim(self) -> int:
        """Dimension of the templates."""
        return self._dim

    @property
    def model(self) -> str:
        """The model id string the index is stamped with."""
        return self._model

    @property
    def mode(self) -> Mode:
        """The configured search mode (``"auto"``, ``"exact"`` or ``"approximate"``)."""
        return self._mode

    @property
    def generation(self) -> int | None:
        """The generation of the last state saved or opened; None for a never-saved store."""
        return self._generation

    @property
    def kind(self) -> str:
        """The search structure in use now (under ``"auto"`` it depends on the size)."""
        return self._searcher(self._segments.n).kind

    @property
    def precision(self) -> Precision:
        """How the templates are stored (``"float32"`` or ``"float16"``)."""
        return self._segments.precision

    @property
    def outdated(self) -> bool:
        """The index was opened from an older file format: :meth:`save` rewrites it whole."""
        return self._files.outdated

    @property
    def segment_count(self) -> int:
        """Number of segments (files once saved)."""
        return len(self._segments.segments)

    def __len__(self) -> int:
        """Number of templates."""
        return self._segments.n

    def __repr__(self) -> str:
        return (
            f"FaissStore({str(self._folder)!r}, dim={self._dim}, model={self._model!r}, "
            f"n={len(self)}, kind={self.kind!r}, generation={self._generation})"
        )

    def __enter__(self) -> FaissStore:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # ----------------------------------------------------------------- validation

    def _check_open(self) -> None:
        if self._closed:
            raise GalleryError(f"the vector index in {self._folder} is closed")

    def _as_ids(self, ids: npt.ArrayLike, what: str) -> I64:
        arr = np.asarray(ids)
        if arr.ndim == 0:
            arr = arr.reshape(1)
        if arr.ndim != 1:
            raise ConfigError(f"{what}: ids must be a 1-D array, got shape {arr.shape}")
        if arr.size == 0:
            return np.zeros(0, dtype=np.int64)
        if arr.dtype.kind not in "iu":
            raise ConfigError(f"{what}: ids must be integers, got dtype {arr.dtype}")
        if arr.dtype.kind == "u" and int(arr.max()) > _MAX_ID:
            raise ConfigError(f"{what}: id {int(arr.max())} does not fit in int64")
        out = arr.astype(np.int64)
        negative = out[out < 0]
        if negative.size:
            raise ConfigError(
                f"{what}: ids must be >= 0, got {_preview([int(v) for v in negative.tolist()])}"
            )
        return out

    def _as_vectors(self, vectors: npt.ArrayLike, what: str, unit: bool) -> F32:
        arr = np.asarray(vectors)
        if arr.ndim != 2:
            raise ConfigError(f"{what}: expected a 2-D array [N, {self._dim}], got shape {arr.shape}")
        if arr.shape[1] != self._dim:
            raise GalleryError(
                f"{what}: {arr.shape[1]}-d vectors, but this index holds {self._dim}-d templates "
                f"of model {self._model!r}"
            )
        if arr.dtype.kind not in "fiu":
            raise ConfigError(f"{what}: expected float vectors, got dtype {arr.dtype}")
        out = np.ascontiguousarray(arr, dtype=np.float32)
        # One pass without big temporaries: a row with NaN or infinity has a non-finite sum
        # of squares (so may a finite row with huge values: those are told apart below).
        squares = np.einsum("ij,ij->i", out, out)
        suspect = np.flatnonzero(~np.isfinite(squares))
        if suspect.size:
            bad = suspect[~np.isfinite(out[suspect]).all(axis=1)].tolist()
            if bad:
                raise ConfigError(f"{what}: NaN or infinite values in rows {_preview(bad)}")
        if unit and len(out):
            norms = np.sqrt(squares.astype(np.float64))
            off = ~(np.abs(norms - 1.0) <= _NORM_TOLERANCE)
            if off.any():
                bad = np.flatnonzero(off).tolist()
                raise ConfigError(
                    f"{what}: templates must have unit length (L2-normalised); rows "
                    f"{_preview(bad)} have norms {_preview([round(float(v), 4) for v in norms[off]])}"
                )
        return out

    # ----------------------------------------------------------------- mutation

    def add(self, ids: npt.ArrayLike, vectors: npt.ArrayLike) -> None:
        """Add templates under new ids; all or nothing.

        Args:
            ids: int64[N], non-negative, unique, none of them already in the store.
            vectors: float32[N, dim], finite, of unit length.

        Raises:
            ConfigError: malformed ids or vectors (see the module documentation).
            GalleryError: another dimension, an id already present, a closed store.
        """
        id_arr = self._as_ids(ids, "add")
        vecs = self._as_vectors(vectors, "add", unit=True)
        if len(id_arr) != len(vecs):
            raise ConfigError(f"add: {len(id_arr)} ids for {len(vecs)} vectors")
        if len(id_arr) == 0:
            return
        uniq, counts = np.unique(id_arr, return_counts=True)
        if len(uniq) != len(id_arr):
            raise GalleryError(f"add: ids repeated in the batch: {_preview(uniq[counts > 1].tolist())}")
        codes = sign_codes(vecs)
        with self._lock.write():
            self._check_open()
            present = self._segments.id_set()
            dup = [i for i in id_arr.tolist() if i in present]
            if dup:
                raise GalleryError(f"add: ids already in the index: {_preview(sorted(dup))}")
            self._segments.add(id_arr, vecs, codes)

    def remove(self, ids: npt.ArrayLike) -> int:
        """Remove the templates of these ids from memory; :meth:`save` erases them on disk.

        Ids that are not in the store are ignored. Returns the number removed.
        """
        id_arr = self._as_ids(ids, "remove")
        with self._lock.write():
            self._check_open()
            present = self._segments.id_set()
            gone = sorted({i for i in id_arr.tolist() if i in present})
            if not gone:
                return 0
            self._segments.remove(gone)
            return len(gone)

    # ----------------------------------------------------------------- search

    def contains(self, id: int) -> bool:
        """Whether a template with this id is in the store."""
        with self._lock.read():
            self._check_open()
            return self._segments.contains(int(id))

    def ids(self) -> I64:
        """All ids, in storage order (a copy)."""
        with self._lock.read():
            self._check_open()
            return self._segments.ids[: self._segments.n].copy()

    def digest(self) -> str:
        """A digest of every (id, template) pair, independent of their order: equal to
        :func:`~facedb.vectors.content_digest` of the same templates read from anywhere else."""
        with self._lock.read():
            self._check_open()
            segments = self._segments
            return content_digest(
                (segments.ids[start : start + seg.n], seg.view()) for seg, start in segments.with_starts()
            )

    def search(self, queries: npt.ArrayLike, k: int) -> tuple[F32, I64]:
        """Top-k templates by cosine similarity for each query.

        Args:
            queries: float32[Q, dim] (unit length for the scores to be cosines).
            k: how many results per query (>= 1).

        Returns:
            ``(similarities float32[Q, k], ids int64[Q, k])``, each row by decreasing
            similarity; when the store holds fewer than k templates the rest of the row is
            id -1 with similarity -inf.
        """
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise ConfigError(f"search: k must be an integer >= 1, got {k!r}")
        q = self._as_vectors(queries, "search", unit=False)
        nq = len(q)
        with self._lock.read():
            self._check_open()
            if nq == 0 or self._segments.n == 0:
                return (
                    np.full((nq, k), -np.inf, dtype=np.float32),
                    np.full((nq, k), -1, dtype=np.int64),
                )
            return self._threads.run(lambda part: self._search_rows(part, k), q)

    def _searcher(self, n: int) -> Searcher:
        if self._mode == "auto":
            approximate = n > self._exact_limit
        else:
            approximate = self._mode == "approximate"
        return self._signbits if approximate else self._exact

    def _search_rows(self, q: F32, k: int) -> tuple[F32, I64]:
        """Search under the read lock."""
        segments = self._segments
        best_s, best_rows = self._searcher(segments.n).search(segments, q, k)
        return best_s, segments.ids_at(best_rows)

    # ----------------------------------------------------------------- persistence

    def save(self, generation: int, *, wipe: bool = False) -> None:
        """Write the changed segments and the manifest, stamped with ``generation``.

        Only segments changed since the last save are written. When this returns, the
        index in the folder is the current state, durably (fsynced), and the files it
        replaced are gone: removed templates are in no file of the folder. ``wipe``: files
        of an index this one replaced are zeroed whole before they are deleted (a rekey).

        Raises:
            ConfigError: a generation that is not a non-negative integer.
            GalleryError: the folder cannot be written (the previous index stays usable).
        """
        if isinstance(generation, bool) or not isinstance(generation, int) or generation < 0:
            raise ConfigError(f"save: generation must be an integer >= 0, got {generation!r}")
        with self._save_lock, self._lock.read():
            self._check_open()
            try:
                self._files.commit(self._segments, generation)
                self._generation = generation
                self._files.erase(self._segments, wipe)
            except OSError as e:
                raise GalleryError(f"cannot write the vector index in {self._folder}: {e}") from e

    @classmethod
    def open(
        cls,
        folder: str | os.PathLike[str],
        *,
        dim: int,
        model: str,
        generation: int,
        allow_stale: bool = False,
        mode: Mode = "auto",
        exact_limit: int = EXACT_LIMIT,
        segment_size: int = DEFAULT_SEGMENT_SIZE,
        rerank: int = DEFAULT_RERANK,
        threads: int | None = 1,
        cipher: Cipher | None = None,
        precision: Precision = "float32",
    ) -> FaissStore:
        """Open the index saved in ``folder``: the manifest, and each segment's ids and codes,
        verified against their checksums; the templates are memory-mapped, not read (hashed
        at once only when the store will search exactly; otherwise checked as they are read:
        see :mod:`facedb.faiss.format`).

        Args:
            folder, dim, model, mode, exact_limit, segment_size, rerank, threads, cipher,
                precision: as for :class:`FaissStore`.
            generation: the caller's current generation; an index saved at another one is
                stale.
            allow_stale: open a stale index anyway (its :attr:`generation` tells which), so
                that the caller can catch it up with add/remove and save it.

        Raises:
            IndexUnavailable: ``reason`` is ``"missing"``, ``"corrupt"``, ``"foreign"`` or
                ``"stale"``; nothing of such an index is used.
            ConfigError: invalid arguments.
        """
        store = cls(
            folder,
            dim=dim,
            model=model,
            mode=mode,
            exact_limit=exact_limit,
            segment_size=segment_size,
            rerank=rerank,
            threads=threads,
            cipher=cipher,
            precision=precision,
        )
        store._generation = store._files.load(
            store._segments, generation, allow_stale, lambda count: store._searcher(count) is store._exact
        )
        return store

    def close(self) -> None:
        """Release memory, mapped files and threads; later calls raise GalleryError.

        Closing does not save: unsaved changes are dropped (the database is the truth).
        """
        with self._lock.write():
            if self._closed:
                return
            self._closed = True
            self._segments.clear()
        self._threads.shutdown()

"""The gallery's vector index: face id -> template, searched by cosine similarity.

The SQL database is the source of truth; this index is derived from it and can always be
rebuilt. :class:`VectorStore` is the small, store-agnostic interface the gallery talks to;
:class:`FaissStore` is its FAISS implementation, kept in a folder the caller names (a
distributed vector engine can stand behind the same interface later).

Search
    Templates are unit vectors, so the inner product is the cosine similarity. While the
    store is small (``EXACT_LIMIT`` templates or fewer) every template is scored
    (``faiss.knn``, flat inner product). Above it, ``mode="auto"`` switches to a two-stage
    search: a Hamming scan over one sign bit per dimension (64 bytes a 512-d template,
    ``faiss.knn_hamming``) keeps the ``rerank`` best candidates, which are then scored
    exactly. Templates of different people are nearly orthogonal while a genuine match is far
    closer, so the coarse scan keeps the true match among its candidates (measured with
    ``benchmarks/search.py``); ``mode="exact"`` or ``"approximate"`` overrides the choice.
    Every search runs on one OpenMP thread per calling thread: on a busy machine several
    OpenMP threads made a single query 10-50 times slower. A batch can be cut into chunks
    searched on ``threads`` Python threads (default 1, see :class:`FaissStore`).

Files (all in the store's folder; nothing else there is touched)
    ``index.json``
        the manifest: format version, dimension, model id, the caller's generation, and
        for each segment its file, row count and SHA-256; the manifest's own SHA-256 (over
        its canonical JSON without that field) is stored in it.
    ``seg-NNNNNNNNNN.fseg``
        a sealed segment of up to ``segment_size`` templates: a 128-byte header (magic,
        version, dimension, row count, generation it was written at, SHA-256 of the model
        id, SHA-256 of the payload) then ids int64[n], vectors float32[n, dim] and sign codes
        uint8[n, ceil(dim / 8)], little-endian. Segment files are never modified in place:
        a changed segment is written under a new name and the manifest switched to it.

    Every file is written to a temporary name, fsynced, renamed into place, and the folder
    fsynced; the manifest is written last, so it is the commit point and a crash leaves
    either the old or the new index. Opening verifies every checksum (SHA-256 over every
    byte) and reads nothing it cannot verify; no pickle anywhere. A missing, corrupt,
    foreign (other dimension, model or format) or stale (other generation) index raises
    :class:`IndexUnavailable` with its ``reason`` so that the gallery can catch up or rebuild.
    Segments are memory-mapped read-only (private mappings), so reopening does not copy
    them; a segment is copied into memory when it is first changed.

Erasure
    Templates are biometric data. :meth:`FaissStore.remove` drops the rows from memory at
    once (freed rows of owned buffers are zeroed); :meth:`FaissStore.save` then writes the
    affected segments anew, commits the manifest, overwrites the removed rows (id, vector
    and sign code) with zeros in the replaced files, fsyncs and deletes them, and deletes any
    other file of the index format that the manifest does not name (left by a crash or by an
    index this one replaced). After ``remove()`` then ``save()`` no byte of a removed
    template or of its sign code is in any file of the folder. Removing one template at 1M
    templates rewrites one segment (32 MB at the default 16384 x 512-d), not the whole index;
    when removals leave more than twice the segments needed, the segments are repacked.
    A crash between the manifest's commit and the deletions leaves the replaced files behind
    until the next save, which deletes them. Another process that still has the old index
    open reads zeros in place of the removed rows.

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

import hashlib
import json
import math
import mmap
import os
import re
import struct
import threading
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Final, Literal, Protocol, runtime_checkable

import faiss
import numpy as np
import numpy.typing as npt

from facedb.errors import ConfigError, GalleryError

__all__ = [
    "DEFAULT_RERANK",
    "DEFAULT_SEGMENT_SIZE",
    "EXACT_LIMIT",
    "FaissStore",
    "IndexUnavailable",
    "Mode",
    "UnavailableReason",
    "VectorStore",
]

F32 = npt.NDArray[np.float32]
I64 = npt.NDArray[np.int64]
U8 = npt.NDArray[np.uint8]

Mode = Literal["auto", "exact", "approximate"]
"""How :class:`FaissStore` searches: ``"auto"`` picks exact up to ``EXACT_LIMIT`` templates."""

UnavailableReason = Literal["missing", "corrupt", "foreign", "stale"]
"""Why a persisted index cannot be used as it is (see :class:`IndexUnavailable`)."""

EXACT_LIMIT: Final = 32_768
"""In ``"auto"`` mode, stores of at most this many templates are searched exactly."""

DEFAULT_SEGMENT_SIZE: Final = 16_384
"""Templates per segment file (32 MB of 512-d float32): the unit rewritten by a removal."""

DEFAULT_RERANK: Final = 64
"""Candidates of the sign-bit scan that the approximate search scores exactly."""

MANIFEST_NAME: Final = "index.json"
_FORMAT: Final = "facedb-vector-index"
_VERSION: Final = 1
_SEGMENT_RE: Final = re.compile(r"^seg-(\d{10})\.fseg$")
_TMP_PREFIX: Final = ".tmp-"
_MAGIC: Final = b"FDBVSEG1"
_HEADER: Final = struct.Struct("<8sIIIIQQ32s32s")
_HEADER_SIZE: Final = 128
_NORM_TOLERANCE: Final = 1e-3
_BATCH_MIN: Final = 8  # queries below this run on the calling thread
_MAX_ID: Final = np.iinfo(np.int64).max


class IndexUnavailable(GalleryError):
    """The persisted index cannot be used as it is; the gallery catches it up or rebuilds it.

    Attributes:
        reason: ``"missing"`` (no index in the folder), ``"corrupt"`` (a checksum, size or
            header that does not verify, a segment file missing), ``"foreign"`` (another
            dimension, model id or file format) or ``"stale"`` (another generation than the
            caller's; ``FaissStore.open(..., allow_stale=True)`` opens it anyway).
        found_generation: the generation stored in the index when it could be read, else None.
    """

    def __init__(self, reason: UnavailableReason, message: str, found_generation: int | None = None) -> None:
        super().__init__(message)
        self.reason: UnavailableReason = reason
        self.found_generation = found_generation


@runtime_checkable
class VectorStore(Protocol):
    """What the gallery needs of a vector index: ids -> unit templates, cosine top-k search.

    Ids are the database's face ids (non-negative int64). Implementations are opened by their
    own constructors; this interface is what stays the same between them.
    """

    @property
    def dim(self) -> int:
        """Dimension of the templates."""
        ...

    @property
    def kind(self) -> str:
        """A short name of the search structure in use, shown in statistics."""
        ...

    @property
    def generation(self) -> int | None:
        """The generation of the last state saved (or opened); None if never saved."""
        ...

    def __len__(self) -> int:
        """Number of templates."""
        ...

    def add(self, ids: npt.ArrayLike, vectors: npt.ArrayLike) -> None:
        """Add templates float32[N, dim] under new ids int64[N]; all or nothing."""
        ...

    def remove(self, ids: npt.ArrayLike) -> int:
        """Remove the templates of these ids (unknown ids are ignored); return how many."""
        ...

    def search(self, queries: npt.ArrayLike, k: int) -> tuple[F32, I64]:
        """Top-k by cosine for each query float32[Q, dim]: (similarities[Q, k], ids[Q, k]).

        Rows are sorted by decreasing similarity; missing places hold id -1 and -inf.
        """
        ...

    def contains(self, id: int) -> bool:
        """Whether a template with this id is in the store."""
        ...

    def ids(self) -> I64:
        """All ids, in no particular order (a copy)."""
        ...

    def save(self, generation: int) -> None:
        """Make the current state durable, stamped with the caller's generation."""
        ...

    def close(self) -> None:
        """Release memory and files; the store cannot be used afterwards."""
        ...


class _RWLock:
    """Readers-writer lock preferring writers (a waiting writer holds back new readers)."""

    def __init__(self) -> None:
        self._cond = threading.Condition(threading.Lock())
        self._readers = 0
        self._writer = False
        self._writers_waiting = 0

    @contextmanager
    def read(self) -> Iterator[None]:
        with self._cond:
            while self._writer or self._writers_waiting:
                self._cond.wait()
            self._readers += 1
        try:
            yield
        finally:
            with self._cond:
                self._readers -= 1
                if self._readers == 0:
                    self._cond.notify_all()

    @contextmanager
    def write(self) -> Iterator[None]:
        with self._cond:
            self._writers_waiting += 1
            try:
                while self._writer or self._readers:
                    self._cond.wait()
            finally:
                self._writers_waiting -= 1
            self._writer = True
        try:
            yield
        finally:
            with self._cond:
                self._writer = False
                self._cond.notify_all()


@contextmanager
def _omp_threads(n: int) -> Iterator[None]:
    """Run faiss on ``n`` OpenMP threads in this thread (the setting is per thread)."""
    previous = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(n)
    try:
        yield
    finally:
        faiss.omp_set_num_threads(previous)


def _one_omp_thread() -> None:
    faiss.omp_set_num_threads(1)


def _sign_codes(vectors: F32) -> U8:
    """One bit per dimension (set when the component is positive), packed 8 to a byte."""
    codes = np.empty((len(vectors), (vectors.shape[1] + 7) // 8), dtype=np.uint8)
    for start in range(0, len(vectors), 65_536):  # bounded temporaries for big batches
        codes[start : start + 65_536] = np.packbits(vectors[start : start + 65_536] > 0, axis=1)
    return codes


def _preview(values: list[int] | list[float], limit: int = 5) -> str:
    shown = ", ".join(str(v) for v in values[:limit])
    return shown + (f" and {len(values) - limit} more" if len(values) > limit else "")


def _top_k(sims: F32, rows: I64, k: int) -> tuple[F32, I64]:
    """Best k of each row of (sims, rows) by decreasing similarity; pads with -inf / -1."""
    q, m = sims.shape
    out_s = np.full((q, k), -np.inf, dtype=np.float32)
    out_r = np.full((q, k), -1, dtype=np.int64)
    if m == 0:
        return out_s, out_r
    if m > k:
        part = np.argpartition(-sims, k - 1, axis=1)[:, :k]
        sims = np.take_along_axis(sims, part, axis=1)
        rows = np.take_along_axis(rows, part, axis=1)
    order = np.argsort(-sims, axis=1, kind="stable")
    take = min(k, sims.shape[1])
    out_s[:, :take] = np.take_along_axis(sims, order, axis=1)[:, :take]
    out_r[:, :take] = np.take_along_axis(rows, order, axis=1)[:, :take]
    return out_s, out_r


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_file(path: Path, parts: list[bytes | memoryview]) -> None:
    """Write ``parts`` to a temporary file beside ``path``, fsync it and rename it into place.

    The caller fsyncs the folder. The temporary file is removed if anything fails.
    """
    tmp = path.with_name(_TMP_PREFIX + path.name)
    try:
        with open(tmp, "wb") as f:
            for part in parts:
                f.write(part)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def content_digest(parts: Iterable[tuple[npt.ArrayLike, npt.ArrayLike]]) -> str:
    """An order-independent digest of (id, float32 template) pairs: the sum modulo 2**64 of
    each pair's truncated SHA-256. Two stores holding the same templates under the same ids
    agree; one differing byte of one template changes it."""
    total = 0
    count = 0
    for ids, vectors in parts:
        id_array = np.asarray(ids, dtype="<i8")
        rows = np.ascontiguousarray(vectors, dtype="<f4")
        for face_id, row in zip(id_array.tolist(), rows, strict=True):
            h = hashlib.sha256(int(face_id).to_bytes(8, "little", signed=True) + row.tobytes()).digest()
            total = (total + int.from_bytes(h[:8], "little")) % (1 << 64)
            count += 1
    return f"{count}:{total:016x}"


def _manifest_checksum(body: dict[str, Any]) -> str:
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(canonical.encode("ascii")).hexdigest()


@dataclass(eq=False)
class _Segment:
    """One run of consecutive rows of the store, saved as one file.

    ``vectors[:n]`` are the templates; the rows' ids and codes live in the store's global
    arrays. ``file`` is the segment file holding its last saved state (``disk_count`` rows);
    ``disk_rows[i]`` is the row of that file holding current row i (-1: added since; None:
    the identity) and ``scrub`` lists the rows of that file removed since it was written.
    """

    vectors: F32
    n: int
    file: str | None = None
    digest: str = ""
    disk_count: int = 0
    disk_rows: I64 | None = None
    scrub: list[int] | None = None
    dirty: bool = True
    mapping: mmap.mmap | None = None

    def view(self) -> F32:
        return self.vectors[: self.n]

    def _disk_rows(self) -> I64:
        if self.disk_rows is not None:
            return self.disk_rows
        if self.file is None:
            return np.full(self.n, -1, dtype=np.int64)
        return np.arange(self.n, dtype=np.int64)

    def _replace_buffer(self, buffer: F32) -> None:
        self.vectors = buffer
        if self.mapping is not None:
            mapping, self.mapping = self.mapping, None
            try:
                mapping.close()
            except BufferError:  # a view still exists somewhere; the GC closes it
                pass

    def append(self, rows: F32, segment_size: int) -> None:
        need = self.n + len(rows)
        if not self.vectors.flags.writeable or need > len(self.vectors):
            capacity = min(segment_size, max(need, 2 * len(self.vectors), 64))
            buffer = np.zeros((capacity, self.vectors.shape[1]), dtype=np.float32)
            buffer[: self.n] = self.vectors[: self.n]
            self._replace_buffer(buffer)
        self.disk_rows = np.concatenate([self._disk_rows(), np.full(len(rows), -1, dtype=np.int64)])
        self.vectors[self.n : need] = rows
        self.n = need
        self.dirty = True

    def delete(self, local: I64) -> None:
        keep = np.ones(self.n, dtype=bool)
        keep[local] = False
        kept = self.vectors[: self.n][keep]
        disk_rows = self._disk_rows()
        removed_disk = disk_rows[local]
        self.scrub = (self.scrub or []) + [int(r) for r in removed_disk if r >= 0]
        self.disk_rows = disk_rows[keep]
        if self.vectors.flags.writeable:
            self.vectors[: len(kept)] = kept
            self.vectors[len(kept) : self.n] = 0.0  # no copy of a removed template in memory
        else:
            self._replace_buffer(np.ascontiguousarray(kept))
        self.n = len(kept)
        self.dirty = True


class FaissStore:
    """A :class:`VectorStore` on FAISS kernels, persisted as segment files in a folder.

    ``FaissStore(folder, dim=..., model=...)`` makes a new, empty store bound to ``folder``
    (nothing is written until :meth:`save`, which then replaces any index of this format in
    the folder); :meth:`FaissStore.open` loads a saved one. See the module documentation for
    the search structures, the files, erasure and thread safety.

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
        self._segment_size = segment_size
        self._rerank = rerank
        self._threads = threads
        self._code_bytes = (dim + 7) // 8
        self._generation: int | None = None
        self._segments: list[_Segment] = []
        self._starts: I64 = np.zeros(0, dtype=np.int64)
        self._ids: I64 = np.zeros(0, dtype=np.int64)
        self._codes: U8 = np.zeros((0, self._code_bytes), dtype=np.uint8)
        self._n = 0
        self._id_set: set[int] | None = None
        self._obsolete: list[tuple[str, int, list[int]]] = []
        self._serial = 0
        self._lock = _RWLock()
        self._save_lock = threading.Lock()
        self._pool: ThreadPoolExecutor | None = None
        self._pool_lock = threading.Lock()
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
        if self._approximate(self._n):
            return f"sign-hamming+rerank-{self._rerank} (approximate)"
        return "flat-ip (exact)"

    @property
    def segment_count(self) -> int:
        """Number of segments (files once saved)."""
        return len(self._segments)

    def __len__(self) -> int:
        """Number of templates."""
        return self._n

    def __repr__(self) -> str:
        return (
            f"FaissStore({str(self._folder)!r}, dim={self._dim}, model={self._model!r}, "
            f"n={self._n}, kind={self.kind!r}, generation={self._generation})"
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

    # ----------------------------------------------------------------- bookkeeping

    def _approximate(self, n: int) -> bool:
        if self._mode == "auto":
            return n > self._exact_limit
        return self._mode == "approximate"

    def _recount(self) -> None:
        counts = np.array([s.n for s in self._segments], dtype=np.int64)
        self._starts = np.cumsum(counts) - counts

    def _ids_set(self) -> set[int]:
        if self._id_set is None:
            self._id_set = set(self._ids[: self._n].tolist())
            if len(self._id_set) != self._n:
                raise GalleryError(f"the vector index in {self._folder} holds duplicate ids")
        return self._id_set

    def _reserve(self, n: int) -> None:
        if n <= len(self._ids):
            return
        capacity = max(n, 2 * len(self._ids), 1024)
        ids = np.zeros(capacity, dtype=np.int64)
        codes = np.zeros((capacity, self._code_bytes), dtype=np.uint8)
        ids[: self._n] = self._ids[: self._n]
        codes[: self._n] = self._codes[: self._n]
        self._ids, self._codes = ids, codes

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
        codes = _sign_codes(vecs)
        id_list = id_arr.tolist()
        with self._lock.write():
            self._check_open()
            present = self._ids_set()
            dup = [i for i in id_list if i in present]
            if dup:
                raise GalleryError(f"add: ids already in the index: {_preview(sorted(dup))}")
            m, n0 = len(id_arr), self._n
            self._reserve(n0 + m)
            self._ids[n0 : n0 + m] = id_arr
            self._codes[n0 : n0 + m] = codes
            pos = 0
            while pos < m:
                if not self._segments or self._segments[-1].n >= self._segment_size:
                    self._segments.append(_Segment(np.zeros((0, self._dim), dtype=np.float32), 0))
                seg = self._segments[-1]
                take = min(self._segment_size - seg.n, m - pos)
                seg.append(vecs[pos : pos + take], self._segment_size)
                pos += take
            self._n = n0 + m
            present.update(id_list)
            self._recount()

    def remove(self, ids: npt.ArrayLike) -> int:
        """Remove the templates of these ids from memory; :meth:`save` erases them on disk.

        Ids that are not in the store are ignored. Returns the number removed.
        """
        id_arr = self._as_ids(ids, "remove")
        with self._lock.write():
            self._check_open()
            present = self._ids_set()
            gone = sorted({i for i in id_arr.tolist() if i in present})
            if not gone:
                return 0
            n = self._n
            rows = np.flatnonzero(np.isin(self._ids[:n], np.array(gone, dtype=np.int64)))
            seg_of = np.searchsorted(self._starts, rows, side="right") - 1
            for j in np.unique(seg_of).tolist():
                local = rows[seg_of == j] - self._starts[j]
                self._segments[j].delete(local.astype(np.int64))
            keep = np.ones(n, dtype=bool)
            keep[rows] = False
            m = n - len(rows)
            self._ids[:m] = self._ids[:n][keep]
            self._codes[:m] = self._codes[:n][keep]
            self._ids[m:n] = 0
            self._codes[m:n] = 0
            kept: list[_Segment] = []
            for seg in self._segments:
                if seg.n:
                    kept.append(seg)
                elif seg.file is not None:
                    self._obsolete.append((seg.file, seg.disk_count, seg.scrub or []))
                    seg._replace_buffer(np.zeros((0, self._dim), dtype=np.float32))
            self._segments = kept
            self._n = m
            present.difference_update(gone)
            self._recount()
            if len(self._segments) > 2 * math.ceil(m / self._segment_size) + 2:
                self._repack()
            return len(gone)

    def _repack(self) -> None:
        """Merge fragmented segments into full ones (after many removals); writer lock held."""
        for seg in self._segments:
            if seg.file is not None:
                self._obsolete.append((seg.file, seg.disk_count, seg.scrub or []))
        vectors = np.concatenate([s.view() for s in self._segments]) if self._segments else None
        for seg in self._segments:
            seg._replace_buffer(np.zeros((0, self._dim), dtype=np.float32))
        self._segments = []
        if vectors is not None:
            for start in range(0, len(vectors), self._segment_size):
                part = np.ascontiguousarray(vectors[start : start + self._segment_size])
                self._segments.append(_Segment(part, len(part)))
        self._recount()

    # ----------------------------------------------------------------- search

    def contains(self, id: int) -> bool:
        """Whether a template with this id is in the store."""
        with self._lock.read():
            self._check_open()
            if self._id_set is not None:
                return int(id) in self._id_set
            return bool((self._ids[: self._n] == int(id)).any())

    def ids(self) -> I64:
        """All ids, in storage order (a copy)."""
        with self._lock.read():
            self._check_open()
            return self._ids[: self._n].copy()

    def digest(self) -> str:
        """A digest of every (id, template) pair, independent of their order: equal to
        :func:`content_digest` of the same templates read from anywhere else."""
        with self._lock.read():
            self._check_open()
            return content_digest(
                (self._ids[start : start + seg.n], seg.view())
                for seg, start in zip(self._segments, self._starts.tolist(), strict=True)
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
            if nq == 0 or self._n == 0:
                return (
                    np.full((nq, k), -np.inf, dtype=np.float32),
                    np.full((nq, k), -1, dtype=np.int64),
                )
            if nq < _BATCH_MIN or self._threads == 1:
                with _omp_threads(1):
                    return self._search_rows(q, k)
            pool = self._get_pool()
            chunk = math.ceil(nq / self._threads)
            parts = list(pool.map(lambda s: self._search_rows(q[s : s + chunk], k), range(0, nq, chunk)))
            return (
                np.concatenate([p[0] for p in parts]),
                np.concatenate([p[1] for p in parts]),
            )

    def _get_pool(self) -> ThreadPoolExecutor:
        with self._pool_lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(
                    self._threads, thread_name_prefix="facedb-index", initializer=_one_omp_thread
                )
            return self._pool

    def _search_rows(self, q: F32, k: int) -> tuple[F32, I64]:
        """Search under the read lock, on the calling thread's OpenMP setting."""
        n = self._n
        if self._approximate(n):
            depth = min(max(self._rerank, k), n)
            _, cand = faiss.knn_hamming(_sign_codes(q), self._codes[:n], depth)
            vecs = self._gather(cand.reshape(-1)).reshape(len(q), depth, self._dim)
            sims = np.einsum("qrd,qd->qr", vecs, q).astype(np.float32, copy=False)
            best_s, best_rows = _top_k(sims, cand.astype(np.int64, copy=False), k)
        else:
            all_s: list[F32] = []
            all_r: list[I64] = []
            for seg, start in zip(self._segments, self._starts.tolist(), strict=True):
                s, r = faiss.knn(q, seg.view(), min(k, seg.n), metric=faiss.METRIC_INNER_PRODUCT)
                all_s.append(s)
                all_r.append(np.where(r >= 0, r + start, -1))
            best_s, best_rows = _top_k(np.concatenate(all_s, axis=1), np.concatenate(all_r, axis=1), k)
        found = best_rows >= 0
        ids = np.where(found, self._ids[np.where(found, best_rows, 0)], -1)
        return best_s, ids.astype(np.int64, copy=False)

    def _gather(self, rows: I64) -> F32:
        """Vectors float32[len(rows), dim] of global rows, from their segments."""
        out = np.empty((len(rows), self._dim), dtype=np.float32)
        seg_of = np.searchsorted(self._starts, rows, side="right") - 1
        local = rows - self._starts[seg_of]
        order = np.argsort(seg_of, kind="stable")
        sorted_seg = seg_of[order]
        bounds = np.flatnonzero(np.diff(sorted_seg)) + 1
        for part in np.split(order, bounds):
            seg = self._segments[int(seg_of[part[0]])]
            out[part] = seg.vectors[local[part]]
        return out

    # ----------------------------------------------------------------- persistence

    def save(self, generation: int) -> None:
        """Write the changed segments and the manifest, stamped with ``generation``.

        Only segments changed since the last save are written. When this returns, the
        index in the folder is the current state, durably (fsynced), and the files it
        replaced are gone: removed templates are in no file of the folder.

        Raises:
            ConfigError: a generation that is not a non-negative integer.
            GalleryError: the folder cannot be written (the previous index stays usable).
        """
        if isinstance(generation, bool) or not isinstance(generation, int) or generation < 0:
            raise ConfigError(f"save: generation must be an integer >= 0, got {generation!r}")
        with self._save_lock, self._lock.read():
            self._check_open()
            try:
                self._save(generation)
            except OSError as e:
                raise GalleryError(f"cannot write the vector index in {self._folder}: {e}") from e

    def _save(self, generation: int) -> None:
        folder = self._folder
        folder.mkdir(parents=True, exist_ok=True)
        existing = os.listdir(folder)
        for name in existing:
            match = _SEGMENT_RE.match(name)
            if match:
                self._serial = max(self._serial, int(match.group(1)))
        model_digest = hashlib.sha256(self._model.encode()).digest()
        written: list[tuple[_Segment, str, str]] = []
        try:
            for seg, start in zip(self._segments, self._starts.tolist(), strict=True):
                if seg.dirty or seg.file is None:
                    self._serial += 1
                    name = f"seg-{self._serial:010d}.fseg"
                    digest = self._write_segment(folder / name, seg, start, generation, model_digest)
                    written.append((seg, name, digest))
            _fsync_dir(folder)
            new_names = {id(seg): (name, digest) for seg, name, digest in written}
            entries = []
            for seg in self._segments:
                name, digest = new_names.get(id(seg), (seg.file or "", seg.digest))
                entries.append({"file": name, "count": seg.n, "sha256": digest})
            body: dict[str, Any] = {
                "format": _FORMAT,
                "version": _VERSION,
                "dim": self._dim,
                "model": self._model,
                "generation": generation,
                "code_bytes": self._code_bytes,
                "count": self._n,
                "segments": entries,
            }
            body["checksum"] = _manifest_checksum(body)
            _write_file(folder / MANIFEST_NAME, [json.dumps(body, indent=1).encode("ascii")])
            _fsync_dir(folder)
        except BaseException:
            for _, name, _ in written:
                (folder / name).unlink(missing_ok=True)
            raise
        # Committed. Bookkeeping, then erase what the new manifest no longer names.
        for seg, name, digest in written:
            if seg.file is not None:
                self._obsolete.append((seg.file, seg.disk_count, seg.scrub or []))
            seg.file, seg.digest, seg.disk_count = name, digest, seg.n
            seg.disk_rows, seg.scrub, seg.dirty = None, None, False
        self._generation = generation
        obsolete, self._obsolete = self._obsolete, []
        for name, count, rows in obsolete:
            self._scrub(folder / name, count, rows)
        referenced = {seg.file for seg in self._segments}
        for name in os.listdir(folder):
            if name.startswith(_TMP_PREFIX) or (_SEGMENT_RE.match(name) and name not in referenced):
                (folder / name).unlink(missing_ok=True)
        _fsync_dir(folder)

    def _write_segment(
        self, path: Path, seg: _Segment, start: int, generation: int, model_digest: bytes
    ) -> str:
        n = seg.n
        ids = np.ascontiguousarray(self._ids[start : start + n], dtype="<i8")
        vecs = np.ascontiguousarray(seg.view(), dtype="<f4")
        codes = np.ascontiguousarray(self._codes[start : start + n])
        payload = [ids.data.cast("B"), vecs.data.cast("B"), codes.data.cast("B")]
        h = hashlib.sha256()
        for part in payload:
            h.update(part)
        digest = h.digest()
        header = _HEADER.pack(
            _MAGIC, _VERSION, _HEADER_SIZE, self._dim, self._code_bytes, n, generation, model_digest, digest
        ).ljust(_HEADER_SIZE, b"\0")
        _write_file(path, [header, *payload])
        return digest.hex()

    def _scrub(self, path: Path, count: int, rows: list[int]) -> None:
        """Zero the given rows (id, vector, code) of a segment file, fsync it, delete it.

        The file is no longer named by the manifest; zeroing first keeps removed templates
        out of the disk blocks the deletion frees (on filesystems that write in place). The
        zeroing is best effort; the deletion is not (its failure is an error of save).
        """
        if rows:
            vec_bytes, code_bytes = 4 * self._dim, self._code_bytes
            vec_off = _HEADER_SIZE + 8 * count
            code_off = vec_off + vec_bytes * count
            try:
                with open(path, "r+b") as f:
                    for r in rows:
                        for offset, size in (
                            (_HEADER_SIZE + 8 * r, 8),
                            (vec_off + vec_bytes * r, vec_bytes),
                            (code_off + code_bytes * r, code_bytes),
                        ):
                            f.seek(offset)
                            f.write(b"\0" * size)
                    f.flush()
                    os.fsync(f.fileno())
            except OSError:
                pass
        path.unlink(missing_ok=True)

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
    ) -> FaissStore:
        """Open the index saved in ``folder``, verifying every byte against its checksums.

        Args:
            folder, dim, model, mode, exact_limit, segment_size, rerank, threads: as for
                :class:`FaissStore`.
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
        )
        folder = store._folder
        manifest = store._read_manifest()
        found = manifest["generation"]
        if found != generation and not allow_stale:
            raise IndexUnavailable(
                "stale",
                f"the vector index in {folder} is at generation {found}, the database at {generation}",
                found,
            )
        entries: list[dict[str, Any]] = manifest["segments"]
        model_digest = hashlib.sha256(model.encode()).digest()
        workers = max(1, min(len(entries), os.cpu_count() or 1, 4))
        loaded: list[tuple[mmap.mmap | None, I64, F32, U8]] = []
        try:
            with ThreadPoolExecutor(workers) as pool:
                futures = [pool.submit(store._load_segment, entry, found, model_digest) for entry in entries]
                error: BaseException | None = None
                for future in futures:
                    try:
                        loaded.append(future.result())
                    except BaseException as e:
                        error = error or e
                if error is not None:
                    raise error
        except BaseException:
            for mapping, *_ in loaded:
                if mapping is not None:
                    try:
                        mapping.close()
                    except BufferError:
                        pass
            raise
        n = sum(len(ids) for _, ids, _, _ in loaded)
        if n != manifest["count"]:
            raise IndexUnavailable(
                "corrupt",
                f"the vector index in {folder}: segments hold {n} rows, the manifest says "
                f"{manifest['count']}",
                found,
            )
        store._ids = np.concatenate([ids for _, ids, _, _ in loaded] or [store._ids]).astype(np.int64)
        store._codes = np.ascontiguousarray(
            np.concatenate([c for _, _, _, c in loaded] or [store._codes]), dtype=np.uint8
        )
        store._n = n
        for entry, (mapping, _, vecs, _) in zip(entries, loaded, strict=True):
            store._segments.append(
                _Segment(
                    vecs,
                    len(vecs),
                    file=entry["file"],
                    digest=entry["sha256"],
                    disk_count=len(vecs),
                    dirty=False,
                    mapping=mapping,
                )
            )
            m = _SEGMENT_RE.match(entry["file"])
            assert m is not None
            store._serial = max(store._serial, int(m.group(1)))
        store._recount()
        store._generation = found
        return store

    def _read_manifest(self) -> dict[str, Any]:
        path = self._folder / MANIFEST_NAME
        where = f"the vector index in {self._folder}"
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            raise IndexUnavailable("missing", f"no vector index in {self._folder}") from None
        except OSError as e:
            raise IndexUnavailable("corrupt", f"{where}: cannot read {MANIFEST_NAME}: {e}") from e
        try:
            body = json.loads(raw.decode("ascii"))
        except (UnicodeDecodeError, json.JSONDecodeError):
            raise IndexUnavailable("corrupt", f"{where}: {MANIFEST_NAME} is not valid JSON") from None
        if not isinstance(body, dict) or not isinstance(body.get("checksum"), str):
            raise IndexUnavailable("corrupt", f"{where}: {MANIFEST_NAME} has no checksum")
        checksum = body.pop("checksum")
        if checksum != _manifest_checksum(body):
            raise IndexUnavailable("corrupt", f"{where}: {MANIFEST_NAME} fails its checksum")
        if body.get("format") != _FORMAT or body.get("version") != _VERSION:
            raise IndexUnavailable(
                "foreign",
                f"{where} has format {body.get('format')!r} version {body.get('version')!r}, "
                f"expected {_FORMAT!r} version {_VERSION}",
            )
        found = body.get("generation")
        found_gen = found if isinstance(found, int) else None
        if body.get("dim") != self._dim or body.get("model") != self._model:
            raise IndexUnavailable(
                "foreign",
                f"{where} holds {body.get('dim')}-d templates of model {body.get('model')!r}, "
                f"expected {self._dim}-d of {self._model!r}",
                found_gen,
            )

        def valid_entry(e: object) -> bool:
            return (
                isinstance(e, dict)
                and isinstance(e.get("file"), str)
                and _SEGMENT_RE.match(e["file"]) is not None
                and isinstance(e.get("count"), int)
                and e["count"] > 0
                and isinstance(e.get("sha256"), str)
            )

        segments = body.get("segments")
        if (
            found_gen is None
            or found_gen < 0
            or body.get("code_bytes") != self._code_bytes
            or not isinstance(body.get("count"), int)
            or not isinstance(segments, list)
            or not all(valid_entry(e) for e in segments)
        ):
            raise IndexUnavailable("corrupt", f"{where}: {MANIFEST_NAME} is malformed", found_gen)
        return body

    def _load_segment(
        self, entry: dict[str, Any], generation: int, model_digest: bytes
    ) -> tuple[mmap.mmap | None, I64, F32, U8]:
        """Map one segment file read-only and verify it; raise IndexUnavailable if it fails."""
        name: str = entry["file"]
        count: int = entry["count"]
        path = self._folder / name

        def corrupt(what: str) -> IndexUnavailable:
            return IndexUnavailable(
                "corrupt", f"the vector index in {self._folder}: {name} {what}", generation
            )

        row_bytes = 8 + 4 * self._dim + self._code_bytes
        expected = _HEADER_SIZE + count * row_bytes
        try:
            with open(path, "rb") as f:
                size = os.fstat(f.fileno()).st_size
                if size != expected:
                    raise corrupt(f"has {size} bytes, expected {expected} (truncated or extended)")
                header = f.read(_HEADER_SIZE)
                fields = _HEADER.unpack_from(header)
                magic, version, header_size, dim, code_bytes, n, seg_gen, seg_model, digest = fields
                if (
                    magic != _MAGIC
                    or version != _VERSION
                    or header_size != _HEADER_SIZE
                    or dim != self._dim
                    or code_bytes != self._code_bytes
                    or n != count
                    or seg_gen > generation
                    or seg_model != model_digest
                    or digest.hex() != entry["sha256"]
                ):
                    raise corrupt("has a header that does not match the manifest")
                mapping: mmap.mmap | None
                if hasattr(mmap, "MAP_PRIVATE"):
                    flags = mmap.MAP_PRIVATE | getattr(mmap, "MAP_POPULATE", 0)
                    mapping = mmap.mmap(f.fileno(), size, flags=flags, prot=mmap.PROT_READ)
                    buffer: Any = mapping
                else:  # pragma: no cover - platforms without POSIX mmap flags
                    mapping = None
                    f.seek(0)
                    buffer = f.read()
        except FileNotFoundError:
            raise corrupt("is missing") from None
        except OSError as e:
            raise corrupt(f"cannot be read: {e}") from e
        with memoryview(buffer) as view:
            ok = hashlib.sha256(view[_HEADER_SIZE:]).digest() == digest
        if not ok:
            if mapping is not None:
                mapping.close()
            raise corrupt("fails its checksum")
        vec_off = _HEADER_SIZE + 8 * count
        code_off = vec_off + 4 * self._dim * count
        ids = np.frombuffer(buffer, dtype="<i8", count=count, offset=_HEADER_SIZE)
        vecs = np.frombuffer(buffer, dtype="<f4", count=count * self._dim, offset=vec_off)
        codes = np.frombuffer(buffer, dtype=np.uint8, count=count * self._code_bytes, offset=code_off)
        return (
            mapping,
            ids.astype(np.int64),
            vecs.reshape(count, self._dim).astype(np.float32, copy=False),
            codes.reshape(count, self._code_bytes).copy(),
        )

    def close(self) -> None:
        """Release memory, mapped files and threads; later calls raise GalleryError.

        Closing does not save: unsaved changes are dropped (the database is the truth).
        """
        with self._lock.write():
            if self._closed:
                return
            self._closed = True
            segments, self._segments = self._segments, []
            for seg in segments:
                seg._replace_buffer(np.zeros((0, self._dim), dtype=np.float32))
            self._ids = np.zeros(0, dtype=np.int64)
            self._codes = np.zeros((0, self._code_bytes), dtype=np.uint8)
            self._n = 0
            self._id_set = None
            self._recount()
        with self._pool_lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True)

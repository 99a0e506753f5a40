"""The store's templates: runs of rows (segments), with their ids and sign codes.

A segment is the unit saved as one file (:mod:`facedb.faiss.format`): up to
``segment_size`` templates, stored as float32 or float16 (``precision``). Only the ids and
the sign codes of every row are held in memory; the templates of segments loaded from files
are memory-mapped read-only (private mappings, never written), so opening reads none of
them, a search reads only the rows it re-ranks, and every process shares the page cache. A
segment is copied into memory when it is first changed. Removed rows are dropped at once
(freed rows of owned buffers are zeroed) and remembered, per file, so that the next save
erases them on disk. When removals leave more than twice the segments needed, the segments
are repacked.

Verification: a mapped segment whose templates were not hashed when it was opened (a large
store, searched approximately) carries the SHA-256 of its templates and a checksum of each
row (:func:`row_sums`). Every row a search reads is checked against its row checksum, and a
segment is hashed whole before it is read whole (an exact search), changed or rewritten; a
mismatch raises :class:`~facedb.errors.IndexUnavailable` (``"corrupt"``), so a damaged
template is never scored.

Not thread-safe on its own: the store's readers-writer lock guards it.
"""

from __future__ import annotations

import hashlib
import math
import mmap
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Final, Literal

import numpy as np
import numpy.typing as npt

from facedb.errors import GalleryError, IndexUnavailable

__all__ = ["PRECISIONS", "Precision", "Segment", "Segments", "row_sums"]

F32 = npt.NDArray[np.float32]
I64 = npt.NDArray[np.int64]
U8 = npt.NDArray[np.uint8]
U32 = npt.NDArray[np.uint32]
Rows = npt.NDArray[Any]
"""Templates as stored: float32 or float16 rows."""

Precision = Literal["float32", "float16"]
"""How the templates are stored on disk and read back for the exact re-rank."""

PRECISIONS: Final[dict[str, type[np.floating[Any]]]] = {"float32": np.float32, "float16": np.float16}

# Odd 32-bit weights: a change of any one word of a row changes its sum modulo 2**32.
_WEIGHTS: Final = (
    np.random.default_rng(0x5EED).integers(0, 2**31, size=65_536, dtype=np.uint32) * 2 + 1
).astype(np.uint32)


# Above this many rows in one gather (a batch of queries), rows are copied through the
# segments' mappings: one positioned read a row costs more Python than the pages it saves.
_READ_LIMIT: Final = 512


def row_sums(rows: Rows) -> U32:
    """A checksum of each stored row: the sum modulo 2**32 of its words (float32 bits, or
    float16 bits widened) times fixed odd weights. Any single changed word changes it."""
    words = rows.view(np.uint32) if rows.dtype.itemsize == 4 else rows.view(np.uint16).astype(np.uint32)
    sums: U32 = np.einsum("ij,j->i", words, _WEIGHTS[: words.shape[1]], dtype=np.uint32)
    return sums


Obsolete = tuple[str, int, list[int]]
"""A file no longer needed: (name, its row count, its rows removed since it was written)."""


@dataclass(eq=False)
class Segment:
    """One run of consecutive rows of the store, saved as one file.

    ``vectors[:n]`` are the templates (float32 or float16); the rows' ids and codes live in
    the store's global arrays. ``file`` is the segment file holding its last saved state
    (``disk_count`` rows); ``disk_rows[i]`` is the row of that file holding current row i
    (-1: added since; None: the identity) and ``scrub`` lists the rows of that file removed
    since it was written. ``unverified`` is the SHA-256 of the mapped templates when they
    were not hashed on opening (``sums`` then holds each row's checksum); None once they are.
    """

    vectors: Rows
    n: int
    file: str | None = None
    digest: str = ""
    vectors_digest: str = ""
    disk_count: int = 0
    disk_rows: I64 | None = None
    scrub: list[int] | None = None
    dirty: bool = True
    mapping: mmap.mmap | None = None
    unverified: bytes | None = None
    sums: U32 | None = None
    folder: str = ""
    fd: int | None = None
    vectors_offset: int = 0

    def view(self) -> Rows:
        """The templates [n, dim] as stored (a view, not a copy)."""
        return self.vectors[: self.n]

    def verify(self) -> None:
        """Hash the mapped templates whole if that was left for later (see the module).

        Raises:
            IndexUnavailable: they do not match the checksum the file was written with.
        """
        if self.unverified is None:
            return
        if hashlib.sha256(np.ascontiguousarray(self.vectors).data).digest() != self.unverified:
            raise IndexUnavailable(
                "corrupt", f"the vector index in {self.folder}: {self.file} fails its checksum"
            )
        self.unverified, self.sums = None, None

    def verify_kept(self, local: I64) -> None:
        """Before rows ``local`` are removed: check every other row against its row checksum
        (not the whole segment's hash: another process that removed the same rows has zeroed
        them in the file this one still maps)."""
        if self.unverified is None:
            return
        keep = np.setdiff1d(np.arange(self.n, dtype=np.int64), local)
        self.check_rows(keep, self.vectors[keep])

    def check_rows(self, local: I64, rows: Rows) -> None:
        """Check rows just read (``rows = vectors[local]``) against their row checksums.

        Raises:
            IndexUnavailable: a row that does not match.
        """
        if self.sums is None:
            return
        bad = np.flatnonzero(row_sums(rows) != self.sums[local])
        if bad.size:
            raise IndexUnavailable(
                "corrupt",
                f"the vector index in {self.folder}: row {int(local[bad[0]])} of {self.file} "
                "fails its checksum",
            )

    def obsolete(self) -> Obsolete:
        """Its file, to be erased once a save no longer names it."""
        assert self.file is not None
        return (self.file, self.disk_count, self.scrub or [])

    def _disk_rows(self) -> I64:
        if self.disk_rows is not None:
            return self.disk_rows
        if self.file is None:
            return np.full(self.n, -1, dtype=np.int64)
        return np.arange(self.n, dtype=np.int64)

    def unmap_pages(self) -> None:
        """Drop the pages this process has mapped of the segment's file (they stay in the
        page cache): after a batch copied its rows through the mapping, with the cached
        pages around each one that the kernel maps along (fault-around)."""
        if self.mapping is not None and hasattr(mmap, "MADV_DONTNEED"):
            try:
                self.mapping.madvise(mmap.MADV_DONTNEED)
            except (OSError, ValueError):  # closed meanwhile, or not supported: harmless
                pass

    def replace_buffer(self, buffer: Rows) -> None:
        """Hold ``buffer`` as the vectors, releasing the file mapping if there was one."""
        self.vectors = buffer
        self.unverified, self.sums = None, None
        if self.fd is not None:
            fd, self.fd = self.fd, None
            os.close(fd)
        if self.mapping is not None:
            mapping, self.mapping = self.mapping, None
            try:
                mapping.close()
            except BufferError:  # a view still exists somewhere; the GC closes it
                pass

    def append(self, rows: F32, segment_size: int) -> None:
        """Add templates at the end (the caller keeps within ``segment_size``)."""
        self.verify()
        need = self.n + len(rows)
        if not self.vectors.flags.writeable or need > len(self.vectors):
            capacity = min(segment_size, max(need, 2 * len(self.vectors), 64))
            buffer = np.zeros((capacity, self.vectors.shape[1]), dtype=self.vectors.dtype)
            buffer[: self.n] = self.vectors[: self.n]
            self.replace_buffer(buffer)
        self.disk_rows = np.concatenate([self._disk_rows(), np.full(len(rows), -1, dtype=np.int64)])
        self.vectors[self.n : need] = rows
        self.n = need
        self.dirty = True

    def delete(self, local: I64) -> None:
        """Drop these rows of the segment, keeping the order of the others."""
        self.verify_kept(local)
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
            self.replace_buffer(np.ascontiguousarray(kept))
        self.n = len(kept)
        self.dirty = True


class Segments:
    """Every row of a store: the segments holding the vectors, and the global ids and sign
    codes of all rows (row ``starts[j] + i`` is row i of segment j), as FAISS's IndexIDMap
    maps rows to ids.

    Args:
        dim: template dimension.
        segment_size: templates per segment.
        where: how error messages name the store (``"the vector index in <folder>"``).
        precision: how new segments store templates (``"float32"`` or ``"float16"``).
    """

    def __init__(self, dim: int, segment_size: int, where: str, precision: Precision = "float32") -> None:
        self.dim = dim
        self.segment_size = segment_size
        self.precision: Precision = precision
        self.dtype = PRECISIONS[precision]
        self.code_bytes = (dim + 7) // 8
        self._where = where
        self.segments: list[Segment] = []
        self.starts: I64 = np.zeros(0, dtype=np.int64)
        self.ids: I64 = np.zeros(0, dtype=np.int64)
        self.codes: U8 = np.zeros((0, self.code_bytes), dtype=np.uint8)
        self.n = 0
        self._id_set: set[int] | None = None
        self.obsolete: list[Obsolete] = []

    def with_starts(self) -> Iterator[tuple[Segment, int]]:
        """Each segment with the global row of its first row."""
        return zip(self.segments, self.starts.tolist(), strict=True)

    def recount(self) -> None:
        """Recompute where each segment starts (after segments changed size)."""
        counts = np.array([s.n for s in self.segments], dtype=np.int64)
        self.starts = np.cumsum(counts) - counts

    def id_set(self) -> set[int]:
        """The ids as a set, built on first use and kept up to date afterwards."""
        if self._id_set is None:
            self._id_set = set(self.ids[: self.n].tolist())
            if len(self._id_set) != self.n:
                raise GalleryError(f"{self._where} holds duplicate ids")
        return self._id_set

    def contains(self, id: int) -> bool:
        """Whether a template with this id is here."""
        if self._id_set is not None:
            return id in self._id_set
        return bool((self.ids[: self.n] == id).any())

    def _reserve(self, n: int) -> None:
        if n <= len(self.ids):
            return
        capacity = max(n, 2 * len(self.ids), 1024)
        ids = np.zeros(capacity, dtype=np.int64)
        codes = np.zeros((capacity, self.code_bytes), dtype=np.uint8)
        ids[: self.n] = self.ids[: self.n]
        codes[: self.n] = self.codes[: self.n]
        self.ids, self.codes = ids, codes

    def load(self, loaded: list[Segment], ids: list[I64], codes: list[U8]) -> None:
        """Take the segments of files just opened, with their rows' ids and codes (an empty
        store only)."""
        if loaded:
            self.ids = np.concatenate(ids).astype(np.int64, copy=False)
            self.codes = np.ascontiguousarray(np.concatenate(codes), dtype=np.uint8)
        self.n = sum(len(i) for i in ids)
        self.segments.extend(loaded)
        self.recount()

    def verify_all(self) -> None:
        """Hash every segment whose templates were left unverified (see the module)."""
        for seg in self.segments:
            seg.verify()

    def add(self, ids: I64, vectors: F32, codes: U8) -> None:
        """Append rows (ids checked by the caller: new and unique)."""
        m, n0 = len(ids), self.n
        self._reserve(n0 + m)
        self.ids[n0 : n0 + m] = ids
        self.codes[n0 : n0 + m] = codes
        pos = 0
        while pos < m:
            if not self.segments or self.segments[-1].n >= self.segment_size:
                self.segments.append(Segment(np.zeros((0, self.dim), dtype=self.dtype), 0))
            seg = self.segments[-1]
            take = min(self.segment_size - seg.n, m - pos)
            seg.append(vectors[pos : pos + take], self.segment_size)
            pos += take
        self.n = n0 + m
        self.id_set().update(ids.tolist())
        self.recount()

    def remove(self, gone: list[int]) -> None:
        """Drop the rows of these ids (all present, no repeats); repack when fragmented."""
        n = self.n
        rows = np.flatnonzero(np.isin(self.ids[:n], np.array(gone, dtype=np.int64)))
        seg_of = np.searchsorted(self.starts, rows, side="right") - 1
        for j in np.unique(seg_of).tolist():  # before anything changes: a damaged one raises
            self.segments[j].verify_kept(rows[seg_of == j] - self.starts[j])
        for j in np.unique(seg_of).tolist():
            local = rows[seg_of == j] - self.starts[j]
            self.segments[j].delete(local.astype(np.int64))
        keep = np.ones(n, dtype=bool)
        keep[rows] = False
        m = n - len(rows)
        self.ids[:m] = self.ids[:n][keep]
        self.codes[:m] = self.codes[:n][keep]
        self.ids[m:n] = 0
        self.codes[m:n] = 0
        kept: list[Segment] = []
        for seg in self.segments:
            if seg.n:
                kept.append(seg)
            elif seg.file is not None:
                self.obsolete.append(seg.obsolete())
                seg.replace_buffer(np.zeros((0, self.dim), dtype=self.dtype))
        self.segments = kept
        self.n = m
        self.id_set().difference_update(gone)
        self.recount()
        if len(self.segments) > 2 * math.ceil(m / self.segment_size) + 2:
            self._repack()

    def _repack(self) -> None:
        """Merge fragmented segments into full ones (after many removals)."""
        self.verify_all()
        for seg in self.segments:
            if seg.file is not None:
                self.obsolete.append(seg.obsolete())
        vectors = np.concatenate([s.view() for s in self.segments]) if self.segments else None
        for seg in self.segments:
            seg.replace_buffer(np.zeros((0, self.dim), dtype=self.dtype))
        self.segments = []
        if vectors is not None:
            for start in range(0, len(vectors), self.segment_size):
                part = np.ascontiguousarray(vectors[start : start + self.segment_size])
                self.segments.append(Segment(part, len(part)))
        self.recount()

    def gather(self, rows: I64) -> F32:
        """Vectors float32[len(rows), dim] of global rows, from their segments; every row read
        from a segment not yet hashed whole is checked against its row checksum.

        Raises:
            IndexUnavailable: a row that fails its checksum (see the module).
        """
        seg_of = np.searchsorted(self.starts, rows, side="right") - 1
        local = rows - self.starts[seg_of]
        if len(rows) <= _READ_LIMIT:
            return self._read(seg_of, local)
        out = np.empty((len(rows), self.dim), dtype=np.float32)
        order = np.argsort(seg_of, kind="stable")
        sorted_seg = seg_of[order]
        bounds = np.flatnonzero(np.diff(sorted_seg)) + 1
        for part in np.split(order, bounds):
            seg = self.segments[int(seg_of[part[0]])]
            picked = seg.vectors[local[part]]
            seg.check_rows(local[part], picked)
            out[part] = picked
            seg.unmap_pages()
        return out

    def _read(self, seg_of: I64, local: I64) -> F32:
        """A few rows (a query's re-rank), each read from its segment's file when it has one
        open: one positioned read a row, through the page cache, so that the pages read are
        not mapped into this process (a mapping would also map the cached pages around each
        one, up to 64 KB a fault: the whole index after a few hundred queries)."""
        m, dim = len(local), self.dim
        row_bytes = dim * np.dtype(self.dtype).itemsize
        buffer = bytearray(m * row_bytes)
        view = memoryview(buffer)
        expected = np.zeros(m, dtype=np.uint32)
        checked = np.zeros(m, dtype=bool)
        segments = self.segments
        for i, (j, row) in enumerate(zip(seg_of.tolist(), local.tolist(), strict=True)):
            seg = segments[j]
            target = view[i * row_bytes : (i + 1) * row_bytes]
            if seg.fd is None:
                target[:] = np.ascontiguousarray(seg.vectors[row], dtype=self.dtype).data.cast("B")
            elif os.preadv(seg.fd, [target], seg.vectors_offset + row * row_bytes) != row_bytes:
                raise IndexUnavailable(
                    "corrupt", f"{self._where}: {seg.file} is shorter than its header says"
                )
            if seg.sums is not None:
                expected[i], checked[i] = seg.sums[row], True
        stored = np.frombuffer(buffer, dtype=self.dtype).reshape(m, dim)
        if checked.any():
            bad = np.flatnonzero(checked & (row_sums(stored) != expected))
            if bad.size:
                seg = segments[int(seg_of[bad[0]])]
                raise IndexUnavailable(
                    "corrupt", f"{self._where}: row {int(local[bad[0]])} of {seg.file} fails its checksum"
                )
        return stored.astype(np.float32)

    def ids_at(self, rows: I64) -> I64:
        """The ids of global rows; -1 stays -1."""
        found = rows >= 0
        ids = np.where(found, self.ids[np.where(found, rows, 0)], -1)
        return ids.astype(np.int64, copy=False)

    def clear(self) -> None:
        """Drop every row and release buffers and mappings."""
        segments, self.segments = self.segments, []
        for seg in segments:
            seg.replace_buffer(np.zeros((0, self.dim), dtype=self.dtype))
        self.ids = np.zeros(0, dtype=np.int64)
        self.codes = np.zeros((0, self.code_bytes), dtype=np.uint8)
        self.n = 0
        self._id_set = None
        self.recount()

"""The store's templates in memory: runs of rows (segments), with their ids and sign codes.

A segment is the unit saved as one file (:mod:`facedb.faiss.format`): up to
``segment_size`` templates. Segments loaded from files are memory-mapped read-only
(private mappings), so reopening does not copy them; a segment is copied into memory when it
is first changed. Removed rows are dropped at once (freed rows of owned buffers are zeroed)
and remembered, per file, so that the next save erases them on disk. When removals leave
more than twice the segments needed, the segments are repacked.

Not thread-safe on its own: the store's readers-writer lock guards it.
"""

from __future__ import annotations

import math
import mmap
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from facedb.errors import GalleryError

__all__ = ["Segment", "Segments"]

F32 = npt.NDArray[np.float32]
I64 = npt.NDArray[np.int64]
U8 = npt.NDArray[np.uint8]

Obsolete = tuple[str, int, list[int]]
"""A file no longer needed: (name, its row count, its rows removed since it was written)."""


@dataclass(eq=False)
class Segment:
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
        """The templates float32[n, dim] (a view, not a copy)."""
        return self.vectors[: self.n]

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

    def replace_buffer(self, buffer: F32) -> None:
        """Hold ``buffer`` as the vectors, releasing the file mapping if there was one."""
        self.vectors = buffer
        if self.mapping is not None:
            mapping, self.mapping = self.mapping, None
            try:
                mapping.close()
            except BufferError:  # a view still exists somewhere; the GC closes it
                pass

    def append(self, rows: F32, segment_size: int) -> None:
        """Add templates at the end (the caller keeps within ``segment_size``)."""
        need = self.n + len(rows)
        if not self.vectors.flags.writeable or need > len(self.vectors):
            capacity = min(segment_size, max(need, 2 * len(self.vectors), 64))
            buffer = np.zeros((capacity, self.vectors.shape[1]), dtype=np.float32)
            buffer[: self.n] = self.vectors[: self.n]
            self.replace_buffer(buffer)
        self.disk_rows = np.concatenate([self._disk_rows(), np.full(len(rows), -1, dtype=np.int64)])
        self.vectors[self.n : need] = rows
        self.n = need
        self.dirty = True

    def delete(self, local: I64) -> None:
        """Drop these rows of the segment, keeping the order of the others."""
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
    """

    def __init__(self, dim: int, segment_size: int, where: str) -> None:
        self.dim = dim
        self.segment_size = segment_size
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

    def load(
        self, loaded: list[tuple[mmap.mmap | None, I64, F32, U8]], files: list[str], digests: list[str]
    ) -> None:
        """Take the rows of segment files just verified (an empty store only)."""
        if loaded:
            self.ids = np.concatenate([ids for _, ids, _, _ in loaded]).astype(np.int64)
            self.codes = np.ascontiguousarray(np.concatenate([c for _, _, _, c in loaded]), dtype=np.uint8)
        self.n = sum(len(ids) for _, ids, _, _ in loaded)
        for file, digest, (mapping, _, vecs, _) in zip(files, digests, loaded, strict=True):
            self.segments.append(
                Segment(
                    vecs,
                    len(vecs),
                    file=file,
                    digest=digest,
                    disk_count=len(vecs),
                    dirty=False,
                    mapping=mapping,
                )
            )
        self.recount()

    def add(self, ids: I64, vectors: F32, codes: U8) -> None:
        """Append rows (ids checked by the caller: new and unique)."""
        m, n0 = len(ids), self.n
        self._reserve(n0 + m)
        self.ids[n0 : n0 + m] = ids
        self.codes[n0 : n0 + m] = codes
        pos = 0
        while pos < m:
            if not self.segments or self.segments[-1].n >= self.segment_size:
                self.segments.append(Segment(np.zeros((0, self.dim), dtype=np.float32), 0))
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
                seg.replace_buffer(np.zeros((0, self.dim), dtype=np.float32))
        self.segments = kept
        self.n = m
        self.id_set().difference_update(gone)
        self.recount()
        if len(self.segments) > 2 * math.ceil(m / self.segment_size) + 2:
            self._repack()

    def _repack(self) -> None:
        """Merge fragmented segments into full ones (after many removals)."""
        for seg in self.segments:
            if seg.file is not None:
                self.obsolete.append(seg.obsolete())
        vectors = np.concatenate([s.view() for s in self.segments]) if self.segments else None
        for seg in self.segments:
            seg.replace_buffer(np.zeros((0, self.dim), dtype=np.float32))
        self.segments = []
        if vectors is not None:
            for start in range(0, len(vectors), self.segment_size):
                part = np.ascontiguousarray(vectors[start : start + self.segment_size])
                self.segments.append(Segment(part, len(part)))
        self.recount()

    def gather(self, rows: I64) -> F32:
        """Vectors float32[len(rows), dim] of global rows, from their segments."""
        out = np.empty((len(rows), self.dim), dtype=np.float32)
        seg_of = np.searchsorted(self.starts, rows, side="right") - 1
        local = rows - self.starts[seg_of]
        order = np.argsort(seg_of, kind="stable")
        sorted_seg = seg_of[order]
        bounds = np.flatnonzero(np.diff(sorted_seg)) + 1
        for part in np.split(order, bounds):
            seg = self.segments[int(seg_of[part[0]])]
            out[part] = seg.vectors[local[part]]
        return out

    def ids_at(self, rows: I64) -> I64:
        """The ids of global rows; -1 stays -1."""
        found = rows >= 0
        ids = np.where(found, self.ids[np.where(found, rows, 0)], -1)
        return ids.astype(np.int64, copy=False)

    def clear(self) -> None:
        """Drop every row and release buffers and mappings."""
        segments, self.segments = self.segments, []
        for seg in segments:
            seg.replace_buffer(np.zeros((0, self.dim), dtype=np.float32))
        self.ids = np.zeros(0, dtype=np.int64)
        self.codes = np.zeros((0, self.code_bytes), dtype=np.uint8)
        self.n = 0
        self._id_set = None
        self.recount()

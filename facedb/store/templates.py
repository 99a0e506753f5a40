"""Templates as stored (little-endian float32 blobs) and the reads that turn them back into
arrays for the vector stores: by face id, all of them in batches, and the audit of `check`."""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence

import numpy as np
from numpy.typing import NDArray
from sqlalchemy import select
from sqlalchemy.orm import Session

from facedb.errors import GalleryError
from facedb.models import FaceRow
from facedb.store.database import Database
from facedb.templates import content_digest

__all__ = ["TemplateQueries", "template_array", "template_blobs", "template_bytes", "usable"]

log = logging.getLogger("facedb")


def template_bytes(vector: NDArray[np.float32]) -> bytes:
    """A template as stored: little-endian float32."""
    return np.ascontiguousarray(vector, dtype="<f4").tobytes()


def template_blobs(templates: NDArray[np.float32]) -> list[memoryview]:
    """Each row of float32[N, D] as stored (the bytes of :func:`template_bytes`), as views
    of one little-endian matrix (no copy when ``templates`` is one already): the drivers
    bind any bytes-like value, and a bulk import makes no million small copies."""
    matrix = np.ascontiguousarray(templates, dtype="<f4")
    if matrix.ndim != 2:
        raise ValueError(f"templates must be a 2-D array, got shape {matrix.shape}")
    if matrix.size == 0:
        return [memoryview(b"")] * len(matrix)
    data = matrix.data.cast("B")
    size = matrix.shape[1] * 4
    return [data[i : i + size] for i in range(0, len(data), size)]


def template_array(blob: bytes, dimension: int) -> NDArray[np.float32]:
    """A stored template back as float32[dimension]."""
    array = np.frombuffer(blob, dtype="<f4")
    if array.shape != (dimension,):
        raise GalleryError(
            f"a stored template has {array.size} values, the gallery's dimension is {dimension}"
        )
    return array.astype(np.float32)


def usable(matrix: NDArray[np.float32]) -> NDArray[np.bool_]:
    """Which templates can be searched: finite and not all zeros. facedb refuses anything
    else before writing it; an older version let some through."""
    with np.errstate(over="ignore", invalid="ignore"):
        keep: NDArray[np.bool_] = np.isfinite(matrix).all(axis=1) & (
            np.abs(matrix).max(axis=1, initial=0.0) > 0
        )
    return keep


def _stack(
    ids: list[int], vectors: list[NDArray[np.float32]], dimension: int
) -> tuple[NDArray[np.int64], NDArray[np.float32]]:
    """Ids and templates as arrays, without unusable templates: one poisoned row must not make
    the whole index unbuildable (`FaceDB.check` reports such rows)."""
    matrix = np.vstack(vectors) if vectors else np.zeros((0, dimension), dtype=np.float32)
    id_array = np.asarray(ids, dtype=np.int64)
    keep = usable(matrix)
    if not keep.all():
        log.warning(
            "skipping %d unusable stored template(s) (NaN, infinite or zero; face ids %s): "
            "`facedb check` lists them",
            int((~keep).sum()),
            ", ".join(str(int(i)) for i in id_array[~keep][:10]),
        )
        id_array, matrix = id_array[keep], matrix[keep]
    return id_array, matrix.astype(np.float32, copy=False)


class TemplateQueries(Database):
    """Reads of stored templates as arrays."""

    def templates(
        self, s: Session, face_ids: Sequence[int], dimension: int
    ) -> tuple[NDArray[np.int64], NDArray[np.float32]]:
        """Inside a read or write: the templates of these faces that exist, as ids and
        float32[N, D]."""
        ids: list[int] = []
        vectors: list[NDArray[np.float32]] = []
        wanted = list(face_ids)
        for start in range(0, len(wanted), 10_000):
            chunk = wanted[start : start + 10_000]
            for face_id, blob in s.execute(select(FaceRow.id, FaceRow.template).where(FaceRow.id.in_(chunk))):
                ids.append(int(face_id))
                vectors.append(template_array(blob, dimension))
        return _stack(ids, vectors, dimension)

    def iter_templates(
        self, s: Session, dimension: int, batch: int = 50_000
    ) -> Iterator[tuple[NDArray[np.int64], NDArray[np.float32]]]:
        """Inside a read: every template, in batches of ids and float32[N, D]."""
        result = s.execute(
            select(FaceRow.id, FaceRow.template).order_by(FaceRow.id).execution_options(yield_per=batch)
        )
        for part in result.partitions(batch):
            ids = [int(r[0]) for r in part]
            yield _stack(ids, [template_array(r[1], dimension) for r in part], dimension)

    def audit_templates(self, s: Session, dimension: int) -> tuple[str, list[int]]:
        """Inside a read, one pass over every template: the
        :func:`facedb.vectors.content_digest` of the usable ones (what a vector store holding
        exactly them reports too), and the face ids whose template cannot be searched (NaN,
        infinite or zero; an older facedb could write them, and the index skips them)."""

        unusable: list[int] = []

        def usable_parts() -> Iterator[tuple[NDArray[np.int64], NDArray[np.float32]]]:
            result = s.execute(
                select(FaceRow.id, FaceRow.template).order_by(FaceRow.id).execution_options(yield_per=50_000)
            )
            for part in result.partitions(50_000):
                ids = np.asarray([int(r[0]) for r in part], dtype=np.int64)
                matrix = np.vstack([template_array(r[1], dimension) for r in part])
                keep = usable(matrix)
                unusable.extend(int(i) for i in ids[~keep])
                yield ids[keep], matrix[keep]

        return content_digest(usable_parts()), unusable

    def owned_templates(
        self, s: Session, dimension: int
    ) -> tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.float32]]:
        """Inside a read: every usable template with its face id and person, as int64[F] face
        ids, int64[F] person ids and float32[F, D] (a calibration's sample)."""
        ids: list[int] = []
        owners: list[int] = []
        vectors: list[NDArray[np.float32]] = []
        for face_id, person_id, blob in s.execute(select(FaceRow.id, FaceRow.person_id, FaceRow.template)):
            ids.append(int(face_id))
            owners.append(int(person_id))
            vectors.append(template_array(blob, dimension))
        matrix = np.vstack(vectors) if vectors else np.zeros((0, dimension), dtype=np.float32)
        keep = usable(matrix)
        return (
            np.asarray(ids, dtype=np.int64)[keep],
            np.asarray(owners, dtype=np.int64)[keep],
            matrix[keep].astype(np.float32, copy=False),
        )

"""Checking templates handed to the gallery (a search by template, a bulk import): shape,
dtype and finite float32 values, then unit length. A template that would poison the index is
refused with a ConfigError before anything is searched or written.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from typing import Any

import numpy as np
import numpy.typing as npt
from numpy.typing import NDArray

from facedb.errors import ConfigError

__all__ = ["check_matrix", "content_digest", "unit_rows"]


def check_matrix(value: Any, dimension: int, what: str) -> NDArray[np.float32]:
    """float32[N, dimension], checked after the conversion: a float64 above float32's range
    becomes inf there, and must be refused before anything is written."""
    array = np.asarray(value)
    if array.dtype.kind not in "fiu":
        raise ConfigError(f"{what} must be numbers, got dtype {array.dtype}")
    if array.ndim != 2 or array.shape[1] != dimension:
        raise ConfigError(f"{what} must have shape (N, {dimension}), got {array.shape}")
    with np.errstate(over="ignore", invalid="ignore"):
        matrix = array.astype(np.float32, copy=False)
    bad = np.flatnonzero(~np.isfinite(matrix).all(axis=1))
    if len(bad):
        raise ConfigError(f"{what} contain NaN or infinite values (as float32) in row(s) {_rows(bad)}")
    return matrix


_LARGEST_NORM = float(np.sqrt(np.finfo(np.float32).max))


def unit_rows(matrix: NDArray[np.float32], what: str) -> NDArray[np.float32]:
    """Rows scaled to unit length. The norms are taken in float64, where no float32 row can
    overflow (a float32 row of 1e20 has an infinite float32 norm); zero rows are refused."""
    norms = np.linalg.norm(matrix.astype(np.float64), axis=1, keepdims=True)
    zero = np.flatnonzero(norms[:, 0] == 0)
    if len(zero):
        raise ConfigError(f"{what}: row(s) {_rows(zero)} are all zeros")
    # Past this a float32 sum of squares overflows: such a row is no template of any model.
    huge = np.flatnonzero(norms[:, 0] > _LARGEST_NORM)
    if len(huge):
        raise ConfigError(f"{what}: row(s) {_rows(huge)} have a norm too large for float32 (over 1.8e19)")
    unit: NDArray[np.float32] = (matrix / norms).astype(np.float32)
    if not np.isfinite(unit).all():  # cannot happen for finite float32 input; never store it
        raise ConfigError(f"{what} cannot be scaled to unit length")
    return unit


def _rows(indices: NDArray[np.intp]) -> str:
    shown = ", ".join(str(int(i)) for i in indices[:10])
    return shown + (f" and {len(indices) - 10} more" if len(indices) > 10 else "")


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

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

__all__ = [
    "CHUNK_ROWS",
    "check_matrix",
    "check_norms",
    "content_digest",
    "row_norms",
    "unit_part",
    "unit_rows",
]

#: Rows checked or scaled at a time by :func:`row_norms` and a bulk import: the float64 copy
#: of 20,000 512-d rows is 80 MB, whatever the size of the whole array.
CHUNK_ROWS = 20_000


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
    norms = np.linalg.norm(matrix.astype(np.float64), axis=1)
    check_norms(norms, what)
    return unit_part(matrix, norms, what)


def check_norms(norms: NDArray[np.float64], what: str) -> None:
    """Refuses rows whose float64 norm (:func:`row_norms`) cannot make a unit template: all
    zeros, or too large for float32.

    Raises:
        ConfigError: naming the rows.
    """
    zero = np.flatnonzero(norms == 0)
    if len(zero):
        raise ConfigError(f"{what}: row(s) {_rows(zero)} are all zeros")
    # Past this a float32 sum of squares overflows: such a row is no template of any model.
    huge = np.flatnonzero(norms > _LARGEST_NORM)
    if len(huge):
        raise ConfigError(f"{what}: row(s) {_rows(huge)} have a norm too large for float32 (over 1.8e19)")


def unit_part(matrix: npt.ArrayLike, norms: NDArray[np.float64], what: str) -> NDArray[np.float32]:
    """``matrix`` (float32 values, as :func:`check_matrix` converts them) divided row by row
    by ``norms`` (checked by :func:`check_norms`), in float64, as float32: the same values
    whether the rows are scaled all at once or a part at a time."""
    with np.errstate(over="ignore", invalid="ignore"):
        rows = np.asarray(matrix).astype(np.float32, copy=False)
    # Divided in float64 and rounded into float32 as it goes: the values of a float64
    # quotient cast to float32, without the quotient's float64 temporary.
    unit: NDArray[np.float32] = np.empty(rows.shape, dtype=np.float32)
    np.divide(rows, norms[:, None], out=unit, casting="same_kind")
    if not np.isfinite(unit).all():  # cannot happen for finite float32 input; never store it
        raise ConfigError(f"{what} cannot be scaled to unit length")
    return unit


def row_norms(value: Any, dimension: int, what: str) -> tuple[NDArray[Any], NDArray[np.float64]]:
    """The checks of :func:`check_matrix` (shape, dtype, finite as float32) and each row's
    float64 norm, one chunk of :data:`CHUNK_ROWS` rows at a time: a bulk import checks a
    million templates before it writes any, without a float32, boolean or float64 copy of
    the whole array. Returns the array as given (not converted) and the norms; the norms'
    own checks are :func:`check_norms`, the scaling :func:`unit_part`.

    Raises:
        ConfigError: as :func:`check_matrix`.
    """
    array = np.asarray(value)
    if array.dtype.kind not in "fiu":
        raise ConfigError(f"{what} must be numbers, got dtype {array.dtype}")
    if array.ndim != 2 or array.shape[1] != dimension:
        raise ConfigError(f"{what} must have shape (N, {dimension}), got {array.shape}")
    norms = np.empty(len(array), dtype=np.float64)
    bad: list[NDArray[np.intp]] = []
    for start in range(0, len(array), CHUNK_ROWS):
        with np.errstate(over="ignore", invalid="ignore"):
            part = array[start : start + CHUNK_ROWS].astype(np.float32, copy=False)
        finite = np.isfinite(part).all(axis=1)
        if not finite.all():
            bad.append(np.flatnonzero(~finite) + start)
            continue
        norms[start : start + len(part)] = np.linalg.norm(part.astype(np.float64), axis=1)
    if bad:
        raise ConfigError(
            f"{what} contain NaN or infinite values (as float32) in row(s) {_rows(np.concatenate(bad))}"
        )
    return array, norms


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

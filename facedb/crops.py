"""Aligned face crops, kept losslessly so that a gallery can change models (``reembed``).

A crop is the 112x112 RGB picture the recognizer sees: the face warped onto ArcFace's five
reference points, rounded to 8 bits (facedb's engine rounds its crops as cv2 does). Every pack
aligns its faces onto those points, so the same crop gives any pack's recognizer what it
would have had from the photo, and ``reembed`` with the gallery's own pack gives back the
very templates it holds. It is kept as a PNG (about 20 KB a face, against 2 KB for a 512-d
template): biometric data, sealed with the gallery's key, erased with the face, and not kept
at all in a gallery opened with ``crops=False``.
"""

from __future__ import annotations

import io
from typing import Any

import numpy as np
from numpy.typing import NDArray

from facedb.errors import GalleryError

__all__ = ["SIDE", "crop_png", "crops_of", "png_crop"]

#: Side of a crop in pixels.
SIDE = 112


def crop_png(crop: NDArray[np.float32]) -> bytes:
    """The PNG of one aligned crop as the engine makes it (float32[3, 112, 112], RGB as
    (x - 127.5) / 127.5): the 8-bit values it was made of, exactly."""
    pixels = np.rint(np.asarray(crop, dtype=np.float64) * 127.5 + 127.5).clip(0, 255).astype(np.uint8)
    from PIL import Image

    out = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(pixels.transpose(1, 2, 0)), "RGB").save(out, "PNG", optimize=False)
    return out.getvalue()


def png_crop(data: bytes, *, face: object = None) -> NDArray[np.float32]:
    """The aligned crop (float32[3, 112, 112], as the engine makes it) of a stored PNG.

    Raises:
        GalleryError: the bytes are not a 112x112 RGB PNG (``face`` names whose).
    """
    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)) as image:
            if image.format != "PNG" or image.size != (SIDE, SIDE) or image.mode != "RGB":
                raise ValueError(f"{image.format} {image.size} {image.mode}")
            pixels = np.asarray(image, dtype=np.uint8)
    except Exception as error:  # PIL raises many kinds for a damaged file
        raise GalleryError(
            f"the stored crop of face {face} is not a {SIDE}x{SIDE} RGB PNG: {error}"
        ) from error
    return ((pixels.transpose(2, 0, 1).astype(np.float32) - 127.5) / 127.5).astype(np.float32)


def crops_of(engine: Any, pixels: NDArray[np.uint8], faces: list[Any]) -> list[bytes]:
    """The PNG crop of each face (its ``landmarks``) of one photo's RGB pixels."""
    if not faces:
        return []
    aligned = engine.align(pixels, faces, color="rgb")
    return [crop_png(c) for c in aligned.crops]

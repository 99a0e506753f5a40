"""Face thumbnails: a 112x112 JPEG of each face, aligned as the recognizer sees it.

A thumbnail is what the web page shows of a face. It is a picture of a person, so it is
biometric data like the template: stored with the face, erased with it, served only with a
read key, and not made at all in a gallery opened with ``thumbnails=False``.
"""

from __future__ import annotations

import io
from typing import Any

import numpy as np
from numpy.typing import NDArray

__all__ = ["SIZE", "pixels_of", "thumbnail"]

#: Side of a thumbnail in pixels.
SIZE = 112

#: Where the five landmarks go in a 112x112 aligned face (ArcFace's reference points).
_REFERENCE = np.array(
    [[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366], [41.5493, 92.3655], [70.7299, 92.2041]],
    dtype=np.float64,
)


def _similarity(src: NDArray[np.float64], dst: NDArray[np.float64]) -> NDArray[np.float64]:
    """The 2x3 similarity transform (rotation, uniform scale, shift) taking ``src`` points
    closest to ``dst`` in least squares (Umeyama's method)."""
    mu_s, mu_d = src.mean(axis=0), dst.mean(axis=0)
    s, d = src - mu_s, dst - mu_d
    cov = d.T @ s / len(src)
    u, sigma, vt = np.linalg.svd(cov)
    sign = np.ones(2)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        sign[-1] = -1.0
    rotation = u @ np.diag(sign) @ vt
    variance = (s**2).sum() / len(src)
    scale = float((sigma * sign).sum() / variance) if variance > 0 else 1.0
    shift = mu_d - scale * rotation @ mu_s
    return np.hstack([scale * rotation, shift[:, None]])


def pixels_of(engine: Any, photo: object) -> NDArray[np.uint8]:
    """A photo's HxWx3 RGB pixels: a path or bytes decoded as the engine decodes them (EXIF
    orientation applied), a BGR(A) array (what :func:`facedb.engine.as_photo` makes of arrays
    and PIL images) reordered."""
    if isinstance(photo, np.ndarray):
        if photo.ndim == 2:
            return np.repeat(photo[:, :, None], 3, axis=2).astype(np.uint8, copy=False)
        return np.ascontiguousarray(photo[:, :, 2::-1])
    return engine.decode(photo)  # type: ignore[no-any-return]


def thumbnail(pixels: NDArray[np.uint8], landmarks: Any, *, quality: int = 85) -> bytes:
    """The JPEG thumbnail of one face: ``pixels`` HxWx3 RGB (as :meth:`FaceEngine.decode`
    gives), ``landmarks`` the face's five points [x, y]."""
    from PIL import Image

    points = np.asarray(landmarks, dtype=np.float64).reshape(5, 2)
    forward = np.vstack([_similarity(points, _REFERENCE), [0.0, 0.0, 1.0]])
    inverse = np.linalg.inv(forward)[:2].ravel()  # Pillow maps output pixels to input ones
    image = Image.fromarray(np.ascontiguousarray(pixels[:, :, :3]), "RGB")
    crop = image.transform((SIZE, SIZE), Image.Transform.AFFINE, tuple(inverse), Image.Resampling.BILINEAR)
    out = io.BytesIO()
    crop.save(out, format="JPEG", quality=quality)
    return out.getvalue()

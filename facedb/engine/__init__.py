"""Faces in photos: the face engine and the functions that use one default engine.

The work happens in the compiled module (``facedb._native``, Rust, without the GIL); this
package turns its results into :class:`Face` records and holds the shared default engine.
A module a job:

- :mod:`~facedb.engine.photos`: what a photo may be, and how it is handed to the native
  module and named in errors;
- :mod:`~facedb.engine.faces`: the records of faces found (:class:`Face`,
  :class:`Detection`, :class:`AlignedFaces`) and the largest-face rule;
- :mod:`~facedb.engine.comparison`: similarity of templates, the default threshold and
  :class:`Verification`;
- :mod:`~facedb.engine.packs`: the model packs (``buffalo_s``, ``sface``) and their files;
- :mod:`~facedb.engine.face_engine`: :class:`FaceEngine` over the native module;
- :mod:`~facedb.engine.shared`: the default engine and the module-level functions over it.
"""

from __future__ import annotations

from facedb.engine.comparison import DEFAULT_THRESHOLD, Verification, similarity
from facedb.engine.face_engine import FaceEngine
from facedb.engine.faces import AlignedFaces, Detection, Face
from facedb.engine.faces import largest_face as largest_face
from facedb.engine.packs import DEFAULT_PACK, PACKS
from facedb.engine.photos import Color, ImageInput, about_photo, as_photo, photo_name
from facedb.engine.shared import default_engine, detect, detect_many, embedding, pack_engine, verify

__all__ = [
    "DEFAULT_PACK",
    "DEFAULT_THRESHOLD",
    "PACKS",
    "AlignedFaces",
    "Color",
    "Detection",
    "Face",
    "FaceEngine",
    "ImageInput",
    "Verification",
    "about_photo",
    "as_photo",
    "default_engine",
    "detect",
    "detect_many",
    "embedding",
    "pack_engine",
    "photo_name",
    "similarity",
    "verify",
]

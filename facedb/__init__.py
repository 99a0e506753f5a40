"""facedb: a face-search database.

Find faces in photos and compare them::

    import facedb
    faces = facedb.detect("group.jpg")            # list[facedb.Face], left to right
    v = facedb.verify("a.jpg", "b.jpg")           # facedb.Verification
    e = facedb.embedding("a.jpg")                 # float32[512] of the largest face
"""

from facedb.engine import (
    DEFAULT_THRESHOLD,
    Face,
    FaceEngine,
    ImageInput,
    Verification,
    default_engine,
    detect,
    detect_many,
    embedding,
    similarity,
    verify,
)
from facedb.errors import (
    ConfigError,
    EnrollmentRefused,
    FaceDBError,
    GalleryError,
    ImageError,
    ImageNotFound,
    ImageTooLarge,
    ModelError,
    MultipleFacesError,
    NoFaceError,
    PersonNotFound,
)

__version__ = "0.1.0"

__all__ = [
    "DEFAULT_THRESHOLD",
    "ConfigError",
    "EnrollmentRefused",
    "Face",
    "FaceDBError",
    "FaceEngine",
    "GalleryError",
    "ImageError",
    "ImageInput",
    "ImageNotFound",
    "ImageTooLarge",
    "ModelError",
    "MultipleFacesError",
    "NoFaceError",
    "PersonNotFound",
    "Verification",
    "__version__",
    "default_engine",
    "detect",
    "detect_many",
    "embedding",
    "similarity",
    "verify",
]

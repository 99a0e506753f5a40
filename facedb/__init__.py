"""facedb: a face-search database.

Find faces in photos and compare them::

    import facedb
    faces = facedb.detect("group.jpg")            # list[facedb.Face], left to right
    v = facedb.verify("a.jpg", "b.jpg")           # facedb.Verification
    e = facedb.embedding("a.jpg")                 # float32[512] of the largest face

Keep a gallery of people and ask who is who::

    with facedb.FaceDB("gallery") as db:
        db.enroll("Tom Hanks", ["tom.png", "hanks.jpg"])
        for r in db.identify("group.jpg"):
            print(r.person.name if r.person else "unknown", r.similarity)
"""

from typing import TYPE_CHECKING, Any

from facedb.calibration import Calibration
from facedb.encryption import new_key
from facedb.engine import (
    DEFAULT_THRESHOLD,
    AlignedFaces,
    Detection,
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
    DatabaseUnavailable,
    EncryptionKeyError,
    EnrollmentRefused,
    EventNotFound,
    FaceDBError,
    FaceNotFound,
    GalleryError,
    GroupNotFound,
    ImageError,
    ImageNotFound,
    ImageTooLarge,
    LastFace,
    MissingExtra,
    ModelError,
    MultipleFacesError,
    NameInUse,
    NoFaceError,
    PersonNotFound,
    RateLimited,
    ReadOnlyGallery,
    RetryLater,
    SightingNotFound,
    SubscriptionNotFound,
    VectorStoreUnavailable,
)
from facedb.quality import QualityPolicy

if TYPE_CHECKING:
    from facedb.gallery import FaceDB
    from facedb.results import AuditFinding, Candidate, CheckReport, Enrollment, Identification, Person

__version__ = "0.1.0"

# The gallery pulls in SQLAlchemy, alembic and FAISS: loaded on first use, so that
# `import facedb` stays quick for code that only compares faces.
_GALLERY_NAMES = {
    "AuditFinding",
    "Candidate",
    "CheckReport",
    "Enrollment",
    "FaceDB",
    "Identification",
    "Person",
}


def __getattr__(name: str) -> Any:
    if name == "FaceDB":
        from facedb.gallery import FaceDB

        return FaceDB
    if name in _GALLERY_NAMES:
        from facedb import results

        return getattr(results, name)
    raise AttributeError(f"module 'facedb' has no attribute {name!r}")


__all__ = [
    "DEFAULT_THRESHOLD",
    "AlignedFaces",
    "AuditFinding",
    "Calibration",
    "Candidate",
    "CheckReport",
    "ConfigError",
    "DatabaseUnavailable",
    "Detection",
    "EncryptionKeyError",
    "Enrollment",
    "EnrollmentRefused",
    "EventNotFound",
    "Face",
    "FaceDB",
    "FaceDBError",
    "FaceEngine",
    "FaceNotFound",
    "GalleryError",
    "GroupNotFound",
    "Identification",
    "ImageError",
    "ImageInput",
    "ImageNotFound",
    "ImageTooLarge",
    "LastFace",
    "MissingExtra",
    "ModelError",
    "MultipleFacesError",
    "NameInUse",
    "NoFaceError",
    "Person",
    "PersonNotFound",
    "QualityPolicy",
    "RateLimited",
    "ReadOnlyGallery",
    "RetryLater",
    "SightingNotFound",
    "SubscriptionNotFound",
    "VectorStoreUnavailable",
    "Verification",
    "__version__",
    "default_engine",
    "detect",
    "detect_many",
    "embedding",
    "new_key",
    "similarity",
    "verify",
]

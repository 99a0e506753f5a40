"""The facedb error family.

Every error facedb raises on purpose is a :class:`FaceDBError`. Each subclass is also the
builtin exception a Python user would already catch (a bad image is a ``ValueError``, an
unknown person a ``KeyError``) and carries a stable ``code`` that the CLI and the HTTP service
reuse, with the HTTP status and the CLI exit status that belong to it.
"""

from __future__ import annotations

from typing import Literal

__all__ = [
    "ConfigError",
    "DatabaseUnavailable",
    "EncryptionKeyError",
    "EnrollmentRefused",
    "EventNotFound",
    "FaceDBError",
    "FaceNotFound",
    "Forbidden",
    "GalleryError",
    "GroupNotFound",
    "IdempotencyKeyReused",
    "ImageError",
    "ImageNotFound",
    "ImageTooLarge",
    "IndexUnavailable",
    "KeyNotFound",
    "LastFace",
    "MissingExtra",
    "ModelError",
    "MultipleFacesError",
    "NameInUse",
    "NoFaceError",
    "PersonNotFound",
    "RateLimited",
    "ReadOnlyGallery",
    "RequestTooLarge",
    "RetryLater",
    "SightingNotFound",
    "SubscriptionNotFound",
    "Unauthorized",
    "VectorStoreUnavailable",
]


class FaceDBError(Exception):
    """Base class of every error facedb raises on purpose.

    Attributes:
        code: a stable machine-readable name, e.g. ``"no_face"``.
        http_status: the HTTP status the service answers with.
        exit_code: the ``facedb`` command's exit status.
    """

    code: str = "facedb_error"
    http_status: int = 500
    exit_code: int = 1

    @property
    def message(self) -> str:
        """The human-readable message, without any class name or quoting."""
        return str(self.args[0]) if self.args else self.code

    def __str__(self) -> str:
        return self.message


class ImageError(FaceDBError, ValueError):
    """An image that cannot be decoded, or an array of the wrong type or shape."""

    code = "image_invalid"
    http_status = 422
    exit_code = 2


class ImageTooLarge(ImageError):
    """An image over the pixel or byte limit (checked before decoding)."""

    code = "image_too_large"
    http_status = 413


class ImageNotFound(FaceDBError, FileNotFoundError):
    """An image path that does not exist or cannot be opened."""

    code = "image_not_found"
    http_status = 422
    exit_code = 2


class NoFaceError(FaceDBError, ValueError):
    """A photo without a face where a face is needed (embedding, verify, enrollment)."""

    code = "no_face"
    http_status = 422
    exit_code = 3


class MultipleFacesError(FaceDBError, ValueError):
    """A photo with several faces where exactly one is needed (enrollment)."""

    code = "multiple_faces"
    http_status = 422
    exit_code = 3


class EnrollmentRefused(FaceDBError, ValueError):
    """Enrollment photos refused by the gallery's gate; the message names each and why.

    Attributes:
        refused: (photo, reason) for each refused photo.
    """

    code = "enrollment_refused"
    http_status = 422
    exit_code = 3
    #: How a reason says "enroll anyway" in Python's terms.
    FORCE = "force=True"
    #: How a reason says "take the largest face of a group photo" in Python's terms.
    LARGEST_FACE = "largest_face=True"

    def __init__(self, message: str, refused: list[tuple[str, str]] | None = None) -> None:
        super().__init__(message)
        self.refused: list[tuple[str, str]] = list(refused or [])

    @classmethod
    def in_terms(cls, text: str, force: str, largest_face: str = LARGEST_FACE) -> str:
        """A refusal's text (its message, or one photo's reason) with Python's keywords in
        the caller's terms: ``in_terms(reason, "--force", "--largest-face")`` for the command
        line."""
        return text.replace(cls.FORCE, force).replace(cls.LARGEST_FACE, largest_face)

    def message_for(self, force: str, largest_face: str = LARGEST_FACE) -> str:
        """The message with "enroll anyway" and "take the largest face" in the caller's terms
        (``"--force"`` and ``"--largest-face"`` for the command line, ``"force=true"`` and
        ``"largest_face=true"`` over HTTP)."""
        return self.in_terms(self.message, force, largest_face)


class NameInUse(FaceDBError, ValueError):
    """A new person was asked for with a name somebody already has, without asking for a
    namesake: the message names their ids and how to add faces to them instead.

    Attributes:
        ids: the ids of the people who have the name.
    """

    code = "name_in_use"
    http_status = 409
    exit_code = 3

    def __init__(self, message: str, ids: list[int] | None = None) -> None:
        super().__init__(message)
        self.ids: list[int] = list(ids or [])


class LastFace(FaceDBError, ValueError):
    """The face asked to be removed is its person's last: removing it would leave a person
    nobody can be recognised as, which is removing the person, and needs what that needs
    (``last=True`` in Python, ``--last`` in the CLI, an admin's key on the web page)."""

    code = "last_face"
    http_status = 409
    exit_code = 3


class PersonNotFound(FaceDBError, KeyError):
    """No person with that id or name."""

    code = "person_not_found"
    http_status = 404
    exit_code = 4


class FaceNotFound(FaceDBError, KeyError):
    """No face (template) with that id in the gallery."""

    code = "face_not_found"
    http_status = 404
    exit_code = 4


class SightingNotFound(FaceDBError, KeyError):
    """No sighting (a visit logged by watch) with that id."""

    code = "sighting_not_found"
    http_status = 404
    exit_code = 4


class GroupNotFound(FaceDBError, KeyError):
    """No group of unnamed faces (from discover, or a watch's stranger) with that id: it may
    have been named or dismissed meanwhile."""

    code = "group_not_found"
    http_status = 404
    exit_code = 4


class SubscriptionNotFound(FaceDBError, KeyError):
    """No event subscription has this id (``facedb events list`` lists them)."""

    code = "subscription_not_found"
    http_status = 404
    exit_code = 4


class EventNotFound(FaceDBError, KeyError):
    """No failed event has this id (``facedb events list --failed`` lists them)."""

    code = "event_not_found"
    http_status = 404
    exit_code = 4


class ModelError(FaceDBError, RuntimeError):
    """A missing or unusable model file or ONNX Runtime library, or a failed inference."""

    code = "model_error"
    http_status = 500
    exit_code = 5


class GalleryError(FaceDBError, RuntimeError):
    """A gallery that is inconsistent, of an unknown version, or made with another model."""

    code = "gallery_error"
    http_status = 409
    exit_code = 6


class EncryptionKeyError(GalleryError):
    """A gallery opened without the key it is sealed with, with another key, or with a key
    when it is not sealed; or a sealed value that the key does not open (altered, or the key
    changed by another process). The message never contains a key."""

    code = "encryption_key"
    http_status = 500
    exit_code = 6


class ConfigError(FaceDBError, ValueError):
    """An argument or setting out of range (a threshold above 1, a negative size)."""

    code = "invalid_config"
    http_status = 422
    exit_code = 2


class MissingExtra(FaceDBError, ImportError):
    """A part of facedb whose packages are not installed: the message names the extra that
    brings them (``pip install 'facedb-rs[service]'``).

    Attributes:
        extra: the extra's name (``service``, ``postgres``, ``milvus``, ``video``).
    """

    code = "missing_extra"
    http_status = 500
    exit_code = 2

    def __init__(self, message: str, extra: str) -> None:
        super().__init__(message)
        self.extra = extra


class RetryLater(FaceDBError):
    """An error that may pass by itself: the caller may retry after ``retry_after`` seconds
    (the service sends it as ``Retry-After``).

    Attributes:
        retry_after: seconds after which a retry may succeed.
    """

    default_retry_after = 5.0

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = float(self.default_retry_after if retry_after is None else retry_after)


class VectorStoreUnavailable(RetryLater, GalleryError):
    """The vector store cannot answer completely right now (Milvus restarting, its collection
    still loading or partly loaded, unreachable): facedb refuses to answer rather than call
    everybody unknown. Retry after ``retry_after`` seconds.

    Attributes:
        retry_after: seconds after which a retry may succeed.
    """

    code = "vector_store_unavailable"
    http_status = 503
    exit_code = 6


class DatabaseUnavailable(RetryLater, GalleryError):
    """The gallery's SQL database cannot be reached right now (a PostgreSQL server restarting
    or down, a connection dropped, SQLite locked past its timeout). Nothing was answered from
    a partial view and nothing half-written: retry after ``retry_after`` seconds; the same
    FaceDB reconnects by itself once the server is back.

    Attributes:
        retry_after: seconds after which a retry may succeed.
    """

    code = "database_unavailable"
    http_status = 503
    exit_code = 6


class ReadOnlyGallery(GalleryError):
    """A write on a gallery opened with ``read_only=True``."""

    code = "read_only"
    http_status = 409
    exit_code = 6


class RateLimited(RetryLater):
    """Too many failed authentications from one client; retry after ``retry_after`` seconds.

    Attributes:
        retry_after: seconds until the client may try again.
    """

    code = "rate_limited"
    http_status = 429
    exit_code = 1
    default_retry_after = 60.0


class RequestTooLarge(FaceDBError):
    """An HTTP request whose body is over the service's limit (declared or streamed)."""

    code = "request_too_large"
    http_status = 413
    exit_code = 2


class IdempotencyKeyReused(FaceDBError, ValueError):
    """An idempotency key already used by the same client for a different request."""

    code = "idempotency_key_reused"
    http_status = 422
    exit_code = 2


UnavailableReason = Literal["missing", "corrupt", "foreign", "stale"]
"""Why a persisted index cannot be used as it is (see :class:`IndexUnavailable`)."""


class IndexUnavailable(GalleryError):
    """The persisted index cannot be used as it is; the gallery catches it up or rebuilds it.

    Attributes:
        reason: ``"missing"`` (no index in the folder), ``"corrupt"`` (a checksum, size or
            header that does not verify, a segment file missing), ``"foreign"`` (another
            dimension, model id or file format) or ``"stale"`` (another generation than the
            caller's; ``FaissStore.open(..., allow_stale=True)`` opens it anyway).
        found_generation: the generation stored in the index when it could be read, else None.
    """

    def __init__(self, reason: UnavailableReason, message: str, found_generation: int | None = None) -> None:
        super().__init__(message)
        self.reason: UnavailableReason = reason
        self.found_generation = found_generation


class Unauthorized(FaceDBError):
    """An HTTP request without an API key, or with an unknown or revoked one."""

    code = "unauthorized"
    http_status = 401
    exit_code = 2


class Forbidden(FaceDBError):
    """An HTTP request whose API key lacks the scope the call needs."""

    code = "forbidden"
    http_status = 403
    exit_code = 2


class KeyNotFound(FaceDBError, KeyError):
    """No API key with that id."""

    code = "key_not_found"
    http_status = 404
    exit_code = 4

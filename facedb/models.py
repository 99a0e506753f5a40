"""The gallery's SQL schema as SQLAlchemy models. The schema itself is owned by the alembic
migrations in facedb/migrations; these classes describe the newest revision."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    TypeDecorator,
)
from sqlalchemy import DateTime as SqlDateTime
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from facedb.encryption import Cipher

# BIGINT on servers, INTEGER on SQLite (where only INTEGER PRIMARY KEY is the rowid).
Id = BigInteger().with_variant(Integer(), "sqlite")


class UtcDateTime(TypeDecorator[datetime]):
    """A point in time, stored as UTC and always read back aware, in UTC.

    SQLite has no time zones: SQLAlchemy writes an aware time's wall clock and reads back a
    naive one, so a time given in another zone would be stored hours off, and every time read
    would be naive (which ``astimezone`` takes for local time). Here a time is converted to UTC
    before it is written (a naive one is taken as UTC already), and read back as UTC."""

    impl = SqlDateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        """To UTC (naive: already UTC); naive for SQLite, which would drop the zone anyway."""
        if value is None:
            return None
        utc = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
        return utc.replace(tzinfo=None) if dialect.name == "sqlite" else utc

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        """Aware, in UTC."""
        if not isinstance(value, datetime):
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def bind_cipher(dialect: Dialect, cipher: Cipher | None) -> None:
    """Makes every :class:`Sealed` column read and written through this engine's dialect
    (one per engine, so one per open gallery) sealed with ``cipher`` (None: plaintext)."""
    dialect.facedb_cipher = cipher  # type: ignore[attr-defined]


def cipher_of(dialect: Dialect) -> Cipher | None:
    """The cipher :func:`bind_cipher` gave this engine's dialect."""
    cipher: Cipher | None = getattr(dialect, "facedb_cipher", None)
    return cipher


class Sealed(TypeDecorator[bytes]):
    """Biometric bytes (a template, a thumbnail): stored as they are, or sealed with the
    gallery's key when it has one (facedb.encryption). The key is the engine's, so every read
    and write of these columns, ORM or Core, in any module, is sealed alike; a query that
    needs the stored bytes as they are (``rekey``) casts the column to LargeBinary."""

    impl = LargeBinary
    cache_ok = True

    def __init__(self, purpose: str) -> None:
        super().__init__()
        self.purpose = purpose

    def process_bind_param(self, value: bytes | None, dialect: Dialect) -> bytes | None:
        """Sealed when the gallery has a key."""
        cipher = cipher_of(dialect)
        if value is None or cipher is None:
            return value
        return cipher.seal(value, self.purpose.encode("ascii"))

    def process_result_value(self, value: Any, dialect: Dialect) -> bytes | None:
        """Opened when the gallery has a key.

        Raises:
            EncryptionKeyError: the value is not sealed with the gallery's key.
        """
        if value is None:
            return None
        cipher = cipher_of(dialect)
        return bytes(value) if cipher is None else cipher.open(value, self.purpose.encode("ascii"))


class Base(DeclarativeBase):
    """Declarative base of the gallery's tables."""


class GalleryRow(Base):
    """One row of gallery-wide facts: the model that made the templates, their dimension, and
    the generation, bumped by every change to the set of templates."""

    __tablename__ = "gallery"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    model_id: Mapped[str] = mapped_column(String(200))
    dimension: Mapped[int] = mapped_column(Integer)
    generation: Mapped[int] = mapped_column(BigInteger, default=0)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    uid: Mapped[str | None] = mapped_column(String(36), nullable=True)
    #: The key the gallery's templates and thumbnails are sealed with (its id, derived from
    #: the key: facedb.encryption); None when they are not sealed.
    key_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    #: The model pack that made the templates (facedb.engine.packs); None for a gallery of
    #: a recognizer file that is no pack's.
    pack: Mapped[str | None] = mapped_column(String(40), nullable=True)


class PersonRow(Base):
    """A person. Names are labels, not keys: several people may share one."""

    __tablename__ = "people"
    __table_args__ = (Index("ix_people_name", "name"), {"sqlite_autoincrement": True})

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(500))
    metadata_json: Mapped[str] = mapped_column("metadata", Text, default="{}")
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())


class FaceRow(Base):
    """One template of a person, with where it came from. Ids are never reused (AUTOINCREMENT),
    so an index entry can never come to mean another face."""

    __tablename__ = "faces"
    __table_args__ = (
        Index("ix_faces_person", "person_id"),
        Index("ix_faces_id_person", "id", "person_id"),  # the hits' owners (store/people.py)
        Index("ix_faces_person_image", "person_id", "image_sha256"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    person_id: Mapped[int] = mapped_column(Id, ForeignKey("people.id", ondelete="CASCADE"))
    template: Mapped[bytes] = mapped_column(Sealed("template"))
    model_id: Mapped[str] = mapped_column(String(200))
    x1: Mapped[float | None] = mapped_column(Float, nullable=True)
    y1: Mapped[float | None] = mapped_column(Float, nullable=True)
    x2: Mapped[float | None] = mapped_column(Float, nullable=True)
    y2: Mapped[float | None] = mapped_column(Float, nullable=True)
    det_score: Mapped[float | None] = mapped_column(Float, nullable=True)
    image_sha256: Mapped[str | None] = mapped_column(String(64), nullable=True)
    image_name: Mapped[str | None] = mapped_column(String(1000), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    #: The face's quality score (0..1) when it was enrolled; None for imported templates.
    quality: Mapped[float | None] = mapped_column(Float, nullable=True)
    #: A 112x112 JPEG of the aligned face, for the web page; None for imported templates
    #: and in galleries made with ``thumbnails=False``. Biometric data: erased with the face.
    thumbnail: Mapped[bytes | None] = mapped_column(Sealed("thumbnail"), nullable=True)
    #: The pack that made the template (as the gallery's; None for a file that is no pack's).
    pack: Mapped[str | None] = mapped_column(String(40), nullable=True)
    #: The aligned 112x112 crop the template was made from, as a lossless PNG, so that
    #: ``reembed`` can make this face's template with another pack; None for imported
    #: templates and in galleries opened with ``crops=False``. Erased with the face.
    crop: Mapped[bytes | None] = mapped_column(Sealed("crop"), nullable=True)


class ReembedRow(Base):
    """A face's template made by ``reembed`` with another pack, kept until the swap: a
    re-embedding interrupted by a crash resumes from these. Erased with the face."""

    __tablename__ = "reembeds"

    id: Mapped[int] = mapped_column(Id, ForeignKey("faces.id", ondelete="CASCADE"), primary_key=True)
    model_id: Mapped[str] = mapped_column(String(200))
    template: Mapped[bytes] = mapped_column(Sealed("template"))


class ChangeRow(Base):
    """Which face ids each generation added or removed, so that another process (or an index
    saved a little earlier) catches up without rereading every template."""

    __tablename__ = "changes"
    __table_args__ = (Index("ix_changes_generation", "generation"), {"sqlite_autoincrement": True})

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    generation: Mapped[int] = mapped_column(BigInteger)
    face_id: Mapped[int] = mapped_column(BigInteger)
    op: Mapped[str] = mapped_column(String(8))  # "add" or "remove"


class ApiKeyRow(Base):
    """An HTTP API key: only its SHA-256 is stored; the secret is shown once, at creation."""

    __tablename__ = "api_keys"
    __table_args__ = ({"sqlite_autoincrement": True},)

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(200))
    prefix: Mapped[str] = mapped_column(String(16))
    secret_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    scope: Mapped[str] = mapped_column(String(16))  # read, enroll or admin
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)


class StrangerRow(Base):
    """A group of faces that matched nobody: a stranger a watch saw, or a group found by
    ``discover``. Its template (the mean of its faces', unit length) and its faces are
    biometric data too: removed with `facedb forget-strangers`, or when it is named or
    dismissed."""

    __tablename__ = "strangers"
    __table_args__ = ({"sqlite_autoincrement": True},)

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    template: Mapped[bytes] = mapped_column(Sealed("template"))
    first_seen: Mapped[datetime] = mapped_column(UtcDateTime())
    last_seen: Mapped[datetime] = mapped_column(UtcDateTime())
    #: "watch" or "discover" (None: a stranger stored before groups had an origin, a watch's).
    origin: Mapped[str | None] = mapped_column(String(16), nullable=True)


class StrangerFaceRow(Base):
    """One face of a group (a stranger): the photo (or video source) it was seen in, where,
    its template and its thumbnail."""

    __tablename__ = "stranger_faces"
    __table_args__ = (
        Index("ix_stranger_faces_stranger", "stranger_id"),
        Index("ix_stranger_faces_photo", "photo"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    stranger_id: Mapped[int] = mapped_column(Id, ForeignKey("strangers.id", ondelete="CASCADE"))
    photo: Mapped[str] = mapped_column(String(1000))
    x1: Mapped[float] = mapped_column(Float)
    y1: Mapped[float] = mapped_column(Float)
    x2: Mapped[float] = mapped_column(Float)
    y2: Mapped[float] = mapped_column(Float)
    det_score: Mapped[float] = mapped_column(Float)
    quality: Mapped[float | None] = mapped_column(Float, nullable=True)
    template: Mapped[bytes] = mapped_column(Sealed("template"))
    thumbnail: Mapped[bytes | None] = mapped_column(Sealed("thumbnail"), nullable=True)
    seen_at: Mapped[datetime] = mapped_column(UtcDateTime())


class DiscoveredPhotoRow(Base):
    """A photo ``discover`` has looked at (its absolute path, or an upload's name and content
    hash): it is not looked at again, even when its groups were dismissed."""

    __tablename__ = "discovered_photos"
    __table_args__ = ({"sqlite_autoincrement": True},)

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    photo: Mapped[str] = mapped_column(String(1000), unique=True)
    discovered_at: Mapped[datetime] = mapped_column(UtcDateTime())


class SightingRow(Base):
    """One visit: a person (or a stranger) recognised in enough sampled frames, from the first
    to the last frame they were seen in before the cool-down ended."""

    __tablename__ = "sightings"
    __table_args__ = (
        Index("ix_sightings_first_seen", "first_seen"),
        Index("ix_sightings_person", "person_id"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    person_id: Mapped[int | None] = mapped_column(
        Id, ForeignKey("people.id", ondelete="CASCADE"), nullable=True
    )
    stranger_id: Mapped[int | None] = mapped_column(
        Id, ForeignKey("strangers.id", ondelete="CASCADE"), nullable=True
    )
    source: Mapped[str] = mapped_column(String(1000))
    first_seen: Mapped[datetime] = mapped_column(UtcDateTime())
    last_seen: Mapped[datetime] = mapped_column(UtcDateTime())
    similarity: Mapped[float] = mapped_column(Float)
    x1: Mapped[float] = mapped_column(Float)
    y1: Mapped[float] = mapped_column(Float)
    x2: Mapped[float] = mapped_column(Float)
    y2: Mapped[float] = mapped_column(Float)
    frames: Mapped[int] = mapped_column(Integer)
    #: The template of the visit's best frame, so that it can be confirmed or rejected later
    #: (biometric data: removed with the person, or with the strangers).
    template: Mapped[bytes | None] = mapped_column(Sealed("template"), nullable=True)
    #: A 112x112 JPEG of the face as the visit began, so that a reviewer sees whom "It's them"
    #: or "Not them" is about; None where the gallery keeps no thumbnails. Erased with the visit.
    thumbnail: Mapped[bytes | None] = mapped_column(Sealed("thumbnail"), nullable=True)


class CalibrationRow(Base):
    """A calibration of the naming threshold on the gallery's own templates (or the model's
    prior): the newest row is the one in force."""

    __tablename__ = "calibrations"
    __table_args__ = ({"sqlite_autoincrement": True},)

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    model_id: Mapped[str] = mapped_column(String(200))
    target_kind: Mapped[str] = mapped_column(String(8))  # "fpir" or "fmr"
    target: Mapped[float] = mapped_column(Float)
    threshold: Mapped[float] = mapped_column(Float)
    source: Mapped[str] = mapped_column(String(200))
    people: Mapped[int] = mapped_column(Integer)
    faces: Mapped[int] = mapped_column(Integer)
    estimated_fpir: Mapped[float | None] = mapped_column(Float, nullable=True)
    estimated_fnir: Mapped[float | None] = mapped_column(Float, nullable=True)
    params: Mapped[str] = mapped_column(Text)  # the score model, as JSON


class RejectionRow(Base):
    """ "Not this person": a face's template stored as a negative example of a person, so that
    a later face closer to it than to the person's own faces is not named them. Erased with
    the person."""

    __tablename__ = "rejections"
    __table_args__ = (Index("ix_rejections_person", "person_id"), {"sqlite_autoincrement": True})

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    person_id: Mapped[int] = mapped_column(Id, ForeignKey("people.id", ondelete="CASCADE"))
    template: Mapped[bytes] = mapped_column(Sealed("template"))
    model_id: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())


class VectorSyncRow(Base):
    """The generation of the change log that a shared vector store (Milvus) has applied: what
    it still owes is every change after it (the change log is the outbox)."""

    __tablename__ = "vector_sync"

    store: Mapped[str] = mapped_column(String(500), primary_key=True)
    generation: Mapped[int] = mapped_column(BigInteger)


class IdempotencyRow(Base):
    """An enrollment request's idempotency key and the answer it got, written in the
    enrollment's own transaction: a retry of the same request is answered from here, even
    after a crash between the commit and the answer, by any process on the gallery."""

    __tablename__ = "idempotency"
    __table_args__ = (Index("ix_idempotency_created_at", "created_at"),)

    key: Mapped[str] = mapped_column(String(300), primary_key=True)
    fingerprint: Mapped[str] = mapped_column(String(64))
    result: Mapped[str] = mapped_column(Text)  # the Enrollment, as JSON
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())


class EventSubscriptionRow(Base):
    """Where events go: a webhook URL or an MQTT broker and topic prefix, and which event types.

    ``types`` is the comma-separated list with a comma on each side (``,visit.started,``), so
    that the write path finds the subscriptions of a type with one indexed-free LIKE. ``secret``
    is a webhook's signing key or an MQTT password, sealed like a template when the gallery has
    a key, and erased with the row. ``lease_owner``/``lease_until``: the dispatcher delivering
    for it now (one at a time, so that order is kept)."""

    __tablename__ = "event_subscriptions"
    __table_args__ = ({"sqlite_autoincrement": True},)

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(16))  # "webhook" or "mqtt"
    target: Mapped[str] = mapped_column(String(2000))
    types: Mapped[str] = mapped_column(String(1000))
    secret: Mapped[bytes | None] = mapped_column(Sealed("event-secret"), nullable=True)
    options: Mapped[str] = mapped_column(Text, default="{}")
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    lease_owner: Mapped[str | None] = mapped_column(String(200), nullable=True)
    lease_until: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)


class EventRow(Base):
    """One event of the outbox (facedb.events): written in the transaction of what caused it."""

    __tablename__ = "events"
    __table_args__ = ({"sqlite_autoincrement": True},)

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    uid: Mapped[str] = mapped_column(String(40), unique=True)
    type: Mapped[str] = mapped_column(String(64))
    occurred_at: Mapped[datetime] = mapped_column(UtcDateTime())
    data: Mapped[str] = mapped_column(Text)  # the event's data, as JSON


class EventDeliveryRow(Base):
    """What one subscription still owes of one event: ``pending`` (with its next attempt) or
    ``failed`` (given up on: the dead letters). Deleted once delivered."""

    __tablename__ = "event_deliveries"
    __table_args__ = (
        Index("ix_event_deliveries_lane", "subscription_id", "state", "event_id"),
        Index("ix_event_deliveries_event", "event_id"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    event_id: Mapped[int] = mapped_column(Id, ForeignKey("events.id", ondelete="CASCADE"))
    subscription_id: Mapped[int] = mapped_column(Id, ForeignKey("event_subscriptions.id", ondelete="CASCADE"))
    state: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    queued_at: Mapped[datetime] = mapped_column(UtcDateTime())
    next_attempt_at: Mapped[datetime] = mapped_column(UtcDateTime())
    last_error: Mapped[str | None] = mapped_column(String(1000), nullable=True)

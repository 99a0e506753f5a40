"""The gallery's SQL schema as SQLAlchemy models. The schema itself is owned by the alembic
migrations in facedb/migrations; these classes describe the newest revision."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, DateTime, Float, ForeignKey, Index, Integer, LargeBinary, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

# BIGINT on servers, INTEGER on SQLite (where only INTEGER PRIMARY KEY is the rowid).
Id = BigInteger().with_variant(Integer(), "sqlite")


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
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    uid: Mapped[str | None] = mapped_column(String(36), nullable=True)


class PersonRow(Base):
    """A person. Names are labels, not keys: several people may share one."""

    __tablename__ = "people"
    __table_args__ = (Index("ix_people_name", "name"), {"sqlite_autoincrement": True})

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(500))
    metadata_json: Mapped[str] = mapped_column("metadata", Text, default="{}")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class FaceRow(Base):
    """One template of a person, with where it came from. Ids are never reused (AUTOINCREMENT),
    so an index entry can never come to mean another face."""

    __tablename__ = "faces"
    __table_args__ = (
        Index("ix_faces_person", "person_id"),
        Index("ix_faces_person_image", "person_id", "image_sha256"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    person_id: Mapped[int] = mapped_column(Id, ForeignKey("people.id", ondelete="CASCADE"))
    template: Mapped[bytes] = mapped_column(LargeBinary)
    model_id: Mapped[str] = mapped_column(String(200))
    x1: Mapped[float | None] = mapped_column(Float, nullable=True)
    y1: Mapped[float | None] = mapped_column(Float, nullable=True)
    x2: Mapped[float | None] = mapped_column(Float, nullable=True)
    y2: Mapped[float | None] = mapped_column(Float, nullable=True)
    det_score: Mapped[float | None] = mapped_column(Float, nullable=True)
    image_sha256: Mapped[str | None] = mapped_column(String(64), nullable=True)
    image_name: Mapped[str | None] = mapped_column(String(1000), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    #: The face's quality score (0..1) when it was enrolled; None for imported templates.
    quality: Mapped[float | None] = mapped_column(Float, nullable=True)


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
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class StrangerRow(Base):
    """A face seen by a watch that matched nobody, kept to group its recurrences. Its
    template is biometric data too: removed with `facedb forget-strangers`."""

    __tablename__ = "strangers"
    __table_args__ = ({"sqlite_autoincrement": True},)

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    template: Mapped[bytes] = mapped_column(LargeBinary)
    first_seen: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    last_seen: Mapped[datetime] = mapped_column(DateTime(timezone=True))


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
    first_seen: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    last_seen: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    similarity: Mapped[float] = mapped_column(Float)
    x1: Mapped[float] = mapped_column(Float)
    y1: Mapped[float] = mapped_column(Float)
    x2: Mapped[float] = mapped_column(Float)
    y2: Mapped[float] = mapped_column(Float)
    frames: Mapped[int] = mapped_column(Integer)
    #: The template of the visit's best frame, so that it can be confirmed or rejected later
    #: (biometric data: removed with the person, or with the strangers).
    template: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)


class CalibrationRow(Base):
    """A calibration of the naming threshold on the gallery's own templates (or the model's
    prior): the newest row is the one in force."""

    __tablename__ = "calibrations"
    __table_args__ = ({"sqlite_autoincrement": True},)

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
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
    template: Mapped[bytes] = mapped_column(LargeBinary)
    model_id: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


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
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))

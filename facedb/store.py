"""The gallery's SQL store: people, templates and gallery facts, the source of truth.

SQLite (a folder's gallery.db) or any SQLAlchemy URL (PostgreSQL is tested). The schema is
migrated on open by alembic. Every change to the set of templates bumps the gallery's
generation and logs the face ids it added or removed in the same transaction, so that a
derived vector index can tell whether it is current and catch up.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from importlib import resources
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import quote

import numpy as np
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from numpy.typing import NDArray
from sqlalchemy import (
    Connection,
    Engine,
    Table,
    create_engine,
    delete,
    event,
    func,
    insert,
    select,
    text,
    update,
)
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import DBAPIError, DisconnectionError, InterfaceError, OperationalError, SQLAlchemyError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.orm import Session, aliased

from facedb.errors import DatabaseUnavailable, GalleryError, ReadOnlyGallery
from facedb.models import ChangeRow, FaceRow, GalleryRow, IdempotencyRow, PersonRow, VectorSyncRow

__all__ = ["ChangeSet", "FaceInfo", "GalleryFacts", "PersonFields", "Store", "head_revision", "migrate"]

log = logging.getLogger("facedb")

#: How many generations of the change log are kept; an index further behind is rebuilt.
CHANGE_LOG_GENERATIONS = 10_000


@dataclass(frozen=True, slots=True)
class GalleryFacts:
    """What the gallery records about itself."""

    model_id: str
    dimension: int
    generation: int
    uid: str


@dataclass(frozen=True, slots=True)
class FaceInfo:
    """Where a template came from (all optional for imported templates)."""

    bbox: Sequence[float] | None = None
    det_score: float | None = None
    image_sha256: str | None = None
    image_name: str | None = None


@dataclass(frozen=True, slots=True)
class ChangeSet:
    """Face ids added and removed after some generation, up to `generation`."""

    generation: int
    added: frozenset[int]
    removed: frozenset[int]


def _alembic_config(connection: Connection) -> Config:
    config = Config()
    config.set_main_option("script_location", str(resources.files("facedb") / "migrations"))
    config.attributes["connection"] = connection
    return config


def head_revision() -> str:
    """The newest schema revision this facedb knows."""
    config = Config()
    config.set_main_option("script_location", str(resources.files("facedb") / "migrations"))
    head = ScriptDirectory.from_config(config).get_current_head()
    if head is None:
        raise GalleryError("facedb's migrations have no head revision")
    return head


def migrate(connection: Connection, revision: str = "head") -> None:
    """Upgrades (or, for a revision below the current one, downgrades) the schema."""
    config = _alembic_config(connection)
    current = MigrationContext.configure(connection).get_current_revision()
    script = ScriptDirectory.from_config(config)
    order = [r.revision for r in script.walk_revisions()]  # newest first
    if current is not None and current not in order:
        raise GalleryError(
            f"the gallery's schema is at revision {current}, which this facedb does not know: "
            f"it was written by a newer facedb (this one knows up to {head_revision()}); upgrade facedb"
        )
    target = order[0] if revision == "head" else revision
    if target != "base" and target not in order:
        raise GalleryError(f"unknown schema revision {target!r}; known: base, {', '.join(order)}")
    # `order` is newest first: a target further down the list than the current revision is older.
    if current is not None and (target == "base" or order.index(target) > order.index(current)):
        command.downgrade(config, revision)
    else:
        command.upgrade(config, revision)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # The driver's own transaction handling is off: facedb emits BEGIN itself (see _begin).
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    # WAL lets readers go on while one process writes; FULL makes a returned commit durable;
    # foreign keys make removing a person remove their faces; secure_delete zeroes freed
    # pages so that an erased template leaves no bytes in the file.
    for pragma in (
        # 8 KiB pages hold three 2 KiB templates where 4 KiB pages hold one (a new database
        # only: an existing one keeps its page size).
        "page_size=8192",
        "journal_mode=WAL",
        "synchronous=FULL",
        "foreign_keys=ON",
        "secure_delete=ON",
        "busy_timeout=30000",
    ):
        cursor.execute(f"PRAGMA {pragma}")
    cursor.close()


def _check_model(row: GalleryRow, model_id: str, dimension: int, where: str) -> None:
    if row.model_id != model_id or row.dimension != dimension:
        raise GalleryError(
            f"the gallery at {where} holds templates of model {row.model_id} "
            f"({row.dimension}-d); this engine makes {model_id} ({dimension}-d): "
            "templates of different models cannot be compared"
        )


def _check_revision(connection: Connection, where: str) -> None:
    """A read-only opener cannot migrate: the schema must already be this facedb's."""
    current = MigrationContext.configure(connection).get_current_revision()
    connection.rollback()
    head = head_revision()
    if current == head:
        return
    if current is None:
        raise GalleryError(f"{where} holds no facedb gallery (opened read-only, nothing was created)")
    raise GalleryError(
        f"the gallery {where} has schema revision {current}, this facedb needs {head}: open it once "
        "without read-only to upgrade it (or use the facedb that wrote it)"
    )


def _read_only_sqlite(url: URL) -> URL:
    """The same SQLite database opened through a read-only URI (mode=ro): SQLite itself
    refuses every write, and nothing is created where the file is missing.

    A WAL database needs its -shm file, which SQLite cannot create on a read-only volume. A
    gallery closed cleanly has no WAL left (facedb checkpoints and SQLite removes it), and is
    then opened as immutable: nothing can change it through a read-only mount."""
    path = url.database or ""
    query = {"mode": "ro", "uri": "true"}
    wal = Path(f"{path}-wal")
    if not os.access(Path(path).parent, os.W_OK) and not Path(f"{path}-shm").exists():
        if not wal.exists() or wal.stat().st_size == 0:
            query["immutable"] = "1"
    return url.set(database=f"file:{quote(path)}", query=query)


def _sqlite_read_only_pragmas(dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    for pragma in ("query_only=ON", "foreign_keys=ON", "busy_timeout=30000"):
        cursor.execute(f"PRAGMA {pragma}")
    cursor.close()


#: The PostgreSQL advisory lock that serialises schema migrations and a gallery's creation.
_MIGRATION_LOCK = 0x46414345  # "FACE"


def _serialize(connection: Connection) -> None:
    """Inside a transaction: waits until no other process migrates or creates the gallery
    (a transaction-scoped advisory lock on PostgreSQL; SQLite writers already hold the
    database's write lock)."""
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK})


def _begin(connection: Connection) -> None:
    # A writer takes SQLite's write lock when it begins (IMMEDIATE), not halfway through,
    # where a concurrent writer would make it fail instead of wait.
    write = connection.get_execution_options().get("facedb_write", False)
    connection.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")


def template_bytes(vector: NDArray[np.float32]) -> bytes:
    """A template as stored: little-endian float32."""
    return np.ascontiguousarray(vector, dtype="<f4").tobytes()


def template_array(blob: bytes, dimension: int) -> NDArray[np.float32]:
    """A stored template back as float32[dimension]."""
    array = np.frombuffer(blob, dtype="<f4")
    if array.shape != (dimension,):
        raise GalleryError(
            f"a stored template has {array.size} values, the gallery's dimension is {dimension}"
        )
    return array.astype(np.float32)


class PersonFields(Protocol):
    """A person's columns, as an ORM row or a plain result row has them."""

    @property
    def id(self) -> int: ...
    @property
    def name(self) -> str: ...
    @property
    def metadata_json(self) -> str: ...
    @property
    def created_at(self) -> datetime: ...


_GENERATION = select(GalleryRow.generation).where(GalleryRow.id == 1)
_OTHER_FACE = aliased(FaceRow)
_OWNERS = select(
    FaceRow.id.label("face_id"),
    PersonRow.id.label("id"),
    PersonRow.name.label("name"),
    PersonRow.metadata_json.label("metadata_json"),
    PersonRow.created_at.label("created_at"),
    select(func.count())
    .select_from(_OTHER_FACE)
    .where(_OTHER_FACE.person_id == PersonRow.id)
    .correlate(PersonRow)
    .scalar_subquery()
    .label("face_count"),
).join(PersonRow, PersonRow.id == FaceRow.person_id)


class Store:
    """SQL access for one gallery. Thread-safe: each call takes its own connection.

    Args:
        url: a SQLAlchemy URL (``sqlite:///folder/gallery.db``, ``postgresql+psycopg://...``).
        read_only: never write (no migration; every write is :class:`ReadOnlyGallery`).
        create: set up the schema in an empty database; False refuses one.
    """

    def __init__(self, url: str, *, read_only: bool = False, create: bool = True) -> None:
        parsed = make_url(url)
        if parsed.drivername == "postgresql":
            parsed = parsed.set(drivername="postgresql+psycopg")  # psycopg 3, per CONTRACTS.md
        self.url = parsed
        self.is_sqlite = parsed.get_backend_name() == "sqlite"
        self.read_only = read_only
        self._write_lock = threading.Lock()
        try:
            if self.is_sqlite:
                # Pooled connections: opening one (and its PRAGMAs) costs about a millisecond,
                # a third of a search. Idle pooled connections hold no read transaction, so
                # they never stop a WAL checkpoint.
                target = _read_only_sqlite(parsed) if read_only else parsed
                self.engine: Engine = create_engine(target, pool_size=8, max_overflow=16)
                event.listen(
                    self.engine, "connect", _sqlite_read_only_pragmas if read_only else _sqlite_pragmas
                )
                event.listen(self.engine, "begin", _begin)
            else:
                connect_args = {"options": "-c default_transaction_read_only=on"} if read_only else {}
                self.engine = create_engine(
                    parsed, pool_pre_ping=True, pool_size=8, connect_args=connect_args
                )
            with self.engine.connect() as conn:
                if read_only:
                    _check_revision(conn, self.safe_url)
                else:
                    if not create:
                        found = MigrationContext.configure(conn).get_current_revision()
                        conn.rollback()
                        if found is None:
                            raise GalleryError(f"{self.safe_url} holds no facedb gallery (and create=False)")
                    conn = conn.execution_options(facedb_write=True)
                    with conn.begin():
                        # Any number of processes may open a fresh database at once: one
                        # migrates, the others wait and find it done (SQLite's BEGIN IMMEDIATE
                        # does the same).
                        _serialize(conn)
                        migrate(conn)
        except GalleryError:
            raise
        except SQLAlchemyError as e:
            raise _database_error(
                e, f"cannot open the gallery database {self.safe_url}: {_reason(e)}"
            ) from None

    @property
    def safe_url(self) -> str:
        """The URL with any password hidden, for messages and logs."""
        return self.url.render_as_string(hide_password=True)

    def close(self) -> None:
        """Closes every connection; on SQLite, checkpoints the WAL into the database first
        (a failed checkpoint loses nothing: the WAL is replayed by the next opener)."""
        try:
            self.checkpoint()
        except GalleryError as e:
            log.warning("closing %s: %s", self.safe_url, e)
        self.engine.dispose()

    def checkpoint(self) -> bool:
        """Copies SQLite's WAL into the database and truncates it to zero bytes, so that no
        erased row survives in the WAL. False when another connection still reads it."""
        if not self.is_sqlite or self.read_only:
            return True
        try:
            with self.engine.connect() as conn:
                row = conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        except SQLAlchemyError as e:
            raise GalleryError(
                f"cannot checkpoint the gallery database {self.safe_url}: {_reason(e)}"
            ) from None
        return row is not None and row[0] == 0

    @contextmanager
    def read(self) -> Iterator[Session]:
        """A read-only session (one transaction, a consistent snapshot)."""
        try:
            with Session(self.engine) as session, session.begin():
                yield session
        except SQLAlchemyError as e:
            raise _database_error(e, f"gallery database {self.safe_url} failed: {_reason(e)}") from None

    @contextmanager
    def _query(self) -> Iterator[Connection]:
        """A read on a bare connection, for the search path's small lookups: a third of the
        cost of an ORM session (one transaction all the same)."""
        try:
            with self.engine.connect() as conn:
                yield conn
        except SQLAlchemyError as e:
            raise _database_error(e, f"gallery database {self.safe_url} failed: {_reason(e)}") from None

    @contextmanager
    def write(self) -> Iterator[Session]:
        """A write transaction: all of it commits when the block ends, or none of it.

        Raises:
            ReadOnlyGallery: the store was opened read-only.
        """
        if self.read_only:
            raise ReadOnlyGallery(f"the gallery {self.safe_url} is open read-only: nothing can be changed")
        with self._write_lock:
            try:
                with self.engine.connect() as conn:
                    conn = conn.execution_options(facedb_write=True)
                    with Session(bind=conn) as session, session.begin():
                        yield session
            except SQLAlchemyError as e:
                raise _database_error(e, f"gallery database {self.safe_url} failed: {_reason(e)}") from None

    # -- gallery facts ---------------------------------------------------------------------

    def generation(self) -> int:
        """The current generation (0 for a new gallery): one cheap query."""
        with self._query() as conn:
            return int(conn.execute(_GENERATION).scalar() or 0)

    def claim(self, model_id: str, dimension: int, uid: str | None = None) -> GalleryFacts:
        """Records the model of a new gallery (and its identity: `uid`, or a new one), or
        checks an existing gallery's against it."""
        if self.read_only:
            with self.read() as s:
                found = s.get(GalleryRow, 1)
                if found is None or not found.uid:
                    raise GalleryError(f"{self.safe_url} holds no facedb gallery yet (opened read-only)")
                _check_model(found, model_id, dimension, self.safe_url)
                return GalleryFacts(found.model_id, found.dimension, found.generation, found.uid)
        with self.write() as s:
            _serialize(s.connection())  # two first openers must not both create the row
            row = s.get(GalleryRow, 1)
            if row is None:
                row = GalleryRow(
                    id=1,
                    model_id=model_id,
                    dimension=dimension,
                    generation=0,
                    created_at=_now(),
                    uid=uid or str(uuid.uuid4()),
                )
                s.add(row)
            else:
                _check_model(row, model_id, dimension, self.safe_url)
            if not row.uid:
                row.uid = str(uuid.uuid4())
            return GalleryFacts(row.model_id, row.dimension, row.generation, row.uid)

    @staticmethod
    def bump(s: Session, added: Sequence[int] = (), removed: Sequence[int] = ()) -> int:
        """Inside a write: the next generation, with the faces it added and removed logged.

        The database increments and returns it in one statement, which also locks the row
        until the transaction ends: concurrent writers get distinct generations, in the order
        they commit (a value read and written back from Python would let two commits share
        one, and whoever applied one would believe it had both)."""
        generation = int(
            s.execute(
                update(GalleryRow)
                .where(GalleryRow.id == 1)
                .values(generation=GalleryRow.generation + 1)
                .returning(GalleryRow.generation)
            ).scalar_one()
        )
        rows = [{"generation": generation, "face_id": i, "op": "add"} for i in added]
        rows += [{"generation": generation, "face_id": i, "op": "remove"} for i in removed]
        if rows:
            s.execute(insert(_table(ChangeRow)), rows)
        s.execute(delete(ChangeRow).where(ChangeRow.generation <= generation - CHANGE_LOG_GENERATIONS))
        return generation

    def changes_since(self, generation: int) -> ChangeSet | None:
        """What changed after `generation`; None when the log no longer reaches back that far."""
        with self.read() as s:
            return Store.changes_after(s, generation)

    @staticmethod
    def changes_after(s: Session, generation: int) -> ChangeSet | None:
        """Inside a read or write: the net change after `generation` up to the snapshot's
        generation; None when the log no longer reaches back that far (rebuild instead)."""
        current = Store.current_generation(s)
        if generation > current or generation < current - CHANGE_LOG_GENERATIONS + 1:
            return None
        added: set[int] = set()
        removed: set[int] = set()
        # Up to `current` only: under READ COMMITTED each statement sees the newest commits,
        # and a later generation's changes must not be claimed as part of this one.
        rows = s.execute(
            select(ChangeRow.face_id, ChangeRow.op)
            .where(ChangeRow.generation > generation, ChangeRow.generation <= current)
            .order_by(ChangeRow.generation, ChangeRow.id)
        )
        for face_id, op in rows:
            if op == "add":
                added.add(int(face_id))
            else:
                added.discard(int(face_id))
                removed.add(int(face_id))
        return ChangeSet(current, frozenset(added), frozenset(removed))

    @staticmethod
    def applied_generation(s: Session, store_key: str) -> int:
        """Inside a write: how far a shared vector store has applied the log (-1: never);
        the row stays locked until the transaction ends, so one process replays at a time."""
        # The row is created first if missing (by one of any number of first replayers: the
        # others find it), so that there is always a row to lock.
        dialect = s.get_bind().dialect.name
        if dialect == "postgresql":
            s.execute(
                postgresql_insert(_table(VectorSyncRow))
                .values(store=store_key, generation=-1)
                .on_conflict_do_nothing(index_elements=["store"])
            )
        elif dialect == "sqlite":
            s.execute(
                sqlite_insert(_table(VectorSyncRow))
                .values(store=store_key, generation=-1)
                .on_conflict_do_nothing(index_elements=["store"])
            )
        row = s.execute(
            select(VectorSyncRow).where(VectorSyncRow.store == store_key).with_for_update()
        ).scalar_one_or_none()
        return -1 if row is None else int(row.generation)

    @staticmethod
    def set_applied_generation(s: Session, store_key: str, generation: int) -> None:
        """Inside a write: records that a shared vector store has applied the log up to here."""
        row = s.get(VectorSyncRow, store_key)
        if row is None:
            s.add(VectorSyncRow(store=store_key, generation=generation))
        else:
            row.generation = generation

    def sync_state(self, store_key: str) -> tuple[int, int]:
        """(how far a shared vector store has applied the log, -1 for never; the current
        generation), from one snapshot and without locking."""
        with self._query() as conn:
            applied = conn.execute(
                select(VectorSyncRow.generation).where(VectorSyncRow.store == store_key)
            ).scalar()
            current = conn.execute(_GENERATION).scalar()
        return (-1 if applied is None else int(applied)), int(current or 0)

    @staticmethod
    def templates_in(
        s: Session, face_ids: Sequence[int], dimension: int
    ) -> tuple[NDArray[np.int64], NDArray[np.float32]]:
        """Inside a read or write: the templates of these faces that exist."""
        ids: list[int] = []
        vectors: list[NDArray[np.float32]] = []
        wanted = list(face_ids)
        for start in range(0, len(wanted), 10_000):
            chunk = wanted[start : start + 10_000]
            for face_id, blob in s.execute(select(FaceRow.id, FaceRow.template).where(FaceRow.id.in_(chunk))):
                ids.append(int(face_id))
                vectors.append(template_array(blob, dimension))
        return _stack(ids, vectors, dimension)

    def audit_templates(self, dimension: int) -> tuple[str, list[int]]:
        """One read of every template: the :func:`facedb.vectors.content_digest` of the usable
        ones (what a vector store holding exactly them reports too), and the face ids whose
        template cannot be searched (NaN, infinite or zero; an older facedb could write
        them, and the index skips them)."""
        from facedb.vectors import content_digest

        unusable: list[int] = []

        def usable_parts() -> Iterator[tuple[NDArray[np.int64], NDArray[np.float32]]]:
            result = s.execute(
                select(FaceRow.id, FaceRow.template).order_by(FaceRow.id).execution_options(yield_per=50_000)
            )
            for part in result.partitions(50_000):
                ids = np.asarray([int(r[0]) for r in part], dtype=np.int64)
                matrix = np.vstack([template_array(r[1], dimension) for r in part])
                keep = usable(matrix)
                unusable.extend(int(i) for i in ids[~keep])
                yield ids[keep], matrix[keep]

        with self.read() as s:
            digest = content_digest(usable_parts())
        return digest, unusable

    # -- people ----------------------------------------------------------------------------

    @staticmethod
    def add_people(
        s: Session,
        names: Sequence[str],
        metadata: Sequence[dict[str, Any]],
        created_at: datetime | None = None,
    ) -> list[int]:
        """Inside a write: new people; their ids, in order (one bulk INSERT ... RETURNING)."""
        now = created_at or _now()
        rows = [
            {"name": name, "metadata": json.dumps(meta, sort_keys=True), "created_at": now}
            for name, meta in zip(names, metadata, strict=True)
        ]
        return _insert_many(s, _table(PersonRow), rows)

    @staticmethod
    def add_faces(
        s: Session,
        person_ids: Sequence[int],
        model_id: str,
        templates: NDArray[np.float32],
        infos: Sequence[FaceInfo],
    ) -> list[int]:
        """Inside a write: new faces, the i-th template for the i-th person id; their ids."""
        now = _now()
        rows = []
        for person_id, vector, info in zip(person_ids, templates, infos, strict=True):
            box = list(info.bbox) if info.bbox is not None else [None] * 4
            rows.append(
                {
                    "person_id": person_id,
                    "template": template_bytes(vector),
                    "model_id": model_id,
                    "x1": box[0],
                    "y1": box[1],
                    "x2": box[2],
                    "y2": box[3],
                    "det_score": info.det_score,
                    "image_sha256": info.image_sha256,
                    "image_name": info.image_name,
                    "created_at": now,
                }
            )
        return _insert_many(s, _table(FaceRow), rows)

    @staticmethod
    def face_ids_of(s: Session, person_ids: Sequence[int]) -> list[int]:
        """Ids of every face of these people."""
        return [int(i) for i in s.scalars(select(FaceRow.id).where(FaceRow.person_id.in_(person_ids)))]

    @staticmethod
    def face_counts(s: Session, person_ids: Sequence[int]) -> dict[int, int]:
        """How many faces each of these people has."""
        rows = s.execute(
            select(FaceRow.person_id, func.count())
            .where(FaceRow.person_id.in_(person_ids))
            .group_by(FaceRow.person_id)
        )
        return {int(p): int(n) for p, n in rows}

    def face_owners(
        self, face_ids: Sequence[int]
    ) -> tuple[dict[int, int], dict[int, tuple[PersonFields, int]]]:
        """For the faces that still exist: face id -> person id, and person id -> (the
        person's columns, face count), in one query (columns, not ORM objects: this is on
        every search's path)."""
        if not face_ids:
            return {}, {}
        owners: dict[int, int] = {}
        people: dict[int, tuple[PersonFields, int]] = {}
        with self._query() as conn:
            for row in conn.execute(_OWNERS.where(FaceRow.id.in_(list(face_ids)))):
                owners[int(row.face_id)] = int(row.id)
                people[int(row.id)] = (row, int(row.face_count))
        return owners, people

    def templates(
        self, face_ids: Sequence[int], dimension: int
    ) -> tuple[NDArray[np.int64], NDArray[np.float32]]:
        """The templates of these faces (those that still exist): ids and float32[N, D]."""
        with self.read() as s:
            return Store.templates_in(s, face_ids, dimension)

    @staticmethod
    def current_generation(s: Session) -> int:
        """Inside a read or write: the generation of that snapshot."""
        return int(s.execute(_GENERATION).scalar() or 0)

    @staticmethod
    def iter_templates(
        s: Session, dimension: int, batch: int = 50_000
    ) -> Iterator[tuple[NDArray[np.int64], NDArray[np.float32]]]:
        """Inside a read: every template, in batches of ids and float32[N, D]."""
        result = s.execute(
            select(FaceRow.id, FaceRow.template).order_by(FaceRow.id).execution_options(yield_per=batch)
        )
        for part in result.partitions(batch):
            ids = [int(r[0]) for r in part]
            yield _stack(ids, [template_array(r[1], dimension) for r in part], dimension)

    # -- idempotency keys of requests --------------------------------------------------------

    @staticmethod
    def recall_request(s: Session, key: str) -> tuple[str, str] | None:
        """Inside a read or write: (fingerprint, result) recorded for this request key."""
        row = s.get(IdempotencyRow, key)
        return None if row is None else (row.fingerprint, row.result)

    def recall(self, key: str) -> tuple[str, str] | None:
        """(fingerprint, result) recorded for this request key, or None."""
        with self.read() as s:
            return Store.recall_request(s, key)

    @staticmethod
    def remember_request(s: Session, key: str, fingerprint: str, result: str, keep: timedelta) -> None:
        """Inside a write: records a request's key, fingerprint and result, and forgets the
        keys recorded more than `keep` ago."""
        now = _now()
        s.execute(delete(IdempotencyRow).where(IdempotencyRow.created_at < now - keep))
        s.add(IdempotencyRow(key=key, fingerprint=fingerprint, result=result, created_at=now))
        s.flush()


def _table(model: Any) -> Table:
    """The Core table of a model: Core inserts skip the ORM's per-row work."""
    table = model.__table__
    assert isinstance(table, Table)
    return table


def _insert_many(s: Session, table: Table, rows: list[dict[str, Any]]) -> list[int]:
    """Inserts rows in one executemany; returns their new ids in order."""
    if not rows:
        return []
    if s.get_bind().dialect.name == "sqlite":
        # A plain executemany is several times faster than RETURNING row by row. Inside a
        # write transaction (BEGIN IMMEDIATE: nobody else inserts) AUTOINCREMENT hands out
        # consecutive ids, so the last one gives them all.
        s.execute(insert(table), rows)
        last = int(s.execute(select(func.last_insert_rowid())).scalar_one())
        return list(range(last - len(rows) + 1, last + 1))
    statement = insert(table).returning(table.c.id, sort_by_parameter_order=True)
    return [int(i) for i in s.execute(statement, rows).scalars()]


def usable(matrix: NDArray[np.float32]) -> NDArray[np.bool_]:
    """Which templates can be searched: finite and not all zeros. facedb refuses anything
    else before writing it; an older version let some through."""
    with np.errstate(over="ignore", invalid="ignore"):
        keep: NDArray[np.bool_] = np.isfinite(matrix).all(axis=1) & (
            np.abs(matrix).max(axis=1, initial=0.0) > 0
        )
    return keep


def _stack(
    ids: list[int], vectors: list[NDArray[np.float32]], dimension: int
) -> tuple[NDArray[np.int64], NDArray[np.float32]]:
    """Ids and templates as arrays, without unusable templates: one poisoned row must not make
    the whole index unbuildable (`FaceDB.check` reports such rows)."""
    matrix = np.vstack(vectors) if vectors else np.zeros((0, dimension), dtype=np.float32)
    id_array = np.asarray(ids, dtype=np.int64)
    keep = usable(matrix)
    if not keep.all():
        log.warning(
            "skipping %d unusable stored template(s) (NaN, infinite or zero; face ids %s): "
            "`facedb check` lists them",
            int((~keep).sum()),
            ", ".join(str(int(i)) for i in id_array[~keep][:10]),
        )
        id_array, matrix = id_array[keep], matrix[keep]
    return id_array, matrix.astype(np.float32, copy=False)


def _now() -> datetime:
    return datetime.now(UTC)


# SQLSTATE classes of a server that cannot serve now: connection exception, insufficient
# resources, operator intervention (shutting down, starting up), transaction rollback.
_UNAVAILABLE_SQLSTATES = ("08", "53", "57", "40")


def _database_error(e: SQLAlchemyError, message: str) -> GalleryError:
    """DatabaseUnavailable when the database cannot answer now (a server restarting or
    gone, a dropped connection, SQLite locked too long) and a retry may work; else
    GalleryError. Either way, no SQLAlchemy or driver exception reaches the caller."""
    orig = getattr(e, "orig", None)
    if isinstance(e, DBAPIError) and e.connection_invalidated:
        transient = True
    elif isinstance(e, DisconnectionError | PoolTimeout):
        transient = True
    elif isinstance(e, OperationalError | InterfaceError):
        if type(orig).__module__.startswith("sqlite3"):
            transient = any(word in str(orig).lower() for word in ("locked", "busy"))
        else:
            state = getattr(orig, "sqlstate", None)
            transient = state is None or str(state).startswith(_UNAVAILABLE_SQLSTATES)
    else:
        transient = False
    return DatabaseUnavailable(message) if transient else GalleryError(message)


def _reason(e: SQLAlchemyError) -> str:
    """The database's own message, without SQLAlchemy's statement dump and links."""
    orig = getattr(e, "orig", None)
    return str(orig if orig is not None else e).splitlines()[0]


def sqlite_url(folder: str) -> str:
    """The SQLAlchemy URL of a folder gallery's database."""
    return f"sqlite:///{folder}/gallery.db"

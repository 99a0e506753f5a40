"""The gallery's SQL store: people, templates and gallery facts, the source of truth.

SQLite (a folder's gallery.db) or any SQLAlchemy URL (PostgreSQL is tested). The schema is
migrated on open by alembic. Every change to the set of templates bumps the gallery's
generation and logs the face ids it added or removed in the same transaction, so that a
derived vector index can tell whether it is current and catch up.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import resources
from typing import Any, Protocol

import numpy as np
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from numpy.typing import NDArray
from sqlalchemy import Connection, Engine, Table, create_engine, delete, event, func, insert, select, update
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, DisconnectionError, InterfaceError, OperationalError, SQLAlchemyError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.orm import Session, aliased

from facedb.errors import DatabaseUnavailable, GalleryError
from facedb.models import ChangeRow, FaceRow, GalleryRow, PersonRow, VectorSyncRow

__all__ = ["ChangeSet", "FaceInfo", "GalleryFacts", "PersonFields", "Store", "head_revision", "migrate"]

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
    """

    def __init__(self, url: str) -> None:
        parsed = make_url(url)
        if parsed.drivername == "postgresql":
            parsed = parsed.set(drivername="postgresql+psycopg")  # psycopg 3, per CONTRACTS.md
        self.url = parsed
        self.is_sqlite = parsed.get_backend_name() == "sqlite"
        self._write_lock = threading.Lock()
        try:
            if self.is_sqlite:
                # Pooled connections: opening one (and its PRAGMAs) costs about a millisecond,
                # a third of a search. Idle pooled connections hold no read transaction, so
                # they never stop a WAL checkpoint.
                self.engine: Engine = create_engine(parsed, pool_size=8, max_overflow=16)
                event.listen(self.engine, "connect", _sqlite_pragmas)
                event.listen(self.engine, "begin", _begin)
            else:
                self.engine = create_engine(parsed, pool_pre_ping=True, pool_size=8)
            with self.engine.connect() as conn:
                conn = conn.execution_options(facedb_write=True)
                with conn.begin():
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
        """Closes every connection; on SQLite, checkpoints the WAL into the database first."""
        self.checkpoint()
        self.engine.dispose()

    def checkpoint(self) -> bool:
        """Copies SQLite's WAL into the database and truncates it to zero bytes, so that no
        erased row survives in the WAL. False when another connection still reads it."""
        if not self.is_sqlite:
            return True
        with self.engine.connect() as conn:
            row = conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
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
        """A write transaction: all of it commits when the block ends, or none of it."""
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
        with self.write() as s:
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
            elif row.model_id != model_id or row.dimension != dimension:
                raise GalleryError(
                    f"the gallery at {self.safe_url} holds templates of model {row.model_id} "
                    f"({row.dimension}-d); this engine makes {model_id} ({dimension}-d): "
                    "templates of different models cannot be compared"
                )
            if not row.uid:
                row.uid = str(uuid.uuid4())
            return GalleryFacts(row.model_id, row.dimension, row.generation, row.uid)

    @staticmethod
    def bump(s: Session, added: Sequence[int] = (), removed: Sequence[int] = ()) -> int:
        """Inside a write: the next generation, with the faces it added and removed logged."""
        generation = int(s.execute(select(GalleryRow.generation).where(GalleryRow.id == 1)).scalar_one()) + 1
        s.execute(update(GalleryRow).where(GalleryRow.id == 1).values(generation=generation))
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
        rows = s.execute(
            select(ChangeRow.face_id, ChangeRow.op)
            .where(ChangeRow.generation > generation)
            .order_by(ChangeRow.id)
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


def _stack(
    ids: list[int], vectors: list[NDArray[np.float32]], dimension: int
) -> tuple[NDArray[np.int64], NDArray[np.float32]]:
    matrix = np.vstack(vectors) if vectors else np.zeros((0, dimension), dtype=np.float32)
    return np.asarray(ids, dtype=np.int64), matrix.astype(np.float32, copy=False)


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

"""The gallery's SQL database: engine creation, SQLite pragmas, read-only openers,
transactions and the mapping of database failures to facedb's errors.

SQLite (a folder's gallery.db) or any SQLAlchemy URL (PostgreSQL is tested). The schema is
migrated on open (facedb.store.schema). Only :meth:`Database.read` and :meth:`Database.write`
open sessions; the query methods of facedb.store take that session as their first argument,
so that a caller composes several in one transaction.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

from sqlalchemy import (
    Connection,
    Dialect,
    Engine,
    LargeBinary,
    Table,
    TypeDecorator,
    create_engine,
    event,
    func,
    insert,
    select,
)
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import (
    ArgumentError,
    DBAPIError,
    DisconnectionError,
    InterfaceError,
    NoSuchModuleError,
    OperationalError,
    SQLAlchemyError,
)
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.orm import Session
from sqlalchemy.types import TypeEngine

from facedb.encryption import Cipher
from facedb.errors import DatabaseUnavailable, GalleryError, MissingExtra, ReadOnlyGallery
from facedb.extras import DISTRIBUTION
from facedb.models import Sealed, bind_cipher, cipher_of
from facedb.store.schema import SCHEMA_HEAD, check_revision, current_revision, migrate, serialize

__all__ = ["Database", "core_table", "insert_many", "insert_rows", "normalise_url", "sqlite_url", "utc_now"]

log = logging.getLogger("facedb")


#: The databases facedb keeps galleries in, and what a user writes for each.
SUPPORTED = "SQLite (sqlite:///relative/path.db, sqlite:////absolute/path.db) or PostgreSQL (postgresql://user@host/db)"

#: The Python package each known driver needs (named in the error when it is missing).
_DRIVER_PACKAGES = {
    "psycopg2": "psycopg2-binary",
    "pg8000": "pg8000",
    "asyncpg": "asyncpg",
    "pysqlite": "(part of Python)",
}


def normalise_url(url: str) -> URL:
    """A gallery's SQL URL as facedb opens it: SQLAlchemy's spelling, ``postgres://`` (what
    most hosting providers hand out) read as PostgreSQL, and PostgreSQL through psycopg 3
    unless another driver is named.

    Raises:
        GalleryError: not a URL, or a database facedb does not keep galleries in.
    """
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise GalleryError(f"{url!r} is not a database URL; facedb takes {SUPPORTED}") from None
    name = parsed.drivername
    if name == "postgres" or name.startswith("postgres+"):
        name = "postgresql" + name[len("postgres") :]
    if name == "postgresql":
        name = "postgresql+psycopg"  # psycopg 3, per CONTRACTS.md
    parsed = parsed.set(drivername=name)
    backend = parsed.get_backend_name()
    if backend not in ("sqlite", "postgresql"):
        raise GalleryError(
            f"facedb does not keep galleries in {backend!r} databases ({parsed.drivername}://): "
            f"it keeps them in {SUPPORTED}; to use another database, install its SQLAlchemy "
            "driver and copy the gallery to PostgreSQL or SQLite with `facedb copy`"
        )
    if backend == "sqlite" and parsed.database in (None, "", ":memory:"):
        # An in-memory database is one per connection: what one wrote, the next would not see.
        raise GalleryError(
            f"{url!r} is not a SQLite file facedb can keep a gallery in (an in-memory database "
            f"is not one); facedb takes {SUPPORTED}"
        )
    return parsed


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


def _begin(connection: Connection) -> None:
    # A writer takes SQLite's write lock when it begins (IMMEDIATE), not halfway through,
    # where a concurrent writer would make it fail instead of wait.
    write = connection.get_execution_options().get("facedb_write", False)
    connection.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")


class Database:
    """The SQL database of one gallery: its engine and transactions. Thread-safe: each
    transaction takes its own connection.

    Args:
        url: a SQLAlchemy URL (``sqlite:///folder/gallery.db``, ``postgresql+psycopg://...``).
        read_only: never write (no migration; every write is :class:`ReadOnlyGallery`).
        create: set up the schema in an empty database; False refuses one.
        cipher: the gallery's key, when its templates and thumbnails are sealed
            (facedb.encryption); :meth:`claim` checks that it is the gallery's.
    """

    def __init__(
        self, url: str, *, read_only: bool = False, create: bool = True, cipher: Cipher | None = None
    ) -> None:
        parsed = normalise_url(url)
        self.url = parsed
        self.cipher = cipher
        #: The model and pack this process claimed the gallery with (:meth:`claim`).
        self.model_id: str | None = None
        self.pack: str | None = None
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
            bind_cipher(self.engine.dialect, cipher)
            with self.engine.connect() as conn:
                if read_only:
                    check_revision(conn, self.safe_url)
                else:
                    current = current_revision(conn)
                    if not create and current is None:
                        raise GalleryError(f"{self.safe_url} holds no facedb gallery (and create=False)")
                    # At this facedb's newest revision already: nothing to migrate, and no
                    # write lock to take (alembic is not even loaded).
                    if current != SCHEMA_HEAD:
                        conn = conn.execution_options(facedb_write=True)
                        with conn.begin():
                            # Any number of processes may open a fresh database at once: one
                            # migrates, the others wait and find it done (SQLite's BEGIN
                            # IMMEDIATE does the same).
                            serialize(conn)
                            migrate(conn)
        except GalleryError:
            raise
        except (ImportError, NoSuchModuleError) as e:
            driver = parsed.get_driver_name()
            if driver == "psycopg":  # the driver facedb tests, brought by an extra
                raise MissingExtra(
                    f"cannot open {self.safe_url}: PostgreSQL through psycopg needs the 'postgres' "
                    f"extra: pip install '{DISTRIBUTION}[postgres]'",
                    "postgres",
                ) from None
            package = _DRIVER_PACKAGES.get(driver, f"the {driver} driver")
            raise GalleryError(
                f"cannot open {self.safe_url}: its driver {driver!r} is not installed "
                f"(install {package}, e.g. `pip install {package}`): {e}"
            ) from None
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


def core_table(model: Any) -> Table:
    """The Core table of a model: Core inserts skip the ORM's per-row work."""
    table = model.__table__
    assert isinstance(table, Table)
    return table


def insert_many(s: Session, table: Table, rows: list[dict[str, Any]]) -> list[int]:
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


def insert_rows(
    s: Session,
    table: Table,
    columns: Sequence[str],
    rows: Iterable[Sequence[Any]],
    constants: Mapping[str, Any] | None = None,
    *,
    returning: bool = True,
) -> list[int]:
    """Inserts rows given as tuples of ``columns``' values, each with the same ``constants``
    (column name -> value), in one executemany on the driver; their new ids in order (none
    when ``returning`` is False).

    The bulk path (a million templates): each value is bound as the column's type binds it
    (a time in UTC, a template sealed with the gallery's key), but without the per-row
    statement work of :func:`insert_many` (a dict per row, its parameters compiled one by
    one), and a constant is bound once. On SQLite the ids are the consecutive ones
    AUTOINCREMENT hands out inside the write transaction, as in :func:`insert_many`; on
    PostgreSQL they are taken from the table's sequence first and inserted explicitly, so
    that no RETURNING is needed (a sequence never gives a value twice)."""
    conn = s.connection()
    dialect = conn.dialect
    fixed = dict(constants or {})
    processors = [_binder(table.c[name].type, dialect) for name in columns]
    bound_fixed: tuple[Any, ...] = ()
    for name, value in fixed.items():
        process = _binder(table.c[name].type, dialect)
        bound_fixed += (value if process is None else process(value),)
    if all(p is None for p in processors):
        values = [(*row, *bound_fixed) for row in rows]
    else:
        values = [
            (*(v if p is None else p(v) for p, v in zip(processors, row, strict=True)), *bound_fixed)
            for row in rows
        ]
    if not values:
        return []
    preparer = dialect.identifier_preparer
    names = [*columns, *fixed]
    target = preparer.format_table(table)
    if dialect.name == "sqlite":
        listed = ", ".join(preparer.quote(n) for n in names)
        conn.exec_driver_sql(
            f"INSERT INTO {target} ({listed}) VALUES ({', '.join('?' * len(names))})", values
        )
        if not returning:
            return []
        # As in insert_many: inside the write transaction (BEGIN IMMEDIATE) the ids are
        # consecutive, and the last one gives them all.
        last = int(conn.exec_driver_sql("SELECT last_insert_rowid()").scalar_one())
        return list(range(last - len(values) + 1, last + 1))
    if not returning:
        listed = ", ".join(preparer.quote(n) for n in names)
        conn.exec_driver_sql(
            f"INSERT INTO {target} ({listed}) VALUES ({', '.join(['%s'] * len(names))})", values
        )
        return []
    reserved = conn.exec_driver_sql(
        f"SELECT nextval(pg_get_serial_sequence('{table.name}', 'id')) FROM generate_series(1, {len(values)})"
    )
    ids = sorted(int(i) for i in reserved.scalars())
    listed = ", ".join(preparer.quote(n) for n in ["id", *names])
    conn.exec_driver_sql(
        f"INSERT INTO {target} ({listed}) VALUES ({', '.join(['%s'] * (len(names) + 1))})",
        [(i, *row) for i, row in zip(ids, values, strict=True)],
    )
    return ids


def _binder(type_: TypeEngine[Any], dialect: Dialect) -> Callable[[Any], Any] | None:
    """How a value of this column type is bound on this dialect (None: as it is). sqlite3
    takes bytes as they are, so a binary column there needs only its decorator's own step
    (a template sealed with the gallery's key), and none without one: a million templates
    skip a million wrappers."""
    if dialect.name == "sqlite":
        if isinstance(type_, LargeBinary):
            return None
        if isinstance(type_, TypeDecorator) and isinstance(type_.impl_instance, LargeBinary):
            if isinstance(type_, Sealed) and cipher_of(dialect) is None:
                return None
            decorator = type_

            def bind(value: Any) -> Any:
                return decorator.process_bind_param(value, dialect)

            return bind
    processor: Callable[[Any], Any] | None = type_.dialect_impl(dialect).bind_processor(dialect)
    return processor


def utc_now() -> datetime:
    """Now, in UTC (every stored time is)."""
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

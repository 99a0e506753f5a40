"""The gallery's schema revisions: alembic migrations run on open, and the advisory lock that
lets any number of processes open (and migrate, or create) one database at once."""

from __future__ import annotations

from importlib import resources
from typing import TYPE_CHECKING

from sqlalchemy import Connection, inspect, text

from facedb.errors import GalleryError

if TYPE_CHECKING:
    from alembic.config import Config

__all__ = ["SCHEMA_HEAD", "check_revision", "current_revision", "head_revision", "migrate", "serialize"]

#: The newest migration's revision (a test keeps it equal to alembic's head): an open that
#: finds the database at it needs no migration, and alembic (a tenth of a second to import,
#: and every migration script to read) is not loaded at all.
SCHEMA_HEAD = "0011"


def _alembic_config(connection: Connection) -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(resources.files("facedb") / "migrations"))
    config.attributes["connection"] = connection
    return config


def head_revision() -> str:
    """The newest schema revision this facedb knows, as alembic reads it from the scripts."""
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    config = Config()
    config.set_main_option("script_location", str(resources.files("facedb") / "migrations"))
    head = ScriptDirectory.from_config(config).get_current_head()
    if head is None:
        raise GalleryError("facedb's migrations have no head revision")
    return head


def migrate(connection: Connection, revision: str = "head") -> None:
    """Upgrades (or, for a revision below the current one, downgrades) the schema."""
    from alembic import command
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

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


def current_revision(connection: Connection) -> str | None:
    """The schema revision the database is at (None: no facedb gallery); ends the transaction.
    Read as alembic keeps it (one row of ``alembic_version``), without loading alembic."""
    found = None
    if inspect(connection).has_table("alembic_version"):
        found = connection.execute(text("SELECT version_num FROM alembic_version")).scalar()
    connection.rollback()
    return None if found is None else str(found)


def check_revision(connection: Connection, where: str) -> None:
    """A read-only opener cannot migrate: the schema must already be this facedb's."""
    current = current_revision(connection)
    head = SCHEMA_HEAD
    if current == head:
        return
    if current is None:
        raise GalleryError(f"{where} holds no facedb gallery (opened read-only, nothing was created)")
    raise GalleryError(
        f"the gallery {where} has schema revision {current}, this facedb needs {head}: open it once "
        "without read-only to upgrade it (or use the facedb that wrote it)"
    )


#: The PostgreSQL advisory lock that serialises schema migrations and a gallery's creation.
_MIGRATION_LOCK = 0x46414345  # "FACE"


def serialize(connection: Connection) -> None:
    """Inside a transaction: waits until no other process migrates or creates the gallery
    (a transaction-scoped advisory lock on PostgreSQL; SQLite writers already hold the
    database's write lock)."""
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK})

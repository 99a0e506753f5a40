"""The generation and the change log (the outbox of every derived vector store), and the
record of how far a shared vector store has applied it.

Every change to the set of templates bumps the gallery's generation and logs the face ids it
added or removed in the same transaction, so that a derived vector index can tell whether it
is current and catch up.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from facedb.models import ChangeRow, GalleryRow, VectorSyncRow
from facedb.store.database import Database, core_table, insert_rows
from facedb.store.facts import check_key_id, check_model_id

__all__ = ["CHANGE_LOG_GENERATIONS", "ChangeLog", "ChangeSet"]

#: How many generations of the change log are kept; an index further behind is rebuilt.
CHANGE_LOG_GENERATIONS = 10_000

_GENERATION = select(GalleryRow.generation, GalleryRow.key_id, GalleryRow.model_id).where(GalleryRow.id == 1)


@dataclass(frozen=True, slots=True)
class ChangeSet:
    """Face ids added and removed after some generation, up to `generation`."""

    generation: int
    added: frozenset[int]
    removed: frozenset[int]


class ChangeLog(Database):
    """The generation, the change log and the vector-sync record."""

    def generation(self, s: Session | None = None) -> int:
        """The generation of the snapshot `s` (inside a read or write) or, without one, the
        current generation in one cheap query on a bare connection (0 for a new gallery):
        every call of the gallery asks it first, and learns with it that the gallery is still
        sealed with this process's key (raising EncryptionKeyError once another process has
        changed it with ``rekey``: an index this process holds in memory must not go on
        answering for a gallery it can no longer read), and that it still holds this process's
        model's templates (a GalleryError once another process re-embedded it)."""
        if s is not None:
            row = s.execute(_GENERATION).first()
        else:
            with self._query() as conn:
                row = conn.execute(_GENERATION).first()
        if row is None:
            return 0
        check_key_id(row[1], self.cipher.key_id if self.cipher else None, self.safe_url)
        check_model_id(row[2], self.model_id, self.safe_url)
        return int(row[0] or 0)

    def bump(self, s: Session, added: Sequence[int] = (), removed: Sequence[int] = ()) -> int:
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
        # One row a face (an import of a million logs a million), bound once per value.
        for op, ids in (("add", added), ("remove", removed)):
            if ids:
                insert_rows(
                    s,
                    core_table(ChangeRow),
                    ("face_id",),
                    ((i,) for i in ids),
                    {"generation": generation, "op": op},
                    returning=False,
                )
        s.execute(delete(ChangeRow).where(ChangeRow.generation <= generation - CHANGE_LOG_GENERATIONS))
        return generation

    def changes_after(self, s: Session, generation: int) -> ChangeSet | None:
        """Inside a read or write: the net change after `generation` up to the snapshot's
        generation; None when the log no longer reaches back that far (rebuild instead)."""
        current = self.generation(s)
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

    def applied_generation(self, s: Session, store_key: str) -> int:
        """Inside a write: how far a shared vector store has applied the log (-1: never);
        the row stays locked until the transaction ends, so one process replays at a time."""
        # The row is created first if missing (by one of any number of first replayers: the
        # others find it), so that there is always a row to lock.
        dialect = s.get_bind().dialect.name
        # The dialects' own inserts are imported here: PostgreSQL's brings asyncio and every
        # driver's module with it, a twentieth of a second at every open of a SQLite gallery.
        if dialect == "postgresql":
            from sqlalchemy.dialects.postgresql import insert as postgresql_insert

            s.execute(
                postgresql_insert(core_table(VectorSyncRow))
                .values(store=store_key, generation=-1)
                .on_conflict_do_nothing(index_elements=["store"])
            )
        elif dialect == "sqlite":
            from sqlalchemy.dialects.sqlite import insert as sqlite_insert

            s.execute(
                sqlite_insert(core_table(VectorSyncRow))
                .values(store=store_key, generation=-1)
                .on_conflict_do_nothing(index_elements=["store"])
            )
        row = s.execute(
            select(VectorSyncRow).where(VectorSyncRow.store == store_key).with_for_update()
        ).scalar_one_or_none()
        return -1 if row is None else int(row.generation)

    def set_applied_generation(self, s: Session, store_key: str, generation: int) -> None:
        """Inside a write: records that a shared vector store has applied the log up to here."""
        row = s.get(VectorSyncRow, store_key)
        if row is None:
            s.add(VectorSyncRow(store=store_key, generation=generation))
        else:
            row.generation = generation

    def sync_state(self, store_key: str) -> tuple[int, int]:
        """(how far a shared vector store has applied the log, -1 for never; the current
        generation), from one snapshot on a bare connection and without locking: the cheap
        check before every search."""
        with self._query() as conn:
            applied = conn.execute(
                select(VectorSyncRow.generation).where(VectorSyncRow.store == store_key)
            ).scalar()
            current = conn.execute(_GENERATION).scalar()
        return (-1 if applied is None else int(applied)), int(current or 0)

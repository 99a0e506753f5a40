"""Rekeying: every sealed column (templates and thumbnails: facedb.models.Sealed) rewritten
under a new key, or none, in one transaction."""

from __future__ import annotations

from sqlalchemy import LargeBinary, Table, bindparam, select, type_coerce, update
from sqlalchemy.orm import Session

from facedb.encryption import Cipher
from facedb.models import Base, Sealed, bind_cipher
from facedb.store.database import Database

__all__ = ["SealingQueries", "sealed_columns"]

_BATCH = 5_000


def sealed_columns() -> list[tuple[Table, str, bytes]]:
    """Every column of the schema that holds sealed values: (table, column, purpose)."""
    found: list[tuple[Table, str, bytes]] = []
    for table in Base.metadata.sorted_tables:
        for column in table.columns:
            if isinstance(column.type, Sealed):
                found.append((table, column.name, column.type.purpose.encode("ascii")))
    return found


class SealingQueries(Database):
    """The key's change: :meth:`reseal` inside the write, :meth:`use_cipher` after it."""

    def reseal(self, s: Session, new: Cipher | None) -> int:
        """Inside a write: every sealed value opened with this store's key (or read as it is,
        without one) and written sealed with ``new`` (or as it is, with None). Returns how
        many values were rewritten.

        Raises:
            EncryptionKeyError: a value this store's key does not open (nothing is written).
        """
        old = self.cipher
        rewritten = 0
        for table, name, purpose in sealed_columns():
            column = table.c[name]
            raw = type_coerce(column, LargeBinary)  # the stored bytes, not opened
            statement = (
                update(table)
                .where(table.c.id == bindparam("row_id"))
                .values({name: bindparam("value", type_=LargeBinary)})
                .execution_options(synchronize_session=False)
            )
            last = None
            while True:
                query = select(table.c.id, raw).where(column.is_not(None)).order_by(table.c.id).limit(_BATCH)
                if last is not None:
                    query = query.where(table.c.id > last)
                rows = s.execute(query).all()
                if not rows:
                    break
                changed = []
                for row_id, stored in rows:
                    plain = bytes(stored) if old is None else old.open(stored, purpose)
                    changed.append(
                        {"row_id": row_id, "value": plain if new is None else new.seal(plain, purpose)}
                    )
                s.connection().execute(statement, changed)
                rewritten += len(changed)
                last = rows[-1][0]
        return rewritten

    def use_cipher(self, cipher: Cipher | None) -> None:
        """After a rekey's commit: this process reads and writes with ``cipher`` from now."""
        self.cipher = cipher
        bind_cipher(self.engine.dialect, cipher)

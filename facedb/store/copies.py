"""What ``facedb copy`` carries besides people and faces: whole rows of the gallery's other
tables, ids kept, so that a copy resumes and the copy's references (a sighting's person, a
stranger) point where they did."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Table, delete, func, insert, select, update
from sqlalchemy.orm import Session

from facedb.models import (
    ApiKeyRow,
    CalibrationRow,
    DiscoveredPhotoRow,
    RejectionRow,
    SightingRow,
    StrangerFaceRow,
    StrangerRow,
)
from facedb.store.database import core_table

__all__ = ["COPIED_TABLES", "IDENTITY", "MIRRORED", "CopyQueries"]

#: The tables copied row by row after people and faces, in the order their references need
#: (a sighting and a group's face refer to a stranger, a sighting to a person).
COPIED_TABLES: dict[str, Table] = {
    "calibrations": core_table(CalibrationRow),
    "rejections": core_table(RejectionRow),
    "api_keys": core_table(ApiKeyRow),
    "strangers": core_table(StrangerRow),
    "stranger_faces": core_table(StrangerFaceRow),
    "discovered_photos": core_table(DiscoveredPhotoRow),
    "sightings": core_table(SightingRow),
}


#: What makes a row of the copy the copy of a source row with the same id (the other columns
#: may have changed in the source since: a key revoked, a visit extended, a sighting
#: confirmed). None: every column (rows that never change).
IDENTITY: dict[str, tuple[str, ...] | None] = {
    "calibrations": None,
    "rejections": None,
    "api_keys": ("secret_sha256", "created_at"),
    # A group's centroid moves as it grows: its start identifies it.
    "strangers": ("first_seen", "origin"),
    "stranger_faces": ("template", "seen_at"),
    "discovered_photos": None,
    "sightings": ("source", "first_seen"),
}

#: Tables whose rows the source removes (a rejection withdrawn, a visit rejected, strangers
#: forgotten): a removal reaches the copy on the next run, so that no erased template
#: survives there.
MIRRORED = frozenset({"rejections", "strangers", "stranger_faces", "sightings"})


class CopyQueries:
    """Row copies of :data:`COPIED_TABLES`, a batch at a time."""

    def rows_after(self, s: Session, table: str, row_id: int, limit: int) -> list[dict[str, Any]]:
        """Inside a read: up to ``limit`` rows of ``table`` with ids above ``row_id``, by id,
        every column, as dicts that :meth:`insert_rows` takes."""
        t = COPIED_TABLES[table]
        statement = select(t).where(t.c.id > row_id).order_by(t.c.id).limit(limit)
        return [dict(r) for r in s.execute(statement).mappings()]

    def row_ids(self, s: Session, table: str) -> set[int]:
        """Inside a read: the id of every row of ``table``."""
        t = COPIED_TABLES[table]
        return {int(i) for i in s.scalars(select(t.c.id))}

    def count_rows(self, s: Session, table: str) -> int:
        """Inside a read: how many rows ``table`` holds."""
        t = COPIED_TABLES[table]
        return int(s.execute(select(func.count()).select_from(t)).scalar_one())

    def update_row(self, s: Session, table: str, row: Mapping[str, Any]) -> None:
        """Inside a write: the row with ``row["id"]`` takes ``row``'s other columns."""
        t = COPIED_TABLES[table]
        values = {k: v for k, v in row.items() if k != "id"}
        s.execute(update(t).where(t.c.id == int(row["id"])).values(**values))

    def delete_rows(self, s: Session, table: str, ids: Sequence[int]) -> None:
        """Inside a write: removes the rows of ``table`` with these ids."""
        t = COPIED_TABLES[table]
        for start in range(0, len(ids), 500):
            s.execute(delete(t).where(t.c.id.in_([int(i) for i in ids[start : start + 500]])))

    def insert_rows(self, s: Session, table: str, rows: Sequence[Mapping[str, Any]]) -> None:
        """Inside a write: rows as :meth:`rows_after` gives them, with their ids."""
        if rows:
            s.execute(insert(COPIED_TABLES[table]), [dict(r) for r in rows])

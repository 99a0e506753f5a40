"""Attendance rows: visits (sightings) of people and strangers, and the strangers' templates."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import numpy as np
from numpy.typing import NDArray
from sqlalchemy import select
from sqlalchemy.orm import Session, defer

from facedb.models import PersonRow, SightingRow, StrangerRow
from facedb.store.database import Database
from facedb.store.templates import template_bytes

__all__ = ["SightingQueries"]


class SightingQueries(Database):
    """The sightings and strangers tables."""

    def strangers(self, s: Session) -> list[StrangerRow]:
        """Every stranger seen so far."""
        return list(s.scalars(select(StrangerRow)))

    def add_stranger(
        self, s: Session, template: NDArray[np.float32], first_seen: datetime, last_seen: datetime
    ) -> int:
        """Inside a write: a new stranger; their id."""
        row = StrangerRow(
            template=template_bytes(template), first_seen=first_seen, last_seen=last_seen, origin="watch"
        )
        s.add(row)
        s.flush()
        return int(row.id)

    def forget_strangers(self, s: Session) -> int:
        """Inside a write: removes every stranger (their sightings go with them); how many."""
        rows = self.strangers(s)
        for row in rows:
            s.delete(row)
        return len(rows)

    def add_sighting(
        self,
        s: Session,
        *,
        person_id: int | None,
        stranger_id: int | None,
        source: str,
        first_seen: datetime,
        last_seen: datetime,
        similarity: float,
        bbox: Sequence[float],
        frames: int,
        template: NDArray[np.float32] | None = None,
        thumbnail: bytes | None = None,
    ) -> int:
        """Inside a write: a new visit of a person or a stranger; its id. `template` is the
        face's, kept so that the visit can be confirmed or rejected later, and `thumbnail` a
        picture of it for whoever reviews the visit."""
        sighting = SightingRow(
            person_id=person_id,
            stranger_id=stranger_id,
            source=source,
            first_seen=first_seen,
            last_seen=last_seen,
            similarity=float(similarity),
            x1=bbox[0],
            y1=bbox[1],
            x2=bbox[2],
            y2=bbox[3],
            frames=frames,
            template=None if template is None else template_bytes(template),
            thumbnail=thumbnail,
        )
        s.add(sighting)
        s.flush()
        return int(sighting.id)

    def extend_sighting(
        self,
        s: Session,
        sighting_id: int,
        at: datetime,
        similarity: float,
        bbox: Sequence[float],
        template: NDArray[np.float32] | None = None,
    ) -> None:
        """Inside a write: one more frame of an open visit, seen at `at` (the best frame's
        similarity, box and template are kept). Nothing when the visit is gone: its person was
        removed meanwhile, and their sightings went with them."""
        row = s.get(SightingRow, sighting_id)
        if row is None:
            return
        row.last_seen = at
        row.frames += 1
        if similarity > row.similarity:
            row.similarity = float(similarity)
            row.x1, row.y1, row.x2, row.y2 = (float(v) for v in bbox)
            if template is not None:
                row.template = template_bytes(template)

    def sighting(self, s: Session, sighting_id: int) -> SightingRow | None:
        """The visit with this id, or None."""
        return s.get(SightingRow, int(sighting_id))

    def sighting_thumbnail(self, s: Session, sighting_id: int) -> tuple[bool, bytes | None]:
        """(whether the visit exists, its thumbnail)."""
        row = s.execute(select(SightingRow.thumbnail).where(SightingRow.id == int(sighting_id))).first()
        return (False, None) if row is None else (True, row[0])

    def remove_sighting(self, s: Session, sighting_id: int) -> None:
        """Inside a write: removes a visit (and the template kept with it)."""
        row = s.get(SightingRow, int(sighting_id))
        if row is not None:
            s.delete(row)
            s.flush()

    def assign_sighting(self, s: Session, sighting_id: int, person_id: int) -> None:
        """Inside a write: makes a visit one of this person's (no longer a stranger's)."""
        row = s.get(SightingRow, int(sighting_id))
        if row is not None:
            row.person_id, row.stranger_id = int(person_id), None

    def sightings(
        self, s: Session, since: datetime, until: datetime, person_id: int | None = None
    ) -> list[tuple[SightingRow, str | None, bool]]:
        """The visits that started in [since, until), oldest first, each with its person's
        name (None for a stranger) and whether it has a thumbnail (templates and thumbnails
        are not loaded)."""
        query = (
            select(SightingRow, PersonRow.name, SightingRow.thumbnail.is_not(None))
            .options(defer(SightingRow.template), defer(SightingRow.thumbnail))
            .outerjoin(PersonRow, PersonRow.id == SightingRow.person_id)
            .where(SightingRow.first_seen >= since, SightingRow.first_seen < until)
            .order_by(SightingRow.first_seen, SightingRow.id)
        )
        if person_id is not None:
            query = query.where(SightingRow.person_id == person_id)
        return [(row, name, bool(pictured)) for row, name, pictured in s.execute(query)]

""" "Not this person": negative examples of people (a face's template said not to be them), read
on every identification of their candidates, erased with the person (ON DELETE CASCADE)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from facedb.models import RejectionRow
from facedb.store.database import Database, utc_now
from facedb.store.templates import template_array, template_bytes

__all__ = ["RejectionQueries"]


class RejectionQueries(Database):
    """The rejections table."""

    def add_rejection(self, s: Session, person_id: int, template: NDArray[np.float32], model_id: str) -> int:
        """Inside a write: a negative example of a person (who exists); its id."""
        row = RejectionRow(
            person_id=int(person_id),
            template=template_bytes(template),
            model_id=model_id,
            created_at=utc_now(),
        )
        s.add(row)
        s.flush()
        return int(row.id)

    def negatives(
        self, s: Session, person_ids: Sequence[int], dimension: int
    ) -> tuple[NDArray[np.int64], NDArray[np.float32]]:
        """The negative examples of these people, in one query on ix_rejections_person (one
        per 10,000 people): their owners' ids and the templates as float32[N, D]."""
        wanted = [int(p) for p in person_ids]
        rows: list[Any] = []
        for start in range(0, len(wanted), 10_000):  # below SQLite's limit of bound values
            rows += s.execute(
                select(RejectionRow.person_id, RejectionRow.template).where(
                    RejectionRow.person_id.in_(wanted[start : start + 10_000])
                )
            ).all()
        owners = np.asarray([int(r[0]) for r in rows], dtype=np.int64)
        if not rows:
            return owners, np.zeros((0, dimension), dtype=np.float32)
        return owners, np.vstack([template_array(r[1], dimension) for r in rows])

    def rejections_of(
        self, s: Session, person_id: int, dimension: int
    ) -> tuple[NDArray[np.int64], NDArray[np.float32]]:
        """One person's negative examples: their ids and templates as float32[N, D]."""
        rows = s.execute(
            select(RejectionRow.id, RejectionRow.template).where(RejectionRow.person_id == int(person_id))
        ).all()
        ids = np.asarray([int(r[0]) for r in rows], dtype=np.int64)
        if not rows:
            return ids, np.zeros((0, dimension), dtype=np.float32)
        return ids, np.vstack([template_array(r[1], dimension) for r in rows])

    def remove_rejections(self, s: Session, rejection_ids: Sequence[int]) -> None:
        """Inside a write: withdraws these negative examples."""
        if rejection_ids:
            s.execute(delete(RejectionRow).where(RejectionRow.id.in_([int(i) for i in rejection_ids])))

    def count_rejections(self, s: Session, person_id: int | None = None) -> int:
        """How many negative examples the gallery holds (of one person, when given)."""
        query = select(func.count()).select_from(RejectionRow)
        if person_id is not None:
            query = query.where(RejectionRow.person_id == int(person_id))
        return int(s.execute(query).scalar_one())

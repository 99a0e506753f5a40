"""Calibrations of the naming threshold: rows in the gallery database, so that every process
and ``facedb copy`` see the same threshold; the newest row for a model is the one in force."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from facedb.models import CalibrationRow
from facedb.store.database import Database

__all__ = ["CalibrationQueries"]


class CalibrationQueries(Database):
    """The calibrations table."""

    def add_calibration(self, s: Session, fields: Mapping[str, Any]) -> int:
        """Inside a write: a new calibration (the columns of :class:`CalibrationRow` but id);
        its id."""
        row = CalibrationRow(**dict(fields))
        s.add(row)
        s.flush()
        return int(row.id)

    def calibration_in_force(self, s: Session, model_id: str) -> CalibrationRow | None:
        """Inside a read or write: the newest calibration of this model (None: never calibrated)."""
        return s.scalars(
            select(CalibrationRow)
            .where(CalibrationRow.model_id == model_id)
            .order_by(CalibrationRow.id.desc())
            .limit(1)
        ).first()

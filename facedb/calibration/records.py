"""The record of a calibration (:class:`Calibration`: the threshold in force and the score
model behind it) and its row in the store (facedb.models.CalibrationRow), both ways.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from facedb.calibration.scores import ScoreModel, TargetKind

__all__ = ["Calibration", "calibration_fields", "calibration_from_row"]


@dataclass(frozen=True, slots=True)
class Calibration:
    """A naming threshold chosen for a target error rate, and the score model behind it.

    Attributes:
        threshold: the similarity at which a face is named.
        target: the error rate asked for.
        target_kind: ``"fpir"`` (strangers named, over the whole gallery) or ``"fmr"``
            (a stranger against one person).
        estimated_fpir: the model's FPIR at the threshold, for the gallery's size.
        estimated_fnir: the model's FNIR at the threshold (people not named).
        people: the gallery's size when calibrated.
        faces: its templates when calibrated.
        created_at: when (UTC).
        source: ``"gallery"`` (fitted on the gallery's own templates), ``"gallery+prior"``
            (impostors from the gallery, genuine scores from the model's prior: too few
            people with several faces) or ``"prior"`` (the gallery is too small: the
            model's prior, measured on photos, docs/calibration.md).
        model: the score model (confidence and estimates at other sizes come from it).
        note: why the source is what it is, in words.
    """

    threshold: float
    target: float
    target_kind: TargetKind
    estimated_fpir: float | None
    estimated_fnir: float | None
    people: int
    faces: int
    created_at: datetime
    source: str
    model: ScoreModel = field(repr=False)  # 400 quantiles: see it as calibration.model
    note: str = ""

    def __str__(self) -> str:
        """What a person wants to know (``print(db.calibration)``), in a few lines.

        Example:
            threshold 0.314 for a target FPIR of 0.01 (estimated FPIR 0.01, FNIR 0)
            calibrated 2026-12-07 15:04 UTC on 5 people (9 faces); source: prior
            note: the gallery has 5 people; its own impostor scores need 200: the ...
        """

        def rate(value: float | None) -> str:
            return "-" if value is None else f"{value:.3g}"

        lines = [
            f"threshold {self.threshold:.3f} for a target {self.target_kind.upper()} of {self.target:g} "
            f"(estimated FPIR {rate(self.estimated_fpir)}, FNIR {rate(self.estimated_fnir)})",
            f"calibrated {self.created_at.astimezone(UTC):%Y-%m-%d %H:%M} UTC on {self.people} people "
            f"({self.faces} faces); source: {self.source}",
        ]
        if self.note:
            lines.append(f"note: {self.note}")
        return "\n".join(lines)


def calibration_fields(calibration: Calibration, model_id: str) -> dict[str, Any]:
    """The columns of a calibration row (facedb.models.CalibrationRow) for this record."""
    return {
        "created_at": calibration.created_at,
        "model_id": model_id,
        "target_kind": calibration.target_kind,
        "target": calibration.target,
        "threshold": calibration.threshold,
        "source": calibration.source,
        "people": calibration.people,
        "faces": calibration.faces,
        "estimated_fpir": calibration.estimated_fpir,
        "estimated_fnir": calibration.estimated_fnir,
        "params": json.dumps({"model": calibration.model.to_json(), "note": calibration.note}),
    }


def calibration_from_row(row: Any) -> Calibration:
    """The record of a stored calibration row (anything with CalibrationRow's attributes)."""
    params = json.loads(row.params)
    created: datetime = row.created_at
    if created.tzinfo is None:  # SQLite keeps no zone: the rows are written in UTC
        created = created.replace(tzinfo=UTC)
    kind: TargetKind = "fmr" if row.target_kind == "fmr" else "fpir"
    return Calibration(
        threshold=float(row.threshold),
        target=float(row.target),
        target_kind=kind,
        estimated_fpir=None if row.estimated_fpir is None else float(row.estimated_fpir),
        estimated_fnir=None if row.estimated_fnir is None else float(row.estimated_fnir),
        people=int(row.people),
        faces=int(row.faces),
        created_at=created,
        source=str(row.source),
        model=ScoreModel.from_json(params["model"]),
        note=str(params.get("note", "")),
    )

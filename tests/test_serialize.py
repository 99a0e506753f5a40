"""The JSON shapes the CLI's --json and the HTTP API share (facedb.serialize)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from facedb import serialize
from facedb.attendance.reports import Sighting

WHEN = datetime(2026, 1, 1, 9, 0, tzinfo=UTC)


@pytest.mark.timeout(30)
def test_every_box_is_rounded_to_2_places() -> None:
    """README says boxes are rounded to 2 places; /sightings gave 120.65463256835938."""
    raw = [120.65463256835938, 80.123456, 230.0, 215.99999]
    visit = Sighting(1, 2, "ann", None, "door", WHEN, WHEN, 0.71234, raw, 3)
    assert serialize.sighting_json(visit)["bbox"] == [120.65, 80.12, 230.0, 216.0]
    face = {"id": 1, "bbox": raw, "score": 0.9, "quality": 1.0, "image": "a.jpg", "created_at": WHEN}
    assert serialize.face_json(face)["bbox"] == [120.65, 80.12, 230.0, 216.0]
    assert serialize.face_json({**face, "bbox": None})["bbox"] is None  # a face imported as a template

"""What a watch logged, read back: the visits (sightings) between two times, attendance per
day and person, and forgetting the strangers.

A bound given as a date is a local day; times are stored and answered in UTC.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from facedb.errors import ConfigError
from facedb.gallery import FaceDB

__all__ = ["AttendanceRow", "Sighting", "attendance", "forget_strangers", "sightings"]


@dataclass(frozen=True, slots=True)
class Sighting:
    """One visit of a person (or of a stranger) in front of a source."""

    id: int
    person_id: int | None
    person_name: str | None
    stranger_id: int | None
    source: str
    first_seen: datetime
    last_seen: datetime
    similarity: float
    bbox: list[float]
    frames: int
    has_thumbnail: bool = False


@dataclass(frozen=True, slots=True)
class AttendanceRow:
    """First and last sighting of one person (or stranger) on one day."""

    day: date
    person_id: int | None
    name: str
    stranger_id: int | None
    first_seen: datetime
    last_seen: datetime
    visits: int


def _bounds(since: datetime | date | None, until: datetime | date | None) -> tuple[datetime, datetime]:
    """[since, until) in UTC; dates are local days, the default is today."""
    today = datetime.now().astimezone().replace(hour=0, minute=0, second=0, microsecond=0)

    def as_time(value: datetime | date | None, default: datetime, end: bool) -> datetime:
        if value is None:
            return default
        if not isinstance(value, datetime):
            moment = datetime(value.year, value.month, value.day).astimezone()
            return moment + timedelta(days=1) if end else moment
        return value if value.tzinfo else value.astimezone()

    try:
        low = as_time(since, today, False)
        high = as_time(
            until, low.replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=1), True
        )
        if high <= low:
            raise ConfigError(f"until ({high.isoformat()}) must be after since ({low.isoformat()})")
        return low.astimezone(UTC), high.astimezone(UTC)
    except (OverflowError, ValueError) as e:  # a bound at the edge of datetime's range
        if isinstance(e, ConfigError):
            raise
        raise ConfigError(f"since and until must lie between the years 1 and 9999 in UTC ({e})") from e


def _utc(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def sightings(
    db: FaceDB,
    since: datetime | date | None = None,
    until: datetime | date | None = None,
    person_id: int | None = None,
) -> list[Sighting]:
    """The visits that started in [since, until) (default: today), oldest first."""
    low, high = _bounds(since, until)
    with db.store.read() as s:
        return [
            Sighting(
                int(r.id),
                r.person_id,
                name,
                r.stranger_id,
                r.source,
                _utc(r.first_seen),
                _utc(r.last_seen),
                r.similarity,
                [r.x1, r.y1, r.x2, r.y2],
                r.frames,
                pictured,
            )
            for r, name, pictured in db.store.sightings(s, low, high, person_id)
        ]


def attendance(
    db: FaceDB, since: datetime | date | None = None, until: datetime | date | None = None
) -> list[AttendanceRow]:
    """Per local day and person (or stranger): first and last sighting and the visits."""
    rows: dict[tuple[date, str], dict[str, Any]] = {}
    for v in sightings(db, since, until):
        day = v.first_seen.astimezone().date()
        key = (day, f"p{v.person_id}" if v.person_id is not None else f"s{v.stranger_id}")
        entry = rows.setdefault(key, {"first": v.first_seen, "last": v.last_seen, "visits": 0, "v": v})
        entry["first"] = min(entry["first"], v.first_seen)
        entry["last"] = max(entry["last"], v.last_seen)
        entry["visits"] += 1
    out = []
    for (day, _), e in sorted(rows.items(), key=lambda kv: (kv[0][0], kv[1]["first"])):
        v = e["v"]
        name = v.person_name if v.person_id is not None else f"stranger #{v.stranger_id}"
        out.append(
            AttendanceRow(day, v.person_id, name or "", v.stranger_id, e["first"], e["last"], e["visits"])
        )
    return out


def forget_strangers(db: FaceDB) -> int:
    """Erases every stranger's template and sightings (they are biometric data of people who
    never enrolled); returns how many strangers were forgotten."""
    with db.writes.change() as change:
        forgotten = db.store.forget_strangers(change.session)
        change.erased()
    return forgotten

"""Attendance: watching a video source, logging visits, and reporting who was seen when.

A watch samples frames at a fixed rate and identifies every face. A person is logged only
when recognised in ``votes`` of the last ``window`` samples (one lucky frame checks nobody
in), and a visit stays open while they keep being seen with gaps shorter than
``cooldown``: one attendance event per visit. Faces that match nobody are grouped into
strangers (by similarity to the strangers seen before), logged with the same vote, so that
"the same stranger, 5 times today" is visible.

Times are stored in UTC. For a file, a sighting's time is the watch's start time plus the
frame's position in the file, so results do not depend on how fast frames are processed.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import numpy as np
from numpy.typing import NDArray

from facedb.errors import ConfigError
from facedb.gallery import FaceDB
from facedb.results import Identification
from facedb.store import template_array

__all__ = [
    "AttendanceRow",
    "Sighting",
    "WatchSettings",
    "Watcher",
    "attendance",
    "forget_strangers",
    "sightings",
    "watch",
]


@dataclass(frozen=True, slots=True)
class WatchSettings:
    """How a watch samples and votes.

    Attributes:
        rate: frames sampled per second of video.
        votes: samples (of the last ``window``) a face must be recognised in to be logged.
        window: how many recent samples the vote looks at.
        cooldown: seconds without a sighting after which a new visit starts; at least the
            vote's span (``window / rate`` seconds), or every sample would start a visit.
    """

    rate: float = 5.0
    votes: int = 3
    window: int = 5
    cooldown: float = 600.0

    def __post_init__(self) -> None:
        if not self.rate > 0:
            raise ConfigError(f"rate must be positive, got {self.rate}")
        if not 1 <= self.votes <= self.window:
            raise ConfigError(f"votes must be between 1 and window ({self.window}), got {self.votes}")
        span = self.window / self.rate
        if not self.cooldown >= span:
            raise ConfigError(
                f"cooldown must be at least the vote's span, window / rate = {span:g} s, got "
                f"{self.cooldown:g}: a shorter one makes every sampled frame a new visit"
            )


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


@dataclass
class _Visit:
    row_id: int
    last_seen: datetime


@dataclass
class _Stranger:
    id: int | None  # None until it passes the vote and is stored
    template: NDArray[np.float32]
    last_seen: datetime
    key: str = ""


@dataclass
class Watcher:
    """Turns identified frames into visits. Feed it with :meth:`observe`, frame by frame."""

    db: FaceDB
    source: str
    settings: WatchSettings = field(default_factory=WatchSettings)
    logged: list[Sighting] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._recent: deque[tuple[datetime, dict[str, tuple[Identification, float]]]] = deque(
            maxlen=self.settings.window
        )
        self._open: dict[str, _Visit] = {}
        self._strangers: list[_Stranger] = []
        self._pending = 0
        with self.db.store.read() as s:
            for row in self.db.store.strangers(s):
                self._strangers.append(
                    _Stranger(
                        int(row.id),
                        template_array(row.template, self.db.facts.dimension),
                        row.last_seen,
                        f"s{row.id}",
                    )
                )

    def observe(self, at: datetime, results: list[Identification]) -> list[Sighting]:
        """Takes one sampled frame's identifications; returns the visits it started."""
        seen: dict[str, tuple[Identification, float]] = {}
        for r in results:
            if r.person is not None:
                key = f"p{r.person.id}"
                if key not in seen or r.similarity > seen[key][1]:
                    seen[key] = (r, r.similarity)
            elif r.status == "unknown":  # not ambiguous, not too poor to tell a stranger
                stranger = self._stranger_for(r.face.embedding, at)
                seen.setdefault(stranger.key, (r, r.similarity))
        self._recent.append((at, seen))
        started: list[Sighting] = []
        for key, (r, sim) in seen.items():
            visit = self._open.get(key)
            if visit is not None and (at - visit.last_seen).total_seconds() <= self.settings.cooldown:
                self._extend(visit, at, r, sim)
                continue
            count = sum(1 for _, frame in self._recent if key in frame)
            if count >= self.settings.votes:
                first = next(t for t, frame in self._recent if key in frame)
                sighting = self._start(key, first, at, r, sim, count)
                started.append(sighting)
        self.logged += started
        return started

    def _stranger_for(self, embedding: NDArray[np.float32], at: datetime) -> _Stranger:
        best, best_sim = None, self.db.threshold
        for stranger in self._strangers:
            sim = float(stranger.template @ embedding)
            if sim >= best_sim:
                best, best_sim = stranger, sim
        if best is None:
            self._pending += 1
            best = _Stranger(None, embedding.astype(np.float32), at, f"pending{self._pending}")
            self._strangers.append(best)
        best.last_seen = at
        # Pending strangers who were not confirmed by the vote in time are forgotten.
        horizon = at - timedelta(seconds=self.settings.window / self.settings.rate + 1)
        self._strangers = [s for s in self._strangers if s.id is not None or s.last_seen >= horizon]
        return best

    def _start(
        self, key: str, first: datetime, at: datetime, r: Identification, sim: float, frames: int
    ) -> Sighting:
        person_id = r.person.id if r.person is not None else None
        stranger_id = None
        with self.db.store.write() as s:
            if person_id is None:
                stranger = next(x for x in self._strangers if x.key == key)
                if stranger.id is None:
                    stranger.id = self.db.store.add_stranger(s, stranger.template, first, at)
                    stranger.key = f"s{stranger.id}"
                stranger_id = stranger.id
            box = [float(v) for v in r.face.bbox]
            row_id = self.db.store.add_sighting(
                s,
                person_id=person_id,
                stranger_id=stranger_id,
                source=self.source,
                first_seen=first,
                last_seen=at,
                similarity=float(sim),
                bbox=box,
                frames=frames,
                template=r.face.embedding,
            )
        final_key = f"s{stranger_id}" if stranger_id is not None else key
        self._open[final_key] = _Visit(row_id, at)
        if final_key != key:
            self._open.pop(key, None)
        name = r.person.name if r.person is not None else None
        return Sighting(row_id, person_id, name, stranger_id, self.source, first, at, float(sim), box, frames)

    def _extend(self, visit: _Visit, at: datetime, r: Identification, sim: float) -> None:
        visit.last_seen = at
        with self.db.store.write() as s:
            self.db.store.extend_sighting(
                s, visit.row_id, at, sim, [float(v) for v in r.face.bbox], r.face.embedding
            )


def _frames(source: str, rate: float) -> Iterator[tuple[float | None, NDArray[np.uint8]]]:
    """Sampled frames of a video file, camera index or stream URL: (seconds into a file, or
    None for a live source; the BGR frame)."""
    try:
        import cv2
    except ImportError as e:  # pragma: no cover - opencv is a dependency
        raise ConfigError("facedb watch needs OpenCV: pip install opencv-python-headless") from e
    target: int | str = int(source) if source.isdigit() else source
    # OpenCV logs its own warnings for a source it cannot open (one per backend it tries):
    # facedb's error below says it once, in facedb's words.
    level = cv2.utils.logging.getLogLevel()
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)
    try:
        capture = cv2.VideoCapture(target)
    finally:
        cv2.utils.logging.setLogLevel(level)
    if not capture.isOpened():
        what = (
            f"camera {target}: no such camera, or it is in use"
            if isinstance(target, int)
            else "not a readable video"
        )
        raise ConfigError(f"cannot open video source {source!r} ({what})")
    live = isinstance(target, int) or "://" in source
    fps = capture.get(cv2.CAP_PROP_FPS) or 0.0
    try:
        index = 0
        next_at = 0.0
        last_live = 0.0
        while True:
            if not capture.grab():
                return
            if live:
                now = time.monotonic()
                if now - last_live < 1.0 / rate:
                    continue
                last_live = now
                ok, frame = capture.retrieve()
                if ok:
                    yield None, np.asarray(frame, dtype=np.uint8)
                continue
            position = index / fps if fps > 0 else capture.get(cv2.CAP_PROP_POS_MSEC) / 1000.0
            index += 1
            if position + 1e-6 < next_at:
                continue
            next_at += 1.0 / rate
            ok, frame = capture.retrieve()
            if ok:
                yield position, np.asarray(frame, dtype=np.uint8)
    finally:
        capture.release()


def watch(
    db: FaceDB,
    source: str,
    settings: WatchSettings | None = None,
    *,
    start: datetime | None = None,
    duration: float | None = None,
) -> list[Sighting]:
    """Watches a video file (to its end), a camera index or a stream URL (until ``duration``
    seconds or Ctrl-C) and logs visits; returns the visits started."""
    settings = settings or WatchSettings()
    start = start or datetime.now(UTC)
    watcher = Watcher(db, source, settings)
    began = time.monotonic()
    for position, frame in _frames(source, settings.rate):
        at = start + timedelta(seconds=position) if position is not None else datetime.now(UTC)
        watcher.observe(at, db.identify(frame))
        if duration is not None and time.monotonic() - began >= duration:
            break
    return watcher.logged


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
            )
            for r, name in db.store.sightings(s, low, high, person_id)
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
    with db.store.write() as s:
        forgotten = db.store.forget_strangers(s)
    db.store.checkpoint()
    return forgotten

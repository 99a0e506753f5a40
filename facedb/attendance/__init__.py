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

import threading
import time
from collections import deque
from collections.abc import Generator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import numpy as np
from numpy.typing import NDArray

from facedb.errors import ConfigError
from facedb.extras import load
from facedb.gallery import FaceDB
from facedb.grouping import Grouping
from facedb.results import Identification, Person
from facedb.store import GroupFaceInfo
from facedb.thumbnails import pixels_of, thumbnail

__all__ = [
    "AttendanceRow",
    "LatestFrame",
    "Sighting",
    "WatchSettings",
    "Watcher",
    "attendance",
    "forget_strangers",
    "sightings",
    "watch",
]


#: The last-seen time of a stored stranger before the watch sees them (never pruned).
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class WatchSettings:
    """How a watch samples and votes.

    Attributes:
        rate: frames sampled per second of video.
        votes: samples (of the last ``window``) a face must be recognised in to be logged.
        window: how many recent samples the vote looks at.
        cooldown: seconds without a sighting after which a new visit starts; at least the
            vote's span (``window / rate`` seconds), or every sample would start a visit.
        track: follow faces between samples (detector only) and run the recognizer on a
            track's face only when it starts, when its face gets markedly better, and every
            ``refresh`` seconds; False identifies every face of every sample (the old way).
        refresh: seconds of video between two recognitions of a tracked face.
        lost: samples a track is kept without a detection before it ends.
    """

    rate: float = 5.0
    votes: int = 3
    window: int = 5
    cooldown: float = 600.0
    track: bool = True
    refresh: float = 2.0
    lost: int = 5

    def __post_init__(self) -> None:
        if not self.rate > 0:
            raise ConfigError(f"rate must be positive, got {self.rate}")
        if not 1 <= self.votes <= self.window:
            raise ConfigError(f"votes must be between 1 and window ({self.window}), got {self.votes}")
        if not self.refresh > 0:
            raise ConfigError(f"refresh must be positive, got {self.refresh}")
        if self.lost < 0:
            raise ConfigError(f"lost must be at least 0, got {self.lost}")
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


@dataclass(eq=False)  # hashable by identity: the key of its group in the grouping
class _Stranger:
    id: int | None  # None until it passes the vote and is stored
    template: NDArray[np.float32]
    last_seen: datetime
    key: str = ""


@dataclass
class _Seen:
    """What a sample says about one person or stranger: for the vote and the visit's row."""

    person: Person | None
    similarity: float
    bbox: list[float]
    template: NDArray[np.float32] | None
    score: float = 1.0  # the detector's
    picture: bytes | None = None  # a pending stranger's thumbnail, for its group's first face


@dataclass
class _Track:
    """One face followed from sample to sample by its box."""

    id: int
    bbox: NDArray[np.float32]
    score: float
    misses: int = 0
    key: str | None = None  # "p<id>" or a stranger's key once identified
    person: Person | None = None
    similarity: float = 0.0
    template: NDArray[np.float32] | None = None
    stranger: _Stranger | None = None
    embedded_at: datetime | None = None
    embedded_merit: float = 0.0


def _keep_best(seen: dict[str, _Seen], key: str, entry: _Seen) -> None:
    """Keeps, per person in a sample, the sighting of highest similarity."""
    if key not in seen or entry.similarity > seen[key].similarity:
        seen[key] = entry


def _merit(bbox: NDArray[np.float32], score: float) -> float:
    """How good a detection is for recognition, to spot a markedly better face: the
    detector's score times the box's side."""
    side = max(float(min(bbox[2] - bbox[0], bbox[3] - bbox[1])), 0.0)
    return score * side


def iou(a: NDArray[np.float32], b: NDArray[np.float32]) -> float:
    """Intersection over union of two boxes ``[x1, y1, x2, y2]``."""
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    if w <= 0 or h <= 0:
        return 0.0
    inter = float(w * h)
    union = float((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1])) - inter
    return inter / union if union > 0 else 0.0


def _greedy(
    tracks: list[_Track], boxes: list[NDArray[np.float32]], minimum: float
) -> tuple[list[tuple[int, int]], list[int], list[int]]:
    """ByteTrack's association step, greedy by IoU descending instead of Hungarian (no
    scipy): (track index, box index) pairs with IoU >= minimum, unmatched tracks, unmatched
    boxes. With faces that rarely overlap the two agree."""
    pairs = sorted(
        (
            (v, t, d)
            for t, track in enumerate(tracks)
            for d, box in enumerate(boxes)
            if (v := iou(track.bbox, box)) >= minimum
        ),
        reverse=True,
    )
    used_t: set[int] = set()
    used_d: set[int] = set()
    matched = []
    for _, t, d in pairs:
        if t in used_t or d in used_d:
            continue
        used_t.add(t)
        used_d.add(d)
        matched.append((t, d))
    return (
        matched,
        [t for t in range(len(tracks)) if t not in used_t],
        [d for d in range(len(boxes)) if d not in used_d],
    )


@dataclass
class Watcher:
    """Turns sampled frames into visits. Feed it frames with :meth:`observe_frame` (which
    tracks faces and recognises each only now and then), or identifications with
    :meth:`observe`; call :meth:`flush` (or :meth:`close`) at the end.

    Attributes:
        logged: the visits started so far.
        skipped: frames of a live source that arrived while one was being processed and
            were dropped for a newer one (set by :func:`watch`).
        samples: frames processed; ``embedded``: faces run through the recognizer.
    """

    db: FaceDB
    source: str
    settings: WatchSettings = field(default_factory=WatchSettings)
    logged: list[Sighting] = field(default_factory=list)
    skipped: int = 0
    samples: int = 0
    embedded: int = 0
    #: High-score detections match the tracks first (ByteTrack's split).
    high_score: float = 0.6
    #: Minimum IoU to continue a track with a high- and a low-score detection.
    match_iou: float = 0.3
    low_match_iou: float = 0.5
    #: Markedly better: merit (score x box side) this many times the last recognised one.
    better: float = 1.3
    #: Seconds (wall clock) an open visit's last_seen may lag in the database.
    flush_every: float = 1.0

    def __post_init__(self) -> None:
        self._recent: deque[tuple[datetime, dict[str, _Seen]]] = deque(maxlen=self.settings.window)
        self._open: dict[str, _Visit] = {}
        self._strangers: list[_Stranger] = []
        # The strangers' groups: the same incremental grouping as discover's (facedb.grouping).
        self._groups = Grouping(self.db.facts.dimension, self.db.threshold)
        self._pending = 0
        self._tracks: list[_Track] = []
        self._next_track = 0
        self._extends: list[tuple[int, datetime, float, list[float], NDArray[np.float32] | None]] = []
        self._flushed = time.monotonic()
        with self.db.store.read() as s:
            for group_id, total, count, _ in self.db.store.group_state(s, self.db.facts.dimension):
                unit = (total / np.linalg.norm(total)).astype(np.float32)
                stranger = _Stranger(group_id, unit, _EPOCH, f"s{group_id}")
                self._strangers.append(stranger)
                self._groups.add_group(stranger, total, count)

    def observe(self, at: datetime, results: list[Identification]) -> list[Sighting]:
        """Takes one sampled frame's identifications; returns the visits it started."""
        self.samples += 1
        self.embedded += len(results)
        seen: dict[str, _Seen] = {}
        for r in results:
            entry = _Seen(
                r.person, r.similarity, [float(v) for v in r.face.bbox], r.face.embedding, r.face.score
            )
            if r.person is not None:
                _keep_best(seen, f"p{r.person.id}", entry)
            elif r.status == "unknown":  # not ambiguous, not too poor to tell a stranger
                stranger = self._stranger_for(r.face.embedding, at)
                seen.setdefault(stranger.key, entry)
        return self._vote(at, seen)

    def observe_frame(self, at: datetime, frame: NDArray[np.uint8]) -> list[Sighting]:
        """Takes one sampled frame: locates its faces, continues the tracks, recognises the
        faces that need it (one recognizer batch), votes; returns the visits it started."""
        engine = self.db.engine
        detections = engine.locate(frame)
        high = [d for d in detections if d.score >= self.high_score]
        low = [d for d in detections if d.score < self.high_score]
        matched, lost, fresh = _greedy(self._tracks, [d.bbox for d in high], self.match_iou)
        pairs = [(self._tracks[t], high[d]) for t, d in matched]
        rest = [self._tracks[t] for t in lost]
        matched_low, still_lost, fresh_low = _greedy(rest, [d.bbox for d in low], self.low_match_iou)
        pairs += [(rest[t], low[d]) for t, d in matched_low]
        for t in still_lost:
            rest[t].misses += 1
        for track, d in pairs:
            track.bbox, track.score, track.misses = d.bbox, d.score, 0
        # Unlike ByteTrack, a low-score face left over starts a track too: the detector's own
        # threshold already filters, and identify would have answered for it (visits as before).
        for d in [high[i] for i in fresh] + [low[i] for i in fresh_low]:
            track = _Track(self._next_track, d.bbox, d.score)
            self._next_track += 1
            self._tracks.append(track)
            pairs.append((track, d))
        self._tracks = [t for t in self._tracks if t.misses <= self.settings.lost]
        # Recognise a track's face when it starts, gets markedly better, or is due.
        due = []
        refresh = timedelta(seconds=self.settings.refresh)
        for track, d in pairs:
            merit = _merit(d.bbox, d.score)
            if (
                track.embedded_at is None
                or at - track.embedded_at >= refresh
                or merit >= self.better * track.embedded_merit
            ):
                due.append((track, d, merit))
        if due:
            faces = engine.embed(frame, [d for _, d, _ in due])
            self.embedded += len(faces)
            for (track, _, merit), r in zip(due, self.db.identify_faces(faces, 5), strict=True):
                track.embedded_at, track.embedded_merit = at, merit
                self._identified(track, r, at)
        self.samples += 1
        seen: dict[str, _Seen] = {}
        pixels: NDArray[np.uint8] | None = None  # RGB, once per sample, when a thumbnail needs it
        for track, d in pairs:
            if track.key is None:
                continue
            if track.stranger is not None:
                track.stranger.last_seen = at
                track.key = track.stranger.key
                if track.stranger.id is None and all(x is not track.stranger for x in self._strangers):
                    self._strangers.append(track.stranger)  # pruned while the track was lost
                    self._regroup(track.stranger)
            picture = None
            if track.stranger is not None and track.stranger.id is None and self.db.thumbnails:
                pixels = pixels_of(engine, frame) if pixels is None else pixels
                picture = thumbnail(pixels, d.landmarks)
            _keep_best(
                seen,
                track.key,
                _Seen(
                    track.person,
                    track.similarity,
                    [float(v) for v in d.bbox],
                    track.template,
                    d.score,
                    picture,
                ),
            )
        return self._vote(at, seen)

    def _identified(self, track: _Track, r: Identification, at: datetime) -> None:
        """A track's face was recognised: its identity, carried until the next recognition.
        A poor or ambiguous answer keeps what the track already knew, unless the box now
        holds another face (its template no longer matches the one the track was recognised
        by: one person stepped out and another in at the same place between two samples);
        then the track forgets whom it named, so that nobody is named who is not there."""
        if (
            track.template is not None
            and not r.face.is_poor_quality
            and float(track.template @ r.face.embedding) < self.db.threshold
        ):
            track.key, track.person, track.stranger = None, None, None
        if r.person is not None:
            track.key, track.person, track.stranger = f"p{r.person.id}", r.person, None
        elif r.status == "unknown" and track.person is None:
            if track.stranger is None:  # one stranger per track
                track.stranger = self._stranger_for(r.face.embedding, at)
            track.key = track.stranger.key
        else:
            return
        track.similarity, track.template = r.similarity, r.face.embedding

    def _vote(self, at: datetime, seen: dict[str, _Seen]) -> list[Sighting]:
        self._recent.append((at, seen))
        started: list[Sighting] = []
        for key, entry in seen.items():
            visit = self._open.get(key)
            if visit is not None and (at - visit.last_seen).total_seconds() <= self.settings.cooldown:
                self._extend(visit, at, entry)
                continue
            count = sum(1 for _, frame in self._recent if key in frame)
            if count >= self.settings.votes:
                first = next(t for t, frame in self._recent if key in frame)
                sighting = self._start(key, first, at, entry, count)
                started.append(sighting)
        self.logged += started
        if time.monotonic() - self._flushed >= self.flush_every:
            self.flush()
        return started

    def _stranger_for(self, embedding: NDArray[np.float32], at: datetime) -> _Stranger:
        """The stranger group a face goes to (a new, pending one when it is like none)."""
        self._regroup(None)
        pending = _Stranger(None, embedding.astype(np.float32), at, f"pending{self._pending + 1}")
        best = self._groups.place(embedding, pending)
        assert isinstance(best, _Stranger)
        if best is pending:
            self._pending += 1
            self._strangers.append(best)
        best.template = self._groups.centroid(best)
        best.last_seen = at
        # Pending strangers who were not confirmed by the vote in time are forgotten.
        horizon = at - timedelta(seconds=self.settings.window / self.settings.rate + 1)
        for s in self._strangers:
            if s.id is None and s.last_seen < horizon:
                self._groups.remove(s)
        self._strangers = [s for s in self._strangers if s.id is not None or s.last_seen >= horizon]
        return best

    def _regroup(self, stranger: _Stranger | None) -> None:
        """A pending stranger pruned while its track was lost is back: its group too."""
        if stranger is not None and stranger not in self._groups:
            self._groups.add_group(stranger, stranger.template)

    def _start(self, key: str, first: datetime, at: datetime, r: _Seen, frames: int) -> Sighting:
        person_id = r.person.id if r.person is not None else None
        stranger_id = None
        self.flush()  # the visit's earlier frames stay in order
        with self.db.store.write() as s:
            if person_id is None:
                stranger = next(x for x in self._strangers if x.key == key)
                if stranger.id is None:
                    stranger.id = self.db.store.add_stranger(s, stranger.template, first, at)
                    stranger.key = f"s{stranger.id}"
                    if r.template is not None:  # its first face, for the groups' page
                        face = GroupFaceInfo(self.source, r.bbox, r.score, None, r.template, r.picture, at)
                        self.db.store.add_group_faces(s, [stranger.id], [face])
                stranger_id = stranger.id
            row_id = self.db.store.add_sighting(
                s,
                person_id=person_id,
                stranger_id=stranger_id,
                source=self.source,
                first_seen=first,
                last_seen=at,
                similarity=float(r.similarity),
                bbox=r.bbox,
                frames=frames,
                template=r.template,
            )
        final_key = f"s{stranger_id}" if stranger_id is not None else key
        self._open[final_key] = _Visit(row_id, at)
        if final_key != key:
            self._open.pop(key, None)
        name = r.person.name if r.person is not None else None
        return Sighting(
            row_id, person_id, name, stranger_id, self.source, first, at, float(r.similarity), r.bbox, frames
        )

    def _extend(self, visit: _Visit, at: datetime, r: _Seen) -> None:
        """One more frame of an open visit: written with the others by :meth:`flush`."""
        visit.last_seen = at
        self._extends.append((visit.row_id, at, float(r.similarity), r.bbox, r.template))

    def flush(self) -> None:
        """Writes the open visits' pending frames, in one transaction."""
        self._flushed = time.monotonic()
        if not self._extends:
            return
        pending, self._extends = self._extends, []
        with self.db.store.write() as s:
            for row_id, at, sim, box, template in pending:
                self.db.store.extend_sighting(s, row_id, at, sim, box, template)

    def close(self) -> None:
        """Ends the watch: flushes what is pending."""
        self.flush()


class LatestFrame:
    """A one-frame buffer between a reader thread and a slower consumer: :meth:`put` replaces
    the frame not yet taken (counting it in ``skipped``), :meth:`take` waits for a frame and
    returns the newest one, or None once the reader has ended and nothing is left."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._frame: NDArray[np.uint8] | None = None
        self._ended = False
        self.skipped = 0
        self.error: BaseException | None = None

    def put(self, frame: NDArray[np.uint8]) -> None:
        """Offers a new frame; an untaken older one is dropped and counted."""
        with self._cond:
            if self._frame is not None:
                self.skipped += 1
            self._frame = frame
            self._cond.notify()

    def end(self, error: BaseException | None = None) -> None:
        """The reader has no more frames (or failed with ``error``)."""
        with self._cond:
            self._ended = True
            self.error = error
            self._cond.notify_all()

    @property
    def ended(self) -> bool:
        """Whether the reader has ended."""
        return self._ended

    def take(self, timeout: float | None = None) -> NDArray[np.uint8] | None:
        """The newest frame (waiting for one); None when the reader ended, or on timeout."""
        with self._cond:
            self._cond.wait_for(lambda: self._frame is not None or self._ended, timeout)
            frame, self._frame = self._frame, None
            return frame


def _open(source: str, cv2: Any) -> tuple[Any, bool]:
    """The opened capture of a source, and whether it is live (a camera or a stream)."""
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
    return capture, isinstance(target, int) or "://" in source


def _live_frames(
    capture: Any,
    rate: float,
    watcher: Watcher | None,
    pace: float | None = None,
    until: float | None = None,
) -> Generator[tuple[float | None, NDArray[np.uint8]], None, None]:
    """A live source's frames: a reader thread reads every frame as it comes and keeps the
    newest; the consumer always gets the newest one, at most ``rate`` a second. Frames it
    never got are counted in ``watcher.skipped``. ``pace`` (seconds per frame) makes a file
    play like a live source, for tests. ``until`` (a time.monotonic() deadline) ends it even
    while a stalled source sends nothing."""
    buffer = LatestFrame()
    stop = threading.Event()

    def read() -> None:
        try:
            while not stop.is_set():
                ok, frame = capture.read()
                if not ok:
                    break
                buffer.put(np.asarray(frame, dtype=np.uint8))
                if pace:
                    time.sleep(pace)
        except BaseException as e:  # pragma: no cover - a driver failing mid-stream
            buffer.end(e)
            return
        buffer.end()

    reader = threading.Thread(target=read, name="facedb-watch-reader", daemon=True)
    reader.start()
    last = 0.0
    try:
        while True:
            wait = last + 1.0 / rate - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            frame = buffer.take(timeout=None if until is None else 0.25)
            if watcher is not None:
                watcher.skipped = buffer.skipped
            if frame is None and not buffer.ended:  # waited for a stalled source
                if until is not None and time.monotonic() >= until:
                    return
                continue
            if frame is None:
                if buffer.error is not None:
                    raise ConfigError(f"the video source failed: {buffer.error}")
                return
            last = time.monotonic()
            yield None, frame
    finally:
        stop.set()
        reader.join(timeout=5)
        if watcher is not None:
            watcher.skipped = buffer.skipped


def _frames(
    source: str, rate: float, watcher: Watcher | None = None, until: float | None = None
) -> Generator[tuple[float | None, NDArray[np.uint8]], None, None]:
    """Sampled frames of a video file, camera index or stream URL: (seconds into a file, or
    None for a live source; the BGR frame)."""
    cv2 = load("cv2", "video", "watching a video or camera")
    capture, live = _open(source, cv2)
    fps = capture.get(cv2.CAP_PROP_FPS) or 0.0
    try:
        if live:
            yield from _live_frames(capture, rate, watcher, until=until)
            return
        index = 0
        next_at = 0.0
        while True:
            if not capture.grab():
                return
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
    watcher: Watcher | None = None,
) -> list[Sighting]:
    """Watches a video file (to its end), a camera index or a stream URL (until ``duration``
    seconds or Ctrl-C) and logs visits; returns the visits started. A live source is read
    by a thread that keeps only the newest frame; pass a ``watcher`` to read how many frames
    were skipped (:attr:`Watcher.skipped`) and how many were processed; its settings are
    the ones in force (``settings`` may be left out, or must be the same).

    Raises:
        ConfigError: ``settings`` and the watcher's settings differ.
    """
    if watcher is not None:
        if settings is not None and settings != watcher.settings:
            raise ConfigError(
                "watch was given settings and a watcher with other settings: pass the settings "
                "to the Watcher only"
            )
        settings = watcher.settings
    settings = settings or WatchSettings()
    start = start or datetime.now(UTC)
    watcher = watcher or Watcher(db, source, settings)
    began = time.monotonic()
    frames = _frames(source, settings.rate, watcher, None if duration is None else began + duration)
    try:
        for position, frame in frames:
            at = start + timedelta(seconds=position) if position is not None else datetime.now(UTC)
            if settings.track:
                watcher.observe_frame(at, frame)
            else:
                watcher.observe(at, db.identify(frame))
            if duration is not None and time.monotonic() - began >= duration:
                break
    finally:
        frames.close()
        watcher.close()
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

"""The watcher: sampled frames (or their identifications) in, visits out. It follows faces
with tracks, recognises a track's face only now and then, groups unknown faces into
strangers, and logs a person or stranger when the vote says so."""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import numpy as np
from numpy.typing import NDArray

from facedb.attendance.reports import Sighting
from facedb.attendance.settings import WatchSettings
from facedb.attendance.tracks import _greedy, _keep_best, _merit, _Seen, _Stranger, _Track, _Visit
from facedb.events import person_ref, public_source
from facedb.gallery import FaceDB
from facedb.grouping import Grouping
from facedb.results import Identification
from facedb.store import GroupFaceInfo
from facedb.thumbnails import pixels_of, thumbnail

__all__ = ["Watcher"]


#: The last-seen time of a stored stranger before the watch sees them (never pruned).
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


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
        self._groups = Grouping(self.db.facts.dimension, self.db.thresholds.pairwise)
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
            answers = self.db.identify_faces(faces, 5)
            same_face = self.db.thresholds.pairwise  # once a sample, not a query per track
            for (track, _, merit), r in zip(due, answers, strict=True):
                track.embedded_at, track.embedded_merit = at, merit
                self._identified(track, r, at, same_face)
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
            # A picture for a group's first face (a new stranger) and for a visit about to
            # begin (the review of sightings shows it): only faces with no visit open yet.
            if self.db.thumbnails and (
                (track.stranger is not None and track.stranger.id is None) or track.key not in self._open
            ):
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

    def _identified(self, track: _Track, r: Identification, at: datetime, same_face: float) -> None:
        """A track's face was recognised: its identity, carried until the next recognition.
        A poor or ambiguous answer keeps what the track already knew, unless the box now
        holds another face (its template no longer matches the one the track was recognised
        by: one person stepped out and another in at the same place between two samples);
        then the track forgets whom it named, so that nobody is named who is not there."""
        if (
            track.template is not None
            and not r.face.is_poor_quality
            # One face against one face (``same_face``): the FMR-based threshold
            # (db.thresholds.pairwise), not naming's, which comes down to about 0.23 in a small
            # gallery, where two people's faces may score.
            and float(track.template @ r.face.embedding) < same_face
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
        with self.db.writes.change() as change:
            s = change.session
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
                thumbnail=r.picture,
            )
            change.event(
                "visit.started",
                {
                    "person": None if r.person is None else person_ref(r.person.id, r.person.name),
                    "stranger": None if stranger_id is None else {"id": stranger_id},
                    "similarity": round(float(r.similarity), 4),
                    "sighting": {
                        "id": row_id,
                        "frames": frames,
                        "bbox": [round(float(v), 1) for v in r.bbox],
                    },
                    "source": public_source(self.source),
                },
                at=first,
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
        with self.db.writes.change() as change:
            for row_id, at, sim, box, template in pending:
                self.db.store.extend_sighting(change.session, row_id, at, sim, box, template)

    def close(self) -> None:
        """Ends the watch: flushes what is pending."""
        self.flush()

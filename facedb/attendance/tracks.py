"""What a watch keeps about the faces it sees: tracks (a face followed from sample to sample
by its box) and their association by IoU, strangers, a sample's sightings and open visits."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import numpy as np
from numpy.typing import NDArray

from facedb.results import Person

__all__ = ["iou"]


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
    picture: bytes | None = None  # a thumbnail: a new visit's, and a pending stranger's group's first face


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

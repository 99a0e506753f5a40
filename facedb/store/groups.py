"""Groups of faces nobody has named (``discover``'s groups and a watch's strangers: both are
rows of ``strangers``) and their faces (``stranger_faces``)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import numpy as np
from numpy.typing import NDArray
from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session, defer

from facedb.models import DiscoveredPhotoRow, SightingRow, StrangerFaceRow, StrangerRow
from facedb.store.database import Database, core_table, insert_many
from facedb.store.templates import template_array, template_bytes

__all__ = ["GroupFaceInfo", "GroupQueries"]


@dataclass(frozen=True, slots=True)
class GroupFaceInfo:
    """One face to store in a group."""

    photo: str
    bbox: Sequence[float]
    det_score: float
    quality: float | None
    template: NDArray[np.float32]
    thumbnail: bytes | None
    seen_at: datetime


class GroupQueries(Database):
    """The groups of unnamed faces and their faces."""

    def group_state(self, s: Session, dimension: int) -> list[tuple[int, NDArray[np.float64], int, set[str]]]:
        """Every group as the grouping resumes it: id, the sum of its faces' templates, how
        many they are, and their photos (a watch's stranger stored without faces: its
        template, one)."""
        sums: dict[int, NDArray[np.float64]] = {}
        counts: dict[int, int] = {}
        photos: dict[int, set[str]] = {}
        query = select(StrangerFaceRow.stranger_id, StrangerFaceRow.photo, StrangerFaceRow.template)
        for stranger_id, photo, blob in s.execute(query):
            key = int(stranger_id)
            vector = template_array(blob, dimension).astype(np.float64)
            sums[key] = sums[key] + vector if key in sums else vector
            counts[key] = counts.get(key, 0) + 1
            photos.setdefault(key, set()).add(str(photo))
        out = []
        for group_id, blob in s.execute(select(StrangerRow.id, StrangerRow.template)):
            key = int(group_id)
            if key in sums:
                out.append((key, sums[key], counts[key], photos[key]))
            else:
                out.append((key, template_array(blob, dimension).astype(np.float64), 1, set()))
        return out

    def discovered_photos(self, s: Session, photos: Sequence[str]) -> set[str]:
        """Which of these photos ``discover`` has looked at before."""
        found: set[str] = set()
        for start in range(0, len(photos), 500):
            part = list(photos[start : start + 500])
            query = select(DiscoveredPhotoRow.photo).where(DiscoveredPhotoRow.photo.in_(part))
            found |= {str(p) for p in s.scalars(query)}
        return found

    def add_discovered_photos(self, s: Session, photos: Sequence[str], at: datetime) -> None:
        """Inside a write: these photos were looked at (those recorded already are left)."""
        fresh = sorted(set(photos) - self.discovered_photos(s, photos))
        rows = [{"photo": p[:1000], "discovered_at": at} for p in fresh]
        insert_many(s, core_table(DiscoveredPhotoRow), rows)

    def add_group(self, s: Session, template: NDArray[np.float32], origin: str, at: datetime) -> int:
        """Inside a write: a new group; its id."""
        row = StrangerRow(template=template_bytes(template), first_seen=at, last_seen=at, origin=origin)
        s.add(row)
        s.flush()
        return int(row.id)

    def add_group_faces(
        self, s: Session, group_ids: Sequence[int], faces: Sequence[GroupFaceInfo]
    ) -> list[int]:
        """Inside a write: faces for groups, the i-th face in the i-th group; their ids."""
        rows = [
            {
                "stranger_id": int(group_id),
                "photo": face.photo[:1000],
                "x1": float(face.bbox[0]),
                "y1": float(face.bbox[1]),
                "x2": float(face.bbox[2]),
                "y2": float(face.bbox[3]),
                "det_score": float(face.det_score),
                "quality": face.quality,
                "template": template_bytes(face.template),
                "thumbnail": face.thumbnail,
                "seen_at": face.seen_at,
            }
            for group_id, face in zip(group_ids, faces, strict=True)
        ]
        return insert_many(s, core_table(StrangerFaceRow), rows)

    def set_group_centroid(
        self, s: Session, group_id: int, template: NDArray[np.float32], at: datetime
    ) -> None:
        """Inside a write: a group's new centroid, and when it last grew."""
        s.execute(
            update(StrangerRow)
            .where(StrangerRow.id == int(group_id))
            .values(template=template_bytes(template), last_seen=at)
        )

    def merge_groups(self, s: Session, kept: int, gone: int) -> None:
        """Inside a write: the faces and visits of group ``gone`` become ``kept``'s; ``gone``
        is removed."""
        s.execute(update(StrangerFaceRow).where(StrangerFaceRow.stranger_id == gone).values(stranger_id=kept))
        s.execute(update(SightingRow).where(SightingRow.stranger_id == gone).values(stranger_id=kept))
        s.execute(delete(StrangerRow).where(StrangerRow.id == gone))

    def group_rows(
        self, s: Session, group_ids: Sequence[int] | None = None
    ) -> list[tuple[StrangerRow, list[tuple[StrangerFaceRow, bool]]]]:
        """Groups (all, or these) with their faces, each with whether it has a thumbnail
        (templates and thumbnails are not loaded), biggest first, then oldest."""
        query = select(StrangerRow)
        if group_ids is not None:
            query = query.where(StrangerRow.id.in_([int(i) for i in group_ids]))
        groups = {int(g.id): g for g in s.scalars(query)}
        faces: dict[int, list[tuple[StrangerFaceRow, bool]]] = {i: [] for i in groups}
        face_query = (
            select(StrangerFaceRow, StrangerFaceRow.thumbnail.is_not(None))
            .options(defer(StrangerFaceRow.template), defer(StrangerFaceRow.thumbnail))
            .order_by(StrangerFaceRow.id)
        )
        if group_ids is not None:
            face_query = face_query.where(StrangerFaceRow.stranger_id.in_(list(groups)))
        for face, pictured in s.execute(face_query):
            faces.setdefault(int(face.stranger_id), []).append((face, bool(pictured)))
        order = sorted(groups, key=lambda i: (-len(faces.get(i, [])), i))
        return [(groups[i], faces.get(i, [])) for i in order]

    def group_templates(self, s: Session, group_id: int, dimension: int) -> list[tuple[int, GroupFaceInfo]]:
        """A group's faces with their templates and thumbnails (for naming the group): (id,
        face) each, oldest first."""
        rows = s.scalars(
            select(StrangerFaceRow)
            .where(StrangerFaceRow.stranger_id == int(group_id))
            .order_by(StrangerFaceRow.id)
        )
        return [
            (
                int(row.id),
                GroupFaceInfo(
                    photo=str(row.photo),
                    bbox=[float(row.x1), float(row.y1), float(row.x2), float(row.y2)],
                    det_score=float(row.det_score),
                    quality=None if row.quality is None else float(row.quality),
                    template=template_array(row.template, dimension),
                    thumbnail=row.thumbnail,
                    seen_at=row.seen_at,
                ),
            )
            for row in rows
        ]

    def group_face_thumbnail(self, s: Session, face_id: int) -> tuple[bool, bytes | None]:
        """(whether the face exists, its thumbnail)."""
        row = s.execute(select(StrangerFaceRow.thumbnail).where(StrangerFaceRow.id == int(face_id))).first()
        return (False, None) if row is None else (True, row[0])

    def group_size(self, s: Session, group_id: int) -> int:
        """How many faces a group has."""
        return int(s.scalar(select(func.count()).where(StrangerFaceRow.stranger_id == int(group_id))) or 0)

    def group(self, s: Session, group_id: int, *, lock: bool = False) -> StrangerRow | None:
        """The group with this id, or None (``lock``: held for update until the write ends)."""
        query = select(StrangerRow).where(StrangerRow.id == int(group_id))
        if lock:
            query = query.with_for_update()
        return s.scalars(query).first()

    def assign_group_sightings(self, s: Session, group_id: int, person_id: int) -> None:
        """Inside a write: a named group's visits become the person's."""
        s.execute(
            update(SightingRow)
            .where(SightingRow.stranger_id == int(group_id))
            .values(person_id=int(person_id), stranger_id=None)
        )

    def remove_group(self, s: Session, group_id: int) -> bool:
        """Inside a write: removes a group with its faces and its visits; False when there
        was none."""
        row = s.get(StrangerRow, int(group_id))
        if row is None:
            return False
        s.delete(row)
        s.flush()
        return True

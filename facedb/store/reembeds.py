"""Re-embedding (``reembed``): each face's template made anew from its kept crop by another
pack, staged beside the face until every face has one, then swapped in one transaction."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray
from sqlalchemy import CursorResult, delete, func, select, update
from sqlalchemy.orm import Session

from facedb.errors import GalleryError
from facedb.models import (
    FaceRow,
    GalleryRow,
    PersonRow,
    ReembedRow,
    RejectionRow,
    SightingRow,
    StrangerFaceRow,
    StrangerRow,
)
from facedb.store.database import Database, core_table
from facedb.store.templates import template_bytes

__all__ = ["NOT_YET", "ReembedQueries"]

#: How :meth:`ReembedQueries.not_reembedded` names a face that keeps a crop but has no new
#: template yet (enrolled while a re-embedding ran): never dropped, made by a rerun.
NOT_YET = "not re-embedded yet"


def _count(result: object) -> int:
    """How many rows an UPDATE or DELETE changed."""
    assert isinstance(result, CursorResult)
    return int(result.rowcount or 0)


class ReembedQueries(Database):
    """The staged templates of a re-embedding and its swap."""

    def forget_reembeds(self, s: Session, keep: str) -> int:
        """Inside a write: drops staged templates of any model but ``keep`` (an earlier
        re-embedding to another pack); how many."""
        return _count(s.execute(delete(ReembedRow).where(ReembedRow.model_id != keep)))

    def reembed_progress(self, s: Session, model_id: str) -> tuple[int, int]:
        """(faces, faces whose template for ``model_id`` is staged)."""
        faces = int(s.execute(select(func.count()).select_from(FaceRow)).scalar_one())
        staged = int(
            s.execute(
                select(func.count()).select_from(ReembedRow).where(ReembedRow.model_id == model_id)
            ).scalar_one()
        )
        return faces, staged

    def crops_to_reembed(self, s: Session, model_id: str, after: int, limit: int) -> list[tuple[int, bytes]]:
        """Faces past id ``after`` with a kept crop and no template for ``model_id`` staged
        yet, in id order: (face id, crop PNG)."""
        staged = select(ReembedRow.id).where(ReembedRow.model_id == model_id)
        rows = s.execute(
            select(FaceRow.id, FaceRow.crop)
            .where(FaceRow.id > after, FaceRow.crop.is_not(None), FaceRow.id.not_in(staged))
            .order_by(FaceRow.id)
            .limit(limit)
        ).all()
        return [(int(i), bytes(c)) for i, c in rows if c is not None]

    def stage_reembeds(
        self, s: Session, model_id: str, face_ids: Sequence[int], templates: NDArray[np.float32]
    ) -> None:
        """Inside a write: the new templates of these faces (a face erased meanwhile is
        skipped: its row is gone, and its staged template with it)."""
        alive = set(s.execute(select(FaceRow.id).where(FaceRow.id.in_([int(i) for i in face_ids]))).scalars())
        rows = [
            {"id": int(i), "model_id": model_id, "template": template_bytes(t)}
            for i, t in zip(face_ids, templates, strict=True)
            if int(i) in alive
        ]
        if rows:
            s.execute(core_table(ReembedRow).insert(), rows)

    def not_reembedded(self, s: Session, model_id: str) -> dict[str, list[str]]:
        """What holds a template that the re-embedding to ``model_id`` has not made anew, by
        kind: faces (without a kept crop, or not staged yet), negative examples and
        discovered groups (they keep no crop). Each item is a line naming it."""
        staged = select(ReembedRow.id).where(ReembedRow.model_id == model_id)
        faces = s.execute(
            select(FaceRow.id, PersonRow.name, FaceRow.image_name, FaceRow.crop.is_(None))
            .join(PersonRow, PersonRow.id == FaceRow.person_id)
            .where(FaceRow.id.not_in(staged))
            .order_by(FaceRow.id)
        ).all()
        rejections = s.execute(
            select(RejectionRow.id, PersonRow.name)
            .join(PersonRow, PersonRow.id == RejectionRow.person_id)
            .order_by(RejectionRow.id)
        ).all()
        groups = s.execute(select(StrangerRow.id).order_by(StrangerRow.id)).scalars().all()
        return {
            "faces": [
                f"face {i} of {name!r} ({image or 'imported template'}): "
                + ("no crop kept" if no_crop else NOT_YET)
                for i, name, image, no_crop in faces
            ],
            "negative examples": [
                f"negative example {i} of {name!r}: no crop kept" for i, name in rejections
            ],
            "discovered groups": [f"group {i}: no crops kept" for i in groups],
        }

    def swap_reembeds(
        self, s: Session, model_id: str, dimension: int, pack: str | None
    ) -> tuple[int, list[int], int]:
        """Inside a write: every face with a staged template takes it, and the gallery its
        model, dimension and pack; faces without one, negative examples and discovered
        groups are deleted (the caller allowed it), visits' templates are cleared (their
        records stay). Returns (faces swapped, face ids deleted, visit templates cleared)."""
        row = s.get(GalleryRow, 1)
        if row is None:
            raise GalleryError(f"{self.safe_url} holds no facedb gallery")
        staged = select(ReembedRow.id).where(ReembedRow.model_id == model_id)
        dropped = [int(i) for i in s.execute(select(FaceRow.id).where(FaceRow.id.not_in(staged))).scalars()]
        if dropped:
            s.execute(delete(FaceRow).where(FaceRow.id.in_(dropped)))
        new_template = select(ReembedRow.template).where(ReembedRow.id == FaceRow.id).scalar_subquery()
        swapped = _count(
            s.execute(
                update(FaceRow)
                .where(FaceRow.id.in_(staged))
                .values(template=new_template, model_id=model_id, pack=pack)
                .execution_options(synchronize_session=False)
            )
        )
        s.execute(delete(RejectionRow))
        s.execute(delete(StrangerFaceRow))
        s.execute(delete(StrangerRow))
        cleared = _count(
            s.execute(
                update(SightingRow)
                .where(SightingRow.template.is_not(None))
                .values(template=None)
                .execution_options(synchronize_session=False)
            )
        )
        s.execute(delete(ReembedRow))
        row.model_id, row.dimension, row.pack = model_id, int(dimension), pack
        s.flush()
        return swapped, dropped, cleared

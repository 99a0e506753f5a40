"""The gallery's facts about itself (one row): the model that made its templates, their
dimension and the gallery's identity."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from facedb.errors import GalleryError
from facedb.models import GalleryRow
from facedb.store.database import Database, utc_now
from facedb.store.schema import serialize

__all__ = ["GalleryFacts", "GalleryFactsQueries"]


@dataclass(frozen=True, slots=True)
class GalleryFacts:
    """What the gallery records about itself."""

    model_id: str
    dimension: int
    generation: int
    uid: str


def _check_model(row: GalleryRow, model_id: str, dimension: int, where: str) -> None:
    if row.model_id != model_id or row.dimension != dimension:
        raise GalleryError(
            f"the gallery at {where} holds templates of model {row.model_id} "
            f"({row.dimension}-d); this engine makes {model_id} ({dimension}-d): "
            "templates of different models cannot be compared"
        )


class GalleryFactsQueries(Database):
    """The gallery row: claimed by the first opener, checked by every later one."""

    def claim(self, model_id: str, dimension: int, uid: str | None = None) -> GalleryFacts:
        """Records the model of a new gallery (and its identity: `uid`, or a new one), or
        checks an existing gallery's against it (its own transaction: it runs once, on open)."""
        if self.read_only:
            with self.read() as s:
                found = s.get(GalleryRow, 1)
                if found is None or not found.uid:
                    raise GalleryError(f"{self.safe_url} holds no facedb gallery yet (opened read-only)")
                _check_model(found, model_id, dimension, self.safe_url)
                return GalleryFacts(found.model_id, found.dimension, found.generation, found.uid)
        with self.write() as s:
            serialize(s.connection())  # two first openers must not both create the row
            row = s.get(GalleryRow, 1)
            if row is None:
                row = GalleryRow(
                    id=1,
                    model_id=model_id,
                    dimension=dimension,
                    generation=0,
                    created_at=utc_now(),
                    uid=uid or str(uuid.uuid4()),
                )
                s.add(row)
            else:
                _check_model(row, model_id, dimension, self.safe_url)
            if not row.uid:
                row.uid = str(uuid.uuid4())
            return GalleryFacts(row.model_id, row.dimension, row.generation, row.uid)

"""People and their faces: adding, finding, renaming and removing them, with the row locks
that keep a removal and a concurrent enrollment of the same person apart."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, Protocol

import numpy as np
from numpy.typing import NDArray
from sqlalchemy import Boolean, Integer, String, Text, bindparam, exists, func, insert, select, text
from sqlalchemy.orm import Session, aliased

from facedb.models import FaceRow, GalleryRow, PersonRow, RejectionRow, UtcDateTime
from facedb.store.copies import COPIED_TABLES
from facedb.store.database import Database, core_table, insert_rows, utc_now
from facedb.store.templates import template_blobs

__all__ = ["FaceInfo", "PeopleQueries", "PersonFields"]


@dataclass(frozen=True, slots=True)
class FaceInfo:
    """Where a template came from (all optional for imported templates)."""

    bbox: Sequence[float] | None = None
    det_score: float | None = None
    image_sha256: str | None = None
    image_name: str | None = None
    quality: float | None = None
    thumbnail: bytes | None = None
    #: The aligned crop as a lossless PNG (facedb.crops), for ``reembed``.
    crop: bytes | None = None


class PersonFields(Protocol):
    """A person's columns, as an ORM row or a plain result row has them."""

    @property
    def id(self) -> int: ...
    @property
    def name(self) -> str: ...
    @property
    def metadata_json(self) -> str: ...
    @property
    def created_at(self) -> datetime: ...


_OTHER_FACE = aliased(FaceRow)
_OWNERS = select(
    FaceRow.id.label("face_id"),
    PersonRow.id.label("id"),
    PersonRow.name.label("name"),
    PersonRow.metadata_json.label("metadata_json"),
    PersonRow.created_at.label("created_at"),
    select(func.count())
    .select_from(_OTHER_FACE)
    .where(_OTHER_FACE.person_id == PersonRow.id)
    .correlate(PersonRow)
    .scalar_subquery()
    .label("face_count"),
    exists().where(RejectionRow.person_id == PersonRow.id).correlate(PersonRow).label("has_negatives"),
).join(PersonRow, PersonRow.id == FaceRow.person_id)
#: The owners of a list of faces: one statement, compiled once (the list is expanded when it
#: runs), where a fresh ``in_()`` would be compiled again on every search.
_OWNERS_OF = _OWNERS.where(FaceRow.id.in_(bindparam("face_ids", expanding=True)))
#: The same on SQLite, told to read the faces through ix_faces_id_person: its planner takes the
#: table's own rows by rowid otherwise, a page each (a face's row holds its template,
#: thumbnail and crop), where the index of (id, person_id) is a few tens of MB at a million.
_OWNERS_OF_SQLITE = (
    text(
        "SELECT f.id AS face_id, p.id AS id, p.name AS name, p.metadata AS metadata_json, "
        "p.created_at AS created_at, "
        "(SELECT count(*) FROM faces AS o WHERE o.person_id = p.id) AS face_count, "
        "EXISTS (SELECT 1 FROM rejections AS r WHERE r.person_id = p.id) AS has_negatives "
        "FROM faces AS f INDEXED BY ix_faces_id_person JOIN people AS p ON p.id = f.person_id "
        "WHERE f.id IN :face_ids"
    )
    .bindparams(bindparam("face_ids", expanding=True))
    .columns(
        face_id=Integer,
        id=Integer,
        name=String,
        metadata_json=Text,
        created_at=UtcDateTime(),
        face_count=Integer,
        has_negatives=Boolean,
    )
)


class PeopleQueries(Database):
    """The people and faces tables."""

    # -- people ----------------------------------------------------------------------------

    def add_people(
        self,
        s: Session,
        names: Sequence[str],
        metadata: Sequence[Mapping[str, Any]] | None = None,
        created_at: datetime | None = None,
        *,
        metadata_json: Sequence[str] | None = None,
    ) -> list[int]:
        """Inside a write: new people; their ids, in order (one bulk insert).

        Args:
            metadata: each person's metadata (None: none, ``{}``).
            metadata_json: instead of ``metadata``, each person's metadata already as
                ``json.dumps(..., sort_keys=True)`` (a bulk import serialises it all before
                it writes anything).
        """
        now = created_at or utc_now()
        if metadata_json is None:
            metadata_json = (
                [json.dumps(meta, sort_keys=True) for meta in metadata]
                if metadata is not None
                else ["{}"] * len(names)
            )
        rows = zip(names, metadata_json, strict=True)
        return insert_rows(s, core_table(PersonRow), ("name", "metadata"), rows, {"created_at": now})

    def count_people(self, s: Session) -> int:
        """How many people the gallery holds."""
        return int(s.execute(select(func.count()).select_from(PersonRow)).scalar_one())

    def people(self, s: Session) -> list[PersonRow]:
        """Everybody, by id."""
        return list(s.scalars(select(PersonRow).order_by(PersonRow.id)))

    def people_named(self, s: Session, name: str) -> list[PersonRow]:
        """Everybody with exactly this name, by id."""
        return list(s.scalars(select(PersonRow).where(PersonRow.name == name).order_by(PersonRow.id)))

    def claim_name(self, s: Session, name: str) -> list[int]:
        """Inside a write, before a new person is added: the ids of the people who have this
        name now, with the gallery's row locked until the transaction ends, so that no
        concurrent writer adds somebody of this name meanwhile (PostgreSQL; SQLite's writers
        take turns anyway)."""
        s.execute(select(GalleryRow.id).where(GalleryRow.id == 1).with_for_update())
        return [r.id for r in self.people_named(s, name)]

    def person(
        self, s: Session, person_id: int, *, lock: Literal["update", "share"] | None = None
    ) -> PersonRow | None:
        """The person with this id, or None; inside a write, `lock` takes their row lock
        (FOR UPDATE, or FOR SHARE) until the transaction ends."""
        if lock == "update":
            return s.get(PersonRow, int(person_id), with_for_update=True)
        if lock == "share":
            return s.get(PersonRow, int(person_id), with_for_update={"read": True})
        return s.get(PersonRow, int(person_id))

    def rename_person(self, s: Session, person_id: int, name: str) -> bool:
        """Inside a write: gives a person a new name; False when nobody has this id."""
        row = s.get(PersonRow, int(person_id))
        if row is None:
            return False
        row.name = name
        return True

    def merge_metadata(self, s: Session, person_id: int, metadata: Mapping[str, Any]) -> None:
        """Inside a write: merges these keys into a person's metadata (the person exists)."""
        row = s.get(PersonRow, int(person_id))
        assert row is not None
        merged = {**json.loads(row.metadata_json or "{}"), **metadata}
        row.metadata_json = json.dumps(merged, sort_keys=True)

    def remove_person(self, s: Session, person_id: int) -> list[int] | None:
        """Inside a write: removes a person (their faces go with them); the ids of the faces
        removed, or None when nobody has this id."""
        # The person's row is locked before their faces are listed: a face another process
        # adds meanwhile waits, then finds them gone, instead of being removed by the cascade
        # without a line in the change log.
        row = self.person(s, person_id, lock="update")
        if row is None:
            return None
        face_ids = self.face_ids_of(s, [int(person_id)])
        s.delete(row)
        s.flush()
        return face_ids

    def insert_people(self, s: Session, rows: Sequence[Mapping[str, Any]]) -> None:
        """Inside a write: people with the ids they have elsewhere (``facedb copy``): each row
        holds id, name, metadata_json and created_at."""
        s.execute(insert(PersonRow), [dict(r) for r in rows])

    # -- faces -----------------------------------------------------------------------------

    def add_faces(
        self,
        s: Session,
        person_ids: Sequence[int],
        model_id: str,
        templates: NDArray[np.float32],
        infos: Sequence[FaceInfo] | None = None,
    ) -> list[int]:
        """Inside a write: new faces, the i-th template for the i-th person id (with the i-th
        info; None: imported templates, of which nothing else is known); their ids."""
        constants = {"model_id": model_id, "pack": self.pack, "created_at": utc_now()}
        blobs = template_blobs(templates)
        if infos is None:
            return insert_rows(
                s,
                core_table(FaceRow),
                ("person_id", "template"),
                zip(person_ids, blobs, strict=True),
                constants,
            )
        columns = (
            "person_id",
            "template",
            "x1",
            "y1",
            "x2",
            "y2",
            "det_score",
            "image_sha256",
            "image_name",
            "quality",
            "thumbnail",
            "crop",
        )
        rows = []
        for person_id, blob, info in zip(person_ids, blobs, infos, strict=True):
            box = list(info.bbox) if info.bbox is not None else [None] * 4
            rows.append(
                (
                    person_id,
                    blob,
                    *box[:4],
                    info.det_score,
                    info.image_sha256,
                    info.image_name,
                    info.quality,
                    info.thumbnail,
                    info.crop,
                )
            )
        return insert_rows(s, core_table(FaceRow), columns, rows, constants)

    def remove_face(self, s: Session, face_id: int) -> bool:
        """Inside a write: removes one face; False when no face has this id."""
        row = s.get(FaceRow, int(face_id))
        if row is None:
            return False
        s.delete(row)
        s.flush()
        return True

    def face(self, s: Session, face_id: int, *, lock: bool = False) -> FaceRow | None:
        """The face with this id, or None; inside a write, `lock` takes its row lock."""
        return s.get(FaceRow, int(face_id), with_for_update=lock or None)

    def face_thumbnail(self, s: Session, face_id: int) -> tuple[bytes | None] | None:
        """``(thumbnail,)`` of the face with this id (its thumbnail may be None), or None when
        no face has it; reads the thumbnail alone, not the template."""
        row = s.execute(select(FaceRow.thumbnail).where(FaceRow.id == int(face_id))).first()
        return None if row is None else (row[0],)

    def first_thumbnails(self, s: Session) -> dict[int, int]:
        """Person id -> the smallest id of their faces that have a thumbnail."""
        rows = s.execute(
            select(FaceRow.person_id, func.min(FaceRow.id))
            .where(FaceRow.thumbnail.is_not(None))
            .group_by(FaceRow.person_id)
        )
        return {int(p): int(f) for p, f in rows}

    def face_qualities(self, s: Session) -> list[tuple[int, int, float]]:
        """(face id, person id, quality) of every face whose quality was scored, by id."""
        rows = s.execute(
            select(FaceRow.id, FaceRow.person_id, FaceRow.quality)
            .where(FaceRow.quality.is_not(None))
            .order_by(FaceRow.id)
        )
        return [(int(f), int(p), float(q)) for f, p, q in rows if q is not None]

    def count_faces(self, s: Session) -> int:
        """How many faces (templates) the gallery holds."""
        return int(s.execute(select(func.count()).select_from(FaceRow)).scalar_one())

    def face_ids(self, s: Session) -> set[int]:
        """The id of every face."""
        return {int(i) for i in s.scalars(select(FaceRow.id))}

    def face_models(self, s: Session) -> set[str]:
        """The models that made the stored templates (one, unless something is wrong)."""
        return set(s.scalars(select(FaceRow.model_id).distinct()))

    def faces_of(self, s: Session, person_id: int) -> list[FaceRow]:
        """A person's faces, by id."""
        return list(s.scalars(select(FaceRow).where(FaceRow.person_id == person_id).order_by(FaceRow.id)))

    def image_hashes(self, s: Session, person_id: int) -> set[str]:
        """The content hashes of the photos a person's faces came from (where known)."""
        return {h for h in s.scalars(select(FaceRow.image_sha256).where(FaceRow.person_id == person_id)) if h}

    def face_ids_of(self, s: Session, person_ids: Sequence[int]) -> list[int]:
        """Ids of every face of these people."""
        return [int(i) for i in s.scalars(select(FaceRow.id).where(FaceRow.person_id.in_(person_ids)))]

    def face_counts(self, s: Session, person_ids: Sequence[int]) -> dict[int, int]:
        """How many faces each of these people has."""
        rows = s.execute(
            select(FaceRow.person_id, func.count())
            .where(FaceRow.person_id.in_(person_ids))
            .group_by(FaceRow.person_id)
        )
        return {int(p): int(n) for p, n in rows}

    def all_face_counts(self, s: Session) -> dict[int, int]:
        """How many faces each person with faces has (one GROUP BY over every face, no list of
        ids: the audit reads the whole gallery)."""
        rows = s.execute(select(FaceRow.person_id, func.count()).group_by(FaceRow.person_id))
        return {int(p): int(n) for p, n in rows}

    def face_owners(
        self, face_ids: Sequence[int]
    ) -> tuple[dict[int, int], dict[int, tuple[PersonFields, int]], set[int]]:
        """For the faces that still exist: face id -> person id, person id -> (the person's
        columns, face count), and which of those people have negative examples, in one query
        on a bare connection of its own (columns, not ORM objects, and no session: this is on
        every search's path)."""
        if not face_ids:
            return {}, {}, set()
        owners: dict[int, int] = {}
        people: dict[int, tuple[PersonFields, int]] = {}
        rejected: set[int] = set()
        with self._query() as conn:
            statement = _OWNERS_OF_SQLITE if self.is_sqlite else _OWNERS_OF
            for row in conn.execute(statement, {"face_ids": [int(i) for i in face_ids]}):
                owners[int(row.face_id)] = int(row.id)
                people[int(row.id)] = (row, int(row.face_count))
                if row.has_negatives:
                    rejected.add(int(row.id))
        return owners, people, rejected

    def face_rows_after(self, s: Session, face_id: int, limit: int) -> list[dict[str, Any]]:
        """Up to `limit` faces with ids above `face_id`, by id, every column (template
        included) as a dict that :meth:`insert_faces` takes."""
        statement = select(FaceRow.__table__).where(FaceRow.id > face_id).order_by(FaceRow.id).limit(limit)
        return [dict(r) for r in s.execute(statement).mappings()]

    def insert_faces(self, s: Session, rows: Sequence[Mapping[str, Any]]) -> None:
        """Inside a write: faces with the ids they have elsewhere (``facedb copy``), as
        :meth:`face_rows_after` gives them."""
        s.execute(insert(FaceRow), [dict(r) for r in rows])

    def face_templates(self, s: Session) -> Iterator[tuple[int, int, bytes]]:
        """(face id, person id, stored template) of every face."""
        for face_id, person_id, template in s.execute(
            select(FaceRow.id, FaceRow.person_id, FaceRow.template)
        ):
            yield int(face_id), int(person_id), template

    def advance_id_sequences(self, s: Session) -> None:
        """Inside a write on PostgreSQL: moves the id sequences of people, faces and every table
        ``facedb copy`` carries past the largest id, which explicit ids leave behind."""
        for table in ("people", "faces", *COPIED_TABLES):
            s.execute(
                text(
                    f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                    f"GREATEST((SELECT COALESCE(MAX(id), 0) FROM {table}), 1))"
                )
            )

"""`facedb copy SRC DST`: moves a gallery between stores (a folder, PostgreSQL + Milvus, ...).

People and faces keep their ids, so a copy can resume: each batch is one transaction in the
destination, and a rerun copies only what is missing. At the end both galleries are compared
person by person and face by face (templates by their SHA-256), and the destination's vector
store is checked against its SQL. Calibrations of the threshold (the same threshold is in
force in the copy) and negative examples ("not this person", FaceDB.reject) are copied with
their ids too. API keys and the attendance log (with its visits' templates) are not copied.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass

from facedb.errors import GalleryError
from facedb.gallery import FaceDB
from facedb.models import PersonRow

__all__ = ["CopyReport", "copy_gallery"]

_BATCH = 5_000


@dataclass(frozen=True, slots=True)
class CopyReport:
    """What a copy did and what the final comparison found."""

    people_copied: int
    faces_copied: int
    people: int
    faces: int
    identical: bool
    problems: list[str]
    rejections_copied: int = 0


def _person_key(row: PersonRow) -> tuple[int, str, str]:
    return int(row.id), row.name, row.metadata_json


def copy_gallery(src: FaceDB, dst: FaceDB, progress: Callable[[int, int], None] | None = None) -> CopyReport:
    """Copies every person and face of `src` that `dst` lacks, then compares the two.

    Raises:
        GalleryError: the galleries use different models, or `dst` holds people or faces
            that are not copies of `src`'s (it is neither empty nor an earlier copy).
    """
    if src.facts.model_id != dst.facts.model_id or src.facts.dimension != dst.facts.dimension:
        raise GalleryError(
            f"cannot copy templates of {src.facts.model_id} into a gallery of {dst.facts.model_id}"
        )
    with src.store.read() as s:
        src_people = {int(r.id): r for r in src.store.people(s)}
        total_faces = src.store.count_faces(s)
        for r in src_people.values():
            s.expunge(r)
    with dst.store.read() as s:
        dst_people = {int(r.id): _person_key(r) for r in dst.store.people(s)}
        dst_faces = dst.store.face_ids(s)
    foreign = [
        pid for pid, key in dst_people.items() if pid not in src_people or key != _person_key(src_people[pid])
    ]
    if foreign:
        raise GalleryError(
            f"{dst.location} is neither empty nor a copy of {src.location}: "
            f"{len(foreign)} of its people differ (e.g. id {foreign[0]})"
        )
    missing_people = [r for pid, r in sorted(src_people.items()) if pid not in dst_people]
    for start in range(0, len(missing_people), _BATCH):
        chunk = missing_people[start : start + _BATCH]
        with dst.store.write() as s:
            dst.store.insert_people(
                s,
                [
                    {"id": r.id, "name": r.name, "metadata_json": r.metadata_json, "created_at": r.created_at}
                    for r in chunk
                ],
            )
    faces_copied = 0
    done = 0
    last_id = 0
    while True:
        with src.store.read() as s:
            rows = src.store.face_rows_after(s, last_id, _BATCH)
        if not rows:
            break
        last_id = int(rows[-1]["id"])
        done += len(rows)
        fresh = [r for r in rows if int(r["id"]) not in dst_faces]
        if fresh:
            with dst.store.write() as s:
                dst.store.insert_faces(s, fresh)
                dst.store.bump(s, added=[int(r["id"]) for r in fresh])
            dst.sync_vectors()
            faces_copied += len(fresh)
        if progress is not None:
            progress(done, total_faces)
    _copy_calibrations(src, dst)
    rejections_copied = _copy_rejections(src, dst)
    _advance_sequences(dst)
    problems = _compare(src, dst)
    report = dst.check(repair=True)
    problems += report.problems
    return CopyReport(
        len(missing_people),
        faces_copied,
        len(src_people),
        total_faces,
        not problems,
        problems,
        rejections_copied,
    )


def _copy_rejections(src: FaceDB, dst: FaceDB) -> int:
    """Copies the negative examples `dst` lacks, a batch a transaction; how many."""
    with dst.store.read() as s:
        present = dst.store.rejection_ids(s)
    copied = 0
    last_id = 0
    while True:
        with src.store.read() as s:
            rows = src.store.rejection_rows_after(s, last_id, _BATCH)
        if not rows:
            return copied
        last_id = int(rows[-1]["id"])
        fresh = [r for r in rows if int(r["id"]) not in present]
        if fresh:
            with dst.store.write() as s:
                dst.store.insert_rejections(s, fresh)
            copied += len(fresh)


def _copy_calibrations(src: FaceDB, dst: FaceDB) -> None:
    """The calibrations `dst` lacks (by id), so that the same threshold is in force there."""
    with src.store.read() as s:
        rows = src.store.calibration_rows(s)
    with dst.store.read() as s:
        known = {int(r["id"]) for r in dst.store.calibration_rows(s)}
    fresh = [r for r in rows if int(r["id"]) not in known]
    if fresh:
        with dst.store.write() as s:
            dst.store.insert_calibrations(s, fresh)
            dst.store.bump(s)  # every process on dst reloads the threshold in force


def _advance_sequences(db: FaceDB) -> None:
    """Explicit ids leave PostgreSQL's id sequences behind: move them past the copied ids."""
    if db.store.is_sqlite:
        return
    with db.store.write() as s:
        db.store.advance_id_sequences(s)


def _fingerprint(
    db: FaceDB,
) -> tuple[dict[int, tuple[str, str]], dict[int, tuple[int, str]], dict[int, tuple[int, str]]]:
    with db.store.read() as s:
        people = {int(r.id): (r.name, r.metadata_json) for r in db.store.people(s)}
        faces = {i: (p, hashlib.sha256(t).hexdigest()) for i, p, t in db.store.face_templates(s)}
        rejections: dict[int, tuple[int, str]] = {}
        last_id = 0
        while rows := db.store.rejection_rows_after(s, last_id, _BATCH):
            last_id = int(rows[-1]["id"])
            for r in rows:
                rejections[int(r["id"])] = (int(r["person_id"]), hashlib.sha256(r["template"]).hexdigest())
    return people, faces, rejections


def _compare(src: FaceDB, dst: FaceDB) -> list[str]:
    src_people, src_faces, src_rejections = _fingerprint(src)
    dst_people, dst_faces, dst_rejections = _fingerprint(dst)
    problems = []
    if src_rejections != dst_rejections:
        rejections_diff = set(src_rejections.items()) ^ set(dst_rejections.items())
        problems.append(f"{len(rejections_diff)} negative examples differ between the galleries")
    if src_people != dst_people:
        people_diff = set(src_people.items()) ^ set(dst_people.items())
        problems.append(f"{len(people_diff)} people differ between the galleries")
    if src_faces != dst_faces:
        faces_diff = set(src_faces.items()) ^ set(dst_faces.items())
        problems.append(f"{len(faces_diff)} faces or templates differ between the galleries")
    return problems

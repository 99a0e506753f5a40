"""`facedb copy SRC DST`: moves a gallery between stores (a folder, PostgreSQL + Milvus, ...).

People and faces keep their ids, so a copy can resume: each batch is one transaction in the
destination, and a rerun copies only what is missing. At the end both galleries are compared
person by person and face by face (templates by their SHA-256), and the destination's vector
store is checked against its SQL. Everything else the gallery holds is copied too, row by row
with its ids: calibrations of the threshold (the same threshold is in force in the copy),
negative examples ("not this person", FaceDB.reject), API keys (their hashes: the same keys
work on the copy) and the attendance log (strangers and sightings, with their templates).
A rerun brings the copy's rows up to date (a key revoked, a visit extended) and removes those
the source removed (a rejection withdrawn, a visit rejected, strangers forgotten), so that no
erased template survives in the copy; a copy holding rows of its own is refused before
anything is written. Idempotency records are not copied: they expire within a day.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from facedb.errors import GalleryError
from facedb.gallery import FaceDB
from facedb.models import PersonRow
from facedb.store.copies import COPIED_TABLES, IDENTITY, MIRRORED

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
    #: Rows copied per other table (calibrations, rejections, api_keys, strangers, sightings).
    rows_copied: dict[str, int] = field(default_factory=dict)


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
    tables = _check_tables(src, dst)  # before anything is written
    missing_people = [r for pid, r in sorted(src_people.items()) if pid not in dst_people]
    for start in range(0, len(missing_people), _BATCH):
        chunk = missing_people[start : start + _BATCH]
        with dst.writes.change() as change:
            dst.store.insert_people(
                change.session,
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
            with dst.writes.change() as change:
                dst.store.insert_faces(change.session, fresh)
                ids, templates = dst.store.templates(
                    change.session, [int(r["id"]) for r in fresh], dst.facts.dimension
                )
                change.added(ids.tolist(), templates)
            faces_copied += len(fresh)
        if progress is not None:
            progress(done, total_faces)
    rows_copied = {table: _copy_table(dst, table, *tables[table]) for table in COPIED_TABLES}
    if rows_copied["calibrations"]:
        with dst.writes.change() as change:
            change.bump()  # every process on dst reloads the threshold in force
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
        rows_copied["rejections"],
        rows_copied,
    )


def _all_rows(db: FaceDB, table: str) -> dict[int, dict[str, Any]]:
    """Every row of ``table``, by id, a batch a transaction."""
    rows: dict[int, dict[str, Any]] = {}
    last_id = 0
    while True:
        with db.store.read() as s:
            batch = db.store.rows_after(s, table, last_id, _BATCH)
        if not batch:
            return rows
        last_id = int(batch[-1]["id"])
        rows.update((int(r["id"]), r) for r in batch)


def _identity(table: str, row: Mapping[str, Any]) -> tuple[Any, ...]:
    columns = IDENTITY[table] or tuple(sorted(row))
    return tuple(row[c] for c in columns)


def _check_tables(src: FaceDB, dst: FaceDB) -> dict[str, tuple[dict[int, Any], dict[int, Any]]]:
    """The source's and the copy's rows of every copied table, after checking that each row
    of the copy is a copy of the source's row with its id (or of one the source has since
    removed, in a mirrored table).

    Raises:
        GalleryError: the copy holds rows of its own (it is neither empty nor a copy).
    """
    found = {}
    for table in COPIED_TABLES:
        theirs, ours = _all_rows(src, table), _all_rows(dst, table)
        foreign = [
            i
            for i, row in ours.items()
            if (i in theirs and _identity(table, row) != _identity(table, theirs[i]))
            or (i not in theirs and table not in MIRRORED)
        ]
        if foreign:
            raise GalleryError(
                f"{dst.location} is neither empty nor a copy of {src.location}: {len(foreign)} of "
                f"its {table} rows are its own (e.g. id {foreign[0]})"
            )
        found[table] = (theirs, ours)
    return found


def _copy_table(dst: FaceDB, table: str, theirs: dict[int, Any], ours: dict[int, Any]) -> int:
    """Makes the copy's rows of ``table`` the source's: new rows inserted, rows changed in
    the source since updated, rows it removed removed; how many rows were written."""
    fresh = [row for i, row in sorted(theirs.items()) if i not in ours]
    changed = [row for i, row in theirs.items() if i in ours and ours[i] != row]
    gone = sorted(i for i in ours if i not in theirs)
    for start in range(0, len(fresh), _BATCH):
        with dst.writes.change() as change:
            dst.store.insert_rows(change.session, table, fresh[start : start + _BATCH])
    if changed or gone:
        with dst.writes.change() as change:
            for row in changed:
                dst.store.update_row(change.session, table, row)
            dst.store.delete_rows(change.session, table, gone)
            change.erased()  # rows the source removed (negative examples, visits) are erased
    return len(fresh) + len(changed) + len(gone)


def _advance_sequences(db: FaceDB) -> None:
    """Explicit ids leave PostgreSQL's id sequences behind: move them past the copied ids."""
    if db.store.is_sqlite:
        return
    with db.writes.change() as change:
        db.store.advance_id_sequences(change.session)


def _fingerprint(
    db: FaceDB,
) -> tuple[dict[int, tuple[str, str]], dict[int, tuple[int, str]], dict[int, tuple[int, str]]]:
    with db.store.read() as s:
        people = {int(r.id): (r.name, r.metadata_json) for r in db.store.people(s)}
        faces = {i: (p, hashlib.sha256(t).hexdigest()) for i, p, t in db.store.face_templates(s)}
        rejections: dict[int, tuple[int, str]] = {}
        last_id = 0
        while rows := db.store.rows_after(s, "rejections", last_id, _BATCH):
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
    for table in COPIED_TABLES:
        theirs, ours = _all_rows(src, table), _all_rows(dst, table)
        differ = {i for i in theirs.keys() | ours.keys() if theirs.get(i) != ours.get(i)}
        if differ:
            problems.append(
                f"{len(differ)} {table} rows differ between the galleries (e.g. id {min(differ)})"
            )
    return problems

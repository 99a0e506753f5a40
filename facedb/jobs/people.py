"""Who is in the gallery: listing, finding and resolving people, renaming them, and removing
people and faces (erased: templates are biometric data)."""

from __future__ import annotations

import re
import unicodedata
from typing import Any

from facedb.context import GalleryContext
from facedb.errors import ConfigError, FaceNotFound, LastFace, PersonNotFound
from facedb.events import person_ref
from facedb.results import Person, person_from_fields

__all__ = ["FORBIDDEN_IN_NAMES", "INVISIBLE", "People", "check_name"]


#: Characters no name may hold: control characters (NUL fails on PostgreSQL) and the bidi
#: embeddings, overrides and isolates (U+202E turns "Jeff Bezos" into a look-alike).
FORBIDDEN_IN_NAMES = r"\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069"
#: Characters that show nothing: a name needs one character that is neither these nor white space.
INVISIBLE = r"\u00ad\u034f\u061c\u115f\u1160\u17b4\u17b5\u180e\u200b-\u200f\u2060-\u2064\u3164\ufeff"
_FORBIDDEN = re.compile(f"[{FORBIDDEN_IN_NAMES}]")
_VISIBLE = re.compile(rf"[^\s{FORBIDDEN_IN_NAMES}{INVISIBLE}]")


def check_name(name: str) -> str:
    """The name as stored (NFC-normalised), or a ConfigError for a name that is not a string
    of at most 500 characters with one visible character, or that holds a control character
    or a bidi override. The same rule at every door (the HTTP schema's NAME_PATTERN says it)."""
    if not isinstance(name, str):
        raise ConfigError(f"a person's name must be a string, got {name!r}")
    name = unicodedata.normalize("NFC", name)
    if len(name) > 500:
        raise ConfigError(f"a person's name is limited to 500 characters, got {len(name)}")
    bad = _FORBIDDEN.search(name)
    if bad is not None:
        raise ConfigError(
            "a person's name may not hold control characters or bidi overrides, "
            f"got U+{ord(bad.group()):04X} in {name!r}"
        )
    if _VISIBLE.search(name) is None:
        raise ConfigError(f"a person's name needs a visible character, got {name!r}")
    return name


class People:
    """The people of one gallery (:class:`facedb.FaceDB` delegates here)."""

    def __init__(self, ctx: GalleryContext) -> None:
        self.ctx = ctx

    def count(self) -> int:
        """How many people the gallery holds."""
        self.ctx.check_open()
        with self.ctx.store.read() as s:
            return self.ctx.store.count_people(s)

    def people(self) -> list[Person]:
        """Everybody, by id."""
        self.ctx.check_open()
        store = self.ctx.store
        with store.read() as s:
            rows = store.people(s)
            counts = store.face_counts(s, [r.id for r in rows]) if rows else {}
            return [person_from_fields(r, counts.get(r.id, 0)) for r in rows]

    def get(self, person_id: int) -> Person:
        """The person with this id.

        Raises:
            PersonNotFound: nobody has it.
        """
        self.ctx.check_open()
        store = self.ctx.store
        with store.read() as s:
            row = store.person(s, int(person_id))
            if row is None:
                raise PersonNotFound(f"no person with id {person_id} in {self.ctx.location}")
            return person_from_fields(row, store.face_counts(s, [row.id]).get(row.id, 0))

    def find(self, name: str) -> list[Person]:
        """Everybody with exactly this name (names are labels, so maybe several)."""
        self.ctx.check_open()
        store = self.ctx.store
        with store.read() as s:
            rows = store.people_named(s, name)
            counts = store.face_counts(s, [r.id for r in rows]) if rows else {}
            return [person_from_fields(r, counts.get(r.id, 0)) for r in rows]

    def resolve(self, who: Person | int | str) -> Person:
        """A person given as a Person, an id, or an exact name. A text of digits is an id or
        a name, whichever exists; when it is both (somebody is named "9" and somebody else has
        id 9), nothing is guessed: the error names both.

        Raises:
            PersonNotFound: no such person, a name that several people share, or digits that
                are one person's id and another's name (the message lists their ids).
        """
        if isinstance(who, Person):
            return self.get(who.id)
        if isinstance(who, bool):
            raise ConfigError(f"a person is a Person, an id or a name, got {who!r}")
        if isinstance(who, int):
            return self.get(who)
        text = str(who)
        matches = self.find(text)
        if text.strip().isascii() and text.strip().isdigit():
            try:
                by_id = self.get(int(text))
            except PersonNotFound:
                by_id = None
            others = [p for p in matches if by_id is None or p.id != by_id.id]
            if by_id is not None and others:
                ids = ", ".join(str(p.id) for p in others)
                raise PersonNotFound(
                    f"{text!r} is the id of {by_id.name!r} and the name of person(s) {ids}: "
                    "give the id of the one you mean"
                )
            if by_id is not None:
                return by_id
        if not matches:
            what = "with id or name" if text.strip().isdigit() else "named"
            raise PersonNotFound(f"no person {what} {who!r} in {self.ctx.location}")
        if len(matches) > 1:
            ids = ", ".join(str(p.id) for p in matches)
            raise PersonNotFound(f"{len(matches)} people are named {who!r} (ids {ids}): give an id")
        return matches[0]

    def rename(self, person: Person | int | str, name: str) -> Person:
        """Gives a person a new name."""
        self.ctx.check_writable()
        name = check_name(name)
        target = self.resolve(person)
        with self.ctx.writes.change() as change:
            if not self.ctx.store.rename_person(change.session, target.id, name):
                raise PersonNotFound(f"no person with id {target.id} in {self.ctx.location}")
            change.event(
                "person.renamed", {"person": person_ref(target.id, name), "previous_name": target.name}
            )
        return self.get(target.id)

    def remove(self, person: Person | int | str) -> None:
        """Removes a person and erases their templates from the database, its WAL and the
        index files. The erasure is complete when this returns if no other process has the
        gallery open, otherwise when the last one closes it."""
        self.ctx.check_writable()
        target = self.resolve(person)
        with self.ctx.writes.change() as change:
            # Their row is locked before their faces are listed (see Store.remove_person).
            face_ids = self.ctx.store.remove_person(change.session, target.id)
            if face_ids is None:
                raise PersonNotFound(f"no person with id {target.id} in {self.ctx.location}")
            change.removed(face_ids)
            change.bump()  # even without faces: every process sees them gone
            change.erased()  # their thumbnails, negative examples and visits went too
            change.event(
                "person.removed",
                {"person": person_ref(target.id, target.name), "faces_removed": len(face_ids)},
            )

    def remove_face(self, face_id: int, *, last: bool = False) -> None:
        """Removes one template (and erases it like :meth:`remove`).

        Args:
            last: remove it even if it is its person's last face (which leaves a person
                nobody can be recognised as: the same as removing them, and a door lets only
                whoever may remove the person do it).

        Raises:
            FaceNotFound: no face has this id.
            LastFace: it is its person's last face and ``last`` is False.
        """
        self.ctx.check_writable()
        store = self.ctx.store
        with self.ctx.writes.change() as change:
            row = store.face(change.session, int(face_id), lock=True)
            if row is None:
                raise FaceNotFound(
                    f"no face with id {face_id} in {self.ctx.location} (`facedb faces PERSON` lists them)"
                )
            if not last and store.face_counts(change.session, [row.person_id]).get(row.person_id, 0) <= 1:
                raise LastFace(
                    f"face {face_id} is the last face of person {row.person_id}: removing it is removing "
                    f"them (remove the person, or ask for the last face: last=True, --last)"
                )
            store.remove_face(change.session, int(face_id))
            change.removed([int(face_id)])

    def faces(self, person: Person | int | str) -> list[dict[str, Any]]:
        """The faces of a person: id, box, detector score, quality at enrollment (None for an
        imported template), source photo name and hash, and whether it has a thumbnail."""
        target = self.resolve(person)
        with self.ctx.store.read() as s:
            rows = self.ctx.store.faces_of(s, target.id)
            return [
                {
                    "id": int(r.id),
                    "bbox": None if r.x1 is None else [r.x1, r.y1, r.x2, r.y2],
                    "score": r.det_score,
                    "quality": r.quality,
                    "image": r.image_name,
                    "sha256": r.image_sha256,
                    "created_at": r.created_at,
                    "has_thumbnail": r.thumbnail is not None,
                }
                for r in rows
            ]

    def thumbnail(self, face_id: int) -> bytes | None:
        """The 112x112 JPEG of one face (facedb.thumbnails), or None for a face that has none
        (an imported template, a gallery opened with ``thumbnails=False``).

        Raises:
            FaceNotFound: no face has this id.
        """
        self.ctx.check_open()
        with self.ctx.store.read() as s:
            picture = self.ctx.store.face_thumbnail(s, int(face_id))
        if picture is None:
            raise FaceNotFound(
                f"no face with id {face_id} in {self.ctx.location} (`facedb faces PERSON` lists them)"
            )
        return picture[0]

    def portraits(self) -> dict[int, int]:
        """For each person with a thumbnail: the id of their first face that has one (what a
        list of people shows of each)."""
        self.ctx.check_open()
        with self.ctx.store.read() as s:
            return self.ctx.store.first_thumbnails(s)

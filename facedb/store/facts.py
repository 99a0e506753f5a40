"""The gallery's facts about itself (one row): the model that made its templates, their
dimension and the gallery's identity."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from facedb.errors import EncryptionKeyError, GalleryError
from facedb.models import GalleryRow
from facedb.store.database import Database, utc_now
from facedb.store.schema import serialize

__all__ = ["GalleryFacts", "GalleryFactsQueries", "check_key_id"]


@dataclass(frozen=True, slots=True)
class GalleryFacts:
    """What the gallery records about itself."""

    model_id: str
    dimension: int
    generation: int
    uid: str
    #: The model pack that made the templates (None: a recognizer file that is no pack's).
    pack: str | None = None


def _check_model(row: GalleryRow, model_id: str, dimension: int, where: str, pack: str | None = None) -> None:
    if row.pack is not None and pack is not None and row.pack != pack:
        raise GalleryError(
            f"the gallery at {where} was made with the {row.pack} pack ({row.model_id}, "
            f"{row.dimension}-d); this engine runs the {pack} pack ({model_id}, {dimension}-d): "
            f"open it with pack={row.pack!r} (--pack {row.pack}), or move it to {pack} with "
            f"`facedb reembed --pack {pack}` (db.reembed({pack!r}))"
        )
    if row.model_id != model_id or row.dimension != dimension:
        raise GalleryError(
            f"the gallery at {where} holds templates of model {row.model_id} "
            f"({row.dimension}-d); this engine makes {model_id} ({dimension}-d): "
            "templates of different models cannot be compared"
        )


def check_model_id(found: str, ours: str | None, where: str) -> None:
    """The gallery's model id against the one this process opened it with: a gallery moved to
    another pack by ``reembed`` (in another process) must not be searched or written with
    the old model's templates."""
    if ours is not None and found != ours:
        raise GalleryError(
            f"the gallery at {where} now holds templates of model {found} (it was re-embedded "
            f"since this process opened it with {ours}): reopen it with its new pack"
        )


def check_key_id(found: str | None, ours: str | None, where: str) -> None:
    """The gallery's key id (None: not sealed) against the key this process was given."""
    if found == ours:
        return
    if found is None:
        raise EncryptionKeyError(
            f"the gallery at {where} is not encrypted, and a key was given: to encrypt it, open "
            "it without a key and run `facedb rekey --new-key-file FILE` (`db.rekey(key)`); to "
            "keep it as it is, open it without a key (unset FACEDB_KEY_FILE and FACEDB_KEY)"
        )
    if ours is None:
        raise EncryptionKeyError(
            f"the gallery at {where} is encrypted: open it with its key (`key=` in Python, "
            "`--key-file FILE`, or the environment: FACEDB_KEY_FILE or FACEDB_KEY)"
        )
    raise EncryptionKeyError(
        f"the key given does not open the gallery at {where}: it is encrypted with another key "
        "(or its key was changed with `facedb rekey` since this process opened it)"
    )


class GalleryFactsQueries(Database):
    """The gallery row: claimed by the first opener, checked by every later one."""

    def recorded_pack(self) -> str | None:
        """The pack a gallery recorded (None: no gallery yet, or a file that is no pack's)."""
        with self.read() as s:
            found = s.get(GalleryRow, 1)
            return None if found is None else found.pack

    def claim(
        self, model_id: str, dimension: int, uid: str | None = None, *, pack: str | None = None
    ) -> GalleryFacts:
        """Records the model (and pack) of a new gallery (and its identity: `uid`, or a new
        one), or checks an existing gallery's against it (its own transaction: it runs once,
        on open). From then on every call checks that the gallery still holds this model's
        templates (:func:`check_model_id`)."""
        # A gallery with nothing to record is only checked, in a read: no write lock at open.
        with self.read() as s:
            found = s.get(GalleryRow, 1)
            complete = found is not None and bool(found.uid)
            adopt = found is not None and found.pack is None and pack is not None and found.generation == 0
            if self.read_only and not complete:
                raise GalleryError(f"{self.safe_url} holds no facedb gallery yet (opened read-only)")
            if found is not None and found.uid and (self.read_only or not adopt):
                _check_model(found, model_id, dimension, self.safe_url, pack)
                check_key_id(found.key_id, self.key_id, self.safe_url)
                self.model_id, self.pack = found.model_id, pack
                return GalleryFacts(found.model_id, found.dimension, found.generation, found.uid, found.pack)
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
                    key_id=self.key_id,
                    pack=pack,
                )
                s.add(row)
            else:
                _check_model(row, model_id, dimension, self.safe_url, pack)
                check_key_id(row.key_id, self.key_id, self.safe_url)
                if row.pack is None and pack is not None and row.generation == 0:
                    row.pack = pack  # an empty gallery of another facedb: ours now
            if not row.uid:
                row.uid = str(uuid.uuid4())
            self.model_id, self.pack = row.model_id, pack
            return GalleryFacts(row.model_id, row.dimension, row.generation, row.uid, row.pack)

    @property
    def key_id(self) -> str | None:
        """The id of the key this process seals with (None: no key)."""
        return None if self.cipher is None else self.cipher.key_id

    def check_key(self, s: Session) -> None:
        """Inside a write, before it commits: the gallery is still sealed with this process's
        key (another process may have changed it with ``rekey``), so that nothing sealed with
        another key, or left plaintext, is ever committed beside what it sealed. Locks the
        gallery row until the commit (as the generation's bump does), so that a rekey
        cannot commit in between.

        Raises:
            EncryptionKeyError: it is not; the write is rolled back.
        """
        found = s.execute(
            select(GalleryRow.key_id, GalleryRow.model_id).where(GalleryRow.id == 1).with_for_update()
        ).first()
        if found is not None:
            check_key_id(found[0], self.key_id, self.safe_url)
            check_model_id(found[1], self.model_id, self.safe_url)

    def set_key_id(self, s: Session, key_id: str | None) -> None:
        """Inside a write: record the key the gallery is now sealed with (``rekey``)."""
        row = s.get(GalleryRow, 1)
        if row is None:
            raise GalleryError(f"{self.safe_url} holds no facedb gallery")
        row.key_id = key_id

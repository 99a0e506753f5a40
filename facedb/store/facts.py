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


def _check_model(row: GalleryRow, model_id: str, dimension: int, where: str) -> None:
    if row.model_id != model_id or row.dimension != dimension:
        raise GalleryError(
            f"the gallery at {where} holds templates of model {row.model_id} "
            f"({row.dimension}-d); this engine makes {model_id} ({dimension}-d): "
            "templates of different models cannot be compared"
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

    def claim(self, model_id: str, dimension: int, uid: str | None = None) -> GalleryFacts:
        """Records the model of a new gallery (and its identity: `uid`, or a new one), or
        checks an existing gallery's against it (its own transaction: it runs once, on open)."""
        if self.read_only:
            with self.read() as s:
                found = s.get(GalleryRow, 1)
                if found is None or not found.uid:
                    raise GalleryError(f"{self.safe_url} holds no facedb gallery yet (opened read-only)")
                _check_model(found, model_id, dimension, self.safe_url)
                check_key_id(found.key_id, self.key_id, self.safe_url)
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
                    key_id=self.key_id,
                )
                s.add(row)
            else:
                _check_model(row, model_id, dimension, self.safe_url)
                check_key_id(row.key_id, self.key_id, self.safe_url)
            if not row.uid:
                row.uid = str(uuid.uuid4())
            return GalleryFacts(row.model_id, row.dimension, row.generation, row.uid)

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
        found = s.execute(select(GalleryRow.key_id).where(GalleryRow.id == 1).with_for_update()).first()
        if found is not None:
            check_key_id(found[0], self.key_id, self.safe_url)

    def set_key_id(self, s: Session, key_id: str | None) -> None:
        """Inside a write: record the key the gallery is now sealed with (``rekey``)."""
        row = s.get(GalleryRow, 1)
        if row is None:
            raise GalleryError(f"{self.safe_url} holds no facedb gallery")
        row.key_id = key_id

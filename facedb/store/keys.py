"""API key rows: only each key's SHA-256 is stored (facedb.keys makes and checks the keys)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from facedb.models import ApiKeyRow
from facedb.store.database import Database

__all__ = ["KeyQueries"]


class KeyQueries(Database):
    """The api_keys table."""

    def add_key(
        self, s: Session, *, name: str, prefix: str, secret_sha256: str, scope: str, created_at: datetime
    ) -> ApiKeyRow:
        """Inside a write: a new key's row (its id assigned)."""
        row = ApiKeyRow(
            name=name, prefix=prefix, secret_sha256=secret_sha256, scope=scope, created_at=created_at
        )
        s.add(row)
        s.flush()
        return row

    def keys(self, s: Session) -> list[ApiKeyRow]:
        """Every key, revoked ones included, by id."""
        return list(s.scalars(select(ApiKeyRow).order_by(ApiKeyRow.id)))

    def key(self, s: Session, key_id: int) -> ApiKeyRow | None:
        """The key with this id, or None."""
        return s.get(ApiKeyRow, int(key_id))

    def key_with_digest(self, s: Session, secret_sha256: str) -> ApiKeyRow | None:
        """The key whose secret has this SHA-256, or None."""
        return s.scalars(select(ApiKeyRow).where(ApiKeyRow.secret_sha256 == secret_sha256)).first()

    def revoke_key(self, s: Session, key_id: int, at: datetime) -> ApiKeyRow | None:
        """Inside a write: revokes a key as of `at` (a revoked key keeps its first revocation
        time); its row, or None when no key has this id."""
        row = s.get(ApiKeyRow, int(key_id))
        if row is None:
            return None
        if row.revoked_at is None:
            row.revoked_at = at
        s.flush()
        return row

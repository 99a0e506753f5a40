"""Idempotency records: an enrollment request's key, fingerprint and answer, written in the
enrollment's own transaction so that a retry is answered from here."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import delete
from sqlalchemy.orm import Session

from facedb.models import IdempotencyRow
from facedb.store.database import Database, utc_now

__all__ = ["RequestQueries"]


class RequestQueries(Database):
    """The idempotency table."""

    def recall_request(self, s: Session, key: str) -> tuple[str, str] | None:
        """Inside a read or write: (fingerprint, result) recorded for this request key, or None."""
        row = s.get(IdempotencyRow, key)
        return None if row is None else (row.fingerprint, row.result)

    def remember_request(self, s: Session, key: str, fingerprint: str, result: str, keep: timedelta) -> None:
        """Inside a write: records a request's key, fingerprint and result, and forgets the
        keys recorded more than `keep` ago."""
        now = utc_now()
        s.execute(delete(IdempotencyRow).where(IdempotencyRow.created_at < now - keep))
        s.add(IdempotencyRow(key=key, fingerprint=fingerprint, result=result, created_at=now))
        s.flush()

"""HTTP API keys: created with a scope, stored only as SHA-256 hashes, revocable.

Keys are 256-bit random tokens, so a plain SHA-256 of the key is as strong as a slow hash
would be and costs nothing per request; comparisons run in constant time.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime

from facedb.errors import ConfigError, KeyNotFound
from facedb.models import ApiKeyRow
from facedb.store import Store

__all__ = ["SCOPES", "ApiKey", "KeyStore"]

#: Each scope includes the ones before it.
SCOPES = ("read", "enroll", "admin")
_PREFIX = "fdb_"


@dataclass(frozen=True, slots=True)
class ApiKey:
    """An API key's record (never its secret)."""

    id: int
    name: str
    prefix: str
    scope: str
    created_at: datetime
    revoked_at: datetime | None

    def allows(self, scope: str) -> bool:
        """Whether this key may do what `scope` needs."""
        return self.revoked_at is None and SCOPES.index(self.scope) >= SCOPES.index(scope)


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _record(row: ApiKeyRow) -> ApiKey:
    return ApiKey(int(row.id), row.name, row.prefix, row.scope, row.created_at, row.revoked_at)


class KeyStore:
    """The API keys of one gallery's database."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def create(self, scope: str, name: str = "") -> tuple[ApiKey, str]:
        """A new key; returns its record and the secret, which is not stored anywhere."""
        if scope not in SCOPES:
            raise ConfigError(f"scope must be one of {', '.join(SCOPES)}, got {scope!r}")
        secret = _PREFIX + secrets.token_urlsafe(32)
        with self.store.write() as s:
            row = self.store.add_key(
                s,
                name=name[:200],
                prefix=secret[: len(_PREFIX) + 6],
                secret_sha256=_digest(secret),
                scope=scope,
                created_at=datetime.now(UTC),
            )
            record = _record(row)
        return record, secret

    def list(self) -> list[ApiKey]:
        """Every key, revoked ones included."""
        with self.store.read() as s:
            return [_record(r) for r in self.store.keys(s)]

    def revoke(self, key_id: int) -> ApiKey:
        """Revokes a key; requests with it are refused from now on."""
        with self.store.write() as s:
            row = self.store.revoke_key(s, int(key_id), datetime.now(UTC))
            if row is None:
                raise KeyNotFound(f"no API key with id {key_id}")
            return _record(row)

    def live(self, key_id: int) -> ApiKey | None:
        """The key with this id if it is not revoked, else None (a web session's key,
        checked on every request so that revoking the key ends its sessions)."""
        with self.store.read() as s:
            row = self.store.key(s, int(key_id))
            return None if row is None or row.revoked_at is not None else _record(row)

    def authenticate(self, secret: str | None) -> ApiKey | None:
        """The live key with this secret, or None."""
        if not secret or not secret.startswith(_PREFIX) or len(secret) > 200:
            return None
        digest = _digest(secret)
        with self.store.read() as s:
            row = self.store.key_with_digest(s, digest)
            if (
                row is None
                or not hmac.compare_digest(row.secret_sha256, digest)
                or row.revoked_at is not None
            ):
                return None
            return _record(row)

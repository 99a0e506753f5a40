"""Web-page sessions: an API key exchanged once for a signed, expiring cookie.

A session token is ``KEY_ID.EXPIRES.NONCE.MAC``: the key's id, the Unix time it ends, a
random nonce and an HMAC-SHA256 of the three under a secret made per server process (a
restart signs everybody out). Nothing is stored per session: the server checks the MAC and
the expiry, then asks the key store whether the key is still live on every request, so
revoking a key ends its sessions at once. Signing out adds the nonce to a bounded in-memory
list of ended sessions until the token would have expired anyway.

The form token (CSRF) of a session is an HMAC of its nonce: a page from this server carries
it in a hidden field, another site's form cannot know it.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from facedb.keys import ApiKey

__all__ = ["COOKIE", "Session", "Sessions"]

#: The session cookie's name.
COOKIE = "facedb_session"
#: How many signed-out sessions are remembered at most (the oldest are forgotten first).
_MAX_ENDED = 100_000


@dataclass(frozen=True, slots=True)
class Session:
    """A verified session: its key (live when checked), when it ends and its form token."""

    key: ApiKey
    expires: int
    nonce: str
    csrf: str


class Sessions:
    """Makes and checks session tokens for one server process.

    Args:
        live_key: the key with this id if it is not revoked, else None.
        lifetime_seconds: how long a session lasts after sign-in.
        clock: the current Unix time (for tests).

    Example:
        >>> sessions = Sessions(lambda key_id: key_of_id(key_id), lifetime_seconds=3600)
        >>> token = sessions.start(key)
        >>> sessions.check(token).key == key
        True
    """

    def __init__(
        self,
        live_key: Callable[[int], ApiKey | None],
        lifetime_seconds: int = 8 * 3600,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.live_key = live_key
        self.lifetime_seconds = int(lifetime_seconds)
        self._secret = secrets.token_bytes(32)
        self._clock = clock
        self._ended: OrderedDict[str, int] = OrderedDict()
        self._lock = threading.Lock()

    def _mac(self, *parts: str) -> str:
        return hmac.new(self._secret, ".".join(parts).encode(), hashlib.sha256).hexdigest()

    def start(self, key: ApiKey) -> str:
        """A new session token for ``key`` (the cookie's value)."""
        expires = str(int(self._clock()) + self.lifetime_seconds)
        nonce = secrets.token_urlsafe(18)
        body = f"{key.id}.{expires}.{nonce}"
        return f"{body}.{self._mac('session', body)}"

    def check(self, token: str | None) -> Session | None:
        """The session of a token if its MAC is right, it has not expired or been ended, and
        its key is still live; else None. Asks the key store (blocking)."""
        if not token or len(token) > 300:
            return None
        parts = token.split(".")
        # ASCII only: a cookie is the browser's text, and compare_digest refuses other str.
        if not token.isascii() or len(parts) != 4 or not parts[0].isdigit() or not parts[1].isdigit():
            return None
        key_id, expires, nonce, mac = parts
        if not hmac.compare_digest(mac, self._mac("session", f"{key_id}.{expires}.{nonce}")):
            return None
        if int(expires) <= self._clock():
            return None
        with self._lock:
            if nonce in self._ended:
                return None
        key = self.live_key(int(key_id))
        if key is None:
            return None
        return Session(key, int(expires), nonce, self._mac("csrf", nonce))

    def end(self, session: Session) -> None:
        """Signs a session out: its token is refused from now on."""
        now = self._clock()
        with self._lock:
            for nonce, expires in list(self._ended.items()):
                if expires > now:
                    break
                del self._ended[nonce]
            self._ended[session.nonce] = session.expires
            while len(self._ended) > _MAX_ENDED:
                self._ended.popitem(last=False)

    def csrf_ok(self, session: Session, token: str | None) -> bool:
        """Whether a form's token is this session's."""
        return token is not None and token.isascii() and hmac.compare_digest(token, session.csrf)

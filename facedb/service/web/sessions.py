"""Web-page sessions: an API key exchanged once for a signed, expiring cookie.

A session token is ``KEY_ID.EXPIRES.NONCE.MAC``: the key's id, the Unix time it ends, a
random nonce and an HMAC-SHA256 of the three under a secret made per server process (a
restart signs everybody out). The server keeps the live sessions (nonce -> when last used) in
memory: a token counts only while its nonce is there, so signing out removes it, exactly and
at once (a bounded list of signed-out tokens let an old one work again once 100,000 later
sign-outs had pushed it out). A session unused for ``idle_seconds`` ends; past
:data:`MAX_LIVE` live sessions the least recently used ends first. On every request the key
store is asked whether the key is still live, so revoking a key ends its sessions at once.

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

__all__ = ["COOKIE", "HOST_COOKIE", "MAX_LIVE", "Session", "Sessions"]

#: The session cookie's name.
COOKIE = "facedb_session"
#: The session cookie's name over HTTPS: the __Host- prefix binds it to this host and path /.
HOST_COOKIE = "__Host-" + COOKIE
#: How many live sessions are kept at most (the least recently used ends first).
MAX_LIVE = 100_000


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
        idle_seconds: a session unused this long ends (None: only the lifetime ends it).
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
        idle_seconds: int | None = 30 * 60,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.live_key = live_key
        self.lifetime_seconds = int(lifetime_seconds)
        self.idle_seconds = None if idle_seconds is None else int(idle_seconds)
        self._secret = secrets.token_bytes(32)
        self._clock = clock
        self._live: OrderedDict[str, float] = OrderedDict()  # nonce -> last used, oldest first
        self._lock = threading.Lock()

    def _mac(self, *parts: str) -> str:
        return hmac.new(self._secret, ".".join(parts).encode(), hashlib.sha256).hexdigest()

    def start(self, key: ApiKey) -> str:
        """A new session token for ``key`` (the cookie's value)."""
        now = self._clock()
        expires = str(int(now) + self.lifetime_seconds)
        nonce = secrets.token_urlsafe(18)
        with self._lock:
            self._live[nonce] = now
            while len(self._live) > MAX_LIVE:
                self._live.popitem(last=False)
        body = f"{key.id}.{expires}.{nonce}"
        return f"{body}.{self._mac('session', body)}"

    def check(self, token: str | None) -> Session | None:
        """The session of a token if its MAC is right, it has not expired, been signed out or
        left idle, and its key is still live; else None. Asks the key store (blocking)."""
        if not token or len(token) > 300:
            return None
        parts = token.split(".")
        # ASCII only: a cookie is the browser's text, and compare_digest refuses other str.
        if not token.isascii() or len(parts) != 4 or not parts[0].isdigit() or not parts[1].isdigit():
            return None
        key_id, expires, nonce, mac = parts
        if not hmac.compare_digest(mac, self._mac("session", f"{key_id}.{expires}.{nonce}")):
            return None
        now = self._clock()
        if int(expires) <= now:
            return None
        with self._lock:
            used = self._live.get(nonce)
            if used is None:
                return None
            if self.idle_seconds is not None and now - used > self.idle_seconds:
                del self._live[nonce]
                return None
            self._live[nonce] = now
            self._live.move_to_end(nonce)
        key = self.live_key(int(key_id))
        if key is None:
            return None
        return Session(key, int(expires), nonce, self._mac("csrf", nonce))

    def end(self, session: Session) -> None:
        """Signs a session out: its token is refused from now on."""
        with self._lock:
            self._live.pop(session.nonce, None)

    def csrf_ok(self, session: Session, token: str | None) -> bool:
        """Whether a form's token is this session's."""
        return token is not None and token.isascii() and hmac.compare_digest(token, session.csrf)

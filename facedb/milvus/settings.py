"""What a ``milvus://`` URL says (server, collection, credentials, search options), and the
time bounds facedb keeps to with any Milvus server."""

from __future__ import annotations

import os
from urllib.parse import parse_qs, unquote, urlsplit

from facedb.errors import ConfigError

__all__ = [
    "READY_SECONDS",
    "RETRY_AFTER_SECONDS",
    "STALENESS_SECONDS",
    "WRITE_SECONDS",
    "MilvusSettings",
    "parse_milvus_url",
]

#: How long a load state verified as fully loaded is believed before it is asked again. A
#: restart of the whole server also breaks the connection (which is noticed at once); this
#: bounds the time a query node that lost its segments behind a live proxy goes unnoticed.
READY_SECONDS = 1.0

#: Milvus's staleness bound for other processes' additions (``common.gracefulTime``,
#: 5 s by default): rows SQL gained more recently are not yet required to be searchable.
STALENESS_SECONDS = 5.0

#: Bound on one write or maintenance call (upsert, delete, compact, a listing): pymilvus
#: otherwise retries an unreachable server for minutes while facedb holds the SQL write lock.
WRITE_SECONDS = 30.0

#: Seconds a client is told to wait before retrying an unavailable collection.
RETRY_AFTER_SECONDS = 5.0


class MilvusSettings:
    """What a ``milvus://[user:password@]host:port/collection?options`` URL says.

    Options: ``consistency`` (Strong, Bounded, Session, Eventually; default Session),
    ``ef`` (HNSW search breadth, default 128), ``candidates`` (how many nearest faces are
    fetched per query before people are ranked, default 64), ``secure`` (1 for TLS),
    ``wait`` (seconds, default 5: how long a call waits for an unreachable server or for a
    collection that is not fully loaded, e.g. after a restart, before it raises
    VectorStoreUnavailable; 0 raises at once; it also bounds connecting on open).
    The token may also come from FACEDB_MILVUS_TOKEN; it never appears in messages.
    """

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        if parts.scheme != "milvus" or not parts.hostname:
            raise ConfigError("a Milvus URL looks like milvus://host:19530/collection")
        collection = parts.path.strip("/")
        if not collection or not collection.replace("_", "a").isalnum() or collection[0].isdigit():
            raise ConfigError(
                "the Milvus URL must name a collection (letters, digits and _, not starting with a digit): "
                "milvus://host:19530/faces"
            )
        options = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        self.host = parts.hostname
        self.port = parts.port or 19530
        self.collection = collection
        scheme = "https" if options.get("secure") in ("1", "true") else "http"
        self.uri = f"{scheme}://{self.host}:{self.port}"
        user = unquote(parts.username) if parts.username else ""
        password = unquote(parts.password) if parts.password else ""
        self.token = f"{user}:{password}" if user else os.environ.get("FACEDB_MILVUS_TOKEN", "")
        # Session: this process's own writes (and its replays of the outbox) are visible to its
        # next search at about 3 ms a query, where Strong waits for the next time tick (200 ms
        # with Milvus's defaults). Removals need no consistency at all: hits are checked
        # against SQL. Other processes' additions show within Milvus's staleness bound.
        self.consistency = options.get("consistency", "Session")
        if self.consistency not in ("Strong", "Bounded", "Session", "Eventually"):
            raise ConfigError(
                f"consistency must be Strong, Bounded, Session or Eventually, got {self.consistency!r}"
            )
        try:
            self.ef = int(options.get("ef", 128))
            self.candidates = int(options.get("candidates", 64))
        except ValueError:
            raise ConfigError("ef and candidates in a Milvus URL must be integers") from None
        if not (1 <= self.ef <= 32768 and 1 <= self.candidates <= 16384):
            raise ConfigError("ef must be in 1..32768 and candidates in 1..16384")
        try:
            self.wait = float(options.get("wait", 5))
        except ValueError:
            raise ConfigError("wait in a Milvus URL must be a number of seconds") from None
        if not 0 <= self.wait <= 3600:
            raise ConfigError(f"wait must be in 0..3600 seconds, got {self.wait}")

    @property
    def safe(self) -> str:
        """The URL without credentials."""
        return f"milvus://{self.host}:{self.port}/{self.collection}"


def parse_milvus_url(url: str) -> MilvusSettings:
    """Parses and checks a ``milvus://`` URL."""
    return MilvusSettings(url)

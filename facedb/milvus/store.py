"""SyncedMilvus: a Milvus collection as the gallery's vector store, shared by every machine.

SQL stays the source of truth. The change log that every write adds to in its own
transaction is the outbox: ``vector_sync`` records up to which generation this collection
has applied it, and whoever finds it behind (any process, on open, before a call, on
``check``) replays the rest while holding the SQL write lock, so that replays are ordered and
a removal can never be undone by a late addition. Search hits are filtered against the faces
still in SQL, so a removal disappears for every process at once; additions show as soon as
they are replayed: at once in the process that replayed them (Milvus's Session consistency,
the default), within Milvus's staleness bound elsewhere (once the query nodes have consumed
them: median 184 ms, worst 595 ms with the default 200 ms time ticks, benchmarks/freshness.py;
facedb allows ``STALENESS_SECONDS``, 5 s), or at once everywhere for a search that asks for a
strong read (``consistency="strong"``) or for every search (``?consistency=Strong``), at the
cost of waiting for the server's next time tick (188 ms a search at the median, against 10).

Readiness: an answer from a collection that is not fully loaded is never given. After a
restart the 2.3.5 server refuses searches while it loads the sealed segments, then says
"Loaded" and answers full-length hit lists for about 20 s while it still replays the rows
of its growing segment from the message log (15,000 of 20,000 rows visible, measured). So
the server is asked, and its word is checked: its load state and loading progress must say
the whole collection is loaded, and the rows it holds must reach what SQL says it holds
(a Strong count, answered only once the server has consumed its message log up to now:
about 50 ms, against 3 ms at the search's consistency, whose count was measured to disagree
with its searches both ways while the log was replayed), less the additions SQL gained within
Milvus's staleness bound (``STALENESS_SECONDS``). A collection so verified is believed for
``READY_SECONDS``, unless a call fails or a search for ``limit`` neighbours in a collection
that SQL says holds at least that many returns fewer. facedb waits up to ``wait`` seconds
for the collection to be complete and otherwise raises VectorStoreUnavailable, as it does
for an unreachable server.

Erasure: Milvus only marks deletions until compaction; facedb compacts after every removal.
What the server keeps and for how long (segments until garbage collection, its message log)
is the operator's to configure: see docs/scaling.md.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, nullcontext
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray
from sqlalchemy.orm import Session

from facedb.errors import GalleryError, VectorStoreUnavailable
from facedb.extras import load
from facedb.milvus.collection import ensure_collection, rpc_timeout
from facedb.milvus.failures import failure_reason, is_unavailable
from facedb.milvus.settings import (
    READY_SECONDS,
    RETRY_AFTER_SECONDS,
    STALENESS_SECONDS,
    WRITE_SECONDS,
    MilvusSettings,
)
from facedb.store import Store
from facedb.templates import content_digest

__all__ = ["SyncedMilvus"]

_BATCH = 5_000


class SyncedMilvus:
    """A Milvus collection kept at the SQL store's generation (see the module docstring)."""

    def __init__(
        self,
        settings: MilvusSettings,
        dimension: int,
        model_id: str,
        gallery_uid: str,
        *,
        read_only: bool = False,
    ) -> None:
        MilvusClient = load("pymilvus", "milvus", "a Milvus vector store").MilvusClient  # noqa: N806

        self.settings = settings
        self.dimension = dimension
        self.key = settings.safe
        self._lock = threading.Lock()
        # Until when a collection verified as complete is believed (time.monotonic()).
        self._ready_until = 0.0
        # What SQL said the collection holds, as this process saw the generations go by:
        # (first seen at, generation, templates), the last STALENESS_SECONDS of them and the
        # one before, so that additions other processes made within Milvus's staleness
        # bound are not yet required.
        self._expected: list[tuple[float, int, int]] = []
        self._expected_lock = threading.Lock()
        try:
            self.client = MilvusClient(
                uri=settings.uri, token=settings.token, timeout=max(settings.wait, 1.0)
            )
        except Exception as e:
            error = VectorStoreUnavailable if is_unavailable(e) else GalleryError
            raise error(f"cannot connect to Milvus at {settings.safe}: {failure_reason(e)}") from None
        self.read_only = read_only
        ensure_collection(self.client, settings, dimension, model_id, gallery_uid, read_only=read_only)

    @classmethod
    def open(cls, url: str, *, dimension: int, model_id: str, gallery_uid: str, store: Store) -> SyncedMilvus:
        """Connects, checks (or creates) the collection and replays what it still owes."""
        vectors = cls(MilvusSettings(url), dimension, model_id, gallery_uid, read_only=store.read_only)
        vectors.sync(store)
        return vectors

    @property
    def kind(self) -> str:
        """The search structure in use."""
        return (
            f"milvus HNSW(M=32, ef={self.settings.ef}) top-{self.settings.candidates}, "
            f"{self.settings.consistency} consistency"
        )

    @property
    def location(self) -> str:
        """The collection, without credentials."""
        return self.key

    def __len__(self) -> int:
        rows = self._call(
            "count",
            self.client.query,
            self.settings.collection,
            filter="",
            output_fields=["count(*)"],
            consistency_level="Strong",
            timeout=WRITE_SECONDS,
        )
        return int(rows[0]["count(*)"]) if rows else 0

    # -- keeping up ------------------------------------------------------------------------

    def sync(self, store: Store) -> None:
        """Replays the outbox when this collection is behind the SQL store (not from a
        read-only opener: the gallery's writers keep the collection)."""
        if store.read_only:
            return
        applied, current = store.sync_state(self.key)
        if applied != current:
            self._replay(store)
        elif not self._expected or self._expected[-1][1] != current:
            with store.read() as s:
                self._note_expected(store.generation(s), store.count_faces(s))

    def bulk(self) -> AbstractContextManager[None]:
        """Nothing to gather: each change is replayed from the outbox as it is applied."""
        return nullcontext()

    def apply(
        self,
        generation: int,
        *,
        added: Sequence[int] = (),
        vectors: NDArray[np.float32] | None = None,
        removed: Sequence[int] = (),
        store: Store,
    ) -> None:
        """Replays the outbox (which holds this change) and compacts after removals.

        A Milvus that cannot take it now is not the caller's error: the change is committed
        to SQL and stays in the outbox, which the next call of any process replays (and
        which searches wait for or refuse, VectorStoreUnavailable, until it is applied).
        """
        try:
            self._replay(store)
        except VectorStoreUnavailable:
            pass

    def _replay(self, store: Store) -> None:
        # An unreachable server is found out within `wait` seconds here, not after minutes
        # of pymilvus's retries while the SQL write lock is held.
        self.wait_ready(count_rows=False)
        compact = False
        with self._lock, store.write() as s:
            applied = store.applied_generation(s, self.key)
            current = store.generation(s)
            if applied == current:
                return
            changes = store.changes_after(s, applied) if applied >= 0 else None
            if changes is None:
                self._mirror(store, s)
                compact = True
            else:
                if changes.removed:
                    self._call(
                        "delete",
                        self.client.delete,
                        self.settings.collection,
                        ids=sorted(changes.removed),
                        timeout=WRITE_SECONDS,
                    )
                    compact = True
                if changes.added:
                    ids, vectors = store.templates(s, sorted(changes.added), self.dimension)
                    self._upsert(ids, vectors)
            store.set_applied_generation(s, self.key, current)
            self._note_expected(current, store.count_faces(s))
        if compact:
            self._call("compact", self.client.compact, self.settings.collection, timeout=WRITE_SECONDS)

    def _upsert(self, ids: NDArray[np.int64], vectors: NDArray[np.float32]) -> None:
        for start in range(0, len(ids), _BATCH):
            rows = [
                {"id": int(i), "vector": v.tolist()}
                for i, v in zip(ids[start : start + _BATCH], vectors[start : start + _BATCH], strict=True)
            ]
            self._call(
                "upsert", self.client.upsert, self.settings.collection, data=rows, timeout=WRITE_SECONDS
            )

    def _mirror(self, store: Store, s: Session) -> None:
        """Makes the collection hold exactly the SQL templates (inside a SQL write)."""
        wanted: set[int] = set()
        for ids, vectors in store.iter_templates(s, self.dimension, batch=_BATCH):
            wanted.update(int(i) for i in ids)
            if len(ids):
                self._upsert(ids, vectors)
        stale = sorted(self.ids() - wanted)
        for start in range(0, len(stale), _BATCH):
            self._call(
                "delete",
                self.client.delete,
                self.settings.collection,
                ids=stale[start : start + _BATCH],
                timeout=WRITE_SECONDS,
            )

    def rebuild(self, store: Store) -> None:
        """Mirrors every SQL template into the collection and removes what SQL lacks."""
        with self._lock, store.write() as s:
            self._mirror(store, s)
            store.set_applied_generation(s, self.key, store.generation(s))
            self._note_expected(store.generation(s), store.count_faces(s))
        self._call("compact", self.client.compact, self.settings.collection, timeout=WRITE_SECONDS)

    def rekey(self, store: Store) -> None:
        """Nothing to reseal: Milvus must read the vectors to search them, so they are not
        sealed with the gallery's key (docs/gallery.md, "Encryption at rest")."""

    # -- reading ---------------------------------------------------------------------------

    def search(
        self, queries: NDArray[np.float32], k: int, *, consistency: Literal["strong"] | None = None
    ) -> tuple[NDArray[np.float32], NDArray[np.int64]]:
        """Top-k face ids per query; HNSW's candidates are scored by inner product.

        At the collection's consistency (the URL's; Session by default), or Strong with
        ``consistency="strong"``: the server then searches only once it has consumed its
        message log up to the search's arrival, so every addition acknowledged before it,
        by any process, is found (it waits for the next time tick; docs/scaling.md gives the cost).

        Raises:
            VectorStoreUnavailable: the server is unreachable, or the collection is not fully
                loaded (or holds fewer rows than SQL says) for longer than ``wait`` seconds.
        """
        limit = max(k, self.settings.candidates)
        level = "Strong" if consistency == "strong" else self.settings.consistency
        data = [q.tolist() for q in queries]
        deadline = time.monotonic() + self.settings.wait
        delay = 0.05
        recounted = False
        while True:
            reason = self._not_ready(deadline)
            if reason is None:
                try:
                    hits = self.client.search(
                        self.settings.collection,
                        data=data,
                        limit=limit,
                        search_params={"metric_type": "IP", "params": {"ef": max(self.settings.ef, limit)}},
                        consistency_level=level,
                        timeout=rpc_timeout(deadline),
                    )
                except Exception as e:
                    if not is_unavailable(e):
                        raise GalleryError(
                            f"Milvus search on {self.key} failed: {failure_reason(e)}"
                        ) from None
                    self._distrust()
                    reason = f"search failed: {failure_reason(e)}"
                else:
                    # HNSW with ef >= limit returns `limit` hits from a complete collection that
                    # holds that many. Fewer: segments may be missing; ask the server again,
                    # rows counted. If it then holds all SQL says, the short answer stands
                    # (another process's additions not yet visible to this one, say).
                    want = min(limit, self._rows_required())
                    fewest = min((len(found) for found in hits), default=want)
                    if fewest >= want or recounted:
                        break
                    reason = f"a search returned {fewest} of {want} neighbours"
                    self._distrust()
                    recounted = True
                    continue
            if time.monotonic() + delay > deadline:
                raise self._unavailable(reason)
            time.sleep(delay)
            delay = min(2 * delay, 0.5)
        sims = np.full((len(queries), k), -np.inf, dtype=np.float32)
        ids = np.full((len(queries), k), -1, dtype=np.int64)
        for row, found in enumerate(hits):
            best = sorted(found, key=lambda h: -float(h["distance"]))[:k]
            for col, hit in enumerate(best):
                sims[row, col] = float(hit["distance"])
                ids[row, col] = int(hit["id"])
        return sims, ids

    def ids(self) -> set[int]:
        """Every face id in the collection.

        Raises:
            VectorStoreUnavailable: the collection is not fully loaded (a query would list
                only its loaded part) or the server is unreachable, for longer than ``wait``.
        """
        # Loaded, by the server's word: a row count short of SQL's is what `check` reports
        # as missing, not a reason to wait.
        self._ready_until = 0.0
        self.wait_ready(count_rows=False)
        found: set[int] = set()
        for batch in self._scan(["id"]):
            found.update(int(r["id"]) for r in batch)
        return found

    def digest(self) -> str:
        """The content digest of the collection (see :func:`facedb.vectors.content_digest`)."""

        self._ready_until = 0.0
        self.wait_ready(count_rows=False)
        return content_digest(
            (
                np.asarray([int(r["id"]) for r in batch], dtype=np.int64),
                np.asarray([r["vector"] for r in batch], dtype=np.float32),
            )
            for batch in self._scan(["id", "vector"])
        )

    def _scan(self, fields: list[str]) -> Iterator[list[dict[str, Any]]]:
        """Every row of the collection, in batches, with these fields (a Strong read)."""
        iterator = self._call(
            "query",
            self.client.query_iterator,
            self.settings.collection,
            batch_size=_BATCH,
            filter="id >= 0",
            output_fields=fields,
            consistency_level="Strong",
        )
        try:
            while batch := self._call("query", iterator.next):
                yield batch
        finally:
            try:
                iterator.close()
            except Exception:
                pass  # a server gone away: nothing left to release

    def close(self) -> None:
        """Closes the connection (the collection stays loaded for other processes)."""
        try:
            self.client.close()
        except Exception:
            pass

    # -- readiness -------------------------------------------------------------------------

    def wait_ready(self, *, count_rows: bool = True) -> None:
        """Returns once the server says the collection is fully loaded (and, after trouble
        and with `count_rows`, holds as many rows as SQL says); waits up to ``wait`` seconds.

        Raises:
            VectorStoreUnavailable: it is not, or the server cannot be reached, in time.
        """
        deadline = time.monotonic() + self.settings.wait
        delay = 0.05
        while (reason := self._not_ready(deadline, count_rows=count_rows)) is not None:
            if time.monotonic() + delay > deadline:
                raise self._unavailable(reason)
            time.sleep(delay)
            delay = min(2 * delay, 0.5)

    def _not_ready(self, deadline: float, *, count_rows: bool = True) -> str | None:
        """None when the collection is verified complete (or was, less than READY_SECONDS
        ago, with nothing amiss since); else why not."""
        if time.monotonic() < self._ready_until:
            return None
        from pymilvus.client.types import LoadState

        name = self.settings.collection
        try:
            state = self.client.get_load_state(name, timeout=rpc_timeout(deadline))
            if state.get("state") != LoadState.Loaded:
                if state.get("state") == LoadState.NotLoad:
                    # Released (by an operator, say): ask for a load rather than wait forever.
                    self.client.load_collection(name, timeout=rpc_timeout(deadline), _async=True)
                what = getattr(state.get("state"), "name", str(state.get("state")))
                progress = state.get("progress")
                return f"its load state is {what}" + (
                    f" ({progress}% loaded)" if progress is not None else ""
                )
            required = self._rows_required()
            if count_rows and required > 0:
                # A Strong count: the server answers it only once it has consumed its message
                # log up to now, so a growing segment still being replayed after a restart
                # keeps it waiting. A count at the search's consistency was measured to lie
                # both ways then (15,000 of 20,000 while searches already found every row;
                # and, once in CI, enough rows while a search missed one of the last ones).
                rows = self.client.query(
                    name,
                    filter="",
                    output_fields=["count(*)"],
                    consistency_level="Strong",
                    timeout=rpc_timeout(deadline),
                )
                held = int(rows[0]["count(*)"]) if rows else 0
                if held < required:
                    return (
                        f"it holds {held} of the {required} templates the database has "
                        "(if that persists, `facedb check` repairs it)"
                    )
        except Exception as e:
            if not is_unavailable(e):
                raise GalleryError(f"Milvus load state of {self.key}: {failure_reason(e)}") from None
            self._distrust()
            return f"the server does not answer: {failure_reason(e)}"
        if count_rows:
            self._ready_until = time.monotonic() + READY_SECONDS
        return None

    def _distrust(self) -> None:
        """Something went wrong: the next call asks the server again."""
        self._ready_until = 0.0

    def _note_expected(self, generation: int, templates: int) -> None:
        """Records what SQL holds at `generation` (first seen now)."""
        with self._expected_lock:
            if not self._expected or self._expected[-1][1] != generation:
                self._expected.append((time.monotonic(), generation, templates))
        self._rows_required()  # trims

    def _rows_required(self) -> int:
        """How many rows the collection must hold: the fewest SQL has held since the newest
        generation this process saw more than STALENESS_SECONDS ago (0 before any)."""
        horizon = time.monotonic() - STALENESS_SECONDS
        with self._expected_lock:
            while len(self._expected) > 1 and self._expected[1][0] <= horizon:
                del self._expected[0]
            return min((templates for _, _, templates in self._expected), default=0)

    def _unavailable(self, reason: str) -> VectorStoreUnavailable:
        return VectorStoreUnavailable(
            f"the Milvus collection {self.key} cannot answer completely: {reason} "
            f"(waited {self.settings.wait:g} s; a restarted server reloads it, retry later)",
            retry_after=RETRY_AFTER_SECONDS,
        )

    def _call(self, what: str, func: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except Exception as e:
            if is_unavailable(e):
                self._distrust()
                raise VectorStoreUnavailable(
                    f"Milvus {what} on {self.key} failed: {failure_reason(e)}",
                    retry_after=RETRY_AFTER_SECONDS,
                ) from None
            raise GalleryError(f"Milvus {what} on {self.key} failed: {failure_reason(e)}") from None

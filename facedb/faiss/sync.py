"""Keeps the derived vector index in step with the SQL store.

The SQL store is the source of truth. The index is stamped with the SQL generation it
reflects; on open, and before every call, a lagging index is caught up from the store's
change log (or rebuilt from every template when the log no longer reaches back). Saves are
serialised between processes with a lock file, and a process whose files were replaced by
another process's save reloads them before saving its own.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Literal

import numpy as np
from numpy.typing import NDArray

from facedb.encryption import Cipher
from facedb.errors import ConfigError, FaceDBError, IndexUnavailable
from facedb.faiss.format import MANIFEST_NAME
from facedb.faiss.store import FaissStore, Mode
from facedb.store import Store

__all__ = ["BULK_SAVE_ROWS", "SyncedIndex"]

log = logging.getLogger("facedb")


def _disk_generation(folder: Path) -> int | None:
    """The generation stamped in the saved manifest (unverified; open() verifies)."""
    try:
        value = json.loads((folder / MANIFEST_NAME).read_text()).get("generation")
    except (OSError, ValueError, AttributeError):
        return None
    return value if isinstance(value, int) else None


#: Within :meth:`SyncedIndex.bulk`, how many rows are applied in memory before the index is
#: saved: four segments (128 MB of 512-d float32). An import then writes each segment about
#: once, instead of writing its last, partly filled segment again after every batch, and never
#: holds more than this unsaved in its own memory.
BULK_SAVE_ROWS = 65_536


class SyncedIndex:
    """A :class:`~facedb.faiss.store.FaissStore` kept at the SQL store's generation.

    Thread-safe: one lock orders catch-ups, writes and saves; searches go to the store,
    whose own readers-writer lock lets them run together.
    """

    def __init__(
        self,
        folder: Path,
        dimension: int,
        model_id: str,
        mode: Mode,
        *,
        gallery_uid: str,
        read_only: bool,
        cipher: Cipher | None = None,
    ) -> None:
        self.folder = folder
        self.dimension = dimension
        # The index files are stamped with the model and the gallery's identity: an index of
        # another gallery (a database restored or recreated at the same generation) is
        # foreign, and rebuilt, never served.
        self.model_id = f"{model_id} gallery={gallery_uid}"
        self.mode: Mode = mode
        self.read_only = read_only
        self.cipher = cipher
        self._vectors = self._empty()
        self._generation = -1  # the SQL generation the in-memory index reflects
        self._on_disk: int | None = None  # the generation of the files as we last saw them
        self._lock = threading.RLock()
        self._unsaved = False  # the in-memory index is ahead of its files (a save failed)
        self._store: Store | None = None  # to rebuild from when a template fails its checksum
        self._bulk = 0  # bulk writes in progress (bulk())
        self._pending = 0  # rows added or removed in memory since the last save
        self._saver: threading.Thread | None = None  # a bulk write's save in progress

    @classmethod
    def open(
        cls, folder: Path, *, dimension: int, model_id: str, gallery_uid: str, kind: str, store: Store
    ) -> SyncedIndex:
        """Opens the index saved in ``folder`` and catches it up, or rebuilds it. With a
        read-only store nothing is written: a lagging index is caught up in memory only."""
        if kind not in ("auto", "exact", "approximate"):
            raise ConfigError(f"index must be 'auto', 'exact' or 'approximate', got {kind!r}")
        index = cls(
            folder,
            dimension,
            model_id,
            kind,  # type: ignore[arg-type]
            gallery_uid=gallery_uid,
            read_only=store.read_only,
            cipher=store.cipher,
        )
        index._store = store
        with index._lock, index._file_lock():
            index._load(store)
        return index

    # -- reading ---------------------------------------------------------------------------

    @property
    def kind(self) -> str:
        """The search structure in use."""
        return self._vectors.kind

    @property
    def location(self) -> str:
        """The index folder."""
        return str(self.folder)

    @property
    def generation(self) -> int:
        """The SQL generation the index reflects."""
        return self._generation

    def __len__(self) -> int:
        return len(self._vectors)

    def search(
        self, queries: NDArray[np.float32], k: int, *, consistency: Literal["strong"] | None = None
    ) -> tuple[NDArray[np.float32], NDArray[np.int64]]:
        """Top-k face ids per query: (similarities, ids), -1 where there are fewer.

        ``consistency`` is accepted and changes nothing: this index is local, and every
        gallery call catches it up with the SQL generation before it searches, so another
        process's acknowledged writes are already in it (a strong read at no extra cost).

        A template that fails its checksum as it is read is never scored. Either another
        process removed it and zeroed it in the file this one still reads (a search that ran
        before this process caught up): the index is loaded again from the folder; or the
        files were damaged (see facedb.faiss.format): the index is rebuilt from the database.
        The search is then answered from the new index.
        """
        vectors = self._vectors
        try:
            return vectors.search(queries, k)
        except IndexUnavailable as e:
            if self._store is None:
                raise
            log.warning("vector index in %s unusable (%s): loading it again", self.folder, e)
            with self._lock:
                if self._vectors is vectors:  # not already reloaded by another thread
                    with self._file_lock():
                        self._load(self._store)
            try:
                return self._vectors.search(queries, k)
            except IndexUnavailable as again:
                log.warning("vector index in %s unusable (%s): rebuilding it", self.folder, again)
                with self._lock, self._file_lock():
                    self._rebuild_locked(self._store)
                return self._vectors.search(queries, k)

    def ids(self) -> set[int]:
        """Every face id in the index."""
        return {int(i) for i in self._vectors.ids()}

    def digest(self) -> str:
        """The content digest of the index (see :func:`facedb.vectors.content_digest`)."""
        return self._vectors.digest()

    # -- keeping up ------------------------------------------------------------------------

    def sync(self, store: Store) -> None:
        """Catches up with SQL when another process (or a crash) left the index behind, and
        retries a save that failed (a full disk)."""
        self._store = store
        if store.generation() == self._generation and not self._unsaved:
            return
        with self._lock:
            current = store.generation()
            if current != self._generation:
                try:
                    self._catch_up(store)
                except IndexUnavailable as e:  # a damaged segment met while catching up
                    log.warning("vector index in %s unusable (%s): rebuilding it", self.folder, e)
                    self._rebuild_in_memory(store)
                self._save(store)
            elif self._unsaved:
                self._save(store)

    @contextmanager
    def bulk(self) -> Iterator[None]:
        """A bulk write (an import): within it, :meth:`apply` saves after every
        :data:`BULK_SAVE_ROWS` rows added rather than after each change (a removal is saved at
        once, as always), on a thread of its own while the writer goes on with SQL; what is
        left is saved when the outermost bulk write ends, after that thread.

        Each change is committed to SQL before it is applied, so the files lagging behind
        lose nothing: a crash leaves them at an earlier generation, and the next open (of
        this process or any other) catches them up from the change log. A failed final save
        is a warning, retried by the next :meth:`sync`, as a failed save after a write is."""
        with self._lock:
            self._bulk += 1
        try:
            yield
        finally:
            saver = self._saver
            if saver is not None:
                saver.join()
            with self._lock:
                self._bulk -= 1
                if not self._bulk and self._unsaved and self._store is not None:
                    self._save_or_warn(self._store)

    def _save_or_warn(self, store: Store) -> None:
        """Saves within a bulk write: a failure is a warning (the changes are committed to
        SQL; the next :meth:`sync` saves them)."""
        try:
            self._save(store)
        except Exception as e:
            log.warning(
                "saving the vector index in %s during a bulk write failed (%s): "
                "it will be saved by the next call",
                self.folder,
                e,
                exc_info=not isinstance(e, FaceDBError | OSError),
            )

    def _save_in_background(self, store: Store) -> None:
        """A bulk write's periodic save, on a thread of its own: it holds the lock (the next
        change waits for it), while the writer goes on with its next SQL transaction."""
        with self._lock:
            self._save_or_warn(store)

    def apply(
        self,
        generation: int,
        *,
        added: Sequence[int] = (),
        vectors: NDArray[np.float32] | None = None,
        removed: Sequence[int] = (),
        store: Store,
    ) -> None:
        """Applies a change this process just committed as ``generation`` and saves it."""
        with self._lock:
            try:
                if generation == self._generation + 1:
                    if removed:
                        self._vectors.remove(np.asarray(removed, dtype=np.int64))
                    if added and vectors is not None:
                        self._vectors.add(np.asarray(added, dtype=np.int64), vectors)
                    self._generation = generation
                else:
                    self._catch_up(store)  # other writers came in between: replay the log
            except BaseException:
                self._generation = -1  # half applied: rebuilt from SQL at the next call
                raise
            self._store = store
            self._pending += len(added) + len(removed)
            if self._bulk and not removed:
                self._unsaved = True  # saved within BULK_SAVE_ROWS, at the end, or by sync()
                saving = self._saver is not None and self._saver.is_alive()
                if self._pending >= BULK_SAVE_ROWS and not saving:
                    # Written beside the writer's next batch (SQLite, hashing and file
                    # writes release the GIL), which two cores then overlap.
                    self._saver = threading.Thread(
                        target=self._save_in_background, args=(store,), name="facedb-index-save", daemon=True
                    )
                    self._saver.start()
                return
            self._save(store)

    def rebuild(self, store: Store) -> None:
        """Builds the index anew from every template in SQL and saves it."""
        with self._lock, self._file_lock():
            self._rebuild_locked(store)
            log.info("rebuilt the vector index in %s: %d templates", self.folder, len(self._vectors))

    def rekey(self, store: Store) -> None:
        """The SQL store's key changed (``rekey``): the index is built anew, saved sealed with
        the new key (or none), and the old key's files are zeroed whole, then deleted."""
        with self._lock, self._file_lock():
            self.cipher = store.cipher
            self._rebuild_in_memory(store)
            if not self.read_only:
                self._vectors.save(max(self._generation, 0), wipe=True)
                self._on_disk = self._generation

    def close(self) -> None:
        """Releases the index (everything is saved after each change)."""
        with self._lock:
            self._vectors.close()

    # -- internals -------------------------------------------------------------------------

    @contextmanager
    def _file_lock(self) -> Iterator[None]:
        """Serialises loads and saves of the folder between processes (a read-only opener
        creates nothing: it shares an existing lock, or reads without one)."""
        if self.read_only:
            try:
                fd = os.open(self.folder / ".lock", os.O_RDONLY)
            except OSError:
                yield
                return
            try:
                fcntl.flock(fd, fcntl.LOCK_SH)
                yield
            finally:
                os.close(fd)
            return
        self.folder.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.folder / ".lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def _empty(self) -> FaissStore:
        """A new, empty store for this folder (sealed with the gallery's key, if any)."""
        return FaissStore(
            self.folder, dim=self.dimension, model=self.model_id, mode=self.mode, cipher=self.cipher
        )

    def _open(self, generation: int) -> FaissStore:
        """The index saved in the folder, which may be behind ``generation``."""
        return FaissStore.open(
            self.folder,
            dim=self.dimension,
            model=self.model_id,
            generation=generation,
            allow_stale=True,
            mode=self.mode,
            cipher=self.cipher,
        )

    def _load(self, store: Store) -> None:
        """Loads the saved index (holding the file lock) and brings it up to SQL."""
        current = store.generation()
        try:
            loaded = self._open(current)
        except IndexUnavailable as e:
            if e.reason != "missing":
                log.warning("vector index in %s unusable (%s): rebuilding from the database", self.folder, e)
            self._rebuild_locked(store)
            return
        self._vectors.close()
        self._vectors = loaded
        self._generation = loaded.generation if loaded.generation is not None else -1
        self._on_disk = self._generation
        if self._generation != current:
            self._catch_up(store)
            self._save_locked(store)
        elif loaded.outdated:  # an index of an older format: rewritten in the current one
            self._save_locked(store)

    def _catch_up(self, store: Store) -> None:
        """Replays the change log after our generation; rebuilds if it does not reach."""
        changes = None
        if self._generation >= 0:
            with store.read() as s:
                changes = store.changes_after(s, self._generation)
        if changes is None:
            self._rebuild_in_memory(store)
            return
        if changes.removed:
            self._vectors.remove(np.fromiter(changes.removed, dtype=np.int64))
        fresh = sorted(i for i in changes.added if not self._vectors.contains(i))
        if fresh:
            with store.read() as s:
                ids, vectors = store.templates(s, fresh, self.dimension)
            if len(ids):
                self._vectors.add(ids, vectors)
        self._generation = changes.generation

    def _rebuild_in_memory(self, store: Store) -> None:
        fresh = self._empty()
        with store.read() as s:
            generation = store.generation(s)
            for ids, vectors in store.iter_templates(s, self.dimension):
                if len(ids):
                    fresh.add(ids, vectors)
        old, self._vectors = self._vectors, fresh
        old.close()
        self._generation = generation

    def _rebuild_locked(self, store: Store) -> None:
        self._rebuild_in_memory(store)
        self._save_locked(store)

    def _save(self, store: Store) -> None:
        if self.read_only:
            return
        # Unsaved until the save returns: a failed one (a full disk) is retried by sync().
        self._unsaved = True
        with self._file_lock():
            self._save_locked(store)
        self._unsaved = False
        self._pending = 0

    def _save_locked(self, store: Store) -> None:
        """Saves under the file lock. If another process saved since we loaded, its files
        replaced ours: reload them and catch up before writing our state over them."""
        if self.read_only:
            return
        on_disk = _disk_generation(self.folder)
        if on_disk is not None and on_disk != self._on_disk and on_disk != self._generation:
            target = self._generation
            try:
                loaded = self._open(target)
                self._vectors.close()
                self._vectors = loaded
                self._generation = loaded.generation if loaded.generation is not None else -1
                self._catch_up(store)
            except IndexUnavailable:
                pass  # unusable files: ours overwrite them
        self._vectors.save(max(self._generation, 0))
        self._on_disk = self._generation

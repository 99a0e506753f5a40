"""The one path every write of a gallery takes: a SQL transaction, the generation bumped and
the change logged inside it, the vector store updated after the commit (or left to the change
log, which is the outbox), and the database checkpointed after an erasure.

Every write (enroll, add or remove faces, remove or rename a person, reject, confirm, name
or dismiss a group, discover, import, copy, calibrate, a watch's visits) is::

    with ctx.writes.change() as change:
        ids = ctx.store.add_faces(change.session, ...)
        change.added(ids, templates)      # or change.removed(ids), change.erased(), change.bump()
        change.event("person.enrolled", {...})  # queued for the subscriptions, if any want it

so that no write can forget a step: a template committed but never indexed, a removal
without its generation (another process would keep answering with the face), or an erasure
that leaves the template in the SQLite WAL, or an event (facedb.events) queued for a change
that was rolled back, or lost for one that was committed: the outbox row is written in the
same transaction.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray
from sqlalchemy.orm import Session

from facedb.errors import FaceDBError
from facedb.events import EVENT_TYPES, new_event_id

if TYPE_CHECKING:
    from facedb.store import Store
    from facedb.vectors import GalleryVectors

__all__ = ["Change", "Writes"]

log = logging.getLogger("facedb")


class Change:
    """What one write did, told by the code that did it inside the transaction.

    Attributes:
        session: the write transaction's session.
        generation: the generation the write committed as (None: it changed no template and
            asked for no bump), set when the transaction is about to commit.
    """

    def __init__(self, session: Session, store: Store | None = None, gallery: str = "") -> None:
        self.session = session
        self._store = store
        self._gallery = gallery
        #: The ids of the events this write queued (for a subscription that wants them).
        self.events: list[str] = []
        self.generation: int | None = None
        self._added: list[int] = []
        self._vectors: list[NDArray[np.float32]] = []
        self._removed: list[int] = []
        self._bump = False
        self._erased = False
        self._rekeyed = False

    def added(self, face_ids: Sequence[int], templates: NDArray[np.float32]) -> None:
        """Faces added with these templates (one row each, in order)."""
        if len(face_ids) != len(templates):
            raise ValueError(f"{len(face_ids)} face ids for {len(templates)} templates")
        if len(face_ids):
            self._added += [int(i) for i in face_ids]
            self._vectors.append(np.asarray(templates, dtype=np.float32))

    def removed(self, face_ids: Sequence[int]) -> None:
        """Faces removed (their templates are erased: the database is checkpointed)."""
        self._removed += [int(i) for i in face_ids]

    def erased(self) -> None:
        """Biometric data other than indexed templates went (a group's faces, a visit's
        template, thumbnails): the database is checkpointed after the commit."""
        self._erased = True

    def bump(self) -> None:
        """A new generation without faces, so that every process reloads what it caches
        (the threshold in force after a calibration or a copy)."""
        self._bump = True

    def rekeyed(self) -> None:
        """The write changed the gallery's key (``rekey``) or model (``reembed``): every
        sealed value or template is rewritten, and the key and model check before the commit
        is its own (made before the change)."""
        self._rekeyed = True
        self._bump = True

    def event(self, type_: str, data: dict[str, Any], *, at: datetime | None = None) -> str | None:
        """Queues an event of ``type_`` (facedb.events.EVENT_TYPES) for every subscription that
        wants it, in this transaction: it is delivered if and only if the write commits.
        ``data`` gets the gallery's uid as ``gallery``; ``at`` is when it happened (default
        now). Returns the event's id, or None when no subscription wants the type.

        Raises:
            ValueError: an unknown event type (a bug: the types are named once).
        """
        if type_ not in EVENT_TYPES:
            raise ValueError(f"unknown event type {type_!r}")
        if self._store is None:
            return None
        now = datetime.now(UTC)
        uid = new_event_id()
        queued = self._store.add_event(
            self.session,
            uid=uid,
            type_=type_,
            occurred_at=at or now,
            data={"gallery": self._gallery, **data},
            queued_at=now,
        )
        if not queued:
            return None
        self.events.append(uid)
        return uid

    @property
    def faces_changed(self) -> bool:
        """Whether templates were added or removed."""
        return bool(self._added or self._removed)


class Writes:
    """Opens write transactions and finishes them the same way every time."""

    def __init__(
        self, store: Store, vectors: GalleryVectors, lock: threading.RLock, gallery: str = ""
    ) -> None:
        self.store = store
        self.vectors = vectors
        self.lock = lock
        self.gallery = gallery
        #: Called after a commit that queued events (a dispatcher in this process wakes up).
        self.on_events: list[Callable[[], None]] = []

    @contextmanager
    def change(self) -> Iterator[Change]:
        """A write transaction; see the module. An exception inside it writes nothing."""
        with self.store.write() as s:
            change = Change(s, self.store, self.gallery)
            yield change
            if not change._rekeyed:
                self.store.check_key(s)
            if change.faces_changed or change._bump:
                change.generation = self.store.bump(s, added=change._added, removed=change._removed)
        self._after(change)
        if change.events:
            for wake in list(self.on_events):
                wake()

    def _after(self, change: Change) -> None:
        """After the commit: the vector store updated, the database checkpointed.

        The change is committed and logged in SQL (the change log is the outbox), so the call
        that made it has succeeded whatever happens here: a vector store that fails now (a
        full disk, Milvus away) is caught up from the log later, by this process or any other,
        and the failure is a warning in the log, not an error for the caller to retry."""
        with self.lock:
            if change.generation is not None and change.faces_changed:
                parts = change._vectors
                vectors = None if not parts else parts[0] if len(parts) == 1 else np.vstack(parts)
                try:
                    self.vectors.apply(
                        change.generation,
                        added=change._added,
                        vectors=vectors,
                        removed=change._removed,
                        store=self.store,
                    )
                except Exception as e:
                    log.warning(
                        "generation %d is committed, but updating the vector store %s failed (%s): "
                        "it will be caught up from the change log",
                        change.generation,
                        self.vectors.location,
                        e,
                        exc_info=not isinstance(e, FaceDBError | OSError),
                    )
            if change._removed or change._erased:
                try:
                    self.store.checkpoint()
                except FaceDBError as e:
                    log.warning("checkpointing the database after an erasure failed: %s", e)

"""The gallery's SQL store: people, templates and gallery facts, the source of truth, and the
only code in facedb that builds SQL.

:class:`Store` is one class composed from a module per job: the database and its
transactions (database.py, schema.py), the gallery row (facts.py), the generation and change
log (changes.py), people and faces (people.py), templates as arrays (templates.py),
attendance (sightings.py), groups of unnamed faces (groups.py), negative examples
(rejections.py), API keys (keys.py), idempotency records (requests.py), calibrations of
the threshold (calibrations.py), the row copies of `facedb copy` (copies.py), the
resealing of templates and thumbnails under a new key (sealing.py), and the events'
subscriptions and outbox (events.py).

One calling style: only :meth:`Store.read` and :meth:`Store.write` open a transaction, and
every query method takes that session as its first argument, so that a caller composes
several in one transaction::

    with store.write() as s:
        face_ids = store.remove_person(s, person_id)
        generation = store.bump(s, removed=face_ids)

Three cheap reads on the search path open a bare connection of their own instead
(:meth:`Store.generation` without a session, :meth:`Store.sync_state`,
:meth:`Store.face_owners`), as do :meth:`Store.claim` and :meth:`Store.checkpoint`.
"""

from __future__ import annotations

from facedb.store.calibrations import CalibrationQueries
from facedb.store.changes import ChangeLog, ChangeSet
from facedb.store.copies import CopyQueries
from facedb.store.events import EventQueries, OutboxItem
from facedb.store.facts import GalleryFacts, GalleryFactsQueries
from facedb.store.groups import GroupFaceInfo, GroupQueries
from facedb.store.keys import KeyQueries
from facedb.store.people import FaceInfo, PeopleQueries, PersonFields
from facedb.store.reembeds import ReembedQueries
from facedb.store.rejections import RejectionQueries
from facedb.store.requests import RequestQueries
from facedb.store.schema import head_revision, migrate
from facedb.store.sealing import SealingQueries
from facedb.store.sightings import SightingQueries
from facedb.store.templates import TemplateQueries, template_array, template_bytes

__all__ = [
    "ChangeSet",
    "FaceInfo",
    "GalleryFacts",
    "GroupFaceInfo",
    "OutboxItem",
    "PersonFields",
    "Store",
    "head_revision",
    "migrate",
    "template_array",
    "template_bytes",
]


class Store(
    GalleryFactsQueries,
    ChangeLog,
    PeopleQueries,
    TemplateQueries,
    SightingQueries,
    GroupQueries,
    RejectionQueries,
    KeyQueries,
    RequestQueries,
    CalibrationQueries,
    CopyQueries,
    SealingQueries,
    EventQueries,
    ReembedQueries,
):
    """SQL access for one gallery. Thread-safe: each transaction takes its own connection.

    Args:
        url: a SQLAlchemy URL (``sqlite:///folder/gallery.db``, ``postgresql+psycopg://...``).
        read_only: never write (no migration; every write is :class:`~facedb.errors.ReadOnlyGallery`).
        create: set up the schema in an empty database; False refuses one.
        cipher: the gallery key's cipher (facedb.encryption) when templates and thumbnails
            are sealed; :meth:`claim` checks it is the gallery's.
    """

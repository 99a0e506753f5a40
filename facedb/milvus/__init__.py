"""Milvus as the gallery's vector store, shared by every machine of a deployment.

- :mod:`~facedb.milvus.settings`: what a ``milvus://host:port/collection?options`` URL says;
- :mod:`~facedb.milvus.store`: :class:`SyncedMilvus`, the collection kept at the SQL store's
  generation (the outbox replay, readiness checks, erasure by compaction: see its docstring);
- :mod:`~facedb.milvus.collection`: the collection found and checked as the gallery's, or
  created, also by several processes at once;
- :mod:`~facedb.milvus.failures`: which pymilvus errors mean "not now" rather than "never".
"""

from __future__ import annotations

from facedb.milvus.failures import quiet_driver_logs
from facedb.milvus.settings import MilvusSettings, parse_milvus_url
from facedb.milvus.store import SyncedMilvus

quiet_driver_logs()

__all__ = ["MilvusSettings", "SyncedMilvus", "parse_milvus_url"]

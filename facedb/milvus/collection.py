"""A gallery's Milvus collection: found and checked as this gallery's, or created with its
HNSW index, and asked to load; also when several processes open a new gallery at once (one
creates the collection, the others wait for it and its index)."""

from __future__ import annotations

import json
import time
from typing import Any

from facedb.errors import GalleryError, VectorStoreUnavailable
from facedb.milvus.failures import failure_reason, is_unavailable
from facedb.milvus.settings import MilvusSettings

__all__ = ["ensure_collection", "rpc_timeout"]


def rpc_timeout(deadline: float) -> float:
    """The timeout of one call that must end by ``deadline`` (time.monotonic()): pymilvus
    retries a failed RPC until its timeout, so the time left, with room for one answer."""
    return max(deadline - time.monotonic(), 1.0)


def ensure_collection(
    client: Any, settings: MilvusSettings, dimension: int, model_id: str, gallery_uid: str, *, read_only: bool
) -> None:
    """Checks that the collection is this gallery's and asks the server to load it, or
    creates it (with its HNSW index) when it is missing. Several processes opening a new
    gallery at once: one creates it, the others wait for it.

    Raises:
        GalleryError: the collection belongs to another gallery or model, or is missing in
            a read-only open.
        VectorStoreUnavailable: the server cannot answer.
    """
    from pymilvus import DataType

    name = settings.collection
    owner = {"facedb_gallery": gallery_uid, "model": model_id, "dimension": dimension}
    try:
        if client.has_collection(name, timeout=rpc_timeout(time.monotonic() + settings.wait)):
            described = client.describe_collection(name)
            try:
                found = json.loads(described.get("description") or "{}")
            except ValueError:
                found = {}
            if found != owner:
                what = (
                    f"gallery {found.get('facedb_gallery')}, model {found.get('model')}, "
                    f"{found.get('dimension')}-d"
                    if found
                    else "something other than facedb"
                )
                raise GalleryError(
                    f"the Milvus collection {settings.safe} belongs to {what}; this gallery is {gallery_uid} "
                    f"with model {model_id} ({dimension}-d): refusing to mix them"
                )
        elif read_only:
            raise GalleryError(f"the Milvus collection {settings.safe} does not exist (opened read-only)")
        else:
            schema = client.create_schema(auto_id=False, description=json.dumps(owner, sort_keys=True))
            schema.add_field("id", DataType.INT64, is_primary=True)
            schema.add_field("vector", DataType.FLOAT_VECTOR, dim=dimension)
            index = client.prepare_index_params()
            index.add_index(
                field_name="vector",
                index_type="HNSW",
                metric_type="IP",
                params={"M": 32, "efConstruction": 200},
            )
            try:
                client.create_collection(
                    name, schema=schema, index_params=index, consistency_level=settings.consistency
                )
            except Exception as e:
                # Several processes opening a new gallery at once: one creates the
                # collection, the others fail or time out meanwhile, then find it made.
                if _made_meanwhile(client, settings, name, e):
                    ensure_collection(client, settings, dimension, model_id, gallery_uid, read_only=read_only)
                    return
                raise
            try:
                client.load_collection(name)
            except Exception as e:
                # Another process opening it at the same moment may be loading it (a waited
                # load timed out there): asked again, not awaited; a search waits for it.
                if not is_unavailable(e):
                    raise
                client.load_collection(name, _async=True)
            return
        _load_existing(client, settings, name)
    except GalleryError:
        raise
    except Exception as e:
        error = VectorStoreUnavailable if is_unavailable(e) else GalleryError
        raise error(f"Milvus collection {settings.safe}: {failure_reason(e)}") from None


def _load_existing(client: Any, settings: MilvusSettings, name: str) -> None:
    """Asks the server to load a collection that exists (not awaited: loading a large
    collection takes minutes, and a search waits for it, up to `wait`, or says it is
    unavailable). A collection another process is creating at this moment exists before
    its index does, and cannot be loaded until then ("index not found": seen with three
    processes opening a new gallery at once): asked again until the `wait` deadline."""
    from pymilvus.client.types import LoadState

    deadline = time.monotonic() + settings.wait
    while True:
        try:
            if client.get_load_state(name).get("state") == LoadState.NotLoad:
                client.load_collection(name, _async=True)
            return
        except Exception as e:
            text = f"{getattr(e, 'message', '')} {e}".lower()
            if "index not found" not in text and not is_unavailable(e):
                raise
            if time.monotonic() >= deadline:
                raise VectorStoreUnavailable(
                    f"Milvus collection {settings.safe}: its index is not there yet (another "
                    f"process is creating the collection?): {failure_reason(e)}"
                ) from None
            time.sleep(0.5)


def _made_meanwhile(client: Any, settings: MilvusSettings, name: str, error: Exception) -> bool:
    """Whether a failed creation of the collection is another process's creation of it:
    the collection exists now (looked for until the `wait` setting's deadline)."""
    text = f"{getattr(error, 'message', '')} {error}".lower()
    if not (is_unavailable(error) or "exist" in text):
        return False
    deadline = time.monotonic() + settings.wait
    while True:
        try:
            if client.has_collection(name, timeout=rpc_timeout(deadline)):
                return True
        except Exception:
            pass
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.5)

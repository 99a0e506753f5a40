"""Schemathesis hooks for tests/test_service_schema.py (loaded through SCHEMATHESIS_HOOKS):
the uploads of generated requests become real face photos from the test data, so that
enrollments and identifications can succeed (a schema cannot say "a photo of one face"), and
the ids of groups, visits and people in generated requests become ids the gallery holds at
that moment, asked of the live server, so that naming a group or confirming a visit reaches
the code that does it instead of a 404 (the ids are data the schema cannot know)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import httpx
import schemathesis

_FACES = Path(os.environ["FACEDB_TEST_FACES"])
_PHOTOS = [p.read_bytes() for p in sorted((_FACES / "gallery").glob("*/*.jp*g"))[:6]]
_FILE_FIELDS = ("photos", "photo", "a", "b")
_SERVER = os.environ["FACEDB_TEST_SERVER"]
_KEY = os.environ["FACEDB_TEST_KEY"]
# Which list holds the live ids of each path parameter.
_LISTS = {"group_id": "/groups", "sighting_id": "/sightings"}
# The operations whose ids are mapped: the ones on a group or a visit, which without real
# data would only ever meet an empty gallery's 404.
_MAPPED = ("/groups/{group_id}", "/sightings/{sighting_id}")


def _live_ids(path: str) -> list[int]:
    """The ids the server lists at ``path`` now (none if it does not answer)."""
    try:
        answer = httpx.get(_SERVER + path, headers={"X-API-Key": _KEY}, timeout=10)
    except httpx.HTTPError:
        return []
    return [item["id"] for item in answer.json()] if answer.status_code == 200 else []


def _photo(value: Any) -> Any:
    if isinstance(value, bytes | str):
        # Chosen by the generated value, so that a seeded run sends the same photos.
        return _PHOTOS[len(value) % len(_PHOTOS)]
    return value


def _mapped(context: Any) -> bool:
    operation = getattr(context, "operation", None)
    return operation is not None and any(operation.path.startswith(p) for p in _MAPPED)


@schemathesis.hook
def map_path_parameters(context: Any, path_parameters: dict[str, Any]) -> dict[str, Any]:
    """A group's or a visit's id becomes one the gallery holds now (chosen by the generated
    value, so that a seeded run picks the same), when it holds any; else it stays as
    generated (and meets a 404, as it should)."""
    if not _mapped(context) or not isinstance(path_parameters, dict):
        return path_parameters
    for name, listing in _LISTS.items():
        value = path_parameters.get(name)
        if isinstance(value, int):
            live = _live_ids(listing)
            if live:
                path_parameters[name] = live[value % len(live)]
    return path_parameters


@schemathesis.hook
def map_body(context: Any, body: Any) -> Any:
    """Replaces generated file contents with photos and a visit's person with somebody
    enrolled (other fields stay as generated)."""
    if not isinstance(body, dict):
        return body
    for field in _FILE_FIELDS:
        value = body.get(field)
        if isinstance(value, list):
            body[field] = [_photo(v) for v in value]
        elif value is not None:
            body[field] = _photo(value)
    if "photos" in body and "force" not in body:
        # A photo of someone already enrolled is refused as a likely mislabel unless forced
        # (the key is an admin's): without this most generated enrollments would be refused,
        # and the stateful links after them never followed.
        body["force"] = True
    if _mapped(context):
        if isinstance(body.get("person_id"), int):
            people = _live_ids("/people")
            if people:
                body["person_id"] = people[body["person_id"] % len(people)]
        if "force" not in body:
            # As for photos: whether a face may join a person depends on whose face it is.
            body["force"] = True
    # A subscription's target becomes a port on this machine that refuses connections, so
    # that the server's deliveries and tests fail at once instead of resolving generated
    # host names (its scheme, types and secret stay as generated).
    url = body.get("url")
    if isinstance(url, str) and "://" in url:
        body["url"] = url.split("://", 1)[0] + "://127.0.0.1:9/facedb"
    # The schema says metadata is JSON text holding an object (contentMediaType and
    # contentSchema), which schemathesis does not generate by itself.
    metadata = body.get("metadata")
    if isinstance(metadata, str):
        try:
            is_object = isinstance(json.loads(metadata), dict)
        except ValueError:
            is_object = False
        if not is_object:
            body["metadata"] = json.dumps({"note": metadata})
    return body

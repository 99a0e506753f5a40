"""Schemathesis hooks for tests/test_service_schema.py (loaded through SCHEMATHESIS_HOOKS):
the uploads of generated requests become real face photos from the test data, so that
enrollments and identifications can succeed; a schema cannot say "a photo of one face"."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import schemathesis

_FACES = Path(os.environ["FACEDB_TEST_FACES"])
_PHOTOS = [p.read_bytes() for p in sorted((_FACES / "gallery").glob("*/*.jp*g"))[:6]]
_FILE_FIELDS = ("photos", "photo", "a", "b")


def _photo(value: Any) -> Any:
    if isinstance(value, bytes | str):
        # Chosen by the generated value, so that a seeded run sends the same photos.
        return _PHOTOS[len(value) % len(_PHOTOS)]
    return value


@schemathesis.hook
def map_body(context: Any, body: Any) -> Any:
    """Replaces generated file contents with photos (other fields stay as generated)."""
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

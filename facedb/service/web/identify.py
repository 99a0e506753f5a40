"""The web page's identify: who is in one uploaded photo, drawn on it with their names."""

# No `from __future__ import annotations`: FastAPI reads the endpoints' annotations at run
# time.
import base64
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from facedb.draw import drawn_jpeg, label_of
from facedb.errors import ConfigError, FaceDBError
from facedb.results import Identification
from facedb.service.disclosure import disclosed
from facedb.service.web.common import Pages, signed_in
from facedb.service.web.forms import uploads_of
from facedb.thumbnails import pixels_of

__all__ = ["router"]


def _face_rows(results: list[Identification]) -> list[dict[str, Any]]:
    return [
        {
            "label": label_of(r),
            "person": r.person,
            "status": r.status,
            "reasons": list(r.face.quality_reasons),
            "similarity": r.similarity,
            "confidence": r.confidence,
            "bbox": [round(float(v)) for v in r.face.bbox],
            "candidates": [
                (c.person, c.similarity)
                for c in r.candidates
                if r.person is None or c.person.id != r.person.id
            ][:2],
        }
        for r in results
    ]


def router(pages: Pages) -> APIRouter:
    """The identify routes of the web page."""
    service, db = pages.service, pages.db
    routes = pages.routes()

    @routes.get("/web/identify")
    @signed_in
    async def identify_form(request: Request) -> Response:
        try:
            pages.need(request, "read")
        except FaceDBError as e:
            return pages.failed(request, e, "message.html", "identify")
        return pages.render(request, "identify.html", "identify", drawing=None, faces=None)

    @routes.post("/web/identify")
    async def identify(request: Request) -> Response:
        try:
            async with pages.form(request, "read") as form:
                uploads = uploads_of(form, "photo")
                if len(uploads) != 1:
                    raise ConfigError("choose one photo to identify")
                data = await service.photo_bytes(uploads[0])

            key = pages.need(request, "read")

            def identified() -> tuple[list[Identification], bytes]:
                # What the key may learn, as over the API (facedb.service.disclosure).
                results = disclosed(key, db.identify(data), db.threshold)
                return results, drawn_jpeg(pixels_of(db.engine, data), results, numbered=True)

            results, drawing = await service.work(identified)
        except FaceDBError as e:
            return pages.failed(request, e, "identify.html", "identify", drawing=None, faces=None)
        url = "data:image/jpeg;base64," + base64.b64encode(drawing).decode()
        return pages.render(request, "identify.html", "identify", drawing=url, faces=_face_rows(results))

    return routes

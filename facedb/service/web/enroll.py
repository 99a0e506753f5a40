"""The web page's enrollment: a new person from a name and photos (an admin may tick
“enroll anyway”, the mislabel check's ``force``)."""

# No `from __future__ import annotations`: FastAPI reads the endpoints' annotations at run
# time.
from fastapi import APIRouter, Request
from fastapi.responses import Response

from facedb.errors import FaceDBError
from facedb.service.people import _upload_names
from facedb.service.web.common import Pages, signed_in
from facedb.service.web.forms import checked, text_of, uploads_of

__all__ = ["router"]


def router(pages: Pages) -> APIRouter:
    """The enrollment routes of the web page."""
    service, db, locked = pages.service, pages.db, pages.service.locked
    routes = pages.routes()

    @routes.get("/web/enroll")
    @signed_in
    async def enroll_form(request: Request) -> Response:
        try:
            pages.need(request, "enroll")
        except FaceDBError as e:
            return pages.failed(request, e, "message.html", "enroll")
        return pages.render(request, "enroll.html", "enroll", name="")

    @routes.post("/web/enroll")
    async def enroll(request: Request) -> Response:
        name = ""
        try:
            async with pages.form(request, "enroll") as form:
                name = text_of(form, "name")
                force = checked(form, "force")
                if force:
                    pages.need(request, "admin")
                uploads = uploads_of(form, "photos")
                data = await service.photos_of(uploads)
                result = await service.work(
                    locked,
                    db.enroll_photos,
                    name,
                    data,
                    force=force,
                    largest_face=checked(form, "largest_face"),
                    photo_names=_upload_names(uploads),
                )
        except FaceDBError as e:
            return pages.failed(request, e, "enroll.html", "enroll", name=name)
        return pages.render(request, "enroll.html", "enroll", name="", enrolled=result)

    return routes

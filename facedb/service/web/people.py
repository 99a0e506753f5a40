"""The web page's people: the list (``/``), a person's page, renaming, adding photos,
removing a face or the person, and the faces' thumbnails."""

# No `from __future__ import annotations`: FastAPI reads the endpoints' annotations at run
# time.
from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, Response
from starlette.datastructures import FormData

from facedb.errors import FaceDBError
from facedb.service.people import _upload_names
from facedb.service.schema import ID_PATH, id_of
from facedb.service.web.common import Pages, signed_in
from facedb.service.web.forms import checked, text_of, uploads_of

__all__ = ["router"]


def router(pages: Pages) -> APIRouter:
    """The people routes of the web page."""
    service, db, locked = pages.service, pages.db, pages.service.locked
    routes = pages.routes()

    async def people_page(request: Request, status: int = 200, **context: Any) -> HTMLResponse:
        people = await run_in_threadpool(db.people)
        portraits = await run_in_threadpool(db.portraits)
        return pages.render(
            request, "people.html", "people", status, people=people, portraits=portraits, **context
        )

    @routes.get("/")
    @signed_in
    async def home(request: Request) -> Response:
        try:
            pages.need(request, "read")
            return await people_page(request)
        except FaceDBError as e:
            return pages.failed(request, e, "message.html", "people")

    async def person_page(
        request: Request, person_id: int, status: int = 200, **context: Any
    ) -> HTMLResponse:
        person = await run_in_threadpool(db.get, person_id)
        faces = await run_in_threadpool(db.faces, person)
        return pages.render(request, "person.html", "people", status, person=person, faces=faces, **context)

    @routes.get("/web/people/{person_id}")
    @signed_in
    async def person(request: Request, person_id: Annotated[int, ID_PATH]) -> Response:
        try:
            pages.need(request, "read")
            return await person_page(request, person_id)
        except FaceDBError as e:
            return pages.failed(request, e, "message.html", "people")

    async def person_post(
        request: Request, person_id: int, scope: str, change: Callable[[FormData], Awaitable[Response]]
    ) -> Response:
        """A form posted on a person's page: the change, or the page with what went wrong."""
        try:
            async with pages.form(request, scope) as form:
                return await change(form)
        except FaceDBError as e:
            try:
                person = await run_in_threadpool(db.get, person_id)
                faces = await run_in_threadpool(db.faces, person)
            except FaceDBError:
                return pages.failed(request, e, "message.html", "people")
            return pages.failed(request, e, "person.html", "people", person=person, faces=faces)

    @routes.post("/web/people/{person_id}/rename")
    async def rename(request: Request, person_id: Annotated[int, ID_PATH]) -> Response:
        async def change(form: FormData) -> Response:
            await run_in_threadpool(locked, db.rename, person_id, text_of(form, "name"))
            return pages.redirect(f"/web/people/{person_id}", done="renamed")

        return await person_post(request, person_id, "enroll", change)

    @routes.post("/web/people/{person_id}/photos")
    async def add_photos(request: Request, person_id: Annotated[int, ID_PATH]) -> Response:
        async def change(form: FormData) -> Response:
            force = checked(form, "force")
            if force:
                pages.need(request, "admin")
            uploads = uploads_of(form, "photos")
            data = await service.photos_of(uploads)
            target = await run_in_threadpool(db.get, person_id)
            result = await service.work(
                locked,
                db.add_photos,
                target,
                data,
                force=force,
                largest_face=checked(form, "largest_face"),
                photo_names=_upload_names(uploads),
            )
            faces = await run_in_threadpool(db.faces, result.person)
            return pages.render(
                request, "person.html", "people", person=result.person, faces=faces, enrolled=result
            )

        return await person_post(request, person_id, "enroll", change)

    @routes.post("/web/people/{person_id}/remove")
    async def remove(request: Request, person_id: Annotated[int, ID_PATH]) -> Response:
        async def change(_: FormData) -> Response:
            await run_in_threadpool(locked, db.remove, person_id)
            return pages.redirect("/", done="removed")

        return await person_post(request, person_id, "admin", change)

    @routes.post("/web/faces/{face_id}/remove")
    async def remove_face(request: Request, face_id: Annotated[int, ID_PATH]) -> Response:
        try:
            async with pages.form(request, "enroll") as form:
                back = text_of(form, "person_id")
                # A person's last face goes only with the scope that removes the person.
                last = pages.need(request, "enroll").allows("admin")
                await run_in_threadpool(locked, db.remove_face, face_id, last=last)
        except FaceDBError as e:
            return pages.failed(request, e, "message.html", "people")
        if id_of(back) is not None:
            return pages.redirect(f"/web/people/{back}", done="face-removed")
        return pages.redirect("/", done="face-removed")

    @routes.get("/web/faces/{face_id}/thumbnail")
    @signed_in
    async def thumbnail(request: Request, face_id: Annotated[int, ID_PATH]) -> Response:
        return await pages.picture(request, db.thumbnail, face_id)

    return routes

"""The web page's unnamed faces: photos uploaded to discover them, grouped by identity (with a
watch's strangers), each group named (which enrolls it) or dismissed; and the thumbnails
of the groups' faces."""

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
from facedb.service.schema import ID_PATH
from facedb.service.web.common import Pages, signed_in
from facedb.service.web.forms import checked, text_of, uploads_of

__all__ = ["router"]


def router(pages: Pages) -> APIRouter:
    """The routes of the web page's unnamed faces."""
    service, db, locked = pages.service, pages.db, pages.service.locked
    routes = pages.routes()

    async def groups_page(request: Request, status: int = 200, **context: Any) -> HTMLResponse:
        groups = await run_in_threadpool(db.groups)
        return pages.render(request, "groups.html", "groups", status, groups=groups, **context)

    @routes.get("/web/groups")
    @signed_in
    async def groups(request: Request) -> Response:
        try:
            pages.need(request, "read")
            return await groups_page(request)
        except FaceDBError as e:
            return pages.failed(request, e, "message.html", "groups")

    async def group_post(request: Request, change: Callable[[FormData], Awaitable[Response]]) -> Response:
        """A form posted on the groups page: the change, or the page with what went wrong."""
        try:
            async with pages.form(request, "enroll") as form:
                return await change(form)
        except FaceDBError as e:
            try:
                groups = await run_in_threadpool(db.groups)
            except FaceDBError:
                return pages.failed(request, e, "message.html", "groups")
            return pages.failed(request, e, "groups.html", "groups", groups=groups)

    @routes.post("/web/discover")
    async def discover(request: Request) -> Response:
        async def change(form: FormData) -> Response:
            uploads = uploads_of(form, "photos")
            data = await service.photos_of(uploads)
            await service.work(db.discover, data, photo_names=_upload_names(uploads))
            return pages.redirect("/web/groups", done="discovered")

        return await group_post(request, change)

    @routes.post("/web/groups/{group_id}/name")
    async def name_group(request: Request, group_id: Annotated[int, ID_PATH]) -> Response:
        async def change(form: FormData) -> Response:
            force = checked(form, "force")
            if force:
                pages.need(request, "admin")
            result = await service.work(locked, db.name_group, group_id, text_of(form, "name"), force=force)
            return pages.redirect(f"/web/people/{result.person.id}", done="named")

        return await group_post(request, change)

    @routes.post("/web/groups/{group_id}/dismiss")
    async def dismiss_group(request: Request, group_id: Annotated[int, ID_PATH]) -> Response:
        async def change(_: FormData) -> Response:
            await run_in_threadpool(locked, db.dismiss_group, group_id)
            return pages.redirect("/web/groups", done="dismissed")

        return await group_post(request, change)

    @routes.get("/web/groups/faces/{face_id}/thumbnail")
    @signed_in
    async def group_thumbnail(request: Request, face_id: Annotated[int, ID_PATH]) -> Response:
        return await pages.picture(request, db.group_thumbnail, face_id)

    return routes

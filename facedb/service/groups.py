"""``/discover`` and ``/groups``: faces nobody has named yet, grouped by identity, to name
(which enrolls them) or dismiss; and the thumbnails of the groups' faces."""

# No `from __future__ import annotations`: FastAPI reads the endpoints' annotations at run
# time.
from typing import Annotated, Any

from fastapi import APIRouter, File, UploadFile
from fastapi import Path as PathParam
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response

from facedb.errors import FaceNotFound, Forbidden
from facedb.keys import ApiKey
from facedb.serialize import discovery_json, enrollment_json, group_json
from facedb.service.answers import DiscoveryAnswer, DismissedAnswer, EnrollmentAnswer, GroupAnswer, answers
from facedb.service.context import Service
from facedb.service.people import _upload_names
from facedb.service.schema import ERRORS, MAX_ID, NameGroupRequest

__all__ = ["router"]


def router(service: Service) -> APIRouter:
    """The group endpoints of ``service``."""
    db, settings, read, enroll = service.db, service.settings, service.read, service.enroll
    locked = service.locked
    routes = APIRouter(route_class=service.route_class)
    group_path = PathParam(ge=1, le=MAX_ID)
    # The first group of a list, for the operations on one group (OpenAPI links: a client, or
    # schemathesis' stateful phase, finds a real group id where to name, show or dismiss).
    group_links = {
        name: {"operationId": operation, "parameters": {"group_id": "$response.body#/0/id"}}
        for name, operation in (
            ("GetGroup", "get_group"),
            ("NameGroup", "name_group"),
            ("DismissGroup", "dismiss_group"),
        )
    }

    @routes.post(
        "/discover",
        tags=["groups"],
        operation_id="discover",
        dependencies=[enroll],
        response_model=None,
        responses=answers(DiscoveryAnswer, "what the photos held"),
    )
    async def discover(
        photos: Annotated[
            list[UploadFile],
            File(description="photos of anybody", min_length=1, max_length=settings.max_photos),
        ],
    ) -> dict[str, Any]:
        """Every face of the photos: enrolled people named, the others grouped by identity
        with the groups found before. A photo discovered before (the same content, from any door) is not
        looked at again."""
        data = await service.photos_of(photos)
        result = await service.work(db.discover, data, photo_names=_upload_names(photos))
        return discovery_json(result, paths=False)

    @routes.get(
        "/groups",
        tags=["groups"],
        operation_id="list_groups",
        dependencies=[read],
        response_model=None,
        responses=answers(list[GroupAnswer], "every group, biggest first", links=group_links),
    )
    async def list_groups() -> list[dict[str, Any]]:
        """The groups of unnamed faces: discover's, and a watch's strangers."""
        return [group_json(g, paths=False) for g in await run_in_threadpool(db.groups)]

    @routes.get(
        "/groups/{group_id}",
        tags=["groups"],
        operation_id="get_group",
        dependencies=[read],
        response_model=None,
        responses=answers(GroupAnswer, "the group"),
    )
    async def get_group(group_id: Annotated[int, group_path]) -> dict[str, Any]:
        """One group, with its faces."""
        return group_json(await run_in_threadpool(db.group, group_id), paths=False)

    @routes.post(
        "/groups/{group_id}/name",
        tags=["groups"],
        operation_id="name_group",
        response_model=None,
        responses=answers(EnrollmentAnswer, "the person the group's faces were enrolled as"),
    )
    async def name_group(
        key: Annotated[ApiKey, enroll], group_id: Annotated[int, group_path], body: NameGroupRequest
    ) -> dict[str, Any]:
        """Enrolls the group's faces as the person of this name (the enrollment gate applies,
        all or nothing) and removes the group."""
        if body.force and not key.allows("admin"):
            raise Forbidden(f"force needs an API key with scope 'admin'; this one has {key.scope!r}")
        result = await service.work(locked, db.name_group, group_id, body.name, force=body.force)
        return enrollment_json(result)

    @routes.delete(
        "/groups/{group_id}",
        tags=["groups"],
        operation_id="dismiss_group",
        dependencies=[enroll],
        response_model=None,
        responses=answers(DismissedAnswer, "the group is gone, its faces erased"),
    )
    async def dismiss_group(group_id: Annotated[int, group_path]) -> dict[str, Any]:
        """Removes a group, erasing its faces and thumbnails."""
        await run_in_threadpool(locked, db.dismiss_group, group_id)
        return {"dismissed": group_id}

    @routes.get(
        "/groups/faces/{face_id}/thumbnail",
        tags=["groups"],
        operation_id="group_face_thumbnail",
        dependencies=[read],
        response_class=Response,
        responses={**ERRORS, 200: {"content": {"image/jpeg": {}}, "description": "a 112x112 JPEG"}},
    )
    async def group_face_thumbnail(face_id: Annotated[int, group_path]) -> Response:
        """The thumbnail of a group's face (a read key's: it is a picture of a person)."""
        picture = await run_in_threadpool(db.group_thumbnail, face_id)
        if picture is None:
            raise FaceNotFound(
                f"face {face_id} has no thumbnail (the gallery keeps none, or it is a watch's)"
            )
        # no-store: a dismissed group's faces must not stay in a browser's cache.
        return Response(picture, media_type="image/jpeg", headers={"Cache-Control": "no-store"})

    return routes

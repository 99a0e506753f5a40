"""``/people``: list, enroll, get, rename, add photos to and remove people."""

# No `from __future__ import annotations`: FastAPI reads the endpoints' annotations at run
# time, and some refer to names local to the router's function.
import hashlib
import json
import re
from collections.abc import Sequence
from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Header, UploadFile
from fastapi import Path as PathParam
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, Response
from starlette.datastructures import UploadFile as Upload

from facedb.errors import ConfigError, FaceNotFound, Forbidden
from facedb.keys import ApiKey
from facedb.results import Enrollment
from facedb.serialize import enrollment_json, person_json
from facedb.service.answers import EnrollmentAnswer, PersonAnswer, RemovedAnswer, answers
from facedb.service.context import Service
from facedb.service.schema import ERRORS, MAX_ID, NAME_PATTERN, FormBool, RenameRequest

__all__ = ["router"]

_IDEMPOTENCY_KEY = re.compile(r"[\x21-\x7e]{1,200}")


def _check_force(key: ApiKey, force: bool) -> None:
    # force skips the mislabel check: with it an enroll key could put its holder's face
    # on somebody else's record.
    if force and not key.allows("admin"):
        raise Forbidden(f"force needs an API key with scope 'admin'; this one has {key.scope!r}")


def _request_key(key: ApiKey, idempotency_key: str | None) -> str | None:
    if idempotency_key is None:
        return None
    if not _IDEMPOTENCY_KEY.fullmatch(idempotency_key):
        raise ConfigError("Idempotency-Key must be 1 to 200 visible ASCII characters")
    return f"{key.id}:{idempotency_key}"  # one key-holder's keys never meet another's


def _fingerprint(**parts: Any) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


def _upload_names(uploads: Sequence[Upload]) -> list[str]:
    """What each upload is called in refusals and records: its file name (without any folder
    a client put in it, at most 200 characters), else its place in the request."""
    names = []
    for i, upload in enumerate(uploads, 1):
        name = re.split(r"[\\/]", upload.filename or "")[-1].strip()
        names.append(name[:200] if name else f"photo {i}")
    return names


def _enrolled(result: Enrollment, status: int) -> JSONResponse:
    headers = {"Idempotent-Replayed": "true"} if result.replayed else None
    return JSONResponse(enrollment_json(result), status_code=status, headers=headers)


def _metadata(text: str | None) -> dict[str, Any]:
    if not text:
        return {}
    try:
        value = json.loads(text)
    except ValueError as e:
        raise ConfigError(f"metadata is not valid JSON: {e}") from None
    if not isinstance(value, dict):
        raise ConfigError("metadata must be a JSON object")
    return value


def router(service: Service) -> APIRouter:
    """The people endpoints of ``service``."""
    db, settings = service.db, service.settings
    read, enroll, admin = service.read, service.enroll, service.admin
    locked = service.locked
    routes = APIRouter(route_class=service.route_class)

    idempotency_header = Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=200,
        pattern=r"^[!-~]+$",
        description="a client-chosen key: a retry with the same key is answered with the first answer",
    )
    person_path = PathParam(ge=1, le=MAX_ID)
    person_links = {
        name: {"operationId": operation, "parameters": {"person_id": "$response.body#/id"}}
        for name, operation in (
            ("GetPerson", "get_person"),
            ("RenamePerson", "rename_person"),
            ("AddFaces", "add_faces"),
            ("DeletePerson", "delete_person"),
        )
    }

    @routes.get(
        "/people",
        tags=["people"],
        operation_id="list_people",
        dependencies=[read],
        response_model=None,
        responses=answers(list[PersonAnswer], "everybody in the gallery"),
    )
    async def list_people() -> list[dict[str, Any]]:
        """Everybody in the gallery."""
        return [person_json(p) for p in await run_in_threadpool(db.people)]

    @routes.post(
        "/people",
        tags=["people"],
        operation_id="create_person",
        status_code=201,
        response_model=None,
        responses=answers(EnrollmentAnswer, "the new person", 201, links=person_links),
    )
    async def create_person(
        key: Annotated[ApiKey, enroll],
        name: Annotated[str, Form(min_length=1, max_length=500, pattern=NAME_PATTERN)],
        photos: Annotated[
            list[UploadFile],
            File(description="photos showing one face each", min_length=1, max_length=settings.max_photos),
        ],
        metadata: Annotated[
            str | None,
            Form(
                description="a JSON object",
                json_schema_extra={
                    "contentMediaType": "application/json",
                    "contentSchema": {"type": "object"},
                },
            ),
        ] = None,
        force: Annotated[FormBool, Form(description="skip the mislabel check (admin keys only)")] = False,
        largest_face: Annotated[
            FormBool, Form(description="take the largest face of a photo with several (a group photo)")
        ] = False,
        namesake: Annotated[
            FormBool,
            Form(description="create the person even if somebody already has this name (a namesake)"),
        ] = False,
        idempotency_key: Annotated[str | None, idempotency_header] = None,
    ) -> JSONResponse:
        """Enrolls a new person from photos (all or nothing). A name already in use is
        refused (409 `name_in_use`, naming the ids: add faces to them with POST
        /people/{id}/faces) unless ``namesake`` is true. A retry with the same
        ``Idempotency-Key`` is answered with the first answer and enrolls nobody again."""
        _check_force(key, force)
        meta = _metadata(metadata)
        data = await service.photos_of(photos)
        request = _request_key(key, idempotency_key)
        print_ = _fingerprint(
            op="create_person",
            name=name,
            metadata=meta,
            force=force,
            # Only when set: the fingerprints of requests made before it existed still match.
            **({"largest_face": True} if largest_face else {}),
            **({"namesake": True} if namesake else {}),
            photos=[hashlib.sha256(d).hexdigest() for d in data],
        )
        result = await service.work(
            locked,
            db.create_person,
            name,
            data,
            meta,
            force=force,
            largest_face=largest_face,
            namesake=namesake,
            photo_names=_upload_names(photos),
            request_key=request,
            request_fingerprint=print_,
        )
        return _enrolled(result, 201)

    @routes.get(
        "/people/{person_id}",
        tags=["people"],
        operation_id="get_person",
        dependencies=[read],
        response_model=None,
        responses=answers(PersonAnswer, "the person"),
    )
    async def get_person(person_id: Annotated[int, person_path]) -> dict[str, Any]:
        """One person."""
        return person_json(await run_in_threadpool(db.get, person_id))

    @routes.patch(
        "/people/{person_id}",
        tags=["people"],
        operation_id="rename_person",
        dependencies=[enroll],
        response_model=None,
        responses=answers(PersonAnswer, "the renamed person"),
    )
    async def rename_person(person_id: Annotated[int, person_path], body: RenameRequest) -> dict[str, Any]:
        """Renames a person."""
        return person_json(await run_in_threadpool(locked, db.rename, person_id, body.name))

    @routes.delete(
        "/people/{person_id}",
        tags=["people"],
        operation_id="delete_person",
        dependencies=[admin],
        response_model=None,
        responses=answers(RemovedAnswer, "the removed person"),
    )
    async def delete_person(person_id: Annotated[int, person_path]) -> dict[str, Any]:
        """Removes a person and erases their templates."""
        person = await run_in_threadpool(db.get, person_id)
        await run_in_threadpool(locked, db.remove, person_id)
        return {"removed": person_json(person)}

    @routes.post(
        "/people/{person_id}/faces",
        tags=["people"],
        operation_id="add_faces",
        response_model=None,
        responses=answers(EnrollmentAnswer, "what was added"),
    )
    async def add_faces(
        key: Annotated[ApiKey, enroll],
        person_id: Annotated[int, person_path],
        photos: Annotated[
            list[UploadFile],
            File(description="more photos of this person", min_length=1, max_length=settings.max_photos),
        ],
        force: Annotated[FormBool, Form(description="skip the mislabel check (admin keys only)")] = False,
        largest_face: Annotated[
            FormBool, Form(description="take the largest face of a photo with several (a group photo)")
        ] = False,
        idempotency_key: Annotated[str | None, idempotency_header] = None,
    ) -> JSONResponse:
        """Adds photos of an existing person (all or nothing). A retry with the same
        ``Idempotency-Key`` is answered with the first answer and adds nothing again."""
        _check_force(key, force)
        data = await service.photos_of(photos)
        request = _request_key(key, idempotency_key)
        print_ = _fingerprint(
            op="add_faces",
            person=person_id,
            force=force,
            # Only when set: the fingerprints of requests made before it existed still match.
            **({"largest_face": True} if largest_face else {}),
            photos=[hashlib.sha256(d).hexdigest() for d in data],
        )
        person = await run_in_threadpool(db.get, person_id)
        result = await service.work(
            locked,
            db.add_photos,
            person,
            data,
            force=force,
            largest_face=largest_face,
            photo_names=_upload_names(photos),
            request_key=request,
            request_fingerprint=print_,
        )
        return _enrolled(result, 200)

    @routes.get(
        "/faces/{face_id}/thumbnail",
        tags=["people"],
        operation_id="face_thumbnail",
        dependencies=[read],
        response_class=Response,
        responses={
            **ERRORS,
            200: {"content": {"image/jpeg": {}}, "description": "the face's 112x112 JPEG thumbnail"},
        },
    )
    async def face_thumbnail(face_id: Annotated[int, PathParam(ge=1, le=MAX_ID)]) -> Response:
        """The 112x112 JPEG of an enrolled face, aligned as the recognizer sees it (404 for a
        face without one: an imported template, a gallery kept without thumbnails)."""
        picture = await run_in_threadpool(db.thumbnail, face_id)
        if picture is None:
            raise FaceNotFound(
                f"face {face_id} has no thumbnail (an imported template, or thumbnails are off)"
            )
        return Response(picture, media_type="image/jpeg", headers={"Cache-Control": "no-store"})

    return routes

"""``/sightings`` and ``/attendance``: the visits ``facedb watch`` logged, and who came when;
``/sightings/{id}/reject`` and ``/confirm`` ("not this person", "yes, it's them"), the
visit's thumbnail, and the enrollment ``/audit``."""

# No `from __future__ import annotations`: FastAPI reads the endpoints' annotations at run
# time.
from typing import Annotated, Any

from fastapi import APIRouter, Query, Response
from fastapi import Path as PathParam
from fastapi.concurrency import run_in_threadpool

from facedb import attendance as attendance_log
from facedb.errors import Forbidden, SightingNotFound
from facedb.keys import ApiKey
from facedb.serialize import attendance_json, audit_json, enrollment_json, rejection_json, sighting_json
from facedb.service.answers import AttendanceAnswer, SightingAnswer, answers
from facedb.service.context import Service
from facedb.service.schema import ERRORS, MAX_ID, ConfirmRequest, RejectRequest, TimeBound

__all__ = ["router"]


def router(service: Service) -> APIRouter:
    """The attendance endpoints of ``service``."""
    db, read, enroll, admin = service.db, service.read, service.enroll, service.admin
    routes = APIRouter(route_class=service.route_class)
    sighting_path = PathParam(ge=1, le=MAX_ID)
    # The first visit of a list, for "not this person" and "yes, it's them" (OpenAPI links).
    sighting_links = {
        name: {"operationId": operation, "parameters": {"sighting_id": "$response.body#/0/id"}}
        for name, operation in (
            ("RejectSighting", "reject_sighting"),
            ("ConfirmSighting", "confirm_sighting"),
        )
    }

    @routes.get(
        "/sightings",
        tags=["attendance"],
        operation_id="sightings",
        dependencies=[read],
        response_model=None,
        responses=answers(list[SightingAnswer], "the visits", links=sighting_links),
    )
    async def list_sightings(
        since: TimeBound = None,
        until: TimeBound = None,
        person_id: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
    ) -> list[dict[str, Any]]:
        """Visits logged by `facedb watch` that started in [since, until) (default: today)."""
        rows = await run_in_threadpool(attendance_log.sightings, db, since, until, person_id)
        return [sighting_json(v) for v in rows]

    @routes.get(
        "/attendance",
        tags=["attendance"],
        operation_id="attendance",
        dependencies=[read],
        response_model=None,
        responses=answers(list[AttendanceAnswer], "attendance rows by day"),
    )
    async def attendance(since: TimeBound = None, until: TimeBound = None) -> list[dict[str, Any]]:
        """First and last sighting per person (and stranger) per day."""
        rows = await run_in_threadpool(attendance_log.attendance, db, since, until)
        return [attendance_json(r) for r in rows]

    @routes.post(
        "/sightings/{sighting_id}/reject",
        tags=["attendance"],
        operation_id="reject_sighting",
        dependencies=[enroll],
        responses=ERRORS,
    )
    async def reject_sighting(
        sighting_id: Annotated[int, sighting_path], body: RejectRequest | None = None
    ) -> dict[str, Any]:
        """ "Not this person": the visit's face becomes a negative example of the person
        (default: the one it was logged as), respected by every identification from now on;
        a visit logged as them leaves the attendance log."""
        person = None if body is None else body.person_id
        rejection = await run_in_threadpool(service.locked, db.reject_sighting, sighting_id, person)
        return rejection_json(rejection, None, sighting_id)

    @routes.post(
        "/sightings/{sighting_id}/confirm",
        tags=["attendance"],
        operation_id="confirm_sighting",
        responses=ERRORS,
    )
    async def confirm_sighting(
        key: Annotated[ApiKey, enroll], sighting_id: Annotated[int, sighting_path], body: ConfirmRequest
    ) -> dict[str, Any]:
        """ "Yes, it's them": the visit's face is added to the person through the enrollment
        gate, and the visit becomes theirs."""
        if body.force and not key.allows("admin"):
            raise Forbidden(f"force needs an API key with scope 'admin'; this one has {key.scope!r}")
        result = await run_in_threadpool(
            service.locked, db.confirm_sighting, sighting_id, body.person_id, force=body.force
        )
        return enrollment_json(result)

    @routes.get(
        "/sightings/{sighting_id}/thumbnail",
        tags=["attendance"],
        operation_id="sighting_thumbnail",
        dependencies=[read],
        response_class=Response,
        responses={**ERRORS, 200: {"content": {"image/jpeg": {}}, "description": "a 112x112 JPEG"}},
    )
    async def sighting_thumbnail(sighting_id: Annotated[int, sighting_path]) -> Response:
        """The face a visit began with (a read key's: it is a picture of a person), to see
        whom "yes, it's them" or "not this person" is about."""
        picture = await run_in_threadpool(db.sighting_thumbnail, sighting_id)
        if picture is None:
            raise SightingNotFound(
                f"sighting {sighting_id} has no thumbnail "
                "(the gallery keeps none, or an older facedb logged it)"
            )
        return Response(picture, media_type="image/jpeg", headers={"Cache-Control": "no-store"})

    @routes.get("/audit", tags=["people"], operation_id="audit", dependencies=[admin], responses=ERRORS)
    async def audit() -> dict[str, Any]:
        """Suspect enrollments (mislabels, people enrolled twice), each with a reason and the
        command that fixes it."""
        return audit_json(await run_in_threadpool(db.audit))

    return routes

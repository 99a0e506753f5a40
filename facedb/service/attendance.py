"""``/sightings`` and ``/attendance``: the visits ``facedb watch`` logged, and who came when."""

# No `from __future__ import annotations`: FastAPI reads the endpoints' annotations at run
# time.
from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.concurrency import run_in_threadpool

from facedb import attendance as attendance_log
from facedb.serialize import attendance_json, sighting_json
from facedb.service.answers import AttendanceAnswer, SightingAnswer, answers
from facedb.service.context import Service
from facedb.service.schema import MAX_ID, TimeBound

__all__ = ["router"]


def router(service: Service) -> APIRouter:
    """The attendance endpoints of ``service``."""
    db, read = service.db, service.read
    routes = APIRouter(route_class=service.route_class)

    @routes.get(
        "/sightings",
        tags=["attendance"],
        operation_id="sightings",
        dependencies=[read],
        response_model=None,
        responses=answers(list[SightingAnswer], "the visits"),
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

    return routes

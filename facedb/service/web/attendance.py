"""The web page's attendance: who came on a day (also as CSV), and the review of recent
sightings, each confirmed ("yes, it's them") or rejected ("not this person")."""

# No `from __future__ import annotations`: FastAPI reads the endpoints' annotations at run
# time.
import io
from collections.abc import Callable
from datetime import date, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response
from starlette.datastructures import FormData

from facedb import attendance as attendance_log
from facedb.attendance.spreadsheet import write_attendance_csv
from facedb.errors import ConfigError, FaceDBError
from facedb.service.schema import ID_PATH, id_of
from facedb.service.web.common import SECURITY_HEADERS, Pages, signed_in
from facedb.service.web.forms import checked, text_of

__all__ = ["router"]


def _day(text: str | None) -> date:
    if not text:
        return date.today()
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise ConfigError(f"day must be a date like 2026-12-01, got {text[:40]!r}") from None


def router(pages: Pages) -> APIRouter:
    """The attendance and review routes of the web page."""
    db, locked = pages.db, pages.service.locked
    routes = pages.routes()

    @routes.get("/web/attendance")
    @signed_in
    async def attendance(request: Request) -> Response:
        day = date.today()
        try:
            pages.need(request, "read")
            day = _day(request.query_params.get("day"))
            rows = await run_in_threadpool(attendance_log.attendance, db, day, day)
        except FaceDBError as e:
            return pages.failed(request, e, "attendance.html", "attendance", day=day, rows=[])
        return pages.render(request, "attendance.html", "attendance", day=day, rows=rows)

    @routes.get("/web/attendance.csv")
    @signed_in
    async def attendance_csv(request: Request) -> Response:
        try:
            pages.need(request, "read")
            day = _day(request.query_params.get("day"))
            rows = await run_in_threadpool(attendance_log.attendance, db, day, day)
        except FaceDBError as e:
            return Response(pages.public(e.message), status_code=e.http_status, media_type="text/plain")
        out = io.StringIO()
        write_attendance_csv(rows, out)
        return Response(
            out.getvalue(),
            media_type="text/csv; charset=utf-8",
            headers={
                **SECURITY_HEADERS,
                "Content-Disposition": f'attachment; filename="attendance-{day.isoformat()}.csv"',
            },
        )

    async def review_context(request: Request) -> dict[str, Any]:
        """The recent visits (newest first, at most 200) and the people to confirm them as."""
        text = request.query_params.get("days", "7")
        days = id_of(text) or 7
        days = days if days <= 90 else 7
        now = datetime.now().astimezone()
        visits = await run_in_threadpool(attendance_log.sightings, db, now - timedelta(days=days), now)
        people = await run_in_threadpool(db.people)
        return {"days": days, "visits": list(reversed(visits))[:200], "people": people}

    @routes.get("/web/sightings/{sighting_id}/thumbnail")
    @signed_in
    async def sighting_thumbnail(request: Request, sighting_id: Annotated[int, ID_PATH]) -> Response:
        return await pages.picture(request, db.sighting_thumbnail, sighting_id)

    @routes.get("/web/review")
    @signed_in
    async def review(request: Request) -> Response:
        try:
            pages.need(request, "read")
            return pages.render(request, "review.html", "review", **await review_context(request))
        except FaceDBError as e:
            return pages.failed(request, e, "message.html", "review")

    async def sighting_post(request: Request, action: Callable[[FormData], Any], done: str) -> Response:
        """A confirm or reject form: the change, then the review page (with what went wrong)."""
        try:
            async with pages.form(request, "enroll") as form:
                if checked(form, "force"):
                    pages.need(request, "admin")
                await run_in_threadpool(locked, action, form)
        except FaceDBError as e:
            try:
                context = await review_context(request)
            except FaceDBError:
                return pages.failed(request, e, "message.html", "review")
            return pages.failed(request, e, "review.html", "review", **context)
        return pages.redirect("/web/review", done=done)

    def _person_of(form: FormData) -> int:
        person_id = id_of(text_of(form, "person_id"))
        if person_id is None:
            raise ConfigError("choose the person it is")
        return person_id

    @routes.post("/web/sightings/{sighting_id}/confirm")
    async def confirm(request: Request, sighting_id: Annotated[int, ID_PATH]) -> Response:
        def action(form: FormData) -> Any:
            return db.confirm_sighting(sighting_id, _person_of(form), force=checked(form, "force"))

        return await sighting_post(request, action, "confirmed")

    @routes.post("/web/sightings/{sighting_id}/reject")
    async def reject(request: Request, sighting_id: Annotated[int, ID_PATH]) -> Response:
        def action(form: FormData) -> Any:
            # No person: the one the visit was logged as; anything else must be an id.
            return db.reject_sighting(sighting_id, _person_of(form) if text_of(form, "person_id") else None)

        return await sighting_post(request, action, "rejected")

    return routes

"""The web page's routes: sign-in, people, a person's faces, enrollment, identify,
attendance and the review of recent sightings.

Every route is left out of the OpenAPI document (it answers HTML, not the API's JSON). A
page asked for without a session shows the sign-in form; a facedb error becomes a message on
the page with the error's HTTP status, never a traceback.
"""

# No `from __future__ import annotations`: FastAPI reads the endpoints' annotations at run
# time.
import base64
import contextlib
import csv
import functools
import io
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import jinja2
from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.datastructures import FormData, UploadFile
from starlette.exceptions import HTTPException as StarletteHTTPException

from facedb import attendance as attendance_log
from facedb.draw import drawn_jpeg, label_of
from facedb.errors import ConfigError, EnrollmentRefused, FaceDBError, FaceNotFound, Forbidden
from facedb.http_guard import FailedAuthLimiter
from facedb.keys import ApiKey, KeyStore
from facedb.results import Identification
from facedb.service.context import Service, public_message_of
from facedb.service.people import _upload_names
from facedb.service.web.sessions import COOKIE, Session, Sessions
from facedb.thumbnails import pixels_of

__all__ = ["SECTIONS", "SIGN_IN", "SIGN_IN_COOKIE", "Pages", "Section", "covers", "router"]

#: The sign-in page (and form).
SIGN_IN = "/web/sign-in"
#: The cookie holding the sign-in form's token until the session starts.
SIGN_IN_COOKIE = "facedb_sign_in"
#: What the web page answers with, beside its content: no caching (the pages show people's
#: faces), no framing, scripts, styles and images from this server only.
SECURITY_HEADERS = {
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
}


@dataclass(frozen=True, slots=True)
class Section:
    """One entry of the navigation: its name, label, address and the scope it needs."""

    name: str
    label: str
    path: str
    scope: str


#: The navigation, in order. A new section is one more entry, a template and its routes.
SECTIONS: list[Section] = [
    Section("people", "People", "/", "read"),
    Section("enroll", "Enroll", "/web/enroll", "enroll"),
    Section("identify", "Identify", "/web/identify", "read"),
    Section("attendance", "Attendance", "/web/attendance", "read"),
    Section("review", "Review", "/web/review", "read"),
    Section("groups", "Unnamed", "/web/groups", "read"),
]

#: How the page says "enroll anyway" where a refusal says ``force=True``.
ENROLL_ANYWAY = "“enroll anyway” (admins)"

#: Messages a redirect may ask a page to show (by code, so that no text travels in a URL).
NOTICES = {
    "renamed": "Renamed.",
    "face-removed": "The face was removed and its template erased.",
    "removed": "The person was removed and their templates erased.",
    "signed-out": "Signed out.",
    "expired": "Your session has ended: sign in again.",
    "confirmed": "Confirmed: the face was added to the person.",
    "rejected": "Rejected: the face is kept as a negative example of the person.",
    "named": "Named: the group's faces were enrolled as the person.",
    "dismissed": "Dismissed: the group's faces and thumbnails were erased.",
    "discovered": "Discovered: the photos' unnamed faces are grouped below.",
}


def covers(path: str) -> bool:
    """Whether a path is one of the web page's: ``/``, everything under ``/web/``, and
    ``/favicon.ico``, which browsers ask for by themselves (without a key it would count as a
    failed authentication and lock the address out after a few pages)."""
    return path in ("/", "/favicon.ico") or path.startswith("/web/")


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("facedb.service.web", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
    )
    env.filters["when"] = lambda t: "" if t is None else t.astimezone().strftime("%Y-%m-%d %H:%M:%S")
    env.filters["clock"] = lambda t: "" if t is None else t.astimezone().strftime("%H:%M:%S")
    return env


class Pages:
    """What every page route needs: the signed-in key, the form checks and the rendering.

    Args:
        service: the service's shared parts (the gallery, the limits, the workers).
        sessions: the session tokens of this server process.
        limiter: the failed-key limiter of the request guard (a failed sign-in counts).
    """

    def __init__(self, service: Service, sessions: Sessions, limiter: FailedAuthLimiter) -> None:
        self.service = service
        self.db = service.db
        self.sessions = sessions
        self.limiter = limiter
        self.env = _environment()

    # -- who is asking ------------------------------------------------------------------------

    @staticmethod
    def key_of(request: Request) -> ApiKey | None:
        """The request's key: its session's, or the ``X-API-Key`` one (the guard checked it)."""
        key: ApiKey | None = getattr(request.state, "api_key", None)
        return key

    @staticmethod
    def session_of(request: Request) -> Session | None:
        """The request's live session, or None (signed out, or a request with a key)."""
        session: Session | None = getattr(request.state, "web_session", None)
        return session

    def need(self, request: Request, scope: str) -> ApiKey:
        """The request's key if it has ``scope``.

        Raises:
            Forbidden: the key's scope does not allow this.
        """
        key = self.key_of(request)
        if key is None:  # the guard sends posts without a session away; this is a page
            raise Forbidden("sign in first")
        if not key.allows(scope):
            raise Forbidden(f"your key has scope {key.scope!r}; this needs {scope!r}")
        return key

    @contextlib.asynccontextmanager
    async def form(self, request: Request, scope: str) -> AsyncIterator[FormData]:
        """The posted form (its uploads closed afterwards), after the scope check (before
        the body is read) and, for a session, the form token check.

        Raises:
            Forbidden: the key's scope does not allow this, or the form's token is missing
                or wrong.
        """
        self.need(request, scope)
        try:
            form = await request.form()
        except StarletteHTTPException as e:  # a body the parser refused (too many files, ...)
            raise ConfigError(f"the form could not be read: {e.detail}") from None
        try:
            session = self.session_of(request)
            if session is not None:
                token = form.get("csrf")
                if not isinstance(token, str) or not self.sessions.csrf_ok(session, token):
                    raise Forbidden(
                        "the form's token is missing or out of date: reload the page and try again"
                    )
            yield form
        finally:
            await form.close()

    # -- answers ----------------------------------------------------------------------------

    def render(
        self, request: Request, template: str, section: str | None = None, status: int = 200, **context: Any
    ) -> HTMLResponse:
        """The page ``template`` with the navigation and the signed-in key's abilities."""
        key = self.key_of(request)
        session = self.session_of(request)
        notice = NOTICES.get(str(request.query_params.get("done", "")))
        if request.query_params.get("expired"):
            notice = NOTICES["expired"]

        def can(scope: str) -> bool:
            return key is not None and key.allows(scope)

        html = self.env.get_template(template).render(
            key=key,
            can=can,
            csrf=session.csrf if session is not None else "",
            sections=[s for s in SECTIONS if can(s.scope)],
            section=section,
            notice=context.pop("notice", notice),
            error=context.pop("error", None),
            refused=context.pop("refused", []),
            **context,
        )
        return HTMLResponse(html, status_code=status, headers=SECURITY_HEADERS)

    def failed(
        self, request: Request, error: FaceDBError, template: str, section: str | None, **context: Any
    ) -> HTMLResponse:
        """``template`` showing a facedb error's message (and an enrollment's refusals); a
        refusal of the scope shows the message alone (no form the key may not use)."""
        if isinstance(error, Forbidden):
            template = "message.html"
        message = error.message
        refused: list[tuple[str, str]] = []
        if isinstance(error, EnrollmentRefused):
            message = error.message_for(ENROLL_ANYWAY)
            refused = [(p, r.replace(EnrollmentRefused.FORCE, ENROLL_ANYWAY)) for p, r in error.refused]
        return self.render(
            request,
            template,
            section,
            status=error.http_status,
            error=self.public(message),
            refused=refused,
            **context,
        )

    def public(self, message: str) -> str:
        """A message without server paths (what the API's errors say)."""
        return public_message_of(self.db)(message)

    @staticmethod
    def redirect(path: str, **query: str) -> RedirectResponse:
        """A 303 to ``path`` (after a post: the browser gets the page, not the post)."""
        return RedirectResponse(path + ("?" + urlencode(query) if query else ""), status_code=303)

    def sign_in_page(self, request: Request, status: int = 200, error: str | None = None) -> HTMLResponse:
        """The sign-in form, with a fresh form token set in a short-lived cookie."""
        token = secrets.token_urlsafe(24)
        page = self.render(request, "sign_in.html", None, status, error=error, sign_in_token=token)
        page.set_cookie(
            SIGN_IN_COOKIE,
            token,
            max_age=600,
            path=SIGN_IN,
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
        )
        return page


def _uploads(form: FormData, field: str) -> list[UploadFile]:
    """The files of a form field; a file input left empty sends one nameless, empty part."""
    return [u for u in form.getlist(field) if isinstance(u, UploadFile) and (u.filename or u.size)]


def _text(form: FormData, field: str) -> str:
    value = form.get(field)
    return value.strip() if isinstance(value, str) else ""


def _checked(form: FormData, field: str) -> bool:
    return form.get(field) in ("on", "true", "1")


def _day(text: str | None) -> date:
    if not text:
        return date.today()
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise ConfigError(f"day must be a date like 2026-12-01, got {text[:40]!r}") from None


def _csv_cell(value: object) -> str:
    # A name beginning with = + - @ would be a formula in a spreadsheet.
    text = "" if value is None else str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def _face_rows(results: list[Identification]) -> list[dict[str, Any]]:
    return [
        {
            "label": label_of(r),
            "person": r.person,
            "status": r.status,
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


def router(service: Service, keys: KeyStore, sessions: Sessions, limiter: FailedAuthLimiter) -> APIRouter:
    """The web page's routes over ``service`` (see the module's docstring)."""
    pages = Pages(service, sessions, limiter)
    db, locked = service.db, service.locked
    routes = APIRouter(route_class=service.route_class, include_in_schema=False)

    def signed_in(
        handler: Callable[..., Awaitable[Response]],
    ) -> Callable[..., Awaitable[Response]]:
        """A page route that shows the sign-in form to a request without a key."""

        @functools.wraps(handler)
        async def page(request: Request, *args: Any, **kwargs: Any) -> Response:
            if pages.key_of(request) is None:
                return pages.redirect(SIGN_IN, **({"expired": "1"} if COOKIE in request.cookies else {}))
            return await handler(request, *args, **kwargs)

        return page

    # -- signing in and out -------------------------------------------------------------------

    @routes.get(SIGN_IN)
    async def sign_in_form(request: Request) -> Response:
        if pages.session_of(request) is not None:
            return pages.redirect("/")
        return pages.sign_in_page(request)

    @routes.post(SIGN_IN)
    async def sign_in(request: Request) -> Response:
        async with request.form() as form:
            secret, token = _text(form, "key"), _text(form, "csrf")
        expected = request.cookies.get(SIGN_IN_COOKIE, "")
        if not token or not expected or not secrets.compare_digest(token, expected):
            return pages.sign_in_page(request, 403, "the form is out of date: try again")
        key = await run_in_threadpool(keys.authenticate, secret)
        if key is None:
            limiter.failed(request.client.host if request.client else "unknown")
            return pages.sign_in_page(request, 401, "that is not a live API key")
        answer = pages.redirect("/")
        answer.set_cookie(
            COOKIE,
            await run_in_threadpool(sessions.start, key),
            max_age=sessions.lifetime_seconds,
            expires=sessions.lifetime_seconds,  # for browsers that ignore Max-Age
            path="/",
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
        )
        answer.delete_cookie(SIGN_IN_COOKIE, path=SIGN_IN)
        return answer

    @routes.post("/web/sign-out")
    async def sign_out(request: Request) -> Response:
        try:
            async with pages.form(request, "read"):
                pass
        except FaceDBError as e:
            return pages.failed(request, e, "message.html", None)
        session = pages.session_of(request)
        if session is not None:
            sessions.end(session)
        answer = pages.redirect(SIGN_IN, done="signed-out")
        answer.delete_cookie(COOKIE, path="/", httponly=True, samesite="strict")
        return answer

    # -- people -------------------------------------------------------------------------------

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
    async def person(request: Request, person_id: int) -> Response:
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
    async def rename(request: Request, person_id: int) -> Response:
        async def change(form: FormData) -> Response:
            await run_in_threadpool(locked, db.rename, person_id, _text(form, "name"))
            return pages.redirect(f"/web/people/{person_id}", done="renamed")

        return await person_post(request, person_id, "enroll", change)

    @routes.post("/web/people/{person_id}/photos")
    async def add_photos(request: Request, person_id: int) -> Response:
        async def change(form: FormData) -> Response:
            force = _checked(form, "force")
            if force:
                pages.need(request, "admin")
            uploads = _uploads(form, "photos")
            data = await service.photos_of(uploads)
            target = await run_in_threadpool(db.get, person_id)
            result = await service.work(
                locked,
                db.add_photos,
                target,
                data,
                force=force,
                largest_face=_checked(form, "largest_face"),
                photo_names=_upload_names(uploads),
            )
            faces = await run_in_threadpool(db.faces, result.person)
            return pages.render(
                request, "person.html", "people", person=result.person, faces=faces, enrolled=result
            )

        return await person_post(request, person_id, "enroll", change)

    @routes.post("/web/people/{person_id}/remove")
    async def remove(request: Request, person_id: int) -> Response:
        async def change(_: FormData) -> Response:
            await run_in_threadpool(locked, db.remove, person_id)
            return pages.redirect("/", done="removed")

        return await person_post(request, person_id, "admin", change)

    @routes.post("/web/faces/{face_id}/remove")
    async def remove_face(request: Request, face_id: int) -> Response:
        try:
            async with pages.form(request, "enroll") as form:
                back = _text(form, "person_id")
                await run_in_threadpool(locked, db.remove_face, face_id)
        except FaceDBError as e:
            return pages.failed(request, e, "message.html", "people")
        if back.isdigit():
            return pages.redirect(f"/web/people/{back}", done="face-removed")
        return pages.redirect("/", done="face-removed")

    @routes.get("/web/faces/{face_id}/thumbnail")
    @signed_in
    async def thumbnail(request: Request, face_id: int) -> Response:
        return await picture_of(request, db.thumbnail, face_id)

    async def picture_of(request: Request, lookup: Callable[[int], bytes | None], face_id: int) -> Response:
        """A face's thumbnail (an enrolled face's or a group's), to a read key's session."""
        try:
            pages.need(request, "read")
            picture = await run_in_threadpool(lookup, face_id)
            if picture is None:
                raise FaceNotFound(f"face {face_id} has no thumbnail")
        except FaceDBError as e:
            return Response(e.message, status_code=e.http_status, media_type="text/plain")
        return Response(picture, media_type="image/jpeg", headers=SECURITY_HEADERS)

    # -- enrollment ---------------------------------------------------------------------------

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
                name = _text(form, "name")
                force = _checked(form, "force")
                if force:
                    pages.need(request, "admin")
                uploads = _uploads(form, "photos")
                data = await service.photos_of(uploads)
                result = await service.work(
                    locked,
                    db.enroll_photos,
                    name,
                    data,
                    force=force,
                    largest_face=_checked(form, "largest_face"),
                    photo_names=_upload_names(uploads),
                )
        except FaceDBError as e:
            return pages.failed(request, e, "enroll.html", "enroll", name=name)
        return pages.render(request, "enroll.html", "enroll", name="", enrolled=result)

    # -- identify -----------------------------------------------------------------------------

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
                uploads = _uploads(form, "photo")
                if len(uploads) != 1:
                    raise ConfigError("choose one photo to identify")
                data = await service.photo_bytes(uploads[0])

            def identified() -> tuple[list[Identification], bytes]:
                results = db.identify(data)
                return results, drawn_jpeg(pixels_of(db.engine, data), results)

            results, drawing = await service.work(identified)
        except FaceDBError as e:
            return pages.failed(request, e, "identify.html", "identify", drawing=None, faces=None)
        url = "data:image/jpeg;base64," + base64.b64encode(drawing).decode()
        return pages.render(request, "identify.html", "identify", drawing=url, faces=_face_rows(results))

    # -- attendance and review ----------------------------------------------------------------

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
            return Response(e.message, status_code=e.http_status, media_type="text/plain")
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(["day", "person_id", "name", "stranger_id", "first_seen", "last_seen", "visits"])
        for r in rows:
            writer.writerow(
                [
                    r.day.isoformat(),
                    r.person_id if r.person_id is not None else "",
                    _csv_cell(r.name),
                    r.stranger_id if r.stranger_id is not None else "",
                    r.first_seen.astimezone().isoformat(timespec="seconds"),
                    r.last_seen.astimezone().isoformat(timespec="seconds"),
                    r.visits,
                ]
            )
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
        days = int(text) if text.isdigit() and 1 <= int(text) <= 90 else 7
        now = datetime.now().astimezone()
        visits = await run_in_threadpool(attendance_log.sightings, db, now - timedelta(days=days), now)
        people = await run_in_threadpool(db.people)
        return {"days": days, "visits": list(reversed(visits))[:200], "people": people}

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
                if _checked(form, "force"):
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
        text = _text(form, "person_id")
        if not text.isdigit():
            raise ConfigError("choose the person it is")
        return int(text)

    @routes.post("/web/sightings/{sighting_id}/confirm")
    async def confirm(request: Request, sighting_id: int) -> Response:
        def action(form: FormData) -> Any:
            return db.confirm_sighting(sighting_id, _person_of(form), force=_checked(form, "force"))

        return await sighting_post(request, action, "confirmed")

    @routes.post("/web/sightings/{sighting_id}/reject")
    async def reject(request: Request, sighting_id: int) -> Response:
        def action(form: FormData) -> Any:
            text = _text(form, "person_id")
            return db.reject_sighting(sighting_id, int(text) if text.isdigit() else None)

        return await sighting_post(request, action, "rejected")

    # -- groups of unnamed faces (discover's, and a watch's strangers) ------------------------

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
            uploads = _uploads(form, "photos")
            data = await service.photos_of(uploads)
            await service.work(db.discover, data, photo_names=_upload_names(uploads))
            return pages.redirect("/web/groups", done="discovered")

        return await group_post(request, change)

    @routes.post("/web/groups/{group_id}/name")
    async def name_group(request: Request, group_id: int) -> Response:
        async def change(form: FormData) -> Response:
            force = _checked(form, "force")
            if force:
                pages.need(request, "admin")
            result = await service.work(locked, db.name_group, group_id, _text(form, "name"), force=force)
            return pages.redirect(f"/web/people/{result.person.id}", done="named")

        return await group_post(request, change)

    @routes.post("/web/groups/{group_id}/dismiss")
    async def dismiss_group(request: Request, group_id: int) -> Response:
        async def change(_: FormData) -> Response:
            await run_in_threadpool(locked, db.dismiss_group, group_id)
            return pages.redirect("/web/groups", done="dismissed")

        return await group_post(request, change)

    @routes.get("/web/groups/faces/{face_id}/thumbnail")
    @signed_in
    async def group_thumbnail(request: Request, face_id: int) -> Response:
        return await picture_of(request, db.group_thumbnail, face_id)

    return routes

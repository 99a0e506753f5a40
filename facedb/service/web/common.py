"""What every route of the web page shares: the navigation, the signed-in key, the form
checks (scope, then the session's form token) and the answers: pages, errors, redirects
and the faces' thumbnails.

Every route is left out of the OpenAPI document (it answers HTML, not the API's JSON). A
page asked for without a session shows the sign-in form; a facedb error becomes a message on
the page with the error's HTTP status, never a traceback.
"""

# No `from __future__ import annotations`, as in the modules of routes (FastAPI reads the
# endpoints' annotations at run time).
import contextlib
import functools
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import jinja2
from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.datastructures import FormData
from starlette.exceptions import HTTPException as StarletteHTTPException

from facedb.errors import ConfigError, EnrollmentRefused, FaceDBError, FaceNotFound, Forbidden
from facedb.http_guard import FailedAuthLimiter
from facedb.keys import ApiKey
from facedb.service.context import Service
from facedb.service.redaction import public_message_of
from facedb.service.web.sessions import COOKIE, HOST_COOKIE, Session, Sessions

__all__ = [
    "SECTIONS",
    "SECURITY_HEADERS",
    "SIGN_IN",
    "SIGN_IN_COOKIE",
    "Pages",
    "Section",
    "covers",
    "signed_in",
]

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


#: The navigation, in order. A new section is one more entry, a template and a module of
#: routes (included by :func:`facedb.service.web.router`).
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
#: "Take the largest face" in the web page's terms: the check box of the photo forms.
LARGEST_FACE = "“take the largest face of a group photo”"

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
        self._public: Callable[[str], str] | None = None
        self.env = _environment()

    def routes(self) -> APIRouter:
        """A new router for page routes: the service's route class (its bound on the files of
        a form), out of the OpenAPI document."""
        return APIRouter(route_class=self.service.route_class, include_in_schema=False)

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
            message = error.message_for(ENROLL_ANYWAY, LARGEST_FACE)
            refused = [(p, error.in_terms(r, ENROLL_ANYWAY, LARGEST_FACE)) for p, r in error.refused]
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
        if self._public is None:  # built once: the gallery's places do not change
            self._public = public_message_of(self.db)
        return self._public(message)

    @staticmethod
    def redirect(path: str, **query: str) -> RedirectResponse:
        """A 303 to ``path`` (after a post: the browser gets the page, not the post)."""
        return RedirectResponse(path + ("?" + urlencode(query) if query else ""), status_code=303)

    async def picture(
        self, request: Request, lookup: Callable[[int], bytes | None], face_id: int
    ) -> Response:
        """A face's thumbnail (an enrolled face's or a group's), to a read key's session."""
        try:
            self.need(request, "read")
            picture = await run_in_threadpool(lookup, face_id)
            if picture is None:
                raise FaceNotFound(f"face {face_id} has no thumbnail")
        except FaceDBError as e:
            return Response(self.public(e.message), status_code=e.http_status, media_type="text/plain")
        return Response(picture, media_type="image/jpeg", headers=SECURITY_HEADERS)

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


def signed_in(handler: Callable[..., Awaitable[Response]]) -> Callable[..., Awaitable[Response]]:
    """A page route that shows the sign-in form to a request without a key (and says that
    the session ended when the browser still sent a session cookie)."""

    @functools.wraps(handler)
    async def page(request: Request, *args: Any, **kwargs: Any) -> Response:
        if Pages.key_of(request) is None:
            ended = COOKIE in request.cookies or HOST_COOKIE in request.cookies
            return Pages.redirect(SIGN_IN, **({"expired": "1"} if ended else {}))
        return await handler(request, *args, **kwargs)

    return page

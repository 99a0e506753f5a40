"""The HTTP application: the request guard, the error handlers and the routers of every
resource, over one open gallery."""

from __future__ import annotations

import contextlib
import importlib.resources
import logging
import math
from collections.abc import AsyncIterator, Callable

from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from facedb.errors import EnrollmentRefused, FaceDBError, RetryLater
from facedb.events import default_instance
from facedb.gallery import FaceDB
from facedb.http_guard import FailedAuthLimiter, RequestGuard, WebDoor
from facedb.keys import KeyStore
from facedb.serialize import error_json
from facedb.service import attendance, docs, events, groups, health, people, recognition, web
from facedb.service.context import FORM_ROOM, SEARCH_BYTES, Service, ServiceSettings
from facedb.service.redaction import public_message_of
from facedb.service.web.sessions import COOKIE, Sessions

__all__ = ["create_app"]

log = logging.getLogger("facedb.service")


def create_app(db: FaceDB, settings: ServiceSettings | None = None) -> FastAPI:
    """The HTTP application over an open gallery: the API, and the web page at ``/``."""
    settings = settings or ServiceSettings()
    service = Service(db, settings)
    keys = KeyStore(db.store)
    public = public_message_of(db)
    limiter = FailedAuthLimiter(
        settings.auth_failures, settings.auth_window_seconds, settings.max_tracked_clients
    )
    sessions = Sessions(
        keys.live,
        lifetime_seconds=round(settings.session_hours * 3600),
        idle_seconds=max(1, round(settings.session_idle_minutes * 60)),
    )

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        # The events of this gallery are delivered while it is served (threads of their own:
        # a slow receiver never holds up a request); what is left waits in the outbox.
        dispatcher = None
        if settings.deliver_events and not db.read_only:
            dispatcher = db.events.dispatcher(instance=default_instance("serve")).start()
        yield
        if dispatcher is not None:
            await run_in_threadpool(dispatcher.stop)
            db.events.forget(dispatcher)
        service.close()

    app = FastAPI(
        lifespan=lifespan,
        title="facedb",
        version="0.1.0",
        description="Enroll people from photos and identify who is in a new one.",
        # Swagger UI and ReDoc from the installed package (facedb.service.docs), not a CDN.
        docs_url=None,
        redoc_url=None,
    )
    app.router.route_class = service.route_class
    app.add_middleware(
        RequestGuard,
        authenticate=keys.authenticate,
        max_request_bytes=settings.request_limit,
        path_limits={
            "/identify": min(settings.request_limit, settings.max_upload_bytes + FORM_ROOM),
            "/verify": min(settings.request_limit, 2 * settings.max_upload_bytes + FORM_ROOM),
            "/search": min(settings.request_limit, SEARCH_BYTES),
            web.SIGN_IN: 64 * 1024,
            "/web/identify": min(settings.request_limit, settings.max_upload_bytes + FORM_ROOM),
        },
        limiter=limiter,
        public_message=public,
        web=WebDoor(
            covers=web.covers,
            check=sessions.check,
            cookie=COOKIE,
            open_paths=frozenset({web.SIGN_IN}),
            sign_in=web.SIGN_IN,
        ),
    )
    _add_error_handlers(app, public)
    for resource in (health, people, recognition, attendance, groups, events):
        app.include_router(resource.router(service))
    events.document_webhooks(app)
    app.include_router(docs.router(app.title))
    app.include_router(web.router(service, keys, sessions, limiter))
    static = importlib.resources.files("facedb.service.web") / "static"
    app.mount("/web/static", StaticFiles(directory=str(static)), name="web-static")
    return app


def _add_error_handlers(app: FastAPI, public: Callable[[str], str]) -> None:
    """Every error becomes ``{"error": {"code", "message", "request_id"}}``."""

    def answer(
        request: Request, status: int, code: str, message: str, headers: dict[str, str] | None = None
    ) -> JSONResponse:
        request_id = getattr(request.state, "request_id", None)
        return JSONResponse(error_json(code, message, request_id), status_code=status, headers=headers)

    @app.exception_handler(FaceDBError)
    async def facedb_error(request: Request, e: FaceDBError) -> JSONResponse:
        headers = None
        # RateLimited, VectorStoreUnavailable, DatabaseUnavailable: they know when to retry.
        if isinstance(e, RetryLater):
            headers = {"Retry-After": str(max(1, math.ceil(e.retry_after)))}
        if e.http_status >= 500:
            log.error("request %s: %s: %s", getattr(request.state, "request_id", "-"), e.code, e.message)
        # "enroll anyway" and "take the largest face" in the terms of this API: the form
        # fields force (an admin key's) and largest_face.
        message = (
            e.message_for("force=true", "largest_face=true")
            if isinstance(e, EnrollmentRefused)
            else e.message
        )
        return answer(request, e.http_status, e.code, public(message), headers)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, e: RequestValidationError) -> JSONResponse:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err.get('loc', ()) if p != 'body')}: {err.get('msg')}"
            for err in e.errors()
        )
        return answer(request, 422, "invalid_request", public(problems))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, e: StarletteHTTPException) -> JSONResponse:
        if e.status_code == 400:  # a body the parser refused (too many files, bad multipart)
            return answer(request, 422, "invalid_request", public(str(e.detail)))
        code = {404: "not_found", 405: "method_not_allowed"}.get(e.status_code, "http_error")
        headers = dict(e.headers or {})
        if e.status_code == 405:
            # Starlette names the methods of the first route on the path only.
            path = request.url.path
            allowed = {
                m
                for r in app.routes
                if isinstance(r, APIRoute) and r.path_regex.match(path)
                for m in r.methods or ()
            }
            headers["Allow"] = ", ".join(sorted(allowed))
        return answer(request, e.status_code, code, public(str(e.detail)), headers)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, e: Exception) -> JSONResponse:
        # Outside the guard (Starlette's outermost middleware calls this), so the request id
        # header is added here.
        request_id = getattr(request.state, "request_id", None)
        log.error("request %s failed", request_id, exc_info=e)
        return JSONResponse(
            error_json("internal_error", "internal error", request_id),
            status_code=500,
            headers={"X-Request-ID": request_id} if request_id else None,
        )

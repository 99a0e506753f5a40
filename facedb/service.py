"""`facedb serve`: the gallery over HTTP (FastAPI), for door controllers, kiosks and HR systems.

Every request but anonymous ``/health`` and the OpenAPI documents carries an API key in
``X-API-Key`` (``facedb keys create --scope ...``). What every request passes before its body
is read (request id, failed-key rate limit, size limit, key check) is facedb.http_guard; a key
without the endpoint's scope is 403 here. Errors are
``{"error": {"code", "message", "request_id"}}`` with the status of the facedb error class,
and never carry server paths, URLs or exception text. Enrollments honour an
``Idempotency-Key`` header, recorded in the gallery database in the enrollment's own
transaction. Inference runs in worker threads, off the event loop; writes are serialised
while reads go on.
"""

# No `from __future__ import annotations` here: FastAPI reads the endpoints' annotations at
# run time, and some refer to names local to create_app.
import hashlib
import json
import logging
import math
import re
import threading
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Annotated, Any

import numpy as np
from fastapi import Depends, FastAPI, File, Form, Header, Query, Request, Response, UploadFile
from fastapi import Path as PathParam
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from fastapi.security import APIKeyHeader
from pydantic import BaseModel, BeforeValidator, Field
from sqlalchemy import func, select
from starlette.exceptions import HTTPException as StarletteHTTPException

from facedb import attendance as attendance_log
from facedb.engine import similarity
from facedb.errors import ConfigError, FaceDBError, ImageTooLarge, RetryLater
from facedb.gallery import FaceDB
from facedb.http_guard import FailedAuthLimiter, RequestGuard, error_json
from facedb.keys import ApiKey, KeyStore
from facedb.models import FaceRow, PersonRow
from facedb.results import Candidate, Enrollment, Identification, Person

__all__ = ["ServiceSettings", "create_app"]

log = logging.getLogger("facedb.service")

#: The largest id a person can have (SQL BIGINT), so that no path parameter overflows.
MAX_ID = 2**63 - 1
#: A name needs one character that is not white space, in JSON Schema's sense and Python's.
NAME_PATTERN = r"[^\s\x1c-\x1f\x85]"
#: Room for the multipart framing and form fields beside the photos.
_FORM_ROOM = 1024 * 1024
#: The largest /search body: 100 templates of 512 numbers written out in JSON, with room.
_SEARCH_BYTES = 8 * 1024 * 1024


def _iso_time(value: Any) -> Any:
    # pydantic would take "0" for 1970-01-01: the schema says an ISO date or date-time.
    if isinstance(value, str) and not re.match(r"\d{4}-\d{2}-\d{2}", value):
        raise ValueError("expected an ISO 8601 date (2026-12-01) or date-time (2026-12-01T08:00:00+01:00)")
    return value


#: A query parameter that is an ISO date or date-time.
TimeBound = Annotated[datetime | date | None, BeforeValidator(_iso_time)]


@dataclass(frozen=True, slots=True)
class ServiceSettings:
    """Limits of the HTTP service.

    Attributes:
        max_upload_bytes: largest accepted photo upload (413 above).
        max_photos: most photos (files) in one multipart request.
        max_request_bytes: largest request body; None: ``max_photos * max_upload_bytes`` plus
            1 MiB for the multipart framing and the form fields.
        auth_failures: failed authentications from one address that start the rate limit.
        auth_window_seconds: the window in which those failures are counted (and how long
            the address is refused).
        max_tracked_clients: how many client addresses the rate limit remembers at most.
    """

    max_upload_bytes: int = 20 * 1024 * 1024
    max_photos: int = 20
    max_request_bytes: int | None = None
    auth_failures: int = 10
    auth_window_seconds: float = 60.0
    max_tracked_clients: int = 10_000

    @property
    def request_limit(self) -> int:
        """The largest request body accepted, in bytes."""
        if self.max_request_bytes is not None:
            return self.max_request_bytes
        return self.max_photos * self.max_upload_bytes + _FORM_ROOM


class _Unauthorized(Exception):
    def __init__(self, status: int, message: str) -> None:
        self.status, self.message = status, message


class RenameRequest(BaseModel):
    """A person's new name."""

    name: str = Field(min_length=1, max_length=500, pattern=NAME_PATTERN)


class ErrorDetail(BaseModel):
    """What went wrong: a stable code, a message for people, and the request's id."""

    code: str
    message: str
    request_id: str | None


class ErrorBody(BaseModel):
    """Every error answer of the service."""

    error: ErrorDetail


class Health(BaseModel):
    """Liveness and readiness; the sizes only for a caller with a valid key."""

    status: str = Field(description='"ok", or "unavailable" (HTTP 503)')
    people: int | None = None
    faces: int | None = None
    model: str | None = None
    index: str | None = None
    generation: int | None = None


_RETRY_AFTER = {"Retry-After": {"description": "seconds to wait", "schema": {"type": "integer"}}}
_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorBody, "description": "no API key, or an unknown or revoked one"},
    403: {"model": ErrorBody, "description": "the API key lacks the scope this call needs"},
    404: {"model": ErrorBody, "description": "no such person"},
    409: {"model": ErrorBody, "description": "the gallery is inconsistent, read-only or busy"},
    413: {"model": ErrorBody, "description": "a photo or the request is over the size limit"},
    422: {"model": ErrorBody, "description": "the request or a photo was refused (the code says why)"},
    429: {
        "model": ErrorBody,
        "description": "too many failed API keys from this address",
        "headers": _RETRY_AFTER,
    },
    500: {"model": ErrorBody, "description": "an internal error (details in the server log)"},
    503: {"model": ErrorBody, "description": "the vector store cannot answer now", "headers": _RETRY_AFTER},
}
_IDEMPOTENCY_KEY = re.compile(r"[\x21-\x7e]{1,200}")


class _LimitedRequestRoute(APIRoute):
    """A route whose multipart parser refuses more files than the service allows, while it
    parses (FastAPI's own default is 1000 files)."""

    max_files = 20

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        """The handler, with the parser's file count bounded."""
        handler = super().get_route_handler()
        max_files = self.max_files

        async def bounded(request: Request) -> Response:
            return await handler(_LimitedRequest(request.scope, request.receive, max_files))

        return bounded


class _LimitedRequest(Request):
    def __init__(self, scope: Any, receive: Any, max_files: int) -> None:
        super().__init__(scope, receive)
        self._max_files = max_files

    def form(
        self,
        *,
        max_files: int | float = 1000,
        max_fields: int | float = 1000,
        max_part_size: int = 1024 * 1024,
    ) -> Any:
        return super().form(
            max_files=min(max_files, self._max_files),
            max_fields=min(max_fields, 100),
            max_part_size=max_part_size,
        )


def person_json(p: Person) -> dict[str, Any]:
    """A person as the API shows them."""
    return {
        "id": p.id,
        "name": p.name,
        "metadata": dict(p.metadata),
        "face_count": p.face_count,
        "created_at": p.created_at.isoformat(),
    }


def enrollment_json(e: Enrollment) -> dict[str, Any]:
    """An enrollment's answer: the person, the new face ids and the skipped photos."""
    return {**person_json(e.person), "added": list(e.added), "skipped": [list(s) for s in e.skipped]}


def candidate_json(c: Candidate) -> dict[str, Any]:
    """A candidate as `identify --json` shows it."""
    return {"id": c.person.id, "name": c.person.name, "similarity": round(c.similarity, 4)}


def identification_json(r: Identification) -> dict[str, Any]:
    """A face's answer, in the shape of `facedb identify --json`."""
    return {
        "bbox": [round(float(v), 2) for v in r.face.bbox],
        "score": round(r.face.score, 4),
        "person": None if r.person is None else {"id": r.person.id, "name": r.person.name},
        "similarity": round(r.similarity, 4),
        "ambiguous": r.ambiguous,
        "candidates": [candidate_json(c) for c in r.candidates],
    }


def public_message_of(db: FaceDB) -> Callable[[str], str]:
    """A function that makes an error message fit for a client: the gallery's folder, URL
    and index location become "the gallery", and any other path or URL is elided."""
    places = {db.location, db.store.safe_url, str(db.store.url), db.vectors.location}
    if "://" not in db.location:
        places.add(str(Path(db.location).resolve()))
        places.add(str(Path(db.location).resolve() / "gallery.db"))
    ordered = sorted((p for p in places if p and len(p) > 1), key=len, reverse=True)
    url = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*://[^\s'\"]+")
    path = re.compile(r"(?<![\w.\-])/[^\s'\",;)]+")

    def public(message: str) -> str:
        for place in ordered:
            message = message.replace(place, "the gallery")
        return path.sub("<path>", url.sub("<url>", message))

    return public


def create_app(db: FaceDB, settings: ServiceSettings | None = None) -> FastAPI:
    """The HTTP application over an open gallery."""
    settings = settings or ServiceSettings()
    keys = KeyStore(db.store)
    write_lock = threading.Lock()
    public = public_message_of(db)
    dimension = db.facts.dimension
    app = FastAPI(
        title="facedb",
        version="0.1.0",
        description="Enroll people from photos and identify who is in a new one.",
    )
    app.router.route_class = type(
        "LimitedRequestRoute", (_LimitedRequestRoute,), {"max_files": max(settings.max_photos, 2)}
    )
    app.add_middleware(
        RequestGuard,
        authenticate=keys.authenticate,
        max_request_bytes=settings.request_limit,
        path_limits={
            "/identify": min(settings.request_limit, settings.max_upload_bytes + _FORM_ROOM),
            "/verify": min(settings.request_limit, 2 * settings.max_upload_bytes + _FORM_ROOM),
            "/search": min(settings.request_limit, _SEARCH_BYTES),
        },
        limiter=FailedAuthLimiter(
            settings.auth_failures, settings.auth_window_seconds, settings.max_tracked_clients
        ),
        public_message=public,
    )
    api_key = APIKeyHeader(
        name="X-API-Key", auto_error=False, description="an API key from `facedb keys create`"
    )

    def needs(scope: str) -> Callable[..., Any]:
        async def check(request: Request, _: Annotated[str | None, Depends(api_key)]) -> ApiKey:
            # The guard has authenticated the key before the body was read.
            key: ApiKey | None = getattr(request.state, "api_key", None)
            if key is None:
                raise _Unauthorized(401, "missing or invalid API key (send it in the X-API-Key header)")
            if not key.allows(scope):
                raise _Unauthorized(403, f"this API key has scope {key.scope!r}; this call needs {scope!r}")
            return key

        return check

    read = Depends(needs("read"))
    enroll = Depends(needs("enroll"))
    admin = Depends(needs("admin"))

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
        return answer(request, e.http_status, e.code, public(e.message), headers)

    @app.exception_handler(_Unauthorized)
    async def unauthorized(request: Request, e: _Unauthorized) -> JSONResponse:
        code = "unauthorized" if e.status == 401 else "forbidden"
        return answer(request, e.status, code, e.message)

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

    async def photo_bytes(upload: UploadFile) -> bytes:
        """Reads an upload, refusing it as soon as it passes the byte limit."""
        limit = settings.max_upload_bytes
        chunks, size = [], 0
        while chunk := await upload.read(1 << 20):
            size += len(chunk)
            if size > limit:
                raise ImageTooLarge(f"upload {upload.filename or ''!r} is over the limit of {limit} bytes")
            chunks.append(chunk)
        return b"".join(chunks)

    async def photos_of(uploads: list[UploadFile]) -> list[bytes]:
        if not uploads:
            raise ConfigError("no photos uploaded (multipart field 'photos')")
        if len(uploads) > settings.max_photos:
            raise ConfigError(f"at most {settings.max_photos} photos per request, got {len(uploads)}")
        return [await photo_bytes(u) for u in uploads]

    def locked(func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        with write_lock:
            return func(*args, **kwargs)

    def check_force(key: ApiKey, force: bool) -> None:
        # force skips the mislabel check: with it an enroll key could put its holder's face
        # on somebody else's record.
        if force and not key.allows("admin"):
            raise _Unauthorized(403, f"force needs an API key with scope 'admin'; this one has {key.scope!r}")

    def request_key(key: ApiKey, idempotency_key: str | None) -> str | None:
        if idempotency_key is None:
            return None
        if not _IDEMPOTENCY_KEY.fullmatch(idempotency_key):
            raise ConfigError("Idempotency-Key must be 1 to 200 visible ASCII characters")
        return f"{key.id}:{idempotency_key}"  # one key-holder's keys never meet another's

    def fingerprint(**parts: Any) -> str:
        return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()

    def enrolled(result: Enrollment, status: int) -> JSONResponse:
        headers = {"Idempotent-Replayed": "true"} if result.replayed else None
        return JSONResponse(enrollment_json(result), status_code=status, headers=headers)

    def ready() -> bool:
        """Readiness, cheaply and without writing: SQL answers, the vector store is usable."""
        try:
            db.store.generation()
            probe = getattr(db.vectors, "ready", None)
            if callable(probe):
                return bool(probe())
            len(db.vectors)
            return True
        except Exception as e:
            log.warning("not ready: %s: %s", type(e).__name__, e)
            return False

    def details() -> dict[str, Any]:
        with db.store.read() as s:
            people = int(s.execute(select(func.count()).select_from(PersonRow)).scalar_one())
            faces = int(s.execute(select(func.count()).select_from(FaceRow)).scalar_one())
        return {
            "people": people,
            "faces": faces,
            "model": db.facts.model_id,
            "index": db.vectors.kind,
            "generation": db.store.generation(),
        }

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

    @app.get(
        "/health",
        tags=["service"],
        operation_id="health",
        response_model=Health,
        response_model_exclude_none=True,
        # The key is optional here: without one, liveness only.
        openapi_extra={"security": [{}]},
        responses={503: {"model": Health, "description": "not ready"}, 401: _ERRORS[401], 429: _ERRORS[429]},
    )
    async def health(request: Request, _: Annotated[str | None, Depends(api_key)]) -> Any:
        """Liveness and readiness (no key needed): ``{"status": "ok"}``, or 503 with
        ``{"status": "unavailable"}``. With a valid key also the gallery's sizes, model and
        index. Never writes, never catches the index up."""
        if not await run_in_threadpool(ready):
            return JSONResponse({"status": "unavailable"}, status_code=503, headers={"Retry-After": "5"})
        if getattr(request.state, "api_key", None) is None:
            return {"status": "ok"}
        return {"status": "ok", **await run_in_threadpool(details)}

    @app.get("/people", tags=["people"], operation_id="list_people", dependencies=[read], responses=_ERRORS)
    async def list_people() -> list[dict[str, Any]]:
        """Everybody in the gallery."""
        return [person_json(p) for p in await run_in_threadpool(db.people)]

    @app.post(
        "/people",
        tags=["people"],
        operation_id="create_person",
        status_code=201,
        responses={**_ERRORS, 201: {"description": "the new person", "links": person_links}},
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
        force: Annotated[bool, Form(description="skip the mislabel check (admin keys only)")] = False,
        idempotency_key: Annotated[str | None, idempotency_header] = None,
    ) -> JSONResponse:
        """Enrolls a person from photos (all or nothing; names are labels, so a new person is
        created even if the name exists). A retry with the same ``Idempotency-Key`` is
        answered with the first answer and enrolls nobody again."""
        check_force(key, force)
        meta = _metadata(metadata)
        data = await photos_of(photos)
        request = request_key(key, idempotency_key)
        print_ = fingerprint(
            op="create_person",
            name=name,
            metadata=meta,
            force=force,
            photos=[hashlib.sha256(d).hexdigest() for d in data],
        )
        result = await run_in_threadpool(
            locked,
            db.create_person,
            name,
            data,
            meta,
            force=force,
            request_key=request,
            request_fingerprint=print_,
        )
        return enrolled(result, 201)

    @app.get(
        "/people/{person_id}",
        tags=["people"],
        operation_id="get_person",
        dependencies=[read],
        responses=_ERRORS,
    )
    async def get_person(person_id: Annotated[int, person_path]) -> dict[str, Any]:
        """One person."""
        return person_json(await run_in_threadpool(db.get, person_id))

    @app.patch(
        "/people/{person_id}",
        tags=["people"],
        operation_id="rename_person",
        dependencies=[enroll],
        responses=_ERRORS,
    )
    async def rename_person(person_id: Annotated[int, person_path], body: RenameRequest) -> dict[str, Any]:
        """Renames a person."""
        return person_json(await run_in_threadpool(locked, db.rename, person_id, body.name))

    @app.delete(
        "/people/{person_id}",
        tags=["people"],
        operation_id="delete_person",
        dependencies=[admin],
        responses=_ERRORS,
    )
    async def delete_person(person_id: Annotated[int, person_path]) -> dict[str, Any]:
        """Removes a person and erases their templates."""
        person = await run_in_threadpool(db.get, person_id)
        await run_in_threadpool(locked, db.remove, person_id)
        return {"removed": person_json(person)}

    @app.post(
        "/people/{person_id}/faces",
        tags=["people"],
        operation_id="add_faces",
        responses=_ERRORS,
    )
    async def add_faces(
        key: Annotated[ApiKey, enroll],
        person_id: Annotated[int, person_path],
        photos: Annotated[
            list[UploadFile],
            File(description="more photos of this person", min_length=1, max_length=settings.max_photos),
        ],
        force: Annotated[bool, Form(description="skip the mislabel check (admin keys only)")] = False,
        idempotency_key: Annotated[str | None, idempotency_header] = None,
    ) -> JSONResponse:
        """Adds photos of an existing person (all or nothing). A retry with the same
        ``Idempotency-Key`` is answered with the first answer and adds nothing again."""
        check_force(key, force)
        data = await photos_of(photos)
        request = request_key(key, idempotency_key)
        print_ = fingerprint(
            op="add_faces",
            person=person_id,
            force=force,
            photos=[hashlib.sha256(d).hexdigest() for d in data],
        )
        person = await run_in_threadpool(db.get, person_id)
        result = await run_in_threadpool(
            locked,
            db.add_photos,
            person,
            data,
            force=force,
            request_key=request,
            request_fingerprint=print_,
        )
        return enrolled(result, 200)

    @app.post(
        "/identify",
        tags=["recognition"],
        operation_id="identify",
        dependencies=[read],
        responses=_ERRORS,
    )
    async def identify(
        photo: Annotated[UploadFile, File(description="the photo")],
        k: Annotated[int, Query(ge=1, le=100)] = 5,
    ) -> dict[str, Any]:
        """Who each face in the photo is (the shape of `facedb identify --json`)."""
        data = await photo_bytes(photo)
        results = await run_in_threadpool(db.identify, data, k)
        return {"image": photo.filename or "", "faces": [identification_json(r) for r in results]}

    @app.post(
        "/verify",
        tags=["recognition"],
        operation_id="verify",
        dependencies=[read],
        responses=_ERRORS,
    )
    async def verify(
        a: Annotated[UploadFile, File(description="first photo")],
        b: Annotated[UploadFile, File(description="second photo")],
    ) -> dict[str, Any]:
        """Whether the largest faces of two photos are the same person."""
        first, second = await photo_bytes(a), await photo_bytes(b)
        ea = await run_in_threadpool(db.engine.embedding, first)
        eb = await run_in_threadpool(db.engine.embedding, second)
        score = similarity(ea, eb)
        return {
            "similarity": round(score, 4),
            "same_person": score >= db.threshold,
            "threshold": db.threshold,
        }

    template_schema: dict[str, Any] = {
        "type": "array",
        "items": {"type": "number", "minimum": -1e6, "maximum": 1e6},
        "minItems": dimension,
        "maxItems": dimension,
    }
    embedding_schema: dict[str, Any] = {
        "anyOf": [
            template_schema,
            {"type": "array", "items": template_schema, "minItems": 1, "maxItems": 100},
        ]
    }

    class SearchRequest(BaseModel):
        """A template search: one template of the gallery's dimension, or several."""

        # Checked by _templates (a ConfigError saying what is wrong), described exactly here.
        embedding: Annotated[
            list[float] | list[list[float]],
            Field(
                description=f"a {dimension}-d template, or a list of up to 100 of them",
                json_schema_extra=embedding_schema,
            ),
        ]
        k: int = Field(5, ge=1, le=100)

    @app.post("/search", tags=["recognition"], operation_id="search", dependencies=[read], responses=_ERRORS)
    async def search(body: SearchRequest) -> list[list[dict[str, Any]]]:
        """The people most similar to each template, best first."""
        matrix = _templates(body.embedding, dimension)
        answers = await run_in_threadpool(db.search, matrix, body.k)
        return [[candidate_json(c) for c in row] for row in answers]

    @app.get(
        "/sightings", tags=["attendance"], operation_id="sightings", dependencies=[read], responses=_ERRORS
    )
    async def list_sightings(
        since: TimeBound = None,
        until: TimeBound = None,
        person_id: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
    ) -> list[dict[str, Any]]:
        """Visits logged by `facedb watch` that started in [since, until) (default: today)."""
        rows = await run_in_threadpool(attendance_log.sightings, db, since, until, person_id)
        return [
            {
                "id": v.id,
                "person": None if v.person_id is None else {"id": v.person_id, "name": v.person_name},
                "stranger_id": v.stranger_id,
                "source": v.source,
                "first_seen": v.first_seen.isoformat(),
                "last_seen": v.last_seen.isoformat(),
                "similarity": round(v.similarity, 4),
                "bbox": v.bbox,
                "frames": v.frames,
            }
            for v in rows
        ]

    @app.get(
        "/attendance", tags=["attendance"], operation_id="attendance", dependencies=[read], responses=_ERRORS
    )
    async def attendance(since: TimeBound = None, until: TimeBound = None) -> list[dict[str, Any]]:
        """First and last sighting per person (and stranger) per day."""
        rows = await run_in_threadpool(attendance_log.attendance, db, since, until)
        return [
            {
                "date": r.day.isoformat(),
                "person_id": r.person_id,
                "name": r.name,
                "stranger_id": r.stranger_id,
                "first_seen": r.first_seen.isoformat(),
                "last_seen": r.last_seen.isoformat(),
                "visits": r.visits,
            }
            for r in rows
        ]

    return app


def _templates(
    value: list[float] | list[list[float]], dimension: int
) -> np.ndarray[Any, np.dtype[np.float32]]:
    """The search request's templates as float32[N, D], or a ConfigError saying what is wrong."""
    rows: list[Any] = [value] if value and not isinstance(value[0], list) else list(value)
    if not rows:
        raise ConfigError("embedding is empty: give one template or a list of them")
    if len(rows) > 100:
        raise ConfigError(f"at most 100 templates per search, got {len(rows)}")
    for i, row in enumerate(rows):
        if not isinstance(row, list) or len(row) != dimension:
            size = len(row) if isinstance(row, list) else 1
            raise ConfigError(
                f"embedding row {i} has {size} values; the gallery's templates have {dimension}"
            )
    matrix = np.asarray(rows, dtype=np.float32)
    if not np.all(np.isfinite(matrix)) or np.any(np.abs(matrix) > 1e6):
        raise ConfigError("embedding values must be finite numbers between -1e6 and 1e6")
    return matrix


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

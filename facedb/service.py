"""`facedb serve`: the gallery over HTTP (FastAPI), for door controllers, kiosks and HR systems.

Every request carries an API key in ``X-API-Key`` (``facedb keys create --scope ...``):
no key or an unknown or revoked one is 401, a key without the scope 403. Errors are
``{"error": {"code", "message"}}`` with the status of the facedb error class. Inference
runs in worker threads, off the event loop; writes are serialised while reads go on.
"""

# No `from __future__ import annotations` here: FastAPI reads the endpoints' annotations at
# run time, and some refer to names local to create_app.
import json
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Annotated, Any

import numpy as np
from fastapi import Depends, FastAPI, File, Form, Query, Request, UploadFile
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.security import APIKeyHeader
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from facedb import attendance as attendance_log
from facedb.engine import similarity
from facedb.errors import ConfigError, FaceDBError, ImageTooLarge
from facedb.gallery import Candidate, FaceDB, Identification, Person
from facedb.keys import ApiKey, KeyStore

__all__ = ["ServiceSettings", "create_app"]


@dataclass(frozen=True, slots=True)
class ServiceSettings:
    """Limits of the HTTP service.

    Attributes:
        max_upload_bytes: largest accepted photo upload (413 above).
        max_photos: most photos in one enrollment request.
    """

    max_upload_bytes: int = 20 * 1024 * 1024
    max_photos: int = 20


class _Unauthorized(Exception):
    def __init__(self, status: int, message: str) -> None:
        self.status, self.message = status, message


class SearchRequest(BaseModel):
    """A template search: one 512-d template or several."""

    embedding: list[float] | list[list[float]] = Field(description="a template, or a list of templates")
    k: int = Field(5, ge=1, le=100)


class RenameRequest(BaseModel):
    """A person's new name."""

    name: str = Field(min_length=1, max_length=500)


def person_json(p: Person) -> dict[str, Any]:
    """A person as the API shows them."""
    return {
        "id": p.id,
        "name": p.name,
        "metadata": dict(p.metadata),
        "face_count": p.face_count,
        "created_at": p.created_at.isoformat(),
    }


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


def create_app(db: FaceDB, settings: ServiceSettings | None = None) -> FastAPI:
    """The HTTP application over an open gallery."""
    settings = settings or ServiceSettings()
    keys = KeyStore(db.store)
    write_lock = threading.Lock()
    app = FastAPI(
        title="facedb",
        version="0.1.0",
        description="Enroll people from photos and identify who is in a new one.",
    )
    api_key = APIKeyHeader(
        name="X-API-Key", auto_error=False, description="an API key from `facedb keys create`"
    )

    def needs(scope: str) -> Callable[[str | None], Any]:
        async def check(secret: Annotated[str | None, Depends(api_key)]) -> ApiKey:
            key = await run_in_threadpool(keys.authenticate, secret)
            if key is None:
                raise _Unauthorized(401, "missing or invalid API key (send it in the X-API-Key header)")
            if not key.allows(scope):
                raise _Unauthorized(403, f"this API key has scope {key.scope!r}; this call needs {scope!r}")
            return key

        return check

    read = Depends(needs("read"))
    enroll = Depends(needs("enroll"))
    admin = Depends(needs("admin"))

    @app.exception_handler(FaceDBError)
    async def facedb_error(_: Request, e: FaceDBError) -> JSONResponse:
        return JSONResponse({"error": {"code": e.code, "message": e.message}}, status_code=e.http_status)

    @app.exception_handler(_Unauthorized)
    async def unauthorized(_: Request, e: _Unauthorized) -> JSONResponse:
        code = "unauthorized" if e.status == 401 else "forbidden"
        return JSONResponse({"error": {"code": code, "message": e.message}}, status_code=e.status)

    @app.exception_handler(RequestValidationError)
    async def invalid(_: Request, e: RequestValidationError) -> JSONResponse:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err.get('loc', ()) if p != 'body')}: {err.get('msg')}"
            for err in e.errors()
        )
        return JSONResponse({"error": {"code": "invalid_request", "message": problems}}, status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, e: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed"}.get(e.status_code, "http_error")
        return JSONResponse({"error": {"code": code, "message": str(e.detail)}}, status_code=e.status_code)

    @app.exception_handler(Exception)
    async def unexpected(_: Request, e: Exception) -> JSONResponse:
        return JSONResponse(
            {"error": {"code": "internal_error", "message": f"unexpected {type(e).__name__}: {e}"}},
            status_code=500,
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

    @app.get("/health", tags=["service"])
    async def health() -> dict[str, Any]:
        """Liveness and the gallery's size, model and index (no key needed)."""
        stats = await run_in_threadpool(db.stats)
        return {
            "status": "ok",
            "people": stats["people"],
            "faces": stats["faces"],
            "model": stats["model"],
            "index": stats["index"],
        }

    @app.get("/people", tags=["people"], dependencies=[read])
    async def list_people() -> list[dict[str, Any]]:
        """Everybody in the gallery."""
        return [person_json(p) for p in await run_in_threadpool(db.people)]

    @app.post("/people", tags=["people"], status_code=201, dependencies=[enroll])
    async def create_person(
        name: Annotated[str, Form(min_length=1, max_length=500)],
        photos: Annotated[list[UploadFile], File(description="photos showing one face each")],
        metadata: Annotated[str | None, Form(description="a JSON object")] = None,
        force: Annotated[bool, Form()] = False,
    ) -> dict[str, Any]:
        """Enrolls a person from photos (all or nothing; names are labels, so a new person is
        created even if the name exists)."""
        meta = _metadata(metadata)
        data = await photos_of(photos)
        result = await run_in_threadpool(locked, db.create_person, name, data, meta, force=force)
        return {**person_json(result.person), "added": result.added, "skipped": result.skipped}

    @app.get("/people/{person_id}", tags=["people"], dependencies=[read])
    async def get_person(person_id: int) -> dict[str, Any]:
        """One person."""
        return person_json(await run_in_threadpool(db.get, person_id))

    @app.patch("/people/{person_id}", tags=["people"], dependencies=[enroll])
    async def rename_person(person_id: int, body: RenameRequest) -> dict[str, Any]:
        """Renames a person."""
        return person_json(await run_in_threadpool(locked, db.rename, person_id, body.name))

    @app.delete("/people/{person_id}", tags=["people"], dependencies=[admin])
    async def delete_person(person_id: int) -> dict[str, Any]:
        """Removes a person and erases their templates."""
        person = await run_in_threadpool(db.get, person_id)
        await run_in_threadpool(locked, db.remove, person_id)
        return {"removed": person_json(person)}

    @app.post("/people/{person_id}/faces", tags=["people"], dependencies=[enroll])
    async def add_faces(
        person_id: int,
        photos: Annotated[list[UploadFile], File(description="more photos of this person")],
        force: Annotated[bool, Form()] = False,
    ) -> dict[str, Any]:
        """Adds photos of an existing person (all or nothing)."""
        data = await photos_of(photos)
        person = await run_in_threadpool(db.get, person_id)
        result = await run_in_threadpool(locked, db.add_photos, person, data, force=force)
        return {**person_json(result.person), "added": result.added, "skipped": result.skipped}

    @app.post("/identify", tags=["recognition"], dependencies=[read])
    async def identify(
        photo: Annotated[UploadFile, File(description="the photo")],
        k: Annotated[int, Query(ge=1, le=100)] = 5,
    ) -> dict[str, Any]:
        """Who each face in the photo is (the shape of `facedb identify --json`)."""
        data = await photo_bytes(photo)
        results = await run_in_threadpool(db.identify, data, k)
        return {"image": photo.filename or "", "faces": [identification_json(r) for r in results]}

    @app.post("/verify", tags=["recognition"], dependencies=[read])
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

    @app.post("/search", tags=["recognition"], dependencies=[read])
    async def search(body: SearchRequest) -> list[list[dict[str, Any]]]:
        """The people most similar to each template, best first."""
        matrix = np.asarray(body.embedding, dtype=np.float32)
        answers = await run_in_threadpool(db.search, matrix, body.k)
        return [[candidate_json(c) for c in row] for row in answers]

    @app.get("/sightings", tags=["attendance"], dependencies=[read])
    async def list_sightings(
        since: datetime | date | None = None,
        until: datetime | date | None = None,
        person_id: int | None = None,
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

    @app.get("/attendance", tags=["attendance"], dependencies=[read])
    async def attendance(
        since: datetime | date | None = None, until: datetime | date | None = None
    ) -> list[dict[str, Any]]:
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

"""``/identify``, ``/verify`` and ``/search``: who is in a photo, whether two photos show one
person, and the people nearest to templates."""

# No `from __future__ import annotations`: FastAPI reads the endpoints' annotations at run
# time, and some refer to names local to the router's function.
from typing import Annotated, Any, Literal

import numpy as np
from fastapi import APIRouter, File, Query, UploadFile
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, Field

from facedb.errors import ConfigError
from facedb.keys import ApiKey
from facedb.ranking import MAX_K
from facedb.serialize import candidate_json, photo_json, verification_json
from facedb.service.answers import CandidateAnswer, PhotoAnswer, VerificationAnswer, answers
from facedb.service.context import Service
from facedb.service.disclosure import READ_K, check_k_for, disclosed

__all__ = ["router"]

CONSISTENCY = (
    "`strong`: also find people another process enrolled a moment ago. On Milvus each search "
    "then waits for the server's next time tick (docs/scaling.md); a gallery's local index "
    "is always this fresh. Absent: the gallery's own consistency, which shows other processes' "
    "additions within Milvus's staleness bound."
)


def router(service: Service) -> APIRouter:
    """The recognition endpoints of ``service``."""
    db, read = service.db, service.read
    dimension = db.facts.dimension
    routes = APIRouter(route_class=service.route_class)

    @routes.post(
        "/identify",
        tags=["recognition"],
        operation_id="identify",
        response_model=None,
        responses=answers(PhotoAnswer, "the photo's faces, left to right"),
    )
    async def identify(
        key: Annotated[ApiKey, read],
        photo: Annotated[UploadFile, File(description="the photo")],
        k: Annotated[
            int,
            Query(ge=1, le=MAX_K, description=f"candidates per face (above {READ_K}: admin keys only)"),
        ] = 5,
        consistency: Annotated[Literal["strong"] | None, Query(description=CONSISTENCY)] = None,
    ) -> dict[str, Any]:
        """Who each face in the photo is (the shape of `facedb identify --json`). Below an
        admin key, only the candidates at or above the threshold in force are listed and every
        similarity is rounded to two decimals: raw scores to many people would give the
        gallery's templates away."""
        check_k_for(key, k)
        data = await service.photo_bytes(photo)
        recognition = service.recognition
        if recognition is None:
            results = await service.work(db.identify, data, k, consistency=consistency)
        else:
            faces = await recognition.faces(data)
            results = await service.work(db.identify_faces, faces, k, consistency=consistency)
            db.events.identified(results)  # person.identified, when a subscription wants it
        return photo_json(photo.filename or "", disclosed(key, results, db.threshold))

    @routes.post(
        "/verify",
        tags=["recognition"],
        operation_id="verify",
        dependencies=[read],
        response_model=None,
        responses=answers(VerificationAnswer, "the verification"),
    )
    async def verify(
        a: Annotated[UploadFile, File(description="first photo")],
        b: Annotated[UploadFile, File(description="second photo")],
    ) -> dict[str, Any]:
        """Whether the largest faces of two photos are the same person."""
        first, second = await service.photo_bytes(a), await service.photo_bytes(b)
        result = await service.work(db.verify, first, second)
        return verification_json(result)

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
        k: int = Field(5, ge=1, le=MAX_K, description="candidates per template")
        consistency: Literal["strong"] | None = Field(None, description=CONSISTENCY)

    @routes.post(
        "/search",
        tags=["recognition"],
        operation_id="search",
        dependencies=[service.admin],
        response_model=None,
        responses=answers(list[list[CandidateAnswer]], "per template, the most similar people"),
    )
    async def search(body: SearchRequest) -> list[list[dict[str, Any]]]:
        """The people most similar to each template, best first (an admin key's: raw
        similarities to any template are the gallery's templates)."""
        matrix = _templates(body.embedding, dimension)
        answers = await run_in_threadpool(db.search, matrix, body.k, consistency=body.consistency)
        return [[candidate_json(c) for c in row] for row in answers]

    return routes


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

"""``GET /health``: liveness and readiness for anybody, the gallery's sizes for a key."""

# No `from __future__ import annotations`: FastAPI reads the endpoints' annotations at run
# time, and some refer to names local to the router's function.
import logging
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from facedb.service.context import Service
from facedb.service.schema import ERRORS, Health

__all__ = ["router"]

log = logging.getLogger("facedb.service")


def router(service: Service) -> APIRouter:
    """The health endpoint of ``service``."""
    db = service.db
    routes = APIRouter(route_class=service.route_class)

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
        stats = db.stats(catch_up=False)
        keys = (
            *("people", "faces", "model", "index", "generation", "threshold", "threshold_source"),
            *("threshold_rule", "estimated_fpir", "target_fpir"),
            *("calibration_target", "calibrated_people", "calibration_warning"),
        )
        return {key: stats[key] for key in keys}

    @routes.get(
        "/health",
        tags=["service"],
        operation_id="health",
        response_model=Health,
        response_model_exclude_none=True,
        # The key is optional here: without one, liveness only.
        openapi_extra={"security": [{}]},
        responses={503: {"model": Health, "description": "not ready"}, 401: ERRORS[401], 429: ERRORS[429]},
    )
    async def health(request: Request, _: Annotated[str | None, Depends(service.api_key)]) -> Any:
        """Liveness and readiness (no key needed): ``{"status": "ok"}``, or 503 with
        ``{"status": "unavailable"}``. With a valid key also the gallery's sizes, model,
        index and the threshold in force (where it came from, the FPIR estimated at the
        gallery's size, and a warning when it exceeds the target or the gallery has outgrown
        its calibration). Never writes, never catches the index up."""
        if not await run_in_threadpool(ready):
            return JSONResponse({"status": "unavailable"}, status_code=503, headers={"Retry-After": "5"})
        if getattr(request.state, "api_key", None) is None:
            return {"status": "ok"}
        return {"status": "ok", **await run_in_threadpool(details)}

    return routes

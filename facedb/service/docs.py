"""``GET /docs`` (Swagger UI) and ``GET /redoc`` (ReDoc), their files served from the
``fastapi-offline`` package, not from a CDN, so that the API's pages work on a machine without
internet (FastAPI's defaults load them from jsDelivr and are blank offline)."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from fastapi import APIRouter
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from fastapi.responses import FileResponse, HTMLResponse

__all__ = ["ASSETS", "router"]

#: The files the pages need, each served at ``/docs/NAME``.
ASSETS = {
    "swagger-ui-bundle.js": "text/javascript",
    "swagger-ui.css": "text/css",
    "redoc.standalone.js": "text/javascript",
    "favicon.png": "image/png",
}


def router(title: str) -> APIRouter:
    """The documentation pages and their files (anonymous, like /openapi.json)."""
    routes = APIRouter(include_in_schema=False)
    folder = Path(str(resources.files("fastapi_offline") / "static"))

    @routes.get("/docs")
    async def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url="/openapi.json",
            title=f"{title} - API",
            swagger_js_url="/docs/swagger-ui-bundle.js",
            swagger_css_url="/docs/swagger-ui.css",
            swagger_favicon_url="/docs/favicon.png",
            oauth2_redirect_url="/docs/oauth2-redirect",
        )

    @routes.get("/docs/oauth2-redirect")
    async def oauth2_redirect() -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()

    @routes.get("/redoc")
    async def redoc() -> HTMLResponse:
        return get_redoc_html(
            openapi_url="/openapi.json",
            title=f"{title} - API",
            redoc_js_url="/docs/redoc.standalone.js",
            redoc_favicon_url="/docs/favicon.png",
            with_google_fonts=False,
        )

    def asset(name: str, media_type: str) -> None:
        async def serve() -> FileResponse:
            return FileResponse(
                folder / name, media_type=media_type, headers={"Cache-Control": "max-age=86400"}
            )

        routes.add_api_route(f"/docs/{name}", serve, methods=["GET"])

    for name, media_type in ASSETS.items():
        asset(name, media_type)
    return routes

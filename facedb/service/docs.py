"""``GET /docs``: Swagger UI served from the ``swagger-ui-bundle`` package, not from a CDN, so
that the API's page works on a machine without internet (FastAPI's default loads it from
jsDelivr and is blank offline)."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi.openapi.docs import get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from fastapi.responses import FileResponse, HTMLResponse
from swagger_ui_bundle import swagger_ui_path

__all__ = ["ASSETS", "router"]

#: The files of Swagger UI the page needs, each served at ``/docs/NAME``.
ASSETS = {"swagger-ui-bundle.js": "text/javascript", "swagger-ui.css": "text/css"}


def router(title: str) -> APIRouter:
    """The documentation page and its assets (anonymous, like /openapi.json)."""
    routes = APIRouter(include_in_schema=False)
    folder = Path(str(swagger_ui_path))

    @routes.get("/docs")
    async def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url="/openapi.json",
            title=f"{title} - API",
            swagger_js_url="/docs/swagger-ui-bundle.js",
            swagger_css_url="/docs/swagger-ui.css",
            swagger_favicon_url="data:,",
            oauth2_redirect_url="/docs/oauth2-redirect",
        )

    @routes.get("/docs/oauth2-redirect")
    async def oauth2_redirect() -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()

    def asset(name: str, media_type: str) -> None:
        async def serve() -> FileResponse:
            return FileResponse(
                folder / name, media_type=media_type, headers={"Cache-Control": "max-age=86400"}
            )

        routes.add_api_route(f"/docs/{name}", serve, methods=["GET"])

    for name, media_type in ASSETS.items():
        asset(name, media_type)
    return routes

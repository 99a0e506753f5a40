"""The web page's sign-in and sign-out: an API key, typed once into the sign-in form, is
exchanged for a session cookie (:mod:`facedb.service.web.sessions`); signing out ends the
session."""

# No `from __future__ import annotations`: FastAPI reads the endpoints' annotations at run
# time.
import secrets

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response

from facedb.errors import FaceDBError
from facedb.keys import KeyStore
from facedb.service.web.common import SIGN_IN, SIGN_IN_COOKIE, Pages
from facedb.service.web.forms import text_of
from facedb.service.web.sessions import COOKIE, HOST_COOKIE

__all__ = ["router"]


def router(pages: Pages, keys: KeyStore) -> APIRouter:
    """The sign-in form and the sign-in and sign-out posts; ``keys`` checks a typed key."""
    sessions, limiter = pages.sessions, pages.limiter
    routes = pages.routes()

    @routes.get(SIGN_IN)
    async def sign_in_form(request: Request) -> Response:
        if pages.session_of(request) is not None:
            return pages.redirect("/")
        return pages.sign_in_page(request)

    @routes.post(SIGN_IN)
    async def sign_in(request: Request) -> Response:
        async with request.form() as form:
            secret, token = text_of(form, "key"), text_of(form, "csrf")
        expected = request.cookies.get(SIGN_IN_COOKIE, "")
        fresh = token and expected and token.isascii() and expected.isascii()
        if not fresh or not secrets.compare_digest(token, expected):
            return pages.sign_in_page(request, 403, "the form is out of date: try again")
        key = await run_in_threadpool(keys.authenticate, secret)
        if key is None:
            # As the API: wrong keys count, and are refused once too many came from this
            # address; the right key still signs in.
            address = request.client.host if request.client else "unknown"
            wait = limiter.retry_after(address)
            if wait is not None:
                return pages.sign_in_page(
                    request,
                    429,
                    f"too many wrong keys from this address: try again in {max(1, round(wait))} s",
                )
            limiter.failed(address)
            return pages.sign_in_page(request, 401, "that is not a live API key")
        answer = pages.redirect("/")
        https = request.url.scheme == "https"
        answer.set_cookie(
            HOST_COOKIE if https else COOKIE,
            await run_in_threadpool(sessions.start, key),
            max_age=sessions.lifetime_seconds,
            expires=sessions.lifetime_seconds,  # for browsers that ignore Max-Age
            path="/",
            httponly=True,
            samesite="strict",
            secure=https,
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
        if request.url.scheme == "https":
            answer.delete_cookie(HOST_COOKIE, path="/", httponly=True, samesite="strict", secure=True)
        return answer

    return routes

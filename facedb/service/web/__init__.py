"""The web page of ``facedb serve``: server-rendered HTML (Jinja2, autoescaped) with a small
CSS and JS file, no build step and no CDN.

``/`` is the list of people; the other pages live under ``/web/``. A user signs in with an
API key, exchanged for a session cookie (:mod:`facedb.service.web.sessions`); what the key's
scope does not allow is not offered, and refused by the server anyway. Every form carries the
session's form token (CSRF); the request guard refuses forms from other sites and sends a
post without a live session to the sign-in page before reading its body.

One module of routes a part of the page, each with a ``router(pages)`` as the API's resources
have: ``sign_in`` (signing in and out), ``people`` (the list, a person's page and faces),
``enroll``, ``identify``, ``attendance`` (attendance, its CSV, the review of sightings) and
``groups`` (unnamed faces). What they share is ``common``: :class:`~.common.Pages`
(rendering, the signed-in key, the form checks, thumbnails) and ``SECTIONS``, the
navigation; ``forms`` reads a posted form's fields. A new section is one more entry in
``SECTIONS``, a template extending ``base.html`` and a module of routes included below.
"""

# No `from __future__ import annotations`, as in the modules of routes (FastAPI reads the
# endpoints' annotations at run time).
from fastapi import APIRouter

from facedb.http_guard import FailedAuthLimiter
from facedb.keys import KeyStore
from facedb.service.context import Service
from facedb.service.web import attendance, enroll, groups, identify, people, sign_in
from facedb.service.web.common import SECTIONS, SIGN_IN, Pages, Section, covers
from facedb.service.web.sessions import COOKIE, Session, Sessions

__all__ = ["COOKIE", "SECTIONS", "SIGN_IN", "Pages", "Section", "Session", "Sessions", "covers", "router"]


def router(service: Service, keys: KeyStore, sessions: Sessions, limiter: FailedAuthLimiter) -> APIRouter:
    """The web page's routes over ``service`` (see the module's docstring): ``keys`` checks
    the key typed into the sign-in form, ``sessions`` makes and checks the session cookies and
    ``limiter`` (the request guard's) counts a failed sign-in as a failed key."""
    pages = Pages(service, sessions, limiter)
    routes = pages.routes()
    routes.include_router(sign_in.router(pages, keys))
    # The navigation's order (no two of these paths overlap, so the order decides no request).
    for part in (people, enroll, identify, attendance, groups):
        routes.include_router(part.router(pages))
    return routes

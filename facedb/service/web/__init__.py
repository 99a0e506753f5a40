"""The web page of ``facedb serve``: server-rendered HTML (Jinja2, autoescaped) with a small
CSS and JS file, no build step and no CDN.

``/`` is the list of people; the other pages live under ``/web/``. A user signs in with an
API key, exchanged for a session cookie (:mod:`facedb.service.web.sessions`); what the key's
scope does not allow is not offered, and refused by the server anyway. Every form carries the
session's form token (CSRF); the request guard refuses forms from other sites and sends a
post without a live session to the sign-in page before reading its body.

``pages`` holds the routes and :class:`~facedb.service.web.pages.Pages` (rendering, the
signed-in key, the form checks); ``SECTIONS`` in it is the navigation: a new section is one
more entry there, a template extending ``base.html`` and its routes.
"""

from facedb.service.web.pages import SECTIONS, Pages, Section, router
from facedb.service.web.sessions import COOKIE, Session, Sessions

__all__ = ["COOKIE", "SECTIONS", "Pages", "Section", "Session", "Sessions", "router"]

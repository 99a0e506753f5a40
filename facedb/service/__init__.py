"""`facedb serve`: the gallery over HTTP (FastAPI), for door controllers, kiosks and HR systems.

Every request but anonymous ``/health`` and the OpenAPI documents carries an API key in
``X-API-Key`` (``facedb keys create --scope ...``). What every request passes before its body
is read (request id, failed-key rate limit, size limit, key check) is facedb.http_guard; a key
without the endpoint's scope is 403 (:class:`facedb.errors.Forbidden`). Errors are
``{"error": {"code", "message", "request_id"}}`` with the status of the facedb error class,
and never carry server paths, URLs or exception text. Enrollments honour an
``Idempotency-Key`` header, recorded in the gallery database in the enrollment's own
transaction. Inference runs in worker threads, off the event loop; writes are serialised
while reads go on.

The package, one module a part: ``app`` builds the application (middleware, error handlers,
the routers); ``context`` holds what the routers share (settings, the gallery, the scope
checks, uploads, the write lock, error messages without server paths); ``schema`` the
OpenAPI models and error responses; then one router a resource: ``health``, ``people``,
``recognition`` (identify, verify, search) and ``attendance`` (sightings, attendance).
Answers are shaped by facedb.serialize, as the CLI's. ``web`` is the web page at ``/``
(server-rendered HTML; a session cookie instead of the key).
"""

from facedb.extras import require

require("service", "the HTTP service (facedb.service)")

from facedb.service.app import create_app  # noqa: E402
from facedb.service.context import ServiceSettings  # noqa: E402

__all__ = ["ServiceSettings", "create_app"]

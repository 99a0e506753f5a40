"""The door of `facedb serve`: what every HTTP request passes before the application reads a
byte of its body.

A pure ASGI middleware, because FastAPI dependencies run only after a multipart body has been
read and parsed: a client without a key could otherwise make the server read hundreds of
megabytes. In order, for every request:

1. a request id (a sane incoming ``X-Request-ID``, else a new one), sent back in the
   ``X-Request-ID`` header and in every error body;
2. a client address with too many failed authentications in the window is refused (429,
   ``Retry-After``);
3. a declared ``Content-Length`` over the limit is refused (413) before the body is read;
4. the ``X-API-Key`` must be a live key (401 otherwise, counted as a failure) on every path
   but the anonymous ones (``/health`` without a key, the OpenAPI documents) and the web
   page's (:class:`WebDoor`), where a request without a key may carry a session cookie
   instead: a form posted from another site (its ``Origin`` or ``Sec-Fetch-Site`` says so)
   is refused (403), and a post without a live session is sent to the sign-in page (303)
   before its body is read; a page asked for without one is left to the page (which shows
   the sign-in form);
5. while the body streams (with or without ``Content-Length``) its bytes are counted and the
   request is refused with 413 as soon as they pass the limit.

The scope check (403) stays with each endpoint, which finds the key in ``request.state``.
"""

from __future__ import annotations

import json
import logging
import math
import re
import time
import uuid
from collections import OrderedDict, deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers
from starlette.requests import cookie_parser
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from facedb.errors import FaceDBError, Forbidden, RateLimited, RequestTooLarge, Unauthorized
from facedb.keys import ApiKey
from facedb.serialize import error_json

__all__ = ["ANONYMOUS_PATHS", "MISSING_KEY", "FailedAuthLimiter", "RequestGuard", "WebDoor"]

#: One line per request at INFO: address, method, path, status, time, the key's name (never
#: the key) and the request id (``facedb serve --log-level info`` shows them).
access_log = logging.getLogger("facedb.access")

#: Paths answered without a key (``/health`` answers more with a valid one).
ANONYMOUS_PATHS = frozenset(
    {
        "/health",
        "/openapi.json",
        "/docs",
        "/docs/oauth2-redirect",
        "/redoc",
        *(
            f"/docs/{name}"
            for name in ("swagger-ui-bundle.js", "swagger-ui.css", "redoc.standalone.js", "favicon.png")
        ),
    }
)
#: What a request without a live API key is told (401), here and by the service's scope check.
MISSING_KEY = "missing or invalid API key (send it in the X-API-Key header)"
_REQUEST_ID = re.compile(r"[A-Za-z0-9._:\-]{1,128}")


@dataclass(frozen=True, slots=True)
class WebDoor:
    """How the web page's requests come in with a session cookie instead of an API key.

    Attributes:
        covers: whether a path is one of the web page's.
        check: the live session of a cookie's value, or None (runs in a worker thread); a
            session has the attribute ``key`` (its :class:`ApiKey`).
        cookie: the session cookie's name.
        open_paths: web paths posted to without a session (the sign-in form).
        sign_in: where a post without a live session is sent (303).
    """

    covers: Callable[[str], bool]
    check: Callable[[str | None], Any]
    cookie: str
    open_paths: frozenset[str]
    sign_in: str


def same_site(headers: Headers) -> bool:
    """Whether a request did not come from another site's page: its ``Sec-Fetch-Site`` (when
    the browser sends it) is not ``cross-site``, and its ``Origin`` (when sent) names the
    host the request was sent to (any scheme: a TLS proxy may stand in front)."""
    if headers.get("sec-fetch-site", "same-origin") not in ("same-origin", "same-site", "none"):
        return False
    origin = headers.get("origin")
    if origin is None:
        return True
    return bool(urlsplit(origin).netloc) and urlsplit(origin).netloc == headers.get("host")


class FailedAuthLimiter:
    """Failed authentications per client address in a sliding window.

    After ``limit`` failures within ``window`` seconds an address is refused until the oldest
    of them leaves the window. Memory is bounded: at most ``max_clients`` addresses are
    tracked (the least recently failing ones are forgotten first), each with at most
    ``limit`` timestamps. Used from the event loop only, so it needs no lock.

    Example:
        >>> limiter = FailedAuthLimiter(limit=3, window=60.0)
        >>> for _ in range(3):
        ...     limiter.failed("10.0.0.7")
        >>> limiter.retry_after("10.0.0.7") is not None
        True
    """

    def __init__(
        self,
        limit: int = 10,
        window: float = 60.0,
        max_clients: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.limit = max(1, int(limit))
        self.window = float(window)
        self.max_clients = max(1, int(max_clients))
        self._clock = clock
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()

    def __len__(self) -> int:
        """How many addresses are tracked."""
        return len(self._failures)

    def _recent(self, address: str, now: float) -> deque[float] | None:
        times = self._failures.get(address)
        if times is None:
            return None
        while times and now - times[0] >= self.window:
            times.popleft()
        if not times:
            del self._failures[address]
            return None
        return times

    def retry_after(self, address: str) -> float | None:
        """Seconds until this address may try again, or None when it may now."""
        now = self._clock()
        times = self._recent(address, now)
        if times is None or len(times) < self.limit:
            return None
        return max(0.0, self.window - (now - times[0]))

    def failed(self, address: str) -> None:
        """Records one failed authentication from this address."""
        now = self._clock()
        times = self._recent(address, now)
        if times is None:
            times = self._failures[address] = deque(maxlen=self.limit)
        times.append(now)
        self._failures.move_to_end(address)
        while len(self._failures) > self.max_clients:
            self._failures.popitem(last=False)


class RequestGuard:
    """ASGI middleware: request ids, rate limit, body limit and key check before any body
    byte is read (see the module's docstring).

    Args:
        app: the application behind the door.
        authenticate: the live key of a secret, or None (runs in a worker thread).
        max_request_bytes: the largest request body accepted.
        path_limits: smaller limits for some paths (a photo to identify needs less room than
            an enrollment of many).
        limiter: counts failed authentications per client address.
        public_message: makes an error message fit for a client (no server paths).
        anonymous_paths: paths that need no key.
        web: the web page's paths and sessions (None: no web page).
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        authenticate: Callable[[str | None], ApiKey | None],
        max_request_bytes: int,
        limiter: FailedAuthLimiter,
        path_limits: Mapping[str, int] | None = None,
        public_message: Callable[[str], str] = str,
        anonymous_paths: frozenset[str] = ANONYMOUS_PATHS,
        web: WebDoor | None = None,
    ) -> None:
        self.app = app
        self.authenticate = authenticate
        self.max_request_bytes = int(max_request_bytes)
        self.path_limits = dict(path_limits or {})
        self.limiter = limiter
        self.public_message = public_message
        self.anonymous_paths = anonymous_paths
        self.web = web

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Handles one ASGI connection scope; logs each request to ``facedb.access`` (INFO)."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        began = time.monotonic()
        status = 0

        async def watched(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self._handle(scope, receive, watched)
        finally:
            if access_log.isEnabledFor(logging.INFO):
                state = scope.get("state", {})
                key = state.get("api_key")
                access_log.info(
                    '%s "%s %s" %d %.1f ms key=%s request=%s',
                    # A forwarded address is a header's text: no spaces, so no forged fields.
                    str((scope.get("client") or ("-", 0))[0]).replace(" ", "\\x20"),
                    scope.get("method", "-"),
                    scope.get("path", "-"),
                    status,
                    (time.monotonic() - began) * 1000,
                    key.name or f"#{key.id}" if key is not None else "-",
                    state.get("request_id", "-"),
                )

    async def _handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = Headers(scope=scope)
        incoming = headers.get("x-request-id")
        request_id = incoming if incoming and _REQUEST_ID.fullmatch(incoming) else uuid.uuid4().hex
        state = scope.setdefault("state", {})
        state["request_id"] = request_id
        raw_id = request_id.encode()

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = dict(message)
                headers = [*message.get("headers", []), (b"x-request-id", raw_id)]
                # Answers carry names, faces and thumbnails: none stays in a browser's or a
                # proxy's cache unless its route said otherwise (the offline /docs' scripts).
                if not any(name.lower() == b"cache-control" for name, _ in headers):
                    headers.append((b"cache-control", b"no-store"))
                message["headers"] = headers
            await send(message)

        async def refuse(status: int, code: str, message: str, extra: Sequence[tuple[str, str]] = ()) -> None:
            # `connection: close` because the rest of an unread body must not be taken for the
            # next request on this connection.
            body = json.dumps(error_json(code, message, request_id)).encode()
            await send_with_id(
                {
                    "type": "http.response.start",
                    "status": status,
                    "headers": [
                        (b"content-type", b"application/json"),
                        (b"content-length", str(len(body)).encode()),
                        (b"connection", b"close"),
                        *((k.lower().encode(), v.encode()) for k, v in extra),
                    ],
                }
            )
            await send_with_id({"type": "http.response.body", "body": body})

        limit = self.path_limits.get(scope.get("path", ""), self.max_request_bytes)
        address = (scope.get("client") or ("unknown", 0))[0]
        secret = headers.get("x-api-key")
        path = scope.get("path", "")
        anonymous = path in self.anonymous_paths and secret is None
        web = self.web if self.web is not None and secret is None and self.web.covers(path) else None
        declared = headers.get("content-length")
        if declared is not None and declared.strip().isdigit() and int(declared) > limit:
            await refuse(
                RequestTooLarge.http_status,
                RequestTooLarge.code,
                f"the request declares {int(declared)} bytes; the limit is {limit} bytes",
            )
            return
        if web is not None:
            unsafe = scope.get("method", "GET") not in ("GET", "HEAD", "OPTIONS")
            if unsafe and not same_site(headers):
                await refuse(Forbidden.http_status, Forbidden.code, "a form from another site is refused")
                return
            jar = cookie_parser(headers.get("cookie", ""))
            # Over HTTPS the cookie carries the __Host- prefix (bound to this host and path /).
            cookie = jar.get("__Host-" + web.cookie) or jar.get(web.cookie)
            try:
                session = await run_in_threadpool(web.check, cookie) if cookie else None
            except FaceDBError as e:
                await refuse(e.http_status, e.code, self.public_message(e.message))
                return
            if session is None and unsafe and path not in web.open_paths:
                await send_with_id(
                    {
                        "type": "http.response.start",
                        "status": 303,
                        "headers": [
                            (b"location", f"{web.sign_in}?expired=1".encode()),
                            (b"content-length", b"0"),
                            (b"connection", b"close"),
                        ],
                    }
                )
                await send_with_id({"type": "http.response.body", "body": b""})
                return
            state["web_session"] = session
            if session is not None:
                state["api_key"] = session.key
        elif not anonymous:
            # Only a wrong key that was presented counts, and only wrong keys are refused for
            # it: a request without a key (ten <img> tags on any page the victim opens) must
            # not lock the victim's address out, and a valid key is never refused because of
            # others' failures behind the same address (OWASP ASVS 2.2.1).
            try:
                key = None if secret is None else await run_in_threadpool(self.authenticate, secret)
            except FaceDBError as e:
                await refuse(e.http_status, e.code, self.public_message(e.message))
                return
            if key is None:
                wait = self.limiter.retry_after(address) if secret is not None else None
                if wait is not None:
                    seconds = max(1, math.ceil(wait))
                    await refuse(
                        RateLimited.http_status,
                        RateLimited.code,
                        f"too many failed authentications from this address; retry after {seconds} s",
                        [("retry-after", str(seconds))],
                    )
                    return
                if secret is not None:
                    self.limiter.failed(address)
                await refuse(Unauthorized.http_status, Unauthorized.code, MISSING_KEY)
                return
            state["api_key"] = key

        received = 0
        over = False
        refused = False

        async def counted_receive() -> Message:
            nonlocal received, over
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    over = True
                    raise RequestTooLarge(f"the request body is over the limit of {limit} bytes")
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal refused
            if not over:
                await send_with_id(message)
                return
            # The application answered the aborted read its own way (a 400 "error parsing
            # the body"): the client gets the 413 instead.
            if not refused and message["type"] == "http.response.body" and not message.get("more_body"):
                refused = True
                await refuse(
                    RequestTooLarge.http_status,
                    RequestTooLarge.code,
                    f"the request body is over the limit of {limit} bytes",
                )

        try:
            await self.app(scope, counted_receive, guarded_send)
        except RequestTooLarge:
            if not refused:
                refused = True
                await refuse(
                    RequestTooLarge.http_status,
                    RequestTooLarge.code,
                    f"the request body is over the limit of {limit} bytes",
                )

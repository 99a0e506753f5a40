"""What the service's routers share: its settings, the open gallery, the API-key scope
checks, the upload readers, the lock that serialises writes and the public form of an error
message."""

# No `from __future__ import annotations`: FastAPI reads the dependencies' annotations at run
# time.
import asyncio
import functools
import os
import threading
from collections.abc import Callable, Coroutine, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Annotated, Any

from fastapi import Depends, Request, Response
from fastapi.params import Depends as DependsParam
from fastapi.routing import APIRoute
from fastapi.security import APIKeyHeader

# Starlette's: what FastAPI's parameters and a form parsed by hand (the web page) both hold.
from starlette.datastructures import UploadFile

from facedb.errors import ConfigError, Forbidden, ImageTooLarge, Unauthorized
from facedb.gallery import FaceDB
from facedb.http_guard import MISSING_KEY
from facedb.keys import ApiKey
from facedb.service.batching import Recognition

__all__ = ["FORM_ROOM", "SEARCH_BYTES", "Service", "ServiceSettings"]

#: Room for the multipart framing and form fields beside the photos.
FORM_ROOM = 1024 * 1024
#: The largest /search body: 100 templates of 512 numbers written out in JSON, with room.
SEARCH_BYTES = 8 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class ServiceSettings:
    """Limits of the HTTP service.

    Attributes:
        max_upload_bytes: largest accepted photo upload (413 above).
        max_photos: most photos (files) in one multipart request.
        max_request_bytes: largest request body; None: ``max_photos * max_upload_bytes`` plus
            1 MiB for the multipart framing and the form fields.
        auth_failures: failed authentications from one address that start the rate limit.
        auth_window_seconds: the window in which those failures are counted (and how long
            the address is refused).
        max_tracked_clients: how many client addresses the rate limit remembers at most.
        batch_window_ms: None (the default): each identify request runs the recognizer on
            its own faces. A number: identify requests share recognizer batches, held open
            that long for more requests after the first (see
            :mod:`facedb.service.batching`). Off by default because on 2 cores it bought
            nothing (benchmarks/service.py: 0.90-1.01x the requests/s, a worse p99): the
            recognizer's cost per face does not fall with the batch size there (20.6 ms at
            1 face, 20.9 at 4, 23.9 at 22); where it does (more cores a session, a GPU),
            turn it on.
        workers: the fixed pool of threads for the CPU-bound work of identify, verify and
            enrollment; default: one per core.
        session_hours: how long a web-page session lasts after sign-in.
        session_idle_minutes: a web-page session unused this long ends.
        deliver_events: run an events dispatcher while serving (facedb.events), so that the
            gallery's webhooks and MQTT subscriptions get their events.
    """

    max_upload_bytes: int = 20 * 1024 * 1024
    max_photos: int = 20
    max_request_bytes: int | None = None
    auth_failures: int = 10
    auth_window_seconds: float = 60.0
    max_tracked_clients: int = 10_000
    batch_window_ms: float | None = None
    workers: int | None = None
    session_hours: float = 8.0
    session_idle_minutes: float = 30.0
    deliver_events: bool = True

    def __post_init__(self) -> None:
        if not 0 < self.session_hours <= 24 * 30:
            raise ConfigError(f"session_hours must be above 0 and at most 720, got {self.session_hours}")
        if not 0 < self.session_idle_minutes <= 24 * 60 * 30:
            raise ConfigError(
                f"session_idle_minutes must be above 0 and at most 43200, got {self.session_idle_minutes}"
            )
        if self.batch_window_ms is not None and not 0 <= self.batch_window_ms <= 1000:
            raise ConfigError(f"the batch window must be between 0 and 1000 ms, got {self.batch_window_ms}")
        if self.workers is not None and self.workers < 1:
            raise ConfigError(f"workers must be at least 1, got {self.workers}")

    @property
    def request_limit(self) -> int:
        """The largest request body accepted, in bytes."""
        if self.max_request_bytes is not None:
            return self.max_request_bytes
        return self.max_photos * self.max_upload_bytes + FORM_ROOM


class _LimitedRequestRoute(APIRoute):
    """A route whose multipart parser refuses more files than the service allows, while it
    parses (FastAPI's own default is 1000 files)."""

    max_files = 20

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        """The handler, with the parser's file count bounded."""
        handler = super().get_route_handler()
        max_files = self.max_files

        async def bounded(request: Request) -> Response:
            return await handler(_LimitedRequest(request.scope, request.receive, max_files))

        return bounded


class _LimitedRequest(Request):
    def __init__(self, scope: Any, receive: Any, max_files: int) -> None:
        super().__init__(scope, receive)
        self._max_files = max_files

    def form(
        self,
        *,
        max_files: int | float = 1000,
        max_fields: int | float = 1000,
        max_part_size: int = 1024 * 1024,
    ) -> Any:
        return super().form(
            max_files=min(max_files, self._max_files),
            max_fields=min(max_fields, 100),
            max_part_size=max_part_size,
        )


def _needs(api_key: APIKeyHeader, scope: str) -> Callable[..., Any]:
    """A dependency that returns the request's key if it has ``scope`` (401 or 403 if not)."""

    async def check(request: Request, _: Annotated[str | None, Depends(api_key)]) -> ApiKey:
        # The guard has authenticated the key before the body was read.
        key: ApiKey | None = getattr(request.state, "api_key", None)
        if key is None:
            raise Unauthorized(MISSING_KEY)
        if not key.allows(scope):
            raise Forbidden(f"this API key has scope {key.scope!r}; this call needs {scope!r}")
        return key

    return check


@dataclass
class Service:
    """One application's shared parts, handed to each router.

    Attributes:
        db: the open gallery.
        settings: the service's limits.
        api_key: the ``X-API-Key`` security scheme (optional: the scope checks refuse).
        read, enroll, admin: dependencies that need a key of that scope (and return it).
        route_class: the class of every route, whose multipart parser takes at most
            ``max_photos`` files (and at least 2, for /verify).
    """

    db: FaceDB
    settings: ServiceSettings
    api_key: APIKeyHeader = field(
        default_factory=lambda: APIKeyHeader(
            name="X-API-Key", auto_error=False, description="an API key from `facedb keys create`"
        )
    )
    write_lock: threading.Lock = field(default_factory=threading.Lock)
    _pool: ThreadPoolExecutor | None = field(default=None, init=False)
    _recognition: Recognition | None = field(default=None, init=False)
    _recognition_lock: threading.Lock = field(default_factory=threading.Lock, init=False)
    read: DependsParam = field(init=False)
    enroll: DependsParam = field(init=False)
    admin: DependsParam = field(init=False)
    route_class: type[APIRoute] = field(init=False)

    def __post_init__(self) -> None:
        self.route_class = type(
            "LimitedRequestRoute", (_LimitedRequestRoute,), {"max_files": max(self.settings.max_photos, 2)}
        )
        self.read = Depends(_needs(self.api_key, "read"))
        self.enroll = Depends(_needs(self.api_key, "enroll"))
        self.admin = Depends(_needs(self.api_key, "admin"))

    @property
    def pool(self) -> ThreadPoolExecutor:
        """The fixed pool for CPU-bound work (``workers`` threads), made on first use."""
        with self._recognition_lock:
            if self._pool is None:
                workers = self.settings.workers or os.cpu_count() or 1
                self._pool = ThreadPoolExecutor(workers, thread_name_prefix="facedb-work")
            return self._pool

    @property
    def recognition(self) -> Recognition | None:
        """The recognizer batches, made on first use; None when batching is off (the
        default: ``batch_window_ms=None``)."""
        window = self.settings.batch_window_ms
        if window is None:
            return None
        pool = self.pool
        with self._recognition_lock:
            if self._recognition is None:
                self._recognition = Recognition(self.db.engine, pool=pool, window_ms=window)
            return self._recognition

    async def work(self, func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """``func(*args, **kwargs)``, CPU-bound, on the fixed pool."""
        call = functools.partial(func, *args, **kwargs)
        return await asyncio.get_running_loop().run_in_executor(self.pool, call)

    def close(self) -> None:
        """Stops the batch thread and the pool (the app's shutdown)."""
        with self._recognition_lock:
            if self._recognition is not None:
                self._recognition.close()
                self._recognition = None
            if self._pool is not None:
                self._pool.shutdown(wait=True, cancel_futures=True)
                self._pool = None

    def locked(self, func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Calls ``func`` holding the write lock: one write at a time, reads go on."""
        with self.write_lock:
            return func(*args, **kwargs)

    async def photo_bytes(self, upload: UploadFile) -> bytes:
        """Reads an upload, refusing it as soon as it passes the byte limit."""
        limit = self.settings.max_upload_bytes
        chunks, size = [], 0
        while chunk := await upload.read(1 << 20):
            size += len(chunk)
            if size > limit:
                raise ImageTooLarge(f"upload {upload.filename or ''!r} is over the limit of {limit} bytes")
            chunks.append(chunk)
        return b"".join(chunks)

    async def photos_of(self, uploads: Sequence[UploadFile]) -> list[bytes]:
        """Reads the uploads of a multipart ``photos`` field, within the photo count limit."""
        if not uploads:
            raise ConfigError("no photos uploaded (multipart field 'photos')")
        if len(uploads) > self.settings.max_photos:
            raise ConfigError(f"at most {self.settings.max_photos} photos per request, got {len(uploads)}")
        return [await self.photo_bytes(u) for u in uploads]

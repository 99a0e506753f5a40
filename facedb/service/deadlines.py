"""Slow clients cannot hold the server: a request's headers must arrive within a deadline and
its body at a minimum rate, or the connection is closed.

uvicorn has no deadline for a request's headers: 1,050 sockets that sent part of their headers
made legitimate ``/health`` calls time out, and one byte every 10 s kept a connection open for
minutes (slow headers, or a slow body to the anonymous sign-in form). :func:`protocol` makes
uvicorn's h11 protocol with both limits; ``facedb serve`` runs it, and raises its open-file
limit to what the system allows (:func:`raise_open_files`).
"""

from __future__ import annotations

import asyncio
import logging
import resource
from typing import Any

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

__all__ = ["BODY_WINDOW", "HEADERS_SECONDS", "MIN_BODY_BYTES", "protocol", "raise_open_files"]

log = logging.getLogger("facedb.service")

#: Seconds a request's headers may take to arrive, from its first byte (or the connection).
HEADERS_SECONDS = 10.0
#: A body must bring at least MIN_BODY_BYTES in every window of this many seconds.
BODY_WINDOW = 10.0
#: See BODY_WINDOW: 1 KiB per 10 s, far below any real client's rate.
MIN_BODY_BYTES = 1024


def protocol(
    headers_seconds: float = HEADERS_SECONDS,
    body_window: float = BODY_WINDOW,
    min_body_bytes: int = MIN_BODY_BYTES,
) -> type[H11Protocol]:
    """uvicorn's h11 protocol with a headers deadline and a minimum body rate."""

    class DeadlineProtocol(H11Protocol):
        """H11Protocol that closes a connection whose headers or body come too slowly."""

        _timer: asyncio.TimerHandle | None = None
        _body_bytes = 0

        def connection_made(self, transport: Any) -> None:
            super().connection_made(transport)
            self._arm_headers()

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            super().connection_lost(exc)

        def data_received(self, data: bytes) -> None:
            waiting = self.conn.their_state
            super().data_received(data)
            state = self.conn.their_state
            if state is h11.SEND_BODY:
                self._body_bytes += len(data) if waiting is h11.SEND_BODY else 0
                if waiting is not h11.SEND_BODY:  # the headers are in: the body's clock starts
                    self._arm_body()
            elif state is h11.IDLE and self._timer is None:
                self._arm_headers()  # a next request has begun on a kept-alive connection
            elif state is not h11.IDLE:
                self._disarm()

        def on_response_complete(self) -> None:
            self._disarm()
            super().on_response_complete()

        def _disarm(self) -> None:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None

        def _arm_headers(self) -> None:
            self._disarm()
            self._timer = self.loop.call_later(headers_seconds, self._too_slow, "headers")

        def _arm_body(self) -> None:
            self._disarm()
            self._body_bytes = 0
            self._timer = self.loop.call_later(body_window, self._check_body)

        def _check_body(self) -> None:
            self._timer = None
            if self.conn.their_state is not h11.SEND_BODY:
                return
            if self._body_bytes < min_body_bytes:
                self._too_slow("body")
                return
            self._arm_body()

        def _too_slow(self, what: str) -> None:
            self._timer = None
            if not self.transport.is_closing():
                log.info("closed a connection from %s: its %s came too slowly", self.client, what)
                self.transport.close()

    return DeadlineProtocol


def raise_open_files() -> int:
    """Raises this process's soft limit of open files to the hard one; returns the limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or hard > soft:
        target = hard if hard != resource.RLIM_INFINITY else max(soft, 1 << 20)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError) as e:
            log.warning("could not raise the open-file limit from %d: %s", soft, e)
    return soft

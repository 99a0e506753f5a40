"""Slow and many clients cannot hold the server: a request's headers must arrive within a
deadline and its body at a minimum rate, or the connection is closed; one address holds a
bounded number of connections; running out of file descriptors costs a log line, not a
traceback per accept.

uvicorn has no deadline for a request's headers: 1,050 sockets that sent part of their headers
made legitimate ``/health`` calls time out, asyncio logged "socket.accept() out of system
resource" with a traceback (158 MB of log in 13 s), and one byte every 10 s kept a connection
open for minutes (slow headers, or a slow body to the anonymous sign-in form).
:func:`protocol` makes uvicorn's h11 protocol with these limits; ``facedb serve`` runs it, and
raises its open-file limit to what the system allows (:func:`raise_open_files`).
"""

from __future__ import annotations

import asyncio
import logging
import resource
import time
from collections import Counter
from typing import Any

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

__all__ = [
    "BODY_WINDOW",
    "HEADERS_SECONDS",
    "MAX_PER_ADDRESS",
    "MIN_BODY_BYTES",
    "protocol",
    "raise_open_files",
]

log = logging.getLogger("facedb.service")

#: Seconds a request's headers may take to arrive, from its first byte (or the connection).
HEADERS_SECONDS = 10.0
#: A body must bring at least MIN_BODY_BYTES in every window of this many seconds.
BODY_WINDOW = 10.0
#: See BODY_WINDOW: 1 KiB per 10 s, far below any real client's rate.
MIN_BODY_BYTES = 1024
#: Connections one client address may hold open at once (a browser opens 6; an office behind
#: one NAT address a few dozen); the next ones are closed at once.
MAX_PER_ADDRESS = 256
#: At most one log line per this many seconds about refused connections or a full
#: descriptor table: a flood must not become a flood of log.
_LOG_EVERY = 10.0
_OUT_OF_RESOURCE = "socket.accept() out of system resource"


class _Quiet:
    """Says something at most once per ``_LOG_EVERY`` seconds, with how often it happened."""

    def __init__(self) -> None:
        self.last = -_LOG_EVERY
        self.skipped = 0

    def say(self, message: str, *args: object) -> None:
        now = time.monotonic()
        if now - self.last < _LOG_EVERY:
            self.skipped += 1
            return
        more = f" (and {self.skipped} more like it)" if self.skipped else ""
        log.warning(message + more, *args)
        self.last, self.skipped = now, 0


def _quiet_accept_errors(loop: asyncio.AbstractEventLoop) -> None:
    """Running out of descriptors (EMFILE) makes asyncio's accept loop call the loop's
    exception handler on every retry, whose default logs a traceback each time; asyncio then
    pauses accepting for a second by itself. Here that is one line, at most every 10 s."""
    quiet = _Quiet()
    default = loop.get_exception_handler()

    def handler(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        if context.get("message") == _OUT_OF_RESOURCE:
            quiet.say("cannot accept connections: %s (open-file limit reached)", context.get("exception"))
            return
        if default is not None:
            default(loop, context)
        else:
            loop.default_exception_handler(context)

    loop.set_exception_handler(handler)


def protocol(
    headers_seconds: float = HEADERS_SECONDS,
    body_window: float = BODY_WINDOW,
    min_body_bytes: int = MIN_BODY_BYTES,
    max_per_address: int = MAX_PER_ADDRESS,
    unbounded: frozenset[str] = frozenset(),
) -> type[H11Protocol]:
    """uvicorn's h11 protocol with a headers deadline, a minimum body rate and at most
    ``max_per_address`` open connections per client address (but those in ``unbounded``:
    the reverse proxies the operator trusts, through which every client comes)."""
    open_by_address: Counter[str] = Counter()
    refusals = _Quiet()
    quieted: list[asyncio.AbstractEventLoop] = []

    class DeadlineProtocol(H11Protocol):
        """H11Protocol that closes a connection whose headers or body come too slowly, or
        whose address already holds its share of connections."""

        _timer: asyncio.TimerHandle | None = None
        _body_bytes = 0
        _address: str | None = None

        def connection_made(self, transport: Any) -> None:
            if self.loop not in quieted:
                _quiet_accept_errors(self.loop)
                quieted.append(self.loop)
            super().connection_made(transport)
            peer = transport.get_extra_info("peername")
            address = str(peer[0]) if isinstance(peer, tuple) and peer else None
            if address is not None and address not in unbounded:
                if open_by_address[address] >= max_per_address:
                    refusals.say("closed a connection from %s: it already holds %d", address, max_per_address)
                    transport.close()
                    return
                open_by_address[address] += 1
                self._address = address
            self._arm_headers()

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            if self._address is not None:
                open_by_address[self._address] -= 1
                if open_by_address[self._address] <= 0:
                    del open_by_address[self._address]
                self._address = None
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

"""The service's door (facedb.http_guard) on its own: the failed-key limiter, with a clock
the test moves."""

from __future__ import annotations

from pathlib import Path

import pytest

from facedb.http_guard import FailedAuthLimiter


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_limiter_refuses_after_the_limit_until_the_window_passes() -> None:
    clock = Clock()
    limiter = FailedAuthLimiter(limit=3, window=60.0, clock=clock)
    for _ in range(2):
        limiter.failed("10.0.0.1")
    assert limiter.retry_after("10.0.0.1") is None
    limiter.failed("10.0.0.1")
    assert limiter.retry_after("10.0.0.1") == 60.0
    assert limiter.retry_after("10.0.0.2") is None, "another address is not affected"
    clock.now += 59.5
    assert limiter.retry_after("10.0.0.1") == 0.5
    clock.now += 0.5
    assert limiter.retry_after("10.0.0.1") is None
    assert len(limiter) == 0, "an address whose failures left the window is forgotten"


def test_limiter_memory_is_bounded() -> None:
    clock = Clock()
    limiter = FailedAuthLimiter(limit=2, window=60.0, max_clients=100, clock=clock)
    for i in range(10_000):
        limiter.failed(f"10.0.{i // 256}.{i % 256}")
        limiter.failed(f"10.0.{i // 256}.{i % 256}")
    assert len(limiter) == 100
    assert limiter.retry_after("10.0.39.15") is not None, "the most recent addresses are kept"
    assert limiter.retry_after("10.0.0.0") is None, "the oldest are forgotten first"


def test_answers_are_not_cached(tmp_path: Path) -> None:
    """JSON answers carried names without Cache-Control, and group thumbnails stayed in a
    browser's cache for an hour after their group was dismissed."""
    from fastapi.testclient import TestClient

    import facedb
    from facedb.keys import KeyStore
    from facedb.service import create_app

    with facedb.FaceDB(tmp_path / "g") as db:
        secret = KeyStore(db.store).create("read")[1]
        with TestClient(create_app(db)) as client:
            for path in ("/people", "/groups", "/health", "/nowhere"):
                answer = client.get(path, headers={"X-API-Key": secret})
                assert answer.headers["cache-control"] == "no-store", path
            assert client.get("/people").headers["cache-control"] == "no-store"  # a 401 too


def test_log_lines_escape_what_the_client_sent() -> None:
    import logging

    from facedb.logs import EscapingFormatter

    formatter = EscapingFormatter("%(levelname)s %(message)s")
    record = logging.LogRecord(
        "facedb.access", logging.INFO, "x", 1, '"GET %s" 404', ("/web/x\nforged \u202e",), None
    )
    assert formatter.format(record) == 'INFO "GET /web/x\\x0aforged \\u202e" 404'
    try:
        raise ValueError("boom")
    except ValueError:
        import sys

        record.exc_info = sys.exc_info()
    lines = formatter.format(record).splitlines()
    assert len(lines) > 2 and lines[-1] == "ValueError: boom"  # a traceback keeps its lines


def test_a_forged_path_writes_no_log_line_of_its_own(tmp_path: Path) -> None:
    """`GET /web/x%0a<forged line>` wrote a forged access-log line."""
    import httpx

    from .helpers import Server, cli

    db = tmp_path / "gallery"
    cli(db, "keys", "create", "--scope", "read")
    server = Server(db, "--log-level", "info")
    try:
        httpx.get(server.url + "/web/x%0aFORGED 127.0.0.1 key=admin", timeout=30)
    finally:
        server.stop()
    log = server.log()
    assert "FORGED" in log and not any(line.startswith("FORGED") for line in log.splitlines()), log


@pytest.mark.timeout(120)
def test_slow_clients_are_cut_off_and_others_still_answered(tmp_path: Path) -> None:
    """Sockets that send part of their headers, or a body a byte at a time, held connections
    for minutes (uvicorn has no headers deadline). With a 2 s deadline (`--header-timeout`):
    300 of them open, /health is still answered within 2 s, and each is closed within the
    deadline and a margin. The open-file limit of this test's server is what it raises its
    own to (its hard limit)."""
    import resource
    import socket
    import time

    import httpx

    from .helpers import Server, cli

    db = tmp_path / "gallery"
    key = cli(db, "keys", "create", "--scope", "read")
    server = Server(db, "--header-timeout", "2")
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    count = min(300, soft - 64)  # this process's own sockets
    slow: list[socket.socket] = []
    try:
        for _ in range(count):
            s = socket.create_connection(("127.0.0.1", server.port), timeout=5)
            s.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nX-Slow: ")  # never finished
            slow.append(s)
        body = socket.create_connection(("127.0.0.1", server.port), timeout=5)
        body.sendall(b"POST /web/sign-in HTTP/1.1\r\nHost: x\r\nContent-Length: 500\r\n\r\nk")
        slow.append(body)
        # A body the application waits for (a keyed upload), one byte only.
        upload = socket.create_connection(("127.0.0.1", server.port), timeout=5)
        upload.sendall(
            b"POST /identify HTTP/1.1\r\nHost: x\r\nX-API-Key: " + key.encode() + b"\r\n"
            b"Content-Type: multipart/form-data; boundary=b\r\nContent-Length: 100000\r\n\r\n-"
        )
        slow.append(upload)
        started = time.monotonic()
        assert httpx.get(server.url + "/health", timeout=5).status_code == 200
        assert time.monotonic() - started < 2.0
        deadline = time.monotonic() + 2 + 3  # the deadline, and a margin for a busy machine
        for s in slow:
            s.settimeout(max(0.1, deadline - time.monotonic()))
            try:
                while s.recv(65536):  # an early refusal may come first; then the close
                    pass
            except ConnectionResetError:
                pass  # closed too
            except TimeoutError:
                raise AssertionError(
                    f"a slow connection still open after the deadline (hard {hard})"
                ) from None
        assert time.monotonic() < deadline + 1
    finally:
        for s in slow:
            s.close()
        server.stop()

"""Telling pymilvus's "not now" (server unreachable, restarting, collection not loaded)
from "never" (a wrong request), and its messages without credentials."""

from __future__ import annotations

import logging

__all__ = ["failure_reason", "is_unavailable", "quiet_driver_logs"]


class _AtDebug(logging.Handler):
    """Hands the driver's records on to ``facedb.milvus.driver`` as DEBUG records (their
    tracebacks kept, for a log at debug level)."""

    def emit(self, record: logging.LogRecord) -> None:
        """Re-emits ``record`` at DEBUG."""
        record.levelno, record.levelname = logging.DEBUG, "DEBUG"
        logging.getLogger("facedb.milvus.driver").handle(record)


def quiet_driver_logs() -> None:
    """pymilvus logs its own errors, whole tracebacks, before raising them: during a Milvus
    restart the CLI printed one before facedb's one-line error. facedb reports every failure
    itself (:func:`failure_reason`), so the driver's records (its modules' loggers are below
    ``pymilvus``) go to the log at DEBUG only: seen with ``--log-level debug``, never on a
    command's output or in an HTTP body."""
    driver = logging.getLogger("pymilvus")
    # pymilvus puts a handler of its own on stderr at import: it goes, ours replaces it.
    for handler in list(driver.handlers):
        if not isinstance(handler, _AtDebug):
            driver.removeHandler(handler)
    if not driver.handlers:
        driver.addHandler(_AtDebug())
    driver.propagate = False
    driver.setLevel(logging.NOTSET)


# Words of pymilvus and server messages that mean "not now" rather than "never".
_UNAVAILABLE_WORDS = (
    "connect",
    "unavailable",
    "not loaded",
    "not ready",
    "loading",
    "deadline",
    "timeout",
    "timed out",
    "retry",
    "not healthy",
    "stopping",
    "channel closed",
    "service unavailable",
    "rate limit",
)


def is_unavailable(e: Exception) -> bool:
    """Whether an error of pymilvus means the server cannot answer now (unreachable,
    restarting, timing out, the collection not loaded), not that the request was wrong."""
    import grpc  # type: ignore[import-untyped]
    from pymilvus.exceptions import ConnectError, MilvusUnavailableException, ParamError

    if isinstance(e, ParamError):
        return False
    if isinstance(e, grpc.RpcError | ConnectError | MilvusUnavailableException | TimeoutError | OSError):
        return True
    text = f"{getattr(e, 'message', '')} {e}".lower()
    return any(word in text for word in _UNAVAILABLE_WORDS)


def failure_reason(e: Exception) -> str:
    """pymilvus's message without the credentials a URI might carry."""
    code, details = getattr(e, "code", None), getattr(e, "details", None)
    if callable(code) and callable(details):  # a gRPC error: its str() is a multi-line repr
        try:
            return f"{getattr(code(), 'name', code())}: {details()}"[:500]
        except Exception:
            pass
    text = str(getattr(e, "message", "") or e)
    return text.splitlines()[0][:500] if text else type(e).__name__

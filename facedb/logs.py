"""Log lines a reader can trust: a request's path, a header or a name (all the client's) cannot
start a line of its own, nor hide text behind a bidi override.

``GET /web/x%0a<forged line>`` wrote a forged access-log line; every control character, and
the bidi embeddings, overrides and isolates, are written as ``\\xNN`` / ``\\uNNNN`` escapes in
every message :class:`EscapingFormatter` formats (``facedb serve`` installs it). A traceback,
which facedb writes itself, keeps its lines.
"""

from __future__ import annotations

import logging
import re

__all__ = ["EscapingFormatter", "escape_controls"]

_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def _escaped(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def escape_controls(text: str) -> str:
    """``text`` with control characters and bidi controls written as escapes."""
    return _UNSAFE.sub(_escaped, text)


class EscapingFormatter(logging.Formatter):
    """A Formatter whose messages (not their tracebacks) have control characters escaped."""

    def formatMessage(self, record: logging.LogRecord) -> str:  # noqa: N802 (logging's name)
        """The record's line, its message escaped."""
        record.message = escape_controls(record.message)
        return super().formatMessage(record)

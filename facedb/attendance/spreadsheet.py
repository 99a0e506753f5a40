"""Attendance as CSV, the one writer of it for every door (``facedb attendance --csv`` and
the web page's download): a cell a spreadsheet would take for a formula is written as text."""

from __future__ import annotations

import csv
from collections.abc import Iterable
from typing import TextIO

from facedb.attendance.reports import AttendanceRow

__all__ = ["CSV_HEADER", "csv_cell", "write_attendance_csv"]

#: The columns, in order.
CSV_HEADER = ["day", "person_id", "name", "stranger_id", "first_seen", "last_seen", "visits"]

# What starts a formula in Excel, LibreOffice or Google Sheets (OWASP's list): such a cell is
# prefixed with a quote, which the spreadsheet shows as text.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value: object) -> str:
    """A value as a CSV cell that no spreadsheet runs: ``=cmd|' /C calc'!A0`` is written
    ``'=cmd|' /C calc'!A0``."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(_FORMULA_START) else text


def write_attendance_csv(rows: Iterable[AttendanceRow], out: TextIO) -> None:
    """Writes the header and one line per row (times in the machine's local zone)."""
    writer = csv.writer(out)
    writer.writerow(CSV_HEADER)
    for r in rows:
        writer.writerow(
            [
                r.day.isoformat(),
                "" if r.person_id is None else r.person_id,
                csv_cell(r.name),
                "" if r.stranger_id is None else r.stranger_id,
                r.first_seen.astimezone().isoformat(timespec="seconds"),
                r.last_seen.astimezone().isoformat(timespec="seconds"),
                r.visits,
            ]
        )

"""The ``facedb`` commands of attendance: watch (log who passes in front of a camera or in a
video), attendance (who was seen when) and forget-strangers."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import datetime
from typing import Any

from facedb import serialize
from facedb.cli.common import Commands, _open_db, _print_table
from facedb.errors import ConfigError

commands = Commands()


def _watch_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("source")
    p.add_argument("--rate", type=float, default=5.0, help="frames sampled per second (default 5)")
    p.add_argument("--votes", type=int, default=3, help="samples a face must be recognised in (default 3)")
    p.add_argument("--window", type=int, default=5, help="of this many recent samples (default 5)")
    p.add_argument("--cooldown", type=float, default=600.0, help="seconds before a new visit (default 600)")
    p.add_argument("--duration", type=float, help="stop a live source after this many seconds")
    p.add_argument(
        "--start",
        help="when a video file's first frame was recorded, ISO date-time (default: now); "
        "its visits are timed from it",
    )
    p.add_argument(
        "--events-drain",
        type=float,
        default=10.0,
        metavar="SECONDS",
        help="at the end, wait at most this long for the watch's events to be delivered (default 10)",
    )
    p.add_argument("--json", action="store_true")


@commands.add(
    "watch", "log who passes in front of a video file, camera index or stream URL", _watch_arguments
)
def cmd_watch(args: argparse.Namespace) -> int:
    """``facedb watch SOURCE``."""
    from facedb.attendance import Watcher, WatchSettings, watch
    from facedb.events import default_instance

    settings = WatchSettings(rate=args.rate, votes=args.votes, window=args.window, cooldown=args.cooldown)
    start = None
    if args.start is not None:
        start = _when(args.start)
        if not isinstance(start, datetime):  # a bare date: its local midnight
            start = datetime(start.year, start.month, start.day)
        start = start.astimezone()  # a time without a zone is local
    with _open_db(args) as db:
        watcher = Watcher(db, args.source, settings)
        # Visits become events (visit.started) delivered meanwhile, off the watch's thread;
        # at the end, what is due is delivered (at most --events-drain seconds), and whatever
        # is left waits in the outbox for the next dispatcher.
        dispatcher = (
            None if db.read_only else db.events.dispatcher(instance=default_instance("watch")).start()
        )
        try:
            logged = watch(db, args.source, settings, start=start, duration=args.duration, watcher=watcher)
        finally:
            if dispatcher is not None:
                if not dispatcher.stop(drain=args.events_drain):
                    print(
                        "facedb: warning: some events are still queued; `facedb events run` delivers them",
                        file=sys.stderr,
                    )
                db.events.forget(dispatcher)
    summary = (
        f"{len(logged)} visit(s) logged from {args.source}; {watcher.samples} frame(s) processed, "
        f"{watcher.skipped} skipped (a live source's frames that came while one was processed)"
    )
    if args.json:
        # The visits as before; the watch's counts go to stderr, so the JSON stays a list.
        print(json.dumps([serialize.sighting_json(v) for v in logged], indent=2))
        print(summary, file=sys.stderr)
        return 0
    for v in logged:
        who = (
            f"{v.person_name} (id {v.person_id})" if v.person_id is not None else f"stranger #{v.stranger_id}"
        )
        print(
            f"{v.first_seen.astimezone().isoformat(timespec='seconds')}  {who}  similarity {v.similarity:.3f}"
        )
    print(summary, file=sys.stderr)
    return 0


def _when(text: str | None) -> Any:
    from datetime import date, datetime

    if text is None:
        return None
    try:
        return date.fromisoformat(text) if len(text) == 10 else datetime.fromisoformat(text)
    except ValueError:
        raise ConfigError(
            f"not an ISO date or time: {text!r} (e.g. 2026-11-25 or 2026-11-25T08:00)"
        ) from None


def _attendance_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--since", help="ISO date or time (default: today)")
    p.add_argument("--until", help="ISO date or time (default: the end of the since day)")
    p.add_argument("--csv", action="store_true", help="print CSV")
    p.add_argument("--json", action="store_true", help="print JSON")


@commands.add(
    "attendance", "who was seen when: first and last sighting per person per day", _attendance_arguments
)
def cmd_attendance(args: argparse.Namespace) -> int:
    """``facedb attendance``: a table, CSV (the web page's writer, formulas escaped) or JSON."""
    from facedb.attendance import attendance
    from facedb.attendance.spreadsheet import write_attendance_csv

    with _open_db(args) as db:
        rows = attendance(db, _when(args.since), _when(args.until))
    if args.json:
        print(json.dumps([serialize.attendance_json(r) for r in rows], indent=2))
        return 0
    if args.csv:
        write_attendance_csv(rows, sys.stdout)
        return 0
    header = ["date", "person_id", "name", "first_seen", "last_seen", "visits"]
    table = [
        [
            r.day.isoformat(),
            "" if r.person_id is None else str(r.person_id),
            r.name,
            r.first_seen.astimezone().isoformat(timespec="seconds"),
            r.last_seen.astimezone().isoformat(timespec="seconds"),
            str(r.visits),
        ]
        for r in rows
    ]
    _print_table([[h.upper() for h in header], *table], sys.stdout)
    return 0


@commands.add("forget-strangers", "erase the templates and sightings of unknown faces")
def cmd_forget_strangers(args: argparse.Namespace) -> int:
    """``facedb forget-strangers``."""
    from facedb.attendance import forget_strangers

    with _open_db(args) as db:
        n = forget_strangers(db)
    print(f"forgot {n} stranger(s) and their sightings")
    return 0

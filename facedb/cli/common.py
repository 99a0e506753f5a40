"""What the ``facedb`` commands share: opening the gallery, tables, the progress bar, the
gallery options and the help of the arguments several commands take.

Each command module declares its commands with :class:`Commands`; ``facedb.cli`` builds the
parser from them.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TextIO

from facedb.errors import ConfigError

#: A command's body: it runs the command and returns the exit status.
Run = Callable[[argparse.Namespace], int]


def _no_arguments(parser: argparse.ArgumentParser) -> None:
    """The arguments of a command that takes only the gallery options: none of its own."""


@dataclass(frozen=True)
class Command:
    """One ``facedb`` command: its name, its one-line help (also its description), its body
    and the function that adds its own arguments to its parser."""

    name: str
    help: str
    run: Run
    arguments: Callable[[argparse.ArgumentParser], None] = _no_arguments


class Commands:
    """The commands of one module, declared on their bodies with :meth:`add`, so that a
    command's name, help and arguments sit beside what it does. ``facedb.cli`` builds the
    parser from them."""

    def __init__(self) -> None:
        self.declared: list[Command] = []

    def add(
        self,
        name: str,
        help_text: str,
        arguments: Callable[[argparse.ArgumentParser], None] = _no_arguments,
    ) -> Callable[[Run], Run]:
        """Declares the decorated function the body of the command ``name``."""

        def declare(run: Run) -> Run:
            self.declared.append(Command(name, help_text, run, arguments))
            return run

        return declare


def _open_db(args: argparse.Namespace, *, create: bool = False) -> Any:
    """The gallery of --db. Only the commands that enroll create one: a mistyped --db for
    any other command is an error, not a new empty gallery that calls everybody unknown."""
    from facedb.gallery import FaceDB

    where = args.db or os.environ.get("FACEDB_DB")
    if not where:
        raise ConfigError("no gallery given: pass --db FOLDER_OR_URL or set FACEDB_DB")
    vectors = args.vectors or os.environ.get("FACEDB_VECTORS") or None
    options: dict[str, Any] = {"vectors": vectors}
    if args.threshold is not None:
        options["threshold"] = args.threshold
    if getattr(args, "read_only", False):
        options["read_only"] = True
    pack = getattr(args, "pack", None) or os.environ.get("FACEDB_PACK") or None
    if pack is not None:
        options["pack"] = pack
    return FaceDB(where, create=create, key=_key(args), **options)


def _key(args: argparse.Namespace, option: str = "key_file") -> str | None:
    """The gallery key of ``--key-file`` (None: the environment's, if any; see
    facedb.encryption)."""
    from facedb.encryption import read_key_file

    path = getattr(args, option, None)
    return None if path is None else read_key_file(path)


def suggested(command: str, args: argparse.Namespace) -> str:
    """A ``facedb ...`` command suggested to the user (an audit's fix), as they can run it:
    with the gallery options they gave on this command line (``--db``, ``--vectors``; one
    taken from the environment is there for the next command too)."""
    given = [
        option
        for flag, value in (("--db", args.db), ("--vectors", args.vectors))
        if value
        for option in (flag, value)
    ]
    program, _, rest = command.partition(" ")
    return f"{program} {shlex.join(given)} {rest}" if given and program == "facedb" else command


def _local(when: datetime) -> str:
    """A stored time (UTC) as the user's local time, to the minute, with its offset."""
    return when.astimezone().strftime("%Y-%m-%d %H:%M %z")


def _print_table(rows: list[list[str]], out: TextIO) -> None:
    if not rows:
        return
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for row in rows:
        out.write("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() + "\n")


class _Progress:
    """A one-line progress bar on stderr when it is a terminal; nothing otherwise."""

    def __init__(self, total: int, label: str) -> None:
        self.total, self.label, self.done = total, label, 0
        self.live = sys.stderr.isatty()

    def step(self, what: str) -> None:
        self.done += 1
        if self.live:
            filled = int(30 * self.done / max(self.total, 1))
            sys.stderr.write(
                f"\r{self.label} [{'#' * filled}{'.' * (30 - filled)}] "
                f"{self.done}/{self.total} {what[:30]:<30}"
            )
            sys.stderr.flush()

    def close(self) -> None:
        if self.live:
            sys.stderr.write("\n")


def _gallery_options(parser: argparse.ArgumentParser, default: Any) -> None:
    """--db, --vectors, --threshold and --read-only, on the command line before the command
    (``default`` None) or after it (``default`` SUPPRESS: given there, they win)."""
    parser.add_argument("--db", default=default, help="gallery folder or SQL URL (default: $FACEDB_DB)")
    parser.add_argument(
        "--vectors",
        default=default,
        help="vector store, e.g. milvus://host:19530/faces (default: $FACEDB_VECTORS, else FAISS)",
    )
    parser.add_argument("--threshold", type=float, default=default, help="similarity needed to name a person")
    parser.add_argument(
        "--read-only",
        action="store_true",
        default=False if default is None else default,
        help="open the gallery without writing anything (a read-only volume, a replica, a backup)",
    )
    parser.add_argument(
        "--pack",
        default=default,
        help="the model pack: buffalo_s or sface (default: $FACEDB_PACK, else the gallery's own; "
        "buffalo_s for a new one)",
    )
    parser.add_argument(
        "--runtime",
        default=default,
        help="what runs the models: auto (default: the fastest with the same answers, measured once), "
        "onnxruntime, openvino, or detector=...,recognizer=... (default: $FACEDB_RUNTIME, else auto)",
    )
    parser.add_argument(
        "--key-file",
        default=default,
        help="a file holding the gallery's encryption key (default: $FACEDB_KEY_FILE, else $FACEDB_KEY; "
        "`facedb new-key` makes one)",
    )


#: Help for the arguments several commands share, by destination; (command, destination) for
#: one command's own meaning. Every argument has help (tests/test_cli_options.py checks).
_HELP = {
    "json": "print JSON (docs/http.md, JSON shapes)",
    "images": "photos: paths, several allowed",
    "folder": "a folder with one sub-folder of photos per person (named after them)",
    "person": "a person: an id or an exact name",
    "face_id": "a face's id (`facedb faces PERSON` lists them)",
    "sighting": "a visit's id (`facedb attendance`, GET /sightings)",
    "a": "the first photo",
    "b": "the second photo",
    "host": "address to listen on (default 127.0.0.1: this machine only)",
    "port": "port to listen on (default 8000)",
    "log_level": "what the server logs (default warning; info adds one line per request)",
    "action": "create a key, list the keys, or revoke one",
    "scope": "what the key may do: read < enroll < admin (default read)",
    "source": "a video file, a camera index (0, 1, ...) or a stream URL (rtsp://...)",
    ("enroll", "name"): "the person's name (a new person if nobody has it)",
    ("rename", "name"): "the new name",
}


def _fill_help(parser: argparse.ArgumentParser, command: str = "") -> None:
    """Gives every argument without help the one of :data:`_HELP`."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                _fill_help(sub, name)
        elif not action.help:
            action.help = _HELP.get((command, action.dest)) or _HELP.get(action.dest)

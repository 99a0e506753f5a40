"""The ``facedb`` command: a thin layer over :class:`facedb.FaceDB`.

Every command maps to one library call; ``--json`` prints the library's answer through
facedb.serialize, the shapes the HTTP service answers with (docs/http.md, "JSON shapes").
Errors are one line on stderr, ``facedb: error: MESSAGE``, and the exit status of the error's
class (docs/engine.md, "Errors").

Each command's arguments and body sit together in a module by job (people, recognition,
feedback, maintenance, serve, attendance, groups, events); what they share is in ``common``. This
module builds the parser from them and runs the command.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from facedb import __version__
from facedb.cli import attendance, events, feedback, groups, maintenance, people, recognition, serve
from facedb.cli.common import _fill_help, _gallery_options
from facedb.errors import ConfigError, EnrollmentRefused, FaceDBError

__all__ = ["main"]

#: The modules that declare commands.
_MODULES = (people, recognition, feedback, maintenance, serve, attendance, groups, events)

#: The commands in the order ``facedb --help`` lists them: roughly a newcomer's way through
#: (enroll, recognise, correct, look after, serve, watch, group), which cuts across modules.
_ORDER = (
    "enroll",
    "import",
    "identify",
    "verify",
    "people",
    "rename",
    "remove",
    "faces",
    "remove-face",
    "reject",
    "confirm",
    "audit",
    "check",
    "rebuild-index",
    "calibrate",
    "stats",
    "serve",
    "keys",
    "events",
    "watch",
    "attendance",
    "discover",
    "groups",
    "name-group",
    "dismiss-group",
    "forget-strangers",
    "copy",
    "new-key",
    "rekey",
    "reembed",
)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``facedb`` command."""
    parser = argparse.ArgumentParser(
        prog="facedb", description="A face-search database: enroll people, then identify who is in a photo."
    )
    parser.add_argument("--version", action="version", version=f"facedb {__version__}")
    _gallery_options(parser, None)
    # The same options after the command (`facedb people --db X`): there they override.
    common = argparse.ArgumentParser(add_help=False)
    _gallery_options(common, argparse.SUPPRESS)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    commands = [c for module in _MODULES for c in module.commands.declared]
    # A command missing from _ORDER, or one declared twice, would otherwise be dropped silently.
    if sorted(c.name for c in commands) != sorted(_ORDER):
        raise RuntimeError(f"facedb.cli: the commands declared are not those of _ORDER: {sorted(_ORDER)}")
    declared = {c.name: c for c in commands}
    for name in _ORDER:
        command = declared[name]
        p = sub.add_parser(name, help=command.help, description=command.help, parents=[common])
        p.set_defaults(func=command.run)
        command.arguments(p)
    _fill_help(parser)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Runs the command line; returns the exit status."""
    args = build_parser().parse_args(argv)
    try:
        if args.runtime:
            from facedb.engine.shared import use_runtime

            use_runtime(args.runtime)
        status: int = args.func(args)
        return status
    except FaceDBError as e:
        message = (
            e.message_for("--force", "--largest-face") if isinstance(e, EnrollmentRefused) else e.message
        )
        print(f"facedb: error: {message}", file=sys.stderr)
        return e.exit_code
    except json.JSONDecodeError as e:
        print(f"facedb: error: invalid JSON: {e}", file=sys.stderr)
        return ConfigError.exit_code
    except KeyboardInterrupt:
        print("facedb: error: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
    except Exception as e:
        print(f"facedb: error: unexpected {type(e).__name__}: {e}", file=sys.stderr)
        return FaceDBError.exit_code  # the family's base: anything unexpected

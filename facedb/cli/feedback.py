"""The ``facedb`` commands that correct the gallery from what it got wrong or right: reject
("not this person"), confirm ("yes, it's them") and audit (suspect enrollments)."""

from __future__ import annotations

import argparse
import json

from facedb import serialize
from facedb.cli.common import Commands, _open_db, suggested
from facedb.errors import ConfigError
from facedb.quality import POOR_QUALITY

commands = Commands()


def _reject_arguments(p: argparse.ArgumentParser) -> None:
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument("--face", type=int, metavar="FACE_ID", help="an enrolled face that is not its person")
    what.add_argument("--sighting", type=int, metavar="SIGHTING_ID", help="a visit logged by watch")
    p.add_argument(
        "person", nargs="?", help="whom the sighting is not (default: the person it was logged as)"
    )
    p.add_argument("--json", action="store_true")


@commands.add(
    "reject",
    '"not this person": keep an enrolled face or a logged visit as a negative example',
    _reject_arguments,
)
def cmd_reject(args: argparse.Namespace) -> int:
    """``facedb reject --face FACE_ID`` or ``facedb reject --sighting SIGHTING_ID [PERSON]``."""
    if args.face is not None and args.person is not None:
        raise ConfigError("reject --face takes no person: the face is not its own person's")
    with _open_db(args) as db:
        if args.face is not None:
            rejection = db.reject_face(args.face)
            text = f"face {args.face} removed from its person and kept as a negative example"
        else:
            rejection = db.reject_sighting(args.sighting, args.person)
            text = f"sighting {args.sighting} kept as a negative example"
    if args.json:
        print(json.dumps(serialize.rejection_json(rejection, args.face, args.sighting), indent=2))
    else:
        print(f"{text} (rejection {rejection})")
    return 0


def _confirm_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--sighting", type=int, metavar="SIGHTING_ID", required=True)
    p.add_argument("person")
    p.add_argument("--force", action="store_true", help="add it even if it looks like someone else")
    p.add_argument("--json", action="store_true")


@commands.add(
    "confirm", "\"yes, it's them\": add a logged visit's face to a person (gated)", _confirm_arguments
)
def cmd_confirm(args: argparse.Namespace) -> int:
    """``facedb confirm --sighting SIGHTING_ID PERSON``."""
    with _open_db(args) as db:
        result = db.confirm_sighting(args.sighting, db.resolve(args.person), force=args.force)
    if args.json:
        print(json.dumps(serialize.enrollment_json(result), indent=2))
    else:
        p = result.person
        print(f"sighting {args.sighting} confirmed: face {result.added[0]} added to {p.name} (id {p.id})")
    return 0


def _audit_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true")
    p.add_argument(
        "--min-quality",
        type=float,
        default=POOR_QUALITY,
        help=f"report faces whose quality is below this (default {POOR_QUALITY}, the quality bar)",
    )


@commands.add("audit", "suspect enrollments: mislabels, people enrolled twice, poor faces", _audit_arguments)
def cmd_audit(args: argparse.Namespace) -> int:
    """``facedb audit``."""
    with _open_db(args) as db:
        findings = db.audit(min_quality=args.min_quality)
    if args.json:
        print(json.dumps(serialize.audit_json(findings), indent=2))
        return 0
    if not findings:
        print("no suspect enrollments")
        return 0
    for f in findings:
        print(f"{f.kind}: {f.reason}\n  fix: {suggested(f.action, args)}")
    return 0

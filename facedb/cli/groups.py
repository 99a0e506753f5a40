"""The ``facedb`` commands of unnamed faces: discover (name the enrolled faces of photos,
group the rest), groups, name-group and dismiss-group."""

from __future__ import annotations

import argparse
import json
import sys

from facedb import serialize
from facedb.cli.common import Commands, _open_db, _print_table, _Progress
from facedb.engine import about_photo

commands = Commands()


def _discover_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("paths", nargs="+", metavar="PHOTOS", help="photos, folders or glob patterns")
    p.add_argument(
        "--create",
        action="store_true",
        help="make the gallery if there is none (else a mistyped --db is an error, not an empty gallery)",
    )
    p.add_argument("--json", action="store_true")


@commands.add("discover", "find every face in photos: name the enrolled, group the rest", _discover_arguments)
def cmd_discover(args: argparse.Namespace) -> int:
    """``facedb discover PHOTOS...``."""
    from facedb.discovery import expand_photos

    total = len(expand_photos(args.paths))  # a mistyped path must not create a gallery
    # Nor a mistyped --db: a new gallery knows nobody, and would answer "0 of enrolled people".
    with _open_db(args, create=args.create) as db:
        progress = _Progress(total, "discovering")

        def step(done: int, _: int) -> None:
            while progress.done < done:
                progress.step("")

        result = db.discover(args.paths, progress=step)
        progress.close()
        if args.json:
            print(json.dumps(serialize.discovery_json(result), indent=2))
            return 0
        # What this run found, then what the groups it added to hold now (earlier faces too).
        left_out = result.faces - len(result.named) - result.grouped
        print(
            f"looked at {result.photos} photo(s) ({result.already} discovered before): "
            f"{result.faces} new face(s), {len(result.named)} of enrolled people, "
            f"{result.grouped} added to groups, {left_out} left out"
        )
        if len(result):
            print(
                f"{len(result)} group(s) got faces ({result.new_groups} new): "
                f"{sum(g.size for g in result)} face(s) in all"
            )
        for g in result:
            rep = g.representative
            where = f"e.g. {rep.photo}" if rep is not None else ""
            print(f"  group {g.id}: {g.size} face(s), {where}")
        for n in result.named:
            print(f"  {n.person.name} (id {n.person.id}) in {n.photo}")
        for photo, reason in result.skipped:
            print(f"  skipped {about_photo(photo, reason)}")
    return 0


def _groups_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true")


@commands.add(
    "groups", "the groups of unnamed faces (discover's, and a watch's strangers)", _groups_arguments
)
def cmd_groups(args: argparse.Namespace) -> int:
    """``facedb groups``."""
    with _open_db(args) as db:
        groups = db.groups()
    if args.json:
        print(json.dumps([serialize.group_json(g) for g in groups], indent=2))
        return 0
    rows = [["ID", "FACES", "ORIGIN", "LAST SEEN", "E.G."]]
    for g in groups:
        rep = g.representative
        rows.append(
            [
                str(g.id),
                str(g.size),
                g.origin,
                g.last_seen.isoformat(timespec="seconds"),
                rep.photo if rep else "",
            ]
        )
    _print_table(rows, sys.stdout)
    return 0


def _name_group_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("group", type=int, help="the group's id (facedb groups)")
    p.add_argument("name", help="the person to enroll it as (new, or the one so named)")
    p.add_argument("--force", action="store_true", help="enroll even faces that look like somebody else")
    p.add_argument("--json", action="store_true")


@commands.add(
    "name-group",
    "enroll a group's faces as a person (the enrollment gate applies)",
    _name_group_arguments,
)
def cmd_name_group(args: argparse.Namespace) -> int:
    """``facedb name-group GROUP NAME``."""
    with _open_db(args) as db:
        result = db.name_group(args.group, args.name, force=args.force)
    if args.json:
        print(json.dumps(serialize.enrollment_json(result), indent=2))
        return 0
    p = result.person
    print(
        f"named group {args.group} {p.name} (id {p.id}): "
        f"{len(result.added)} face(s) added, {p.face_count} in all"
    )
    return 0


def _dismiss_group_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("group", type=int, help="the group's id (facedb groups)")


@commands.add("dismiss-group", "erase a group of unnamed faces", _dismiss_group_arguments)
def cmd_dismiss_group(args: argparse.Namespace) -> int:
    """``facedb dismiss-group GROUP``."""
    with _open_db(args) as db:
        db.dismiss_group(args.group)
    print(f"dismissed group {args.group}: its faces and thumbnails are erased")
    return 0

"""The ``facedb`` commands that enroll people and look after them: enroll, import, people,
rename, remove, faces and remove-face."""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import TYPE_CHECKING

from facedb import serialize
from facedb.cli.common import Commands, _open_db, _print_table, _Progress
from facedb.engine import about_photo
from facedb.errors import ConfigError, EnrollmentRefused, PersonNotFound

if TYPE_CHECKING:
    from facedb.gallery import FaceDB
    from facedb.results import Enrollment

commands = Commands()


def _enroll_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("name", help="the person's name (a new person if nobody has it); with --id, their id")
    p.add_argument("images", nargs="+", metavar="IMAGE")
    p.add_argument("--metadata", help="JSON object stored with the person")
    p.add_argument("--force", action="store_true", help="enroll even photos that look like someone else")
    p.add_argument("--largest-face", action="store_true", help="take the largest face of a group photo")
    who = p.add_mutually_exclusive_group()
    who.add_argument("--id", action="store_true", help="NAME is a person's id: add the photos to that person")
    who.add_argument(
        "--namesake",
        action="store_true",
        help="create a new person even if somebody already has this name",
    )
    p.add_argument("--json", action="store_true")


@commands.add("enroll", "enroll photos of one person (created if new)", _enroll_arguments)
def cmd_enroll(args: argparse.Namespace) -> int:
    """``facedb enroll NAME IMAGE...``: adds to the one person of this name or creates them;
    ``--id`` adds to a person by id, ``--namesake`` creates a second person of a name."""
    metadata = json.loads(args.metadata) if args.metadata else None
    if metadata is not None and not isinstance(metadata, dict):
        raise ConfigError("--metadata must be a JSON object")
    options = {"force": args.force, "largest_face": args.largest_face}
    if args.id:
        person_id = id_argument(args.name, "--id takes a person's id")
        if metadata is not None:
            raise ConfigError("--metadata goes with a new person, not with --id")
        with _open_db(args) as db:  # adding to somebody: the gallery must exist
            result = db.add_photos(db.get(person_id), args.images, **options)
            return _enrolled(result, args.json)
    with _open_db(args, create=True) as db:
        if args.namesake:
            result = db.create_person(args.name, args.images, metadata, namesake=True, **options)
        else:
            _not_an_id(db, args.name)
            result = db.enroll_photos(args.name, args.images, metadata, **options)
        return _enrolled(result, args.json)


def id_argument(text: str, what: str) -> int:
    """A person's id given on the command line (ASCII digits), or a ConfigError saying ``what``."""
    if not (text.isascii() and text.isdigit()):
        raise ConfigError(f"{what}, got {text!r}")
    return int(text)


def _not_an_id(db: FaceDB, name: str) -> None:
    """A name of digits that nobody has but that is somebody's id is not taken for either."""
    if not (name.isascii() and name.strip().isdigit()) or db.find(name):
        return
    try:
        other = db.get(int(name))
    except PersonNotFound:
        return
    raise ConfigError(
        f"nobody is named {name!r}, but {name} is the id of {other.name!r}: to add the photos to "
        f"them, `facedb enroll --id {name} PHOTO...`; to create a person named {name!r}, "
        f"`facedb enroll --namesake {name} PHOTO...`"
    )


def _in_cli_terms(reason: str) -> str:
    """A refusal's reason with the options of this command line for Python's keywords."""
    return EnrollmentRefused.in_terms(reason, "--force", "--largest-face")


def _enrolled(result: Enrollment, as_json: bool) -> int:
    if as_json:
        print(json.dumps(serialize.enrollment_json(result), indent=2))
        return 0
    p = result.person
    print(f"enrolled {p.name} (id {p.id}): {len(result.added)} face(s) added, {p.face_count} in all")
    for photo, reason in result.skipped:
        print(f"  skipped {about_photo(photo, _in_cli_terms(reason))}")
    return 0


def _import_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("folder")
    p.add_argument("--force", action="store_true", help="enroll even photos that look like someone else")
    p.add_argument("--largest-face", action="store_true", help="take the largest face of a group photo")
    p.add_argument("--json", action="store_true")


@commands.add("import", "enroll a folder with one sub-folder of photos per person", _import_arguments)
def cmd_import(args: argparse.Namespace) -> int:
    """``facedb import FOLDER``."""
    from facedb.folders import person_folders

    # Checked before the gallery is opened: a mistyped folder must not create a gallery, nor
    # may the gallery be made among the photos it imports.
    folders = person_folders(args.folder, args.db or os.environ.get("FACEDB_DB"))
    with _open_db(args, create=True) as db:
        progress = _Progress(len(folders), "importing")
        result = db.import_folder(
            args.folder, force=args.force, largest_face=args.largest_face, on_folder=progress.step
        )
        progress.close()
        if args.json:
            doc = serialize.folder_import_json(result)
            doc["skipped"] = [[photo, _in_cli_terms(why)] for photo, why in doc["skipped"]]
            print(json.dumps(doc, indent=2))
            return 0
        print(
            f"imported {result.folders} folder(s): {len(result.added)} face(s) added, "
            f"{len(result.skipped)} photo(s) skipped; the gallery has {len(db)} people"
        )
        for photo, reason in result.skipped:
            print(f"  skipped {about_photo(photo, _in_cli_terms(reason))}")
    return 0


def _people_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true")


@commands.add("people", "list the people", _people_arguments)
def cmd_people(args: argparse.Namespace) -> int:
    """``facedb people``."""
    with _open_db(args) as db:
        people = db.people()
    if args.json:
        print(json.dumps([serialize.person_json(p) for p in people], indent=2))
        return 0
    rows = [["ID", "NAME", "FACES", "ENROLLED"]]
    rows += [[str(p.id), p.name, str(p.face_count), p.created_at.strftime("%Y-%m-%d %H:%M")] for p in people]
    _print_table(rows, sys.stdout)
    return 0


def _rename_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("person")
    p.add_argument("name")


@commands.add("rename", "rename a person (by id or exact name)", _rename_arguments)
def cmd_rename(args: argparse.Namespace) -> int:
    """``facedb rename PERSON NAME``."""
    with _open_db(args) as db:
        p = db.rename(db.resolve(args.person), args.name)
    print(f"renamed id {p.id} to {p.name}")
    return 0


def _remove_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("person")


@commands.add("remove", "remove a person and erase their templates", _remove_arguments)
def cmd_remove(args: argparse.Namespace) -> int:
    """``facedb remove PERSON``."""
    with _open_db(args) as db:
        p = db.resolve(args.person)
        db.remove(p)
    print(f"removed {p.name} (id {p.id}) and erased {p.face_count} template(s)")
    return 0


def _faces_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("person")
    p.add_argument("--json", action="store_true")


@commands.add("faces", "list a person's faces (templates) with their ids", _faces_arguments)
def cmd_faces(args: argparse.Namespace) -> int:
    """``facedb faces PERSON``."""
    with _open_db(args) as db:
        faces = db.faces(args.person)
    if args.json:
        print(json.dumps([serialize.face_json(f) for f in faces], indent=2))
        return 0
    rows = [["FACE", "PHOTO", "BOX", "SCORE"]]
    for f in faces:
        box = "-" if f["bbox"] is None else "(" + ", ".join(f"{v:.0f}" for v in f["bbox"]) + ")"
        score = "-" if f["score"] is None else f"{f['score']:.3f}"
        rows.append([str(f["id"]), f["image"] or "-", box, score])
    _print_table(rows, sys.stdout)
    return 0


def _remove_face_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("face_id", type=int)
    p.add_argument(
        "--last",
        action="store_true",
        help="remove it even if it is its person's last face (the same as removing them)",
    )


@commands.add("remove-face", "remove one face (template) by id (see `faces`)", _remove_face_arguments)
def cmd_remove_face(args: argparse.Namespace) -> int:
    """``facedb remove-face FACE_ID``."""
    with _open_db(args) as db:
        db.remove_face(args.face_id, last=args.last)
    print(f"removed face {args.face_id}")
    return 0

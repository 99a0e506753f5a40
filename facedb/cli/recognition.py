"""The ``facedb`` commands that recognise faces: identify (who is in each photo, optionally
drawn) and verify (whether two photos show the same person)."""

from __future__ import annotations

import argparse
import glob
import itertools
import json
import os
import sys
from pathlib import Path
from typing import Any

from facedb import serialize
from facedb.cli.common import Commands, _open_db, _print_table
from facedb.engine import about_photo
from facedb.errors import ConfigError, FaceDBError, GalleryError
from facedb.ranking import check_k
from facedb.vectors import check_consistency

commands = Commands()


def _identify_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "images",
        nargs="+",
        metavar="IMAGE",
        help="photos, folders (every photo below them) or glob patterns, as discover takes them",
    )
    p.add_argument("--json", action="store_true", help="print JSON")
    p.add_argument(
        "--draw",
        metavar="OUT",
        help="write the photo with boxes and names to OUT.jpg (.png, .webp, .bmp), or each photo's "
        "drawing into the folder OUT (needed for several photos)",
    )
    p.add_argument("-k", type=int, default=5, help="candidates per face (default 5)")
    p.add_argument(
        "--consistency",
        metavar="strong",
        help="strong: also find people another process enrolled a moment ago (Milvus waits for "
        "its next time tick per photo; a local index is always this fresh)",
    )


@commands.add("identify", "who is in each photo", _identify_arguments)
def cmd_identify(args: argparse.Namespace) -> int:
    """``facedb identify IMAGE...``."""
    # The library's rules, before any photo is read.
    check_k(args.k)
    check_consistency(args.consistency)
    photos = _photos(args.images)
    # Before any photo is read too: a --draw that cannot take the drawings is known now.
    draw_into = _drawing_folder(args.draw, len(photos)) if args.draw else False
    answers = []
    failed: list[tuple[str, FaceDBError]] = []
    with _open_db(args) as db:
        for image in photos:
            # One bad photo of several is reported in its place; the others are answered.
            try:
                answers.append((image, db.identify(image, k=args.k, consistency=args.consistency)))
            except FaceDBError as e:
                if len(photos) == 1 or isinstance(e, ConfigError | GalleryError):
                    raise
                failed.append((image, e))
                print(f"facedb: error: {about_photo(image, e.message)}", file=sys.stderr)
        if len(db) == 0:
            print(
                f"facedb: warning: the gallery {db.location} holds nobody: every face is unknown",
                file=sys.stderr,
            )
        elif db.thresholds.warning:
            print(f"facedb: warning: {db.thresholds.warning}", file=sys.stderr)
        if args.draw:
            _draw_all(db, answers, Path(args.draw), draw_into, photos)
    status = max((e.exit_code for _, e in failed), default=0)
    if args.json:
        errors = {image: e for image, e in failed}
        answered = iter(answers)
        doc = [
            {"image": image, "error": {"code": errors[image].code, "message": errors[image].message}}
            if image in errors
            else serialize.photo_json(*next(answered))
            for image in photos
        ]
        print(json.dumps(doc, indent=2))
        return status
    for n, (image, results) in enumerate(answers):
        print(("\n" if n else "") + f"{image}: {len(results)} face(s)")
        rows = [["FACE", "BOX", "PERSON", "SIMILARITY"]]
        for i, r in enumerate(results, 1):
            box = "(" + ", ".join(f"{v:.0f}" for v in r.face.bbox) + ")"
            who = (
                f"{r.person.name} (id {r.person.id})"
                if r.person
                else f"poor quality ({', '.join(r.face.quality_reasons)})"
                if r.status == "poor_quality"
                else r.status
            )
            rows.append([str(i), box, who, f"{r.similarity:.3f}"])
        if results:
            _print_table(rows, sys.stdout)
    return status


def _photos(arguments: list[str]) -> dict[str, str]:
    """The photos to identify, each with its name in a --draw folder: a folder's photos
    (every one below it) and a pattern's, as discover takes them, each named by its path
    inside the folder (two x.jpg of two sub-folders stay two drawings) or by its file name; a
    photo path as given, even a missing one, whose error is reported in its place."""
    from facedb.discovery import photo_paths

    found: dict[str, str] = {}
    for given in arguments:
        folder = Path(given).expanduser()
        if folder.is_dir():
            for photo in photo_paths(given):
                found.setdefault(str(photo), str(photo.relative_to(folder)))
        elif glob.has_magic(given) and not folder.exists():
            for photo in photo_paths(given):
                found.setdefault(str(photo), photo.name)
        else:
            found.setdefault(given, Path(given).name)
    return found


def _drawing_folder(draw: str, photos: int) -> bool:
    """Whether --draw names a folder (True) or one picture file (False).

    A name ending in .jpg, .jpeg, .png, .webp or .bmp is a picture, and only one photo's
    drawing fits in it: with several, writing a folder of that name (what a user would find
    only afterwards) or one drawing over another would each surprise, so it is refused before
    anything is read. An existing folder, a name ending in a slash or without a suffix is a
    folder; any other suffix is a mistake (``out.txt``).
    """
    from facedb.draw import DRAWING_SUFFIXES

    path = Path(draw)
    if path.is_dir() or draw.endswith(("/", os.sep)):
        return True
    suffix = path.suffix.lower()
    if suffix in DRAWING_SUFFIXES:
        if photos > 1:
            raise ConfigError(
                f"--draw {draw} names one picture, but {photos} photos are identified: give a "
                f"folder for their drawings (e.g. --draw {path.with_suffix('')}/)"
            )
        return False
    if suffix:
        raise ConfigError(f"--draw takes a .jpg, .png, .webp or .bmp file name, or a folder, got {draw}")
    return True


def _draw_all(
    db: Any, answers: list[tuple[str, list[Any]]], out: Path, into_folder: bool, names: dict[str, str]
) -> None:
    from facedb.draw import draw_identifications

    written: set[Path] = set()
    for image, results in answers:
        target = out
        if into_folder:
            name = Path(names[image])
            target = out / name.with_suffix(".jpg")
            for n in itertools.count(2):  # a.jpg and a.png, or two a.jpg: never one over the other
                if target not in written:
                    break
                target = out / name.with_name(f"{name.stem}-{n}.jpg")
        written.add(target)
        draw_identifications(db.engine.decode(image), results, target)
        print(f"wrote {target}", file=sys.stderr)


def _verify_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("a", metavar="A")
    p.add_argument("b", metavar="B")
    p.add_argument("--json", action="store_true")


@commands.add("verify", "whether two photos show the same person", _verify_arguments)
def cmd_verify(args: argparse.Namespace) -> int:
    """``facedb verify A B``: at the gallery's threshold in force when a gallery is given (as
    identify names people), else at the model's."""
    from facedb.engine import pack_engine, verify

    if args.db or os.environ.get("FACEDB_DB"):
        args.read_only = True  # a comparison writes nothing
        with _open_db(args) as db:
            result = db.verify(args.a, args.b)
            which = "the gallery's threshold in force, as identify: " + db.thresholds.rule
    else:
        pack = getattr(args, "pack", None) or os.environ.get("FACEDB_PACK") or None
        if pack is None:
            result = verify(args.a, args.b, threshold=args.threshold)
        else:
            result = pack_engine(pack).verify(args.a, args.b, threshold=args.threshold)
        model = f"the {pack} pack's" if pack else "the model's"
        which = "given" if args.threshold is not None else f"{model}, at FMR 1e-4: no gallery given"
    if args.json:
        print(json.dumps(serialize.verification_json(result)))
    else:
        verdict = "same person" if result.same_person else "different people"
        print(f"{verdict}: similarity {result.similarity:.3f} (threshold {result.threshold:.3f}, {which})")
    return 0

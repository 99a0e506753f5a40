"""The ``facedb`` command: a thin layer over :class:`facedb.FaceDB`.

Every command maps to one library call; ``--json`` prints the library's answer through
facedb.serialize, the shapes the HTTP service answers with (README, "JSON shapes"). Errors are
one line on stderr, ``facedb: error: MESSAGE``, and the exit status of the error's class (see
README).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, TextIO

from facedb import __version__, serialize
from facedb.errors import ConfigError, EnrollmentRefused, FaceDBError, GalleryError
from facedb.quality import POOR_QUALITY
from facedb.ranking import check_k

__all__ = ["main"]


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
    return FaceDB(where, create=create, **options)


def _shown(key: str, value: Any) -> str:
    """A stats value for people: 4 decimals, local times, "-" for none."""
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4f}"
    if key.endswith("_at") and isinstance(value, str):
        return _local(datetime.fromisoformat(value))
    return str(value)


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


# -- commands --------------------------------------------------------------------------------


def cmd_enroll(args: argparse.Namespace) -> int:
    metadata = json.loads(args.metadata) if args.metadata else None
    if metadata is not None and not isinstance(metadata, dict):
        raise ConfigError("--metadata must be a JSON object")
    with _open_db(args, create=True) as db:
        result = db.enroll_photos(
            args.name, args.images, metadata, force=args.force, largest_face=args.largest_face
        )
        if args.json:
            print(json.dumps(serialize.enrollment_json(result), indent=2))
            return 0
        p = result.person
        print(f"enrolled {p.name} (id {p.id}): {len(result.added)} face(s) added, {p.face_count} in all")
        for photo, reason in result.skipped:
            print(f"  skipped {photo}: {reason.replace(EnrollmentRefused.FORCE, '--force')}")
    return 0


def cmd_import(args: argparse.Namespace) -> int:
    from facedb.folders import person_folders

    # Checked before the gallery is opened: a mistyped folder must not create a gallery.
    folders = person_folders(args.folder)
    with _open_db(args, create=True) as db:
        progress = _Progress(len(folders), "importing")
        result = db.import_folder(
            args.folder, force=args.force, largest_face=args.largest_face, on_folder=progress.step
        )
        progress.close()
        if args.json:
            doc = serialize.folder_import_json(result)
            doc["skipped"] = [
                [photo, why.replace(EnrollmentRefused.FORCE, "--force")] for photo, why in doc["skipped"]
            ]
            print(json.dumps(doc, indent=2))
            return 0
        print(
            f"imported {result.folders} folder(s): {len(result.added)} face(s) added, "
            f"{len(result.skipped)} photo(s) skipped; the gallery has {len(db)} people"
        )
        for photo, reason in result.skipped:
            print(f"  skipped {photo}: {reason.replace(EnrollmentRefused.FORCE, '--force')}")
    return 0


def cmd_identify(args: argparse.Namespace) -> int:
    check_k(args.k)  # the library's one rule, before any photo is read
    answers = []
    failed: list[tuple[str, FaceDBError]] = []
    with _open_db(args) as db:
        for image in args.images:
            # One bad photo of several is reported in its place; the others are answered.
            try:
                answers.append((image, db.identify(image, k=args.k)))
            except FaceDBError as e:
                if len(args.images) == 1 or isinstance(e, ConfigError | GalleryError):
                    raise
                failed.append((image, e))
                print(f"facedb: error: {image}: {e.message}", file=sys.stderr)
        if len(db) == 0:
            print(
                f"facedb: warning: the gallery {db.location} holds nobody: every face is unknown",
                file=sys.stderr,
            )
        if args.draw:
            _draw_all(db, answers, Path(args.draw))
    status = max((e.exit_code for _, e in failed), default=0)
    if args.json:
        errors = {image: e for image, e in failed}
        answered = iter(answers)
        doc = [
            {"image": image, "error": {"code": errors[image].code, "message": errors[image].message}}
            if image in errors
            else serialize.photo_json(*next(answered))
            for image in args.images
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


def _draw_all(db: Any, answers: list[tuple[str, list[Any]]], out: Path) -> None:
    from facedb.draw import draw_identifications

    if len(answers) == 1:
        image, results = answers[0]
        draw_identifications(db.engine.decode(image), results, out)
        print(f"wrote {out}", file=sys.stderr)
        return
    out.mkdir(parents=True, exist_ok=True)
    for image, results in answers:
        target = out / (Path(image).stem + ".jpg")
        draw_identifications(db.engine.decode(image), results, target)
        print(f"wrote {target}", file=sys.stderr)


def cmd_verify(args: argparse.Namespace) -> int:
    from facedb.engine import verify

    result = verify(args.a, args.b, threshold=args.threshold)
    if args.json:
        print(json.dumps(serialize.verification_json(result)))
    else:
        verdict = "same person" if result.same_person else "different people"
        print(f"{verdict}: similarity {result.similarity:.3f} (threshold {result.threshold:.2f})")
    return 0


def cmd_people(args: argparse.Namespace) -> int:
    with _open_db(args) as db:
        people = db.people()
    if args.json:
        print(json.dumps([serialize.person_json(p) for p in people], indent=2))
        return 0
    rows = [["ID", "NAME", "FACES", "ENROLLED"]]
    rows += [[str(p.id), p.name, str(p.face_count), p.created_at.strftime("%Y-%m-%d %H:%M")] for p in people]
    _print_table(rows, sys.stdout)
    return 0


def cmd_rename(args: argparse.Namespace) -> int:
    with _open_db(args) as db:
        p = db.rename(db.resolve(args.person), args.name)
    print(f"renamed id {p.id} to {p.name}")
    return 0


def cmd_remove(args: argparse.Namespace) -> int:
    with _open_db(args) as db:
        p = db.resolve(args.person)
        db.remove(p)
    print(f"removed {p.name} (id {p.id}) and erased {p.face_count} template(s)")
    return 0


def cmd_faces(args: argparse.Namespace) -> int:
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


def cmd_remove_face(args: argparse.Namespace) -> int:
    with _open_db(args) as db:
        db.remove_face(args.face_id)
    print(f"removed face {args.face_id}")
    return 0


def cmd_reject(args: argparse.Namespace) -> int:
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


def cmd_confirm(args: argparse.Namespace) -> int:
    with _open_db(args) as db:
        result = db.confirm_sighting(args.sighting, db.resolve(args.person), force=args.force)
    if args.json:
        print(json.dumps(serialize.enrollment_json(result), indent=2))
    else:
        p = result.person
        print(f"sighting {args.sighting} confirmed: face {result.added[0]} added to {p.name} (id {p.id})")
    return 0


def cmd_audit(args: argparse.Namespace) -> int:
    with _open_db(args) as db:
        findings = db.audit(min_quality=args.min_quality)
    if args.json:
        print(json.dumps(serialize.audit_json(findings), indent=2))
        return 0
    if not findings:
        print("no suspect enrollments")
        return 0
    for f in findings:
        print(f"{f.kind}: {f.reason}\n  fix: {f.action}")
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    with _open_db(args) as db:
        report = db.check(repair=not args.no_repair)
    if args.json:
        print(json.dumps(serialize.check_json(report), indent=2))
    else:
        state = "consistent" if report.ok else "INCONSISTENT"
        print(
            f"{state}: {report.people} people, {report.faces} faces, {report.indexed} indexed "
            f"({report.index_kind})"
        )
        for problem in report.problems:
            print(f"  {problem}")
        if report.repaired:
            print("  repaired: the index was rebuilt from the database")
    return 0 if report.ok or report.repaired else GalleryError.exit_code


def cmd_rebuild_index(args: argparse.Namespace) -> int:
    with _open_db(args) as db:
        db.rebuild_index()
        print(f"rebuilt the index: {len(db.vectors)} templates ({db.vectors.kind})")
    return 0


def cmd_stats(args: argparse.Namespace) -> int:
    with _open_db(args) as db:
        stats = db.stats()
    if args.json:
        print(json.dumps(stats, indent=2))
    else:
        _print_table([[k, _shown(k, v)] for k, v in stats.items()], sys.stdout)
    return 0


def cmd_calibrate(args: argparse.Namespace) -> int:
    with _open_db(args) as db:
        found = db.calibrate(target_fpir=args.target_fpir, target_fmr=args.target_fmr)
    doc = serialize.calibration_json(found)
    if args.json:
        print(json.dumps(doc, indent=2))
        return 0
    _print_table([[k, "" if v is None else str(v)] for k, v in doc.items() if k != "note"], sys.stdout)
    if found.note:
        print(f"note: {found.note}")
    return 0


def cmd_copy(args: argparse.Namespace) -> int:
    from facedb.gallery import FaceDB
    from facedb.transfer import copy_gallery

    with FaceDB(args.src, create=False) as src, FaceDB(args.dst) as dst:
        progress = _Progress(1000, "copying")

        def step(done: int, total: int) -> None:
            progress.total = max(total, 1)
            progress.done = done - 1
            progress.step(f"{done}/{total} faces")

        report = copy_gallery(src, dst, step)
        progress.close()
        if args.json:
            print(json.dumps(serialize.copy_json(report), indent=2))
            return 0 if report.identical else ConfigError.exit_code
        print(
            f"copied {report.people_copied} people, {report.faces_copied} faces, "
            f"{report.rows_copied.get('rejections', 0)} negative examples, "
            f"{report.rows_copied.get('api_keys', 0)} API keys, "
            f"{report.rows_copied.get('sightings', 0)} sightings and "
            f"{report.rows_copied.get('strangers', 0)} strangers "
            f"({report.people} people, {report.faces} faces in all) from {src.location} to {dst.location}"
        )
    if not report.identical:
        for problem in report.problems:
            print(f"  {problem}", file=sys.stderr)
        raise ConfigError("the copy differs from the source: " + "; ".join(report.problems))
    print("both galleries hold the same people, faces and templates")
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    import logging

    from facedb.extras import require

    require("service", "facedb serve")
    import uvicorn

    # The service logs what an error answer leaves out (the exception, with the request id).
    logging.basicConfig(
        level=args.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )

    from facedb.keys import KeyStore
    from facedb.service import ServiceSettings, create_app

    db = _open_db(args)
    if not any(k.revoked_at is None for k in KeyStore(db.store).list()):
        print(
            f"facedb: warning: {db.location} has no API key: every request but /health and /docs "
            f"will be refused (401); create one with `facedb --db {db.location} keys create --scope read`",
            file=sys.stderr,
        )
    settings = ServiceSettings(
        max_upload_bytes=args.max_upload_mb * 1024 * 1024,
        max_photos=args.max_photos,
        max_request_bytes=None if args.max_request_mb is None else args.max_request_mb * 1024 * 1024,
        auth_failures=args.auth_failures,
        auth_window_seconds=args.auth_window,
        batch_window_ms=args.batch_window_ms,
        workers=args.workers,
    )
    print(
        f"facedb: serving {db.location} on http://{args.host}:{args.port} (OpenAPI at /docs)", file=sys.stderr
    )
    try:
        uvicorn.run(
            create_app(db, settings),
            host=args.host,
            port=args.port,
            log_level=args.log_level,
            workers=1,
            # facedb.access logs each request instead (with the key's name and request id).
            access_log=False,
            # uvicorn's loggers go through the logging set up above (stderr, one format),
            # instead of its own config, which sends the access log to stdout.
            log_config=None,
        )
    finally:
        db.close()
    return 0


def cmd_keys(args: argparse.Namespace) -> int:
    from facedb.keys import KeyStore

    # A service is set up with a key before anybody is enrolled: `keys create` may create the
    # gallery (a typo there cannot name anybody: the key exists only in the new gallery).
    with _open_db(args, create=args.action == "create") as db:
        keys = KeyStore(db.store)
        if args.action == "create":
            record, secret = keys.create(args.scope, args.name or "")
            print(secret)
            print(f"created key {record.id} ({record.scope}); it is shown only now", file=sys.stderr)
        elif args.action == "list":
            listed = keys.list()
            if args.json:
                print(json.dumps([serialize.key_json(k) for k in listed], indent=2))
                return 0
            rows = [["ID", "NAME", "PREFIX", "SCOPE", "CREATED", "REVOKED"]]
            for k in listed:
                rows.append(
                    [
                        str(k.id),
                        k.name,
                        k.prefix + "...",
                        k.scope,
                        _local(k.created_at),
                        _local(k.revoked_at) if k.revoked_at else "",
                    ]
                )
            _print_table(rows, sys.stdout)
        else:
            if args.id is None:
                raise ConfigError("keys revoke needs the key's id")
            record = keys.revoke(args.id)
            print(f"revoked key {record.id} ({record.name or record.prefix})")
    return 0


def cmd_watch(args: argparse.Namespace) -> int:
    from facedb.attendance import Watcher, WatchSettings, watch

    settings = WatchSettings(rate=args.rate, votes=args.votes, window=args.window, cooldown=args.cooldown)
    start = None
    if args.start is not None:
        start = _when(args.start)
        if not isinstance(start, datetime):  # a bare date: its local midnight
            start = datetime(start.year, start.month, start.day)
        start = start.astimezone()  # a time without a zone is local
    with _open_db(args) as db:
        watcher = Watcher(db, args.source, settings)
        logged = watch(db, args.source, settings, start=start, duration=args.duration, watcher=watcher)
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


def cmd_attendance(args: argparse.Namespace) -> int:
    import csv

    from facedb.attendance import attendance

    with _open_db(args) as db:
        rows = attendance(db, _when(args.since), _when(args.until))
    if args.json:
        print(json.dumps([serialize.attendance_json(r) for r in rows], indent=2))
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
    if args.csv:
        writer = csv.writer(sys.stdout)
        writer.writerow(header)
        writer.writerows(table)
    else:
        _print_table([[h.upper() for h in header], *table], sys.stdout)
    return 0


def cmd_forget_strangers(args: argparse.Namespace) -> int:
    from facedb.attendance import forget_strangers

    with _open_db(args) as db:
        n = forget_strangers(db)
    print(f"forgot {n} stranger(s) and their sightings")
    return 0


def cmd_discover(args: argparse.Namespace) -> int:
    from facedb.discovery import expand_photos

    total = len(expand_photos(args.paths))  # a mistyped path must not create a gallery
    with _open_db(args, create=True) as db:
        progress = _Progress(total, "discovering")

        def step(done: int, _: int) -> None:
            while progress.done < done:
                progress.step("")

        result = db.discover(args.paths, progress=step)
        progress.close()
        if args.json:
            print(json.dumps(serialize.discovery_json(result), indent=2))
            return 0
        print(
            f"looked at {result.photos} photo(s) ({result.already} discovered before): "
            f"{result.faces} face(s), {len(result.named)} of enrolled people, "
            f"{sum(g.size for g in result)} in {len(result)} group(s)"
        )
        for g in result:
            rep = g.representative
            where = f"e.g. {rep.photo}" if rep is not None else ""
            print(f"  group {g.id}: {g.size} face(s), {where}")
        for n in result.named:
            print(f"  {n.person.name} (id {n.person.id}) in {n.photo}")
        for photo, reason in result.skipped:
            print(f"  skipped {photo}: {reason}")
    return 0


def cmd_groups(args: argparse.Namespace) -> int:
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


def cmd_name_group(args: argparse.Namespace) -> int:
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


def cmd_dismiss_group(args: argparse.Namespace) -> int:
    with _open_db(args) as db:
        db.dismiss_group(args.group)
    print(f"dismissed group {args.group}: its faces and thumbnails are erased")
    return 0


# -- parser ----------------------------------------------------------------------------------


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


#: Help for the arguments several commands share, by destination; (command, destination) for
#: one command's own meaning. Every argument has help (tests/test_cli_options.py checks).
_HELP = {
    "json": "print JSON (README, JSON shapes)",
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

    def add(name: str, func: Callable[[argparse.Namespace], int], help_text: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text, description=help_text, parents=[common])
        p.set_defaults(func=func)
        return p

    p = add("enroll", cmd_enroll, "enroll photos of one person (created if new)")
    p.add_argument("name")
    p.add_argument("images", nargs="+", metavar="IMAGE")
    p.add_argument("--metadata", help="JSON object stored with the person")
    p.add_argument("--force", action="store_true", help="enroll even photos that look like someone else")
    p.add_argument("--largest-face", action="store_true", help="take the largest face of a group photo")
    p.add_argument("--json", action="store_true")

    p = add("import", cmd_import, "enroll a folder with one sub-folder of photos per person")
    p.add_argument("folder")
    p.add_argument("--force", action="store_true", help="enroll even photos that look like someone else")
    p.add_argument("--largest-face", action="store_true", help="take the largest face of a group photo")
    p.add_argument("--json", action="store_true")

    p = add("identify", cmd_identify, "who is in each photo")
    p.add_argument("images", nargs="+", metavar="IMAGE")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.add_argument(
        "--draw", metavar="OUT", help="write the photo with boxes and names (a folder for several)"
    )
    p.add_argument("-k", type=int, default=5, help="candidates per face (default 5)")

    p = add("verify", cmd_verify, "whether two photos show the same person")
    p.add_argument("a", metavar="A")
    p.add_argument("b", metavar="B")
    p.add_argument("--json", action="store_true")

    p = add("people", cmd_people, "list the people")
    p.add_argument("--json", action="store_true")

    p = add("rename", cmd_rename, "rename a person (by id or exact name)")
    p.add_argument("person")
    p.add_argument("name")

    p = add("remove", cmd_remove, "remove a person and erase their templates")
    p.add_argument("person")

    p = add("faces", cmd_faces, "list a person's faces (templates) with their ids")
    p.add_argument("person")
    p.add_argument("--json", action="store_true")

    p = add("remove-face", cmd_remove_face, "remove one face (template) by id (see `faces`)")
    p.add_argument("face_id", type=int)

    p = add(
        "reject",
        cmd_reject,
        '"not this person": keep an enrolled face or a logged visit as a negative example',
    )
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument("--face", type=int, metavar="FACE_ID", help="an enrolled face that is not its person")
    what.add_argument("--sighting", type=int, metavar="SIGHTING_ID", help="a visit logged by watch")
    p.add_argument(
        "person", nargs="?", help="whom the sighting is not (default: the person it was logged as)"
    )
    p.add_argument("--json", action="store_true")

    p = add("confirm", cmd_confirm, "\"yes, it's them\": add a logged visit's face to a person (gated)")
    p.add_argument("--sighting", type=int, metavar="SIGHTING_ID", required=True)
    p.add_argument("person")
    p.add_argument("--force", action="store_true", help="add it even if it looks like someone else")
    p.add_argument("--json", action="store_true")

    p = add("audit", cmd_audit, "suspect enrollments: mislabels, people enrolled twice, poor faces")
    p.add_argument("--json", action="store_true")
    p.add_argument(
        "--min-quality",
        type=float,
        default=POOR_QUALITY,
        help=f"report faces whose quality is below this (default {POOR_QUALITY}, the quality bar)",
    )

    p = add("check", cmd_check, "check that the database and the index agree (and repair)")
    p.add_argument("--json", action="store_true")
    p.add_argument("--no-repair", action="store_true", help="only report")

    add("rebuild-index", cmd_rebuild_index, "rebuild the vector index from the database")

    p = add(
        "calibrate", cmd_calibrate, "choose the threshold for a target error rate (stored in the gallery)"
    )
    p.add_argument("--target-fpir", type=float, help="share of strangers' searches that may name somebody")
    p.add_argument("--target-fmr", type=float, help="or: share of stranger-against-person comparisons")
    p.add_argument("--json", action="store_true")

    p = add("stats", cmd_stats, "sizes, model, index and threshold in force of the gallery")
    p.add_argument("--json", action="store_true")

    p = add("serve", cmd_serve, "serve the gallery over HTTP (FastAPI; OpenAPI at /docs)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--max-upload-mb", type=int, default=20, help="largest photo upload (default 20 MB)")
    p.add_argument("--max-photos", type=int, default=20, help="most photos in one request (default 20)")
    p.add_argument(
        "--max-request-mb",
        type=int,
        default=None,
        help="largest request body (default: max-photos x max-upload-mb + 1 MB)",
    )
    p.add_argument(
        "--auth-failures",
        type=int,
        default=10,
        help="failed API keys from one address before it is refused for a while (default 10)",
    )
    p.add_argument(
        "--auth-window", type=float, default=60.0, help="seconds those failures are counted over (default 60)"
    )
    p.add_argument(
        "--batch-window-ms",
        type=float,
        default=None,
        help=(
            "share recognizer batches between identify requests, held open this long for "
            "more (0: only the requests queued meanwhile; default: off, each request alone)"
        ),
    )
    p.add_argument(
        "--workers",
        type=int,
        default=None,
        help="threads for decoding, detection and enrollment (default: one per core)",
    )
    p.add_argument(
        "--log-level", default="warning", choices=["critical", "error", "warning", "info", "debug"]
    )

    p = add("keys", cmd_keys, "create, list or revoke HTTP API keys")
    p.add_argument("action", choices=["create", "list", "revoke"])
    p.add_argument("id", nargs="?", type=int, help="the key to revoke")
    p.add_argument("--scope", default="read", choices=["read", "enroll", "admin"])
    p.add_argument("--name", help="a label for the key")
    p.add_argument("--json", action="store_true", help="print JSON (keys list)")

    p = add("watch", cmd_watch, "log who passes in front of a video file, camera index or stream URL")
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
    p.add_argument("--json", action="store_true")

    p = add("attendance", cmd_attendance, "who was seen when: first and last sighting per person per day")
    p.add_argument("--since", help="ISO date or time (default: today)")
    p.add_argument("--until", help="ISO date or time (default: the end of the since day)")
    p.add_argument("--csv", action="store_true", help="print CSV")
    p.add_argument("--json", action="store_true", help="print JSON")

    p = add("discover", cmd_discover, "find every face in photos: name the enrolled, group the rest")
    p.add_argument("paths", nargs="+", metavar="PHOTOS", help="photos, folders or glob patterns")
    p.add_argument("--json", action="store_true")

    p = add("groups", cmd_groups, "the groups of unnamed faces (discover's, and a watch's strangers)")
    p.add_argument("--json", action="store_true")

    p = add("name-group", cmd_name_group, "enroll a group's faces as a person (the enrollment gate applies)")
    p.add_argument("group", type=int, help="the group's id (facedb groups)")
    p.add_argument("name", help="the person to enroll it as (new, or the one so named)")
    p.add_argument("--force", action="store_true", help="enroll even faces that look like somebody else")
    p.add_argument("--json", action="store_true")

    p = add("dismiss-group", cmd_dismiss_group, "erase a group of unnamed faces")
    p.add_argument("group", type=int, help="the group's id (facedb groups)")

    add("forget-strangers", cmd_forget_strangers, "erase the templates and sightings of unknown faces")

    p = add("copy", cmd_copy, "copy a gallery to another store (resumable), then compare both")
    p.add_argument("src", help="a folder, or a SQL URL with an optional vectors=milvus://... parameter")
    p.add_argument("dst", help="the same kinds as SRC")
    p.add_argument("--json", action="store_true")
    _fill_help(parser)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Runs the command line; returns the exit status."""
    args = build_parser().parse_args(argv)
    try:
        status: int = args.func(args)
        return status
    except FaceDBError as e:
        message = e.message_for("--force") if isinstance(e, EnrollmentRefused) else e.message
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


if __name__ == "__main__":
    sys.exit(main())

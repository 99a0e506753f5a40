"""The ``facedb`` commands that look after a gallery as a whole: check, rebuild-index,
calibrate, stats, copy, and its encryption key (new-key, rekey)."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import datetime
from typing import Any

from facedb import serialize
from facedb.cli.common import Commands, _key, _local, _open_db, _print_table, _Progress
from facedb.errors import ConfigError, GalleryError

commands = Commands()


def _check_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true")
    p.add_argument("--no-repair", action="store_true", help="only report")


@commands.add("check", "check that the database and the index agree (and repair)", _check_arguments)
def cmd_check(args: argparse.Namespace) -> int:
    """``facedb check``."""
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


@commands.add("rebuild-index", "rebuild the vector index from the database")
def cmd_rebuild_index(args: argparse.Namespace) -> int:
    """``facedb rebuild-index``."""
    with _open_db(args) as db:
        db.rebuild_index()
        print(f"rebuilt the index: {len(db.vectors)} templates ({db.vectors.kind})")
    return 0


def _calibrate_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--target-fpir", type=float, help="share of strangers' searches that may name somebody")
    p.add_argument("--target-fmr", type=float, help="or: share of stranger-against-person comparisons")
    p.add_argument("--json", action="store_true")


@commands.add(
    "calibrate",
    "choose the threshold for a target error rate (stored in the gallery)",
    _calibrate_arguments,
)
def cmd_calibrate(args: argparse.Namespace) -> int:
    """``facedb calibrate``."""
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


def _stats_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true")


@commands.add("stats", "sizes, model, index and threshold in force of the gallery", _stats_arguments)
def cmd_stats(args: argparse.Namespace) -> int:
    """``facedb stats``."""
    with _open_db(args) as db:
        stats = db.stats()
    if args.json:
        print(json.dumps(stats, indent=2))
    else:
        _print_table([[k, _shown(k, v)] for k, v in stats.items()], sys.stdout)
    return 0


def _shown(key: str, value: Any) -> str:
    """A stats value for people: 4 decimals, local times, "-" for none."""
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4f}"
    if key == "runtimes" and isinstance(value, dict):
        return "; ".join(f"{model}: {r['runtime']} ({r['reason']})" for model, r in value.items())
    if key.endswith("_at") and isinstance(value, str):
        return _local(datetime.fromisoformat(value))
    return str(value)


def _copy_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("src", help="a folder, or a SQL URL with an optional vectors=milvus://... parameter")
    p.add_argument("dst", help="the same kinds as SRC")
    p.add_argument(
        "--dst-key-file",
        help="the encryption key DST is (or is to be) sealed with (default: SRC's, from --key-file "
        "or the environment)",
    )
    p.add_argument("--json", action="store_true")


@commands.add("copy", "copy a gallery to another store (resumable), then compare both", _copy_arguments)
def cmd_copy(args: argparse.Namespace) -> int:
    """``facedb copy SRC DST``."""
    from facedb.gallery import FaceDB
    from facedb.transfer import copy_gallery

    key = _key(args)
    dst_key = key if args.dst_key_file is None else _key(args, "dst_key_file")
    with FaceDB(args.src, create=False, key=key) as src, FaceDB(args.dst, key=dst_key) as dst:
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


@commands.add("new-key", "print a new random encryption key for a gallery (keep it apart from it)")
def cmd_new_key(args: argparse.Namespace) -> int:
    """``facedb new-key``: the key on stdout, to be saved in a file only its user reads."""
    from facedb.encryption import new_key

    print(new_key())
    if sys.stdout.isatty():
        print(
            "save it in a file only the gallery's user can read (`facedb new-key > key; chmod 600 key`), "
            "apart from the gallery; then `facedb rekey --new-key-file key` encrypts a gallery",
            file=sys.stderr,
        )
    return 0


def _rekey_arguments(p: argparse.ArgumentParser) -> None:
    to = p.add_mutually_exclusive_group(required=True)
    to.add_argument("--new-key-file", help="a file holding the key to seal the gallery with from now")
    to.add_argument("--to-plaintext", action="store_true", help="decrypt the gallery (keep no key)")


@commands.add(
    "rekey",
    "encrypt a gallery, change its key, or decrypt it (give the current key with --key-file)",
    _rekey_arguments,
)
def cmd_rekey(args: argparse.Namespace) -> int:
    """``facedb rekey``."""
    new = None if args.to_plaintext else _key(args, "new_key_file")
    with _open_db(args) as db:
        rewritten = db.rekey(new)
        state = "decrypted" if new is None else "encrypted with the new key"
        print(
            f"{db.location}: {state} ({rewritten} stored templates and thumbnails rewritten, index rebuilt)"
        )
    return 0


def _reembed_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--to",
        dest="to_pack",
        metavar="PACK",
        help="the pack to move to: buffalo_s or sface (`--pack PACK` says the same here: the gallery "
        "itself is opened with its own pack)",
    )
    p.add_argument("--batch", type=int, default=256, help="faces per transaction (default 256)")
    p.add_argument(
        "--drop-missing",
        action="store_true",
        help="delete what keeps no crop to re-embed (listed) instead of refusing",
    )


@commands.add(
    "reembed",
    "move the gallery to another model pack, keeping its people (resumable)",
    _reembed_arguments,
)
def cmd_reembed(args: argparse.Namespace) -> int:
    """``facedb reembed --pack PACK``: every face's template made anew from its kept crop."""
    target = args.to_pack or getattr(args, "pack", None)
    if not target:
        raise ConfigError("reembed needs the pack to move to: --pack PACK (buffalo_s or sface)")
    args.pack = None  # the gallery opens with its own pack
    with _open_db(args) as db:
        before = db.engine.pack
        bar: _Progress | None = None

        def progress(done: int, total: int) -> None:
            nonlocal bar
            if bar is None:
                bar = _Progress(total, "reembed")
                bar.done = done - 1
            while bar.done < done:
                bar.step(f"{done} faces")

        report = db.reembed(target, batch=args.batch, drop_missing=args.drop_missing, progress=progress)
        if bar is not None:
            bar.close()
        resumed = f", {report.resumed} of them made by an earlier run" if report.resumed else ""
        print(
            f"{db.location}: moved from {before} to {report.pack}: {report.faces} face(s) re-embedded"
            f"{resumed} in {report.seconds:.1f} s; index rebuilt"
        )
        for line in report.dropped:
            print(f"  dropped: {line}")
        if report.visits_cleared:
            print(f"  {report.visits_cleared} visit(s) keep their record without a template")
    return 0

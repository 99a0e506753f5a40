"""The command line as a newcomer types it (issue 13): gallery options before or after the
command, --version, a face listing, and "not found" exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from facedb import __version__
from facedb.cli import build_parser, main


def test_db_after_the_command_is_taken() -> None:
    args = build_parser().parse_args(["people", "--db", "X", "--threshold", "0.5"])
    assert args.db == "X" and args.threshold == 0.5
    args = build_parser().parse_args(["--db", "A", "people", "--db", "B"])
    assert args.db == "B"  # after the command wins
    args = build_parser().parse_args(["--db", "A", "--read-only", "people"])
    assert args.db == "A" and args.read_only is True
    args = build_parser().parse_args(["people"])
    assert args.db is None and args.read_only is False and args.threshold is None


def test_serve_still_takes_read_only() -> None:
    assert build_parser().parse_args(["serve", "--read-only"]).read_only is True


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as e:
        main(["--version"])
    assert e.value.code == 0
    assert capsys.readouterr().out.strip() == f"facedb {__version__}"


def test_faces_lists_ids_and_remove_face_of_a_missing_id_is_not_found(
    tmp_path: Path, faces_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = str(tmp_path / "g")
    photo = str(faces_dir / "gallery/obama/obama.jpg")
    assert main(["enroll", "obama", photo, "--db", db]) == 0
    capsys.readouterr()
    assert main(["faces", "obama", "--db", db, "--json"]) == 0
    (face,) = json.loads(capsys.readouterr().out)
    assert face["image"] == "obama.jpg" and isinstance(face["id"], int) and face["created_at"]
    assert main(["faces", "obama", "--db", db]) == 0
    assert str(face["id"]) in capsys.readouterr().out
    assert main(["remove-face", str(face["id"] + 1000), "--db", db]) == 4
    assert "facedb faces" in capsys.readouterr().err
    # The last face of a person is the person: `--last`, or `remove` them.
    assert main(["remove-face", str(face["id"]), "--db", db]) == 3
    assert "last face of person" in capsys.readouterr().err
    assert main(["remove-face", str(face["id"]), "--last", "--db", db]) == 0


def test_identify_answers_the_good_photos_of_a_batch_with_a_bad_one(
    tmp_path: Path, faces_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = str(tmp_path / "g")
    assert main(["enroll", "obama", str(faces_dir / "gallery/obama/obama.jpg"), "--db", db]) == 0
    capsys.readouterr()
    good, missing = str(faces_dir / "probes/obama1.jpg"), str(tmp_path / "missing.jpg")
    status = main(["identify", good, missing, "--db", db])
    out, err = capsys.readouterr()
    assert status != 0
    assert "obama (id" in out and "missing.jpg" in err
    status = main(["identify", missing, good, "--db", db, "--json"])
    assert status != 0
    doc = json.loads(capsys.readouterr().out)
    assert [d["image"] for d in doc] == [missing, good]
    assert doc[0]["error"]["code"] == "image_not_found" and "faces" not in doc[0]
    assert doc[1]["faces"][0]["person"]["name"] == "obama"


def test_attendance_and_keys_list_print_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = str(tmp_path / "g")
    assert main(["keys", "create", "--scope", "read", "--name", "door", "--db", db]) == 0
    capsys.readouterr()
    assert main(["keys", "list", "--json", "--db", db]) == 0
    (key,) = json.loads(capsys.readouterr().out)
    assert key["name"] == "door" and key["scope"] == "read" and key["revoked_at"] is None
    assert "secret" not in key
    assert main(["attendance", "--json", "--db", db]) == 0
    assert json.loads(capsys.readouterr().out) == []


def test_every_argument_has_help() -> None:
    import argparse

    missing = []

    def walk(parser: argparse.ArgumentParser, command: str) -> None:
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, sub in action.choices.items():
                    walk(sub, name)
            elif not action.help:
                missing.append((command, action.dest))

    walk(build_parser(), "facedb")
    assert not missing


def test_enroll_import_and_copy_print_json(
    tmp_path: Path, faces_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = str(tmp_path / "g")
    assert main(["enroll", "obama", str(faces_dir / "gallery/obama/obama.jpg"), "--db", db, "--json"]) == 0
    enrolled = json.loads(capsys.readouterr().out)
    assert enrolled["name"] == "obama" and len(enrolled["added"]) == 1
    assert main(["import", str(faces_dir / "gallery"), "--db", db, "--json"]) == 0
    imported = json.loads(capsys.readouterr().out)
    assert imported["folders"] >= 2 and ["obama.jpg", "already enrolled for this person"] in [
        [s[0].rsplit("/", 1)[-1], s[1]] for s in imported["skipped"]
    ]
    assert main(["copy", db, str(tmp_path / "copy"), "--json"]) == 0
    copied = json.loads(capsys.readouterr().out)
    assert copied["identical"] is True and copied["faces_copied"] == copied["faces"]


def test_enroll_never_takes_a_name_for_an_id_or_makes_a_namesake_unasked(
    tmp_path: Path, faces_dir: Path, wheel_photos: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """After POST /people made a second "Jeff Bezos", the CLI was stuck: `enroll NAME` said two
    people have that name, "add faces by id", but no command did; `enroll 9 photo` made a person
    named "9"."""
    db = str(tmp_path / "g")
    obama, biden = str(faces_dir / "gallery/obama/obama.jpg"), str(faces_dir / "gallery/biden/biden.jpg")
    yao = str(wheel_photos / "yaoming.jpg")
    assert main(["enroll", "obama", obama, "--db", db]) == 0
    assert main(["enroll", "biden", biden, "--db", db, "--json"]) == 0
    capsys.readouterr()
    # A second "obama" only when asked for; then `enroll obama` asks for an id, and --id adds.
    assert main(["enroll", "--namesake", "obama", yao, "--db", db, "--json"]) == 0
    second = json.loads(capsys.readouterr().out)["id"]
    assert main(["enroll", "obama", str(faces_dir / "gallery/obama/obama2.jpg"), "--db", db]) == 4
    assert "ids 1, 3" in capsys.readouterr().err
    assert main(["enroll", "--id", "1", str(faces_dir / "gallery/obama/obama2.jpg"), "--db", db]) == 0
    assert "obama (id 1): 1 face(s) added, 2 in all" in capsys.readouterr().out
    assert second == 3
    # "2" is biden's id, nobody's name: refused, naming both ways out.
    assert main(["enroll", "2", yao, "--db", db]) == 2
    err = capsys.readouterr().err
    assert "--id 2" in err and "--namesake 2" in err and "'biden'" in err
    assert main(["enroll", "--id", "x", yao, "--db", db]) == 2


def test_verify_with_a_gallery_answers_at_its_threshold_in_force(
    tmp_path: Path, faces_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """After calibrate moved the threshold, identify named people at the new one while the
    CLI's verify --db still answered at the model's 0.47."""
    import facedb

    from .helpers import unit_rows

    folder = tmp_path / "g"
    with facedb.FaceDB(folder) as db:
        db.import_embeddings([f"p{i}" for i in range(300)], unit_rows(7, 300))
        calibrated = db.calibrate(target_fpir=0.01).threshold
    assert abs(calibrated - 0.47) > 0.01, calibrated  # else this test could not tell
    a, b = str(faces_dir / "gallery/obama/obama.jpg"), str(faces_dir / "closeups/obama.jpg")
    assert main(["verify", a, b, "--json", "--db", str(folder)]) == 0
    assert json.loads(capsys.readouterr().out)["threshold"] == pytest.approx(calibrated)
    assert main(["verify", a, b, "--json"]) == 0  # no gallery: the model's
    assert json.loads(capsys.readouterr().out)["threshold"] == pytest.approx(0.47)
    assert main(["verify", a, b, "--db", str(tmp_path / "typo")]) == 6  # never an empty gallery

"""The `facedb` command through its real entry point (a subprocess)."""

from __future__ import annotations

import json
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import pytest

import facedb

from .helpers import CHILD_ENV, FACEDB, IDENTIFICATION_FIELDS, run_command
from .helpers import run_cli as run


def ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, result.stderr
    return result.stdout


def one_error_line(result: subprocess.CompletedProcess[str], status: int, *needles: str) -> str:
    assert result.returncode == status, (result.returncode, result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("facedb: error: "), result.stderr
    assert "Traceback" not in result.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


@pytest.fixture(scope="module")
def gallery(tmp_path_factory: pytest.TempPathFactory, faces_dir: Path) -> Path:
    db = tmp_path_factory.mktemp("cli") / "gallery"
    out = ok(run("import", str(faces_dir / "gallery"), db=db))
    assert "9 face(s) added" in out and "5 people" in out
    return db


def test_import_again_skips_what_is_enrolled(gallery: Path, faces_dir: Path) -> None:
    out = ok(run("import", str(faces_dir / "gallery"), db=gallery))
    assert "0 face(s) added, 9 photo(s) skipped" in out
    assert out.count("already enrolled for this person") == 9


def test_import_reports_refused_photos_and_enrolls_the_rest(tmp_path: Path, faces_dir: Path) -> None:
    folder = tmp_path / "people"
    (folder / "obama").mkdir(parents=True)
    shutil.copy(faces_dir / "gallery/obama/obama.jpg", folder / "obama" / "a.jpg")
    shutil.copy(faces_dir / "probes/obama_and_biden.jpg", folder / "obama" / "group.jpg")
    (folder / "obama" / "broken.jpg").write_bytes(b"not a jpeg")
    out = ok(run("import", str(folder), db=tmp_path / "g"))
    assert "1 face(s) added, 2 photo(s) skipped" in out
    assert "group.jpg: 3 faces found" in out and "broken.jpg" in out


def test_identify_json(gallery: Path, faces_dir: Path) -> None:
    doc = json.loads(ok(run("identify", str(faces_dir / "probes/obama_and_biden.jpg"), "--json", db=gallery)))
    (entry,) = doc
    assert entry["image"].endswith("obama_and_biden.jpg")
    names = [f["person"]["name"] if f["person"] else None for f in entry["faces"]]
    assert names == ["biden", "obama", None]
    face = entry["faces"][0]
    assert set(face) == IDENTIFICATION_FIELDS
    assert [f["status"] for f in entry["faces"]] == ["named", "named", "unknown"]
    assert face["status"] == "named" and 0 < face["confidence"] <= 1
    assert entry["faces"][2]["status"] == "unknown" and entry["faces"][2]["confidence"] is None
    assert face["quality_reasons"] == [] and 0.5 <= face["quality"] <= 1
    assert set(face["person"]) == {"id", "name"} and len(face["bbox"]) == 4
    assert set(face["candidates"][0]) == {"id", "name", "similarity"}
    # A strong read: the same answer from a local gallery, which is always this fresh.
    photo = str(faces_dir / "probes/obama_and_biden.jpg")
    strong = run("identify", photo, "--json", "--consistency", "strong", db=gallery)
    assert json.loads(ok(strong))[0]["faces"] == entry["faces"]


def test_identify_says_poor_quality(gallery: Path, faces_dir: Path, tmp_path: Path) -> None:
    soft = tmp_path / "soft.png"
    image = cv2.imread(str(faces_dir / "gallery/obama/obama.jpg"))
    cv2.imwrite(str(soft), cv2.GaussianBlur(image, (0, 0), sigmaX=6.0))
    (entry,) = json.loads(ok(run("identify", str(soft), "--json", db=gallery)))
    (face,) = entry["faces"]
    assert face["status"] == "poor_quality" and face["person"] is None
    assert face["quality_reasons"] == ["blurred"] and face["quality"] < 0.5
    assert face["candidates"][0]["name"] == "obama"
    assert "poor quality (blurred)" in ok(run("identify", str(soft), db=gallery))


def test_identify_table_and_drawing(gallery: Path, faces_dir: Path, tmp_path: Path) -> None:
    drawn = tmp_path / "out.jpg"
    out = ok(run("identify", str(faces_dir / "probes/kit_with_rose.jpg"), "--draw", str(drawn), db=gallery))
    assert "rose_leslie (id" in out and "kit_harington (id" in out
    assert drawn.stat().st_size > 10_000
    folder = tmp_path / "drawn"
    ok(
        run(
            "identify",
            str(faces_dir / "probes/obama1.jpg"),
            str(faces_dir / "closeups/biden.jpg"),
            "--draw",
            str(folder),
            db=gallery,
        )
    )
    assert sorted(p.name for p in folder.iterdir()) == ["biden.jpg", "obama1.jpg"]


@pytest.mark.timeout(120)
def test_draw_takes_a_folder_for_several_photos_and_refuses_a_picture_name(
    gallery: Path, faces_dir: Path, tmp_path: Path
) -> None:
    """`identify a.jpg b.jpg --draw out.jpg` made a folder named out.jpg/."""
    photos = [str(faces_dir / "probes/obama1.jpg"), str(faces_dir / "probes/kit_with_rose.jpg")]
    line = one_error_line(run("identify", *photos, "--draw", str(tmp_path / "out.jpg"), db=gallery), 2)
    assert "--draw" in line and "2 photos" in line and "folder" in line
    assert not (tmp_path / "out.jpg").exists()
    one_error_line(run("identify", photos[0], "--draw", str(tmp_path / "out.txt"), db=gallery), 2, "--draw")
    # One photo into a folder: the folder is the same rule as for several.
    ok(run("identify", photos[0], "--draw", str(tmp_path / "one"), db=gallery))
    assert [p.name for p in (tmp_path / "one").iterdir()] == ["obama1.jpg"]
    # Two photos of one name: two drawings, not one over the other.
    (tmp_path / "copy").mkdir()
    shutil.copy(photos[0], tmp_path / "copy" / "obama1.jpg")
    ok(
        run(
            "identify",
            photos[0],
            str(tmp_path / "copy" / "obama1.jpg"),
            "--draw",
            str(tmp_path / "two"),
            db=gallery,
        )
    )
    assert sorted(p.name for p in (tmp_path / "two").iterdir()) == ["obama1-2.jpg", "obama1.jpg"]


@pytest.mark.timeout(120)
def test_identify_takes_folders_as_discover_does(gallery: Path, faces_dir: Path, tmp_path: Path) -> None:
    """`identify probes/` said "is a directory" although `discover probes/` takes it."""
    out = ok(run("identify", str(faces_dir / "probes"), db=gallery))
    assert out.count(" face(s)") == 5
    assert f"{faces_dir / 'probes' / 'obama_and_biden.jpg'}: 3 face(s)" in out
    # Recursively; each drawing where its photo is inside the folder (two x.jpg stay two).
    tree = tmp_path / "photos"
    (tree / "a").mkdir(parents=True)
    (tree / "b").mkdir()
    shutil.copy(faces_dir / "probes/obama1.jpg", tree / "a" / "x.jpg")
    shutil.copy(faces_dir / "probes/kit_with_rose.jpg", tree / "b" / "x.jpg")
    (tree / "notes.txt").write_text("not a photo")
    doc = json.loads(ok(run("identify", str(tree), "--json", "--draw", str(tmp_path / "drawn"), db=gallery)))
    assert [d["image"] for d in doc] == [str(tree / "a" / "x.jpg"), str(tree / "b" / "x.jpg")]
    assert (tmp_path / "drawn" / "a" / "x.jpg").is_file() and (tmp_path / "drawn" / "b" / "x.jpg").is_file()
    (tmp_path / "empty").mkdir()
    one_error_line(run("identify", str(tmp_path / "empty"), db=gallery), 2, "no photo in")


@pytest.mark.timeout(120)
def test_a_missing_photo_of_a_batch_is_named_once(gallery: Path, faces_dir: Path, tmp_path: Path) -> None:
    good, missing = str(faces_dir / "probes/obama1.jpg"), str(tmp_path / "missing.jpg")
    result = run("identify", good, missing, db=gallery)
    assert result.returncode == 2 and "obama (id" in result.stdout
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("facedb: error: ") and line.count("missing.jpg") == 1, line
    line = one_error_line(
        run("enroll", "obama", good, missing, db=tmp_path / "g"), 3, "1 of 2 photo(s) refused"
    )
    assert line.count("missing.jpg") == 1, line


@pytest.mark.timeout(120)
def test_a_group_photo_s_refusal_names_the_cli_option(tmp_path: Path, faces_dir: Path) -> None:
    """It said `largest_face=True`, Python's keyword, to a user of the command line."""
    group = str(faces_dir / "probes/obama_and_biden.jpg")
    line = one_error_line(run("enroll", "x", group, db=tmp_path / "g"), 3, "3 faces found", "--largest-face")
    assert "largest_face" not in line
    folder = tmp_path / "people" / "x"
    folder.mkdir(parents=True)
    shutil.copy(group, folder / "group.jpg")
    out = ok(run("import", str(tmp_path / "people"), db=tmp_path / "g"))
    assert "(or --largest-face)" in out and "largest_face" not in out
    doc = json.loads(ok(run("import", str(tmp_path / "people"), "--json", db=tmp_path / "g")))
    assert "(or --largest-face)" in doc["skipped"][0][1]


def test_people_stats_check_verify(gallery: Path, faces_dir: Path) -> None:
    people = json.loads(ok(run("people", "--json", db=gallery)))
    assert [p["name"] for p in people] == ["alex_lacamoire", "biden", "kit_harington", "obama", "rose_leslie"]
    stats = json.loads(ok(run("stats", "--json", db=gallery)))
    assert stats["people"] == 5 and stats["faces"] == 9 and stats["index"]
    # Where the prior was measured, in words a user has: not the project's ../shared folder.
    assert "labelled faces" in stats["prior"] and "shared" not in ok(run("stats", db=gallery))
    assert "consistent" in ok(run("check", db=gallery))
    out = ok(run("verify", str(faces_dir / "gallery/obama/obama.jpg"), str(faces_dir / "probes/obama1.jpg")))
    assert out.startswith("same person")
    doc = json.loads(
        ok(
            run(
                "verify",
                "--json",
                str(faces_dir / "gallery/obama/obama.jpg"),
                str(faces_dir / "gallery/biden/biden2.jpg"),
            )
        )
    )
    assert doc["same_person"] is False
    assert "rebuilt the index: 9 templates" in ok(run("rebuild-index", db=gallery))


def test_enroll_rename_remove(tmp_path: Path, faces_dir: Path) -> None:
    db = tmp_path / "g"
    out = ok(
        run(
            "enroll",
            "Barack",
            str(faces_dir / "gallery/obama/obama.jpg"),
            "--metadata",
            '{"id": "E1"}',
            db=db,
        )
    )
    assert "enrolled Barack (id 1)" in out
    ok(run("rename", "Barack", "Barack Obama", db=db))
    people = json.loads(ok(run("people", "--json", db=db)))
    assert people[0]["name"] == "Barack Obama" and people[0]["metadata"] == {"id": "E1"}
    assert "erased 1 template" in ok(run("remove", "1", db=db))
    assert json.loads(ok(run("people", "--json", db=db))) == []


def test_database_from_environment(tmp_path: Path, faces_dir: Path) -> None:
    env = {"FACEDB_DB": str(tmp_path / "envdb")}
    ok(run("enroll", "x", str(faces_dir / "gallery/obama/obama.jpg"), env=env))
    assert (tmp_path / "envdb" / "gallery.db").is_file()


@pytest.mark.parametrize(
    ("args", "status", "needle"),
    [
        (["identify", "/nonexistent/photo.jpg"], 2, "/nonexistent/photo.jpg"),
        (["remove", "nobody"], 4, "no person named 'nobody'"),
        (["rename", "999", "x"], 4, "no person with id or name '999'"),
        (["enroll", "x", "{wall}"], 3, "wall.png: no face found"),
        (["enroll", "x", "--metadata", "[1]", "{wall}"], 2, "--metadata must be a JSON object"),
        (["identify", "-k", "0", "{wall}"], 2, "k must be an integer from 1 to 4096"),
        (["identify", "-k", "5000", "{wall}"], 2, "k must be an integer from 1 to 4096"),
        (["identify", "--consistency", "weak", "{wall}"], 2, "consistency must be 'strong' or left out"),
        (["calibrate"], 2, "give a target"),
        (["calibrate", "--target-fpir", "0.01", "--target-fmr", "1e-4"], 2, "not both"),
        (["calibrate", "--target-fpir", "1.5"], 2, "target_fpir"),
    ],
)
def test_errors_are_one_line(tmp_path: Path, args: list[str], status: int, needle: str) -> None:
    import cv2
    import numpy as np

    wall = tmp_path / "wall.png"
    cv2.imwrite(str(wall), np.full((100, 100, 3), 100, dtype=np.uint8))
    args = [a.replace("{wall}", str(wall)) for a in args]
    facedb.FaceDB(tmp_path / "g").close()
    one_error_line(run(*args, db=tmp_path / "g"), status, needle)


@pytest.mark.parametrize(
    "command", [["people"], ["identify", "x.jpg"], ["stats"], ["remove", "1"], ["serve"]]
)
def test_a_mistyped_db_is_an_error_not_a_new_empty_gallery(tmp_path: Path, command: list[str]) -> None:
    """`--db cgg identify` (meant `cg`) used to create an empty gallery and answer unknown."""
    one_error_line(run(*command, db=tmp_path / "cgg"), 6, "no gallery at")
    assert not (tmp_path / "cgg").exists()


def test_no_gallery_is_made_among_photos(tmp_path: Path, faces_dir: Path) -> None:
    photos = tmp_path / "photos"
    shutil.copytree(faces_dir / "gallery" / "obama", photos)
    one_error_line(run("enroll", "x", str(photos / "obama.jpg"), db=photos), 6, "holds photos")
    assert not (photos / "gallery.db").exists()


def test_identify_against_an_empty_gallery_says_so(tmp_path: Path, faces_dir: Path) -> None:
    facedb.FaceDB(tmp_path / "g").close()
    result = run("identify", str(faces_dir / "probes/obama1.jpg"), db=tmp_path / "g")
    assert result.returncode == 0 and "holds nobody" in result.stderr


def test_ambiguous_name_lists_ids(tmp_path: Path) -> None:
    db = tmp_path / "g"
    code = (
        "import numpy as np, facedb\n"
        f"with facedb.FaceDB({str(db)!r}) as db:\n"
        "    db.import_embeddings(['Sam', 'Sam'], np.eye(2, 512))\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120, env=CHILD_ENV)
    one_error_line(run("remove", "Sam", db=db), 4, "2 people are named 'Sam' (ids 1, 2)")


def test_missing_database_setting(tmp_path: Path) -> None:
    env = {k: v for k, v in CHILD_ENV.items() if k != "FACEDB_DB"}
    result = run_command([str(FACEDB), "people"], env=env, timeout=60)
    one_error_line(result, 2, "--db")


def test_newer_gallery_is_exit_6(tmp_path: Path) -> None:
    import sqlite3

    db = tmp_path / "g"
    facedb.FaceDB(db).close()
    with sqlite3.connect(db / "gallery.db") as conn:
        conn.execute("update alembic_version set version_num = 'zzzz'")
    one_error_line(run("people", db=db), 6, "newer facedb")


def test_enrolling_someone_else_under_a_name_is_refused_in_the_cli_s_terms(
    tmp_path: Path, faces_dir: Path
) -> None:
    """The issue's report: `enroll obama obama.jpg obama2.jpg`, then `enroll obama biden.jpg`
    exited 0 and Biden was Obama from then on."""
    db = tmp_path / "g"
    obama = faces_dir / "gallery/obama"
    ok(run("enroll", "obama", str(obama / "obama.jpg"), str(obama / "obama2.jpg"), db=db))
    line = one_error_line(
        run("enroll", "obama", str(faces_dir / "gallery/biden/biden.jpg"), db=db),
        3,
        "does not look like obama's other photos",
        "(--force to enroll)",
    )
    assert "force=True" not in line
    ok(run("enroll", "obama", str(faces_dir / "gallery/biden/biden.jpg"), "--force", db=db))


def test_calibrate_and_the_threshold_in_force(tmp_path: Path) -> None:
    """A gallery of three is calibrated from the model's prior, and says so; stats shows the
    threshold in force and where it came from."""
    import numpy as np

    with facedb.FaceDB(tmp_path / "g") as db:
        db.import_embeddings(["a", "b", "c"], np.eye(3, 512))
    before = json.loads(ok(run("stats", "--json", db=tmp_path / "g")))
    # Before a calibration: the prior's FPIR 1% threshold for 3 people (facedb.calibration.in_force).
    assert before["threshold"] == pytest.approx(0.2864, abs=1e-3) and before["threshold_source"] == "prior"
    assert "3 people" in before["threshold_rule"] and before["estimated_fpir"] == pytest.approx(0.01)
    doc = json.loads(ok(run("calibrate", "--target-fmr", "1e-3", "--json", db=tmp_path / "g")))
    assert doc["target_kind"] == "fmr" and doc["target"] == 1e-3 and doc["source"] == "prior"
    assert doc["people"] == 3 and "3 people" in doc["note"]
    after = json.loads(ok(run("stats", "--json", db=tmp_path / "g")))
    assert after["threshold"] == pytest.approx(doc["threshold"], abs=1e-4)
    assert after["threshold_source"] == "calibrated"
    assert after["calibration_target"] == "fmr 0.001" and after["calibrated_people"] == 3
    table = ok(run("calibrate", "--target-fpir", "0.01", db=tmp_path / "g"))
    assert "threshold" in table and "note: the gallery has 3 people" in table
    explicit = json.loads(ok(run("--threshold", "0.8", "stats", "--json", db=tmp_path / "g")))
    assert explicit["threshold"] == 0.8 and explicit["threshold_source"] == "explicit"


def test_audit_and_reject_a_face(tmp_path: Path, faces_dir: Path) -> None:
    db = tmp_path / "g"
    ok(run("import", str(faces_dir / "gallery"), db=db))
    assert ok(run("audit", db=db)).strip() == "no suspect enrollments"
    ok(run("enroll", "obama", str(faces_dir / "closeups/biden.jpg"), "--force", db=db))
    assert "closer_to_other: face" in ok(run("audit", db=db))
    (finding,) = json.loads(ok(run("audit", "--json", db=db)))["findings"]
    assert finding["kind"] == "closer_to_other" and finding["person"]["name"] == "obama"
    assert finding["other"]["name"] == "biden"
    face = finding["face_id"]
    assert finding["action"] == f"facedb reject --face {face}"
    answer = json.loads(ok(run("reject", "--face", str(face), "--json", db=db)))
    assert answer["face_id"] == face and answer["rejection_id"] >= 1
    assert json.loads(ok(run("audit", "--json", db=db))) == {"findings": []}
    one_error_line(run("reject", "--face", str(face), db=db), 4, f"no face with id {face}")
    one_error_line(run("reject", "--face", str(face), "obama", db=db), 2, "takes no person")
    assert run("reject", db=db).returncode == 2  # --face or --sighting


@pytest.mark.timeout(180)
def test_audit_s_fixes_run_as_printed(tmp_path: Path, faces_dir: Path) -> None:
    """audit suggested `facedb remove 7`, which fails without the --db the audit was given."""
    db = tmp_path / "my gallery"
    ok(run("import", str(faces_dir / "gallery"), db=db))
    ok(run("enroll", "obama", str(faces_dir / "closeups/biden.jpg"), "--force", db=db))
    fixes = [line.split("fix: ", 1)[1] for line in ok(run("audit", db=db)).splitlines() if "fix: " in line]
    assert fixes and all(fix.startswith("facedb --db ") for fix in fixes), fixes
    env = {k: v for k, v in CHILD_ENV.items() if k != "FACEDB_DB"}
    command = shlex.split(fixes[0])
    assert command[:3] == ["facedb", "--db", str(db)]
    ok(run_command([str(FACEDB), *command[1:]], env=env))
    assert ok(run("audit", db=db)).strip() == "no suspect enrollments"


def log_visit(db: Path, photo: Path) -> int:
    """Logs one visit of the face in `photo` (three frames) as a watch would; its id."""
    from datetime import UTC, datetime

    from facedb.attendance import Watcher

    with facedb.FaceDB(db) as gallery:
        found = gallery.identify(photo)
        watcher = Watcher(gallery, "door")
        for i in range(3):
            watcher.observe(datetime(2026, 1, 1, 9, 0, i, tzinfo=UTC), found)
        (visit,) = watcher.logged
        return visit.id


def test_reject_and_confirm_a_sighting(tmp_path: Path, wheel_photos: Path) -> None:
    db = tmp_path / "g"
    photo = wheel_photos / "yaoming.jpg"
    ok(run("enroll", "Yao Ming", str(photo), db=db))
    seen = log_visit(db, photo)
    one_error_line(run("confirm", "--sighting", "999", "Yao Ming", db=db), 4, "no sighting with id 999")
    answer = json.loads(ok(run("reject", "--sighting", str(seen), "--json", db=db)))
    assert answer["sighting_id"] == seen
    (identified,) = json.loads(ok(run("identify", "--json", str(photo), db=db)))
    assert identified["faces"][0]["person"] is None  # not him any more
    stranger = log_visit(db, photo)  # now a stranger's visit
    confirmed = json.loads(ok(run("confirm", "--sighting", str(stranger), "Yao Ming", "--json", db=db)))
    assert confirmed["name"] == "Yao Ming" and confirmed["face_count"] == 2
    (identified,) = json.loads(ok(run("identify", "--json", str(photo), db=db)))
    assert identified["faces"][0]["person"]["name"] == "Yao Ming"  # the rejection was withdrawn

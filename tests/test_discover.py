"""Faces nobody has named yet: the grouping (pure, on templates), measured on labelled sets,
and ``discover`` / ``name_group`` / ``dismiss_group`` on real photos, from Python and the CLI."""

from __future__ import annotations

import json
import shutil
from collections.abc import Hashable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

import facedb
from facedb.engine import DEFAULT_THRESHOLD
from facedb.grouping import Grouping, bcubed, pairwise

from .helpers import files_containing, noisy_identities, unit_rows
from .helpers import run_cli as run

pytestmark = pytest.mark.timeout(600)


def group_all(photos: list[tuple[Hashable, list[np.ndarray]]], threshold: float) -> list[Hashable]:
    """Every face's group, photo by photo, after the merge: as discover groups them."""
    g = Grouping(512, threshold)
    found: list[Hashable] = []
    for photo, templates in photos:
        found += g.place_photo(templates, [(photo, i) for i in range(len(templates))], photo=photo)
    joined = dict((gone, kept) for kept, gone in g.merge())

    def root(key: Hashable) -> Hashable:
        while key in joined:
            key = joined[key]
        return key

    return [root(k) for k in found]


# -- the grouping alone ------------------------------------------------------------------------


def test_scores_of_known_groupings() -> None:
    assert bcubed(["a", "a", "b"], [1, 1, 2]) == (1.0, 1.0, 1.0)
    p, r, f = bcubed(["a", "a", "b", "b"], [1, 1, 1, 1])
    assert (p, r) == (0.5, 1.0) and f == pytest.approx(2 / 3)
    assert pairwise(["a", "a", "b", "b"], [1, 2, 3, 4]) == (1.0, 0.0)
    assert pairwise(["a", "a", "b"], [1, 1, 1]) == (1 / 3, 1.0)
    with pytest.raises(facedb.ConfigError):
        bcubed(["a"], [])


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 2**31), st.integers(1, 12), st.floats(0.05, 0.95))
def test_faces_of_one_photo_never_share_a_group(seed: int, n: int, threshold: float) -> None:
    """One photo does not show a person twice: even copies of one template side by side go
    to different groups, and so does a later photo's face that a group already has."""
    rng = np.random.default_rng(seed)
    base = unit_rows(rng, 1)[0]
    g = Grouping(512, threshold)
    faces = [base + 0.01 * unit_rows(rng, 1)[0] for _ in range(n)]
    keys = g.place_photo(faces, list(range(n)), photo="p")
    assert len(set(keys)) == n
    again = g.place_photo([base], ["x"], photo="p")
    assert again == ["x"]
    other = g.place_photo([base], ["y"], photo="q")
    assert other[0] in [*keys, "x"]  # another photo's face joins one of them


def test_merge_joins_one_person_split_early_and_keeps_look_alikes_apart() -> None:
    rng = np.random.default_rng(3)
    person = unit_rows(rng, 1)[0]

    def noisy(centre: np.ndarray, s: float) -> np.ndarray:
        v = centre + s * unit_rows(rng, 1)[0]
        return (v / np.linalg.norm(v)).astype(np.float32)

    g = Grouping(512, 0.47)
    # Two poor faces of one person, too far apart to join: two groups, each growing.
    a, b = noisy(person, 1.3), noisy(person, 1.3)
    assert float(a @ b) < 0.47
    assert g.place(a, "a") == "a" and g.place_photo([b], ["b"], photo="pb") == ["b"]
    for _ in range(3):
        g.join("a", noisy(person, 0.7))
        g.join("b", noisy(person, 0.7))
    assert len(g) == 2
    assert g.merge() in ([("a", "b")], [("b", "a")])
    assert len(g) == 1
    # A look-alike (their true faces 0.55 apart, centroids closer than the threshold) stays a
    # group of their own: merging goes by the faces' mean similarity, not the centroids'.
    twin = 0.55 * person + np.sqrt(1 - 0.55**2) * unit_rows(rng, 1)[0]
    g.add_group("twin", noisy(twin, 0.9))
    for _ in range(7):
        g.join("twin", noisy(twin, 0.9))
    assert float(g.centroid("twin") @ g.centroid(g.keys()[0])) >= 0.47
    assert g.merge() == [] and len(g) == 2


def test_groups_are_resumed_from_their_sums() -> None:
    rng = np.random.default_rng(5)
    rows = unit_rows(rng, 3)
    g = Grouping(512, 0.5)
    g.add_group(7, rows[0] * 3, count=3, photos=["p"])
    assert g.place(rows[0], "new") == 7 and g.count(7) == 4
    assert g.place_photo([rows[0]], ["n2"], photo="p") == ["n2"]  # p's face is in 7 already
    g.rename("n2", 8)
    assert 8 in g and "n2" not in g
    g.remove(8)
    assert g.keys() == [7]
    with pytest.raises(facedb.ConfigError):
        g.add_group(9, np.zeros(512))
    with pytest.raises(facedb.ConfigError):
        Grouping(512, 0.0)


def labelled_reference(
    reference: dict[str, Any], expected: dict[str, list[str]]
) -> list[tuple[str, list[np.ndarray], list[str]]]:
    """Every photo of ../shared/faces and the wheel's, with each face's template (insightface's
    own) and identity: gallery folders and expected.csv name them, each 'unknown' face and
    each of players.jpg's 22 is somebody of their own (Yao Ming is the one yaoming.jpg shows)."""
    images = reference["images"]
    photos = []
    for name, entry in images.items():
        templates = [np.asarray(f["embedding"], dtype=np.float32) for f in entry["faces"]]
        if name.startswith("gallery/"):
            labels = [name.split("/")[1]] * len(templates)
        elif name in expected:
            labels = [who if who != "unknown" else f"{name}#{i}" for i, who in enumerate(expected[name])]
        elif name.endswith("yaoming.jpg"):
            labels = ["yao"]
        else:
            labels = [f"{name}#{i}" for i in range(len(templates))]
        assert len(labels) == len(templates), name
        photos.append((name, templates, labels))
    yao = next(t[0] for n, t, _ in photos if n.endswith("yaoming.jpg"))
    players = next(p for p in photos if p[0].endswith("players.jpg"))
    assert len(players[1]) == 22
    players[2][int(np.argmax([t @ yao for t in players[1]]))] = "yao"
    return photos


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_grouping_of_the_real_photos(
    reference: dict[str, Any], expected: dict[str, list[str]], seed: int
) -> None:
    """../shared/faces, players.jpg's 22 different people and gdp.jpg, in any order: BCubed
    F and pairwise precision and recall at least 0.95 at the default threshold."""
    photos = labelled_reference(reference, expected)
    order = np.random.default_rng(seed).permutation(len(photos))
    truth = [label for i in order for label in photos[i][2]]
    found = group_all([(photos[i][0], photos[i][1]) for i in order], DEFAULT_THRESHOLD)
    precision, recall = pairwise(truth, found)
    assert bcubed(truth, found)[2] >= 0.95 and precision >= 0.95 and recall >= 0.95, (precision, recall)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_grouping_of_synthetic_identities(seed: int) -> None:
    """400 identities in clusters of look-alikes, 1 to 8 noisy templates each (about 1,800):
    BCubed F and pairwise precision and recall at least 0.95."""
    templates, labels = noisy_identities(seed, 400)
    found = group_all([(i, [t]) for i, t in enumerate(templates)], DEFAULT_THRESHOLD)
    precision, recall = pairwise(labels.tolist(), found)
    assert bcubed(labels.tolist(), found)[2] >= 0.95 and precision >= 0.95 and recall >= 0.95, (
        precision,
        recall,
    )


# -- discover on real photos -----------------------------------------------------------------


@pytest.fixture
def photos(tmp_path: Path, faces_dir: Path) -> Path:
    """A pile of unlabelled photos: the gallery's and the probes, in one folder tree."""
    pile = tmp_path / "pile"
    for sub in ("gallery", "probes"):
        for p in (faces_dir / sub).rglob("*"):
            if p.is_file():
                target = pile / sub / p.relative_to(faces_dir / sub).as_posix().replace("/", "_")
                target.parent.mkdir(parents=True, exist_ok=True)
                target.symlink_to(p)
    return pile


def identity_of(photo: str) -> str:
    """Whose face a gallery photo (its folder) or a one-person probe (its name) shows."""
    path = Path(photo)
    for who in ("alex_lacamoire", "biden", "kit_harington", "obama", "rose_leslie"):
        if path.parent.name == who or (path.parent.name == "probes" and path.name.startswith(who)):
            return who
    return path.name


def test_discover_names_the_enrolled_groups_the_rest_and_extends_later(
    tmp_path: Path, photos: Path, faces_dir: Path
) -> None:
    db = facedb.FaceDB(tmp_path / "g")
    db.enroll("obama", faces_dir / "gallery/obama/obama.jpg")
    seen: list[tuple[int, int]] = []
    first = db.discover([photos / "gallery"], progress=lambda done, total: seen.append((done, total)))
    assert seen[-1] == (9, 9) and first.photos == 9 and first.already == 0
    assert {n.person.name for n in first.named} == {"obama"}  # obama's two photos: named
    assert sorted(identity_of(f.photo) for g in first for f in g.faces).count("obama") == 0
    # One group per other person, each of that person only.
    by_group = {g.id: {identity_of(f.photo) for f in g.faces} for g in first}
    assert sorted(tuple(v) for v in by_group.values()) == [
        ("alex_lacamoire",),
        ("biden",),
        ("kit_harington",),
        ("rose_leslie",),
    ]
    assert all(g.representative is not None and g.representative.has_thumbnail for g in first)
    picture = db.group_thumbnail(first[0].faces[0].id)
    assert picture is not None and picture.startswith(b"\xff\xd8")
    # The probes later: the same people's groups grow, nobody starts over.
    again = db.discover([photos / "gallery", str(photos / "probes" / "*.jpg")])
    assert again.already == 9 and again.photos == 5
    grown = {g.id: g for g in again}
    biden = next(g for g in first if identity_of(g.faces[0].photo) == "biden")
    assert biden.id in grown and grown[biden.id].size == biden.size + 1  # obama_and_biden.jpg
    # The unknown face of obama_and_biden.jpg is somebody of their own.
    assert len(db.groups()) == 5
    kit = next(g for g in db.groups() if identity_of(g.faces[0].photo) == "kit_harington")
    assert kit.size == 4  # john1, john2, johnsnow_test1, kit_with_rose
    db.close()


def test_naming_a_group_enrolls_it_and_dismissing_erases_it(
    tmp_path: Path, photos: Path, faces_dir: Path
) -> None:
    folder = tmp_path / "g"
    db = facedb.FaceDB(folder)
    found = db.discover(photos / "gallery")
    biden = next(g for g in found if {identity_of(f.photo) for f in g.faces} == {"biden"})
    obama = next(g for g in found if {identity_of(f.photo) for f in g.faces} == {"obama"})
    with pytest.raises(facedb.GroupNotFound):
        db.name_group(10_000, "nobody")
    enrolled = db.name_group(biden, "Joe Biden")
    assert enrolled.person.face_count == biden.size and len(enrolled.added) == biden.size
    with pytest.raises(facedb.GroupNotFound):
        db.name_group(biden, "again")
    (r,) = db.identify(faces_dir / "gallery/biden/biden.jpg")
    assert r.person is not None and r.person.name == "Joe Biden"
    # The enrolled faces keep their thumbnails.
    with db.store.read() as s:
        from facedb.models import FaceRow

        assert all(r.thumbnail for r in s.query(FaceRow) if r.person_id == enrolled.person.id)
    # The gate applies: obama's faces are not Joe Biden's.
    with pytest.raises(facedb.EnrollmentRefused, match="Joe Biden"):
        db.name_group(obama, "Joe Biden")
    assert db.group(obama).size == obama.size  # nothing written
    # Dismissing erases the faces' templates and thumbnails.
    with db.store.read() as s:
        from facedb.models import StrangerFaceRow

        rows = [r for r in s.query(StrangerFaceRow) if r.stranger_id == obama.id]
        blobs = [(r.template, r.thumbnail) for r in rows]
    assert blobs and all(
        files_containing(folder, t) and files_containing(folder, p[-300:-100]) for t, p in blobs
    )
    db.dismiss_group(obama)
    for template, picture in blobs:
        assert files_containing(folder, template) == []
        assert files_containing(folder, picture[-300:-100]) == []
    with pytest.raises(facedb.GroupNotFound):
        db.dismiss_group(obama)
    # A dismissed group's photos are not grouped again.
    assert db.discover(photos / "gallery").photos == 0
    db.close()


def test_no_thumbnails_kept_when_turned_off(tmp_path: Path, photos: Path) -> None:
    db = facedb.FaceDB(tmp_path / "g", thumbnails=False)
    found = db.discover(photos / "gallery")
    assert found and not any(f.has_thumbnail for g in found for f in g.faces)
    db.name_group(found[0], "someone")
    assert db.group_thumbnail(found[1].faces[0].id) is None
    with db.store.read() as s:
        from facedb.models import FaceRow

        assert all(r.thumbnail is None for r in s.query(FaceRow))
    db.close()


def test_discover_refuses_what_names_no_photo(tmp_path: Path) -> None:
    db = facedb.FaceDB(tmp_path / "g")
    with pytest.raises(facedb.ImageNotFound, match="no such photo or folder"):
        db.discover(tmp_path / "nothing")
    with pytest.raises(facedb.ImageNotFound, match="no photo matches"):
        db.discover(str(tmp_path / "*.jpg"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(facedb.ImageNotFound, match="no photo in"):
        db.discover(tmp_path / "empty")
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"not a photo")
    result = db.discover(broken)
    assert result.groups == [] and result.skipped and result.skipped[0][0] == str(broken.resolve())
    with pytest.raises(TypeError):
        db.discover([3])  # type: ignore[list-item]
    with pytest.raises(facedb.ConfigError):
        db.name_group("x", "a")  # type: ignore[arg-type]
    db.close()


def test_discover_uploads_by_content(tmp_path: Path, faces_dir: Path) -> None:
    db = facedb.FaceDB(tmp_path / "g")
    data = (faces_dir / "probes/obama_and_biden.jpg").read_bytes()
    first = db.discover([data], photo_names=["party.jpg"])
    assert first.photos == 1 and sum(g.size for g in first) == 3
    assert first[0].faces[0].photo.startswith("party.jpg#")
    assert db.discover([data], photo_names=["party.jpg"]).already == 1
    db.close()


def test_a_photo_discovered_before_is_recognised_by_its_content(tmp_path: Path, faces_dir: Path) -> None:
    """The same files discovered again from another folder grew a group from 5 to 9 faces, and
    an upload of a photo discovered from a folder put another copy into its group."""
    db = facedb.FaceDB(tmp_path / "g")
    first, second = tmp_path / "party", tmp_path / "copies"
    for folder in (first, second):
        folder.mkdir()
        for p in sorted((faces_dir / "gallery" / "biden").iterdir()):
            shutil.copyfile(p, folder / p.name)  # real copies: other paths, same content
    found = db.discover(first)
    assert found.photos == 2 and found.already == 0 and sum(g.size for g in found) == 2
    again = db.discover([second, first / "biden.jpg"])
    assert again.photos == 0 and again.already == 2
    upload = (first / "biden.jpg").read_bytes()
    assert db.discover([upload, upload], photo_names=["a.jpg", "b.jpg"]).already == 1
    assert [g.size for g in db.groups()] == [2]
    db.close()


def test_cli_discover_groups_name_and_dismiss(tmp_path: Path, photos: Path) -> None:
    db = tmp_path / "g"
    shutil.rmtree(photos / "probes")
    typo = run("discover", str(photos), db=db)  # no gallery there: an error, not an empty one
    assert typo.returncode == 6 and "no gallery" in typo.stderr and not db.exists()
    out = run("discover", str(photos), "--json", "--create", db=db)
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert doc["photos"] == 9 and len(doc["groups"]) == 5 and doc["named"] == []
    listed = run("groups", "--json", db=db)
    assert [g["id"] for g in json.loads(listed.stdout)] == [g["id"] for g in doc["groups"]]
    first, second = doc["groups"][0]["id"], doc["groups"][1]["id"]
    named = run("name-group", str(first), "Somebody", db=db)
    assert named.returncode == 0 and "Somebody" in named.stdout
    assert run("dismiss-group", str(second), db=db).returncode == 0
    gone = run("dismiss-group", str(second), db=db)
    assert gone.returncode == 4 and "no group with id" in gone.stderr
    missing = run("discover", str(tmp_path / "nowhere"), db=tmp_path / "other")
    assert missing.returncode == 2 and not (tmp_path / "other").exists()
    plain = run("groups", db=db)
    assert plain.returncode == 0 and len(plain.stdout.strip().splitlines()) == 1 + 3


@pytest.mark.timeout(180)
def test_cli_discover_tells_new_faces_from_what_the_groups_now_hold(tmp_path: Path, photos: Path) -> None:
    """A second discover said "10 face(s) ... 23 in 3 group(s)": the groups' totals, earlier
    faces included, read as if they were this run's."""
    db = tmp_path / "g"
    assert run("discover", str(photos / "gallery"), "--create", db=db).returncode == 0
    doc = json.loads(run("discover", str(photos / "probes"), "--json", db=db).stdout)
    held = sum(len(g["faces"]) for g in doc["groups"])
    assert doc["photos"] == 5 and 0 < doc["grouped"] < held  # earlier faces are in the groups too
    assert doc["faces"] == len(doc["named"]) + doc["grouped"] + sum(
        "face at" in why for _, why in doc["skipped"]
    )
    assert 0 <= doc["new_groups"] < len(doc["groups"])
    (tmp_path / "more").mkdir()
    with Image.open(photos / "probes" / "obama1.jpg") as photo:  # other bytes: a photo not seen
        photo.save(tmp_path / "more" / "obama1.png")
    out = run("discover", str(photos / "probes"), str(tmp_path / "more"), db=db)
    assert out.returncode == 0, out.stderr
    summary = out.stdout.splitlines()[:2]
    assert summary[0].startswith("looked at 1 photo(s) (5 discovered before): 1 new face(s), ")
    assert "1 added to groups" in summary[0], summary
    assert summary[1].startswith("1 group(s) got faces (0 new): ") and summary[1].endswith(" face(s) in all")


def test_players_are_each_a_group_of_their_own(tmp_path: Path, wheel_photos: Path) -> None:
    """players.jpg's 22 different people: every face that is not too poor to tell anybody by
    is a group of its own (one photo never shows a person twice); the poor ones are skipped
    with their reasons. Their faces are under the gate's 48 px: naming one is refused."""
    db = facedb.FaceDB(tmp_path / "g")
    found = db.discover(wheel_photos / "players.jpg")
    poor = [why for _, why in found.skipped]
    assert found.faces == 22 and len(found) + len(poor) == 22 and len(found) >= 15
    assert all(g.size == 1 for g in found) and all("poor quality" in why for why in poor)
    with pytest.raises(facedb.EnrollmentRefused, match="face too small"):
        db.name_group(found[0], "a player")
    db.min_face_size = 32
    wide = max(found, key=lambda g: g.faces[0].bbox[2] - g.faces[0].bbox[0])
    assert db.name_group(wide, "a player").person.face_count == 1
    db.close()

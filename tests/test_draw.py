"""The drawing of identify's answer (`identify --draw`, the web page): where the labels go and
what they say, on players.jpg (22 faces, the demo's picture). Geometry, not pixels."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

import facedb
from facedb.draw import draw_identifications, label_layout, web_label_px
from facedb.results import Identification

Box = tuple[float, float, float, float]


def overlap(a: Box, b: Box) -> float:
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    return w * h if w > 0 and h > 0 else 0.0


def box_of(r: Identification) -> Box:
    x1, y1, x2, y2 = (float(v) for v in r.face.bbox)
    return x1, y1, x2, y2


@pytest.fixture(scope="module")
def players(
    tmp_path_factory: pytest.TempPathFactory, wheel_photos: Path
) -> tuple[tuple[int, int], list[Identification]]:
    """The demo's answer: Yao Ming enrolled, players.jpg identified."""
    with facedb.FaceDB(tmp_path_factory.mktemp("draw") / "g") as db:
        db.enroll("Yao Ming", wheel_photos / "yaoming.jpg")
        results = db.identify(wheel_photos / "players.jpg")
    with Image.open(wheel_photos / "players.jpg") as photo:
        return photo.size, results


@pytest.mark.timeout(120)
@pytest.mark.parametrize("where", ["cli", "web"])
def test_labels_stay_inside_and_cover_no_other_face_nor_label(
    players: tuple[tuple[int, int], list[Identification]], where: str
) -> None:
    size, results = players
    statuses = {r.status for r in results}
    assert {"named", "unknown", "poor_quality"} <= statuses and len(results) == 22
    font_px = web_label_px(*size) if where == "web" else None
    labels = label_layout(size, results, font_px)
    width, height = size
    boxes = [box_of(r) for r in results]
    for label in labels:
        x1, y1, x2, y2 = label.box
        assert 0 <= x1 < x2 <= width and 0 <= y1 < y2 <= height, label
        for i, face in enumerate(boxes):
            assert overlap(label.box, face) == 0, (label, i, face)
        for other in labels:
            if other is not label:
                assert overlap(label.box, other.box) == 0, (label, other)
    labelled = {label.face for label in labels}
    # Everybody who matters is labelled; only a poor-quality face's label may be left out.
    assert all(i in labelled for i, r in enumerate(results) if r.status != "poor_quality")


@pytest.mark.timeout(120)
def test_labels_say_a_similarity_only_for_the_named(
    players: tuple[tuple[int, int], list[Identification]],
) -> None:
    size, results = players
    texts = {label.face: label.text for label in label_layout(size, results)}
    for i, r in enumerate(results):
        if i not in texts:
            continue
        if r.status == "named":
            assert r.person is not None and texts[i] == f"{r.person.name} {r.similarity:.2f}"
        else:
            assert texts[i] in ("unknown", "ambiguous", "poor quality"), texts[i]
    assert any(r.status == "unknown" and r.similarity < 0 for r in results)  # the case shown


@pytest.mark.timeout(120)
def test_a_drawing_is_written(
    players: tuple[tuple[int, int], list[Identification]], wheel_photos: Path, tmp_path: Path
) -> None:
    _, results = players
    engine = facedb.default_engine()
    out = tmp_path / "players.png"
    draw_identifications(engine.decode(wheel_photos / "players.jpg"), results, out)
    with Image.open(out) as drawn, Image.open(wheel_photos / "players.jpg") as photo:
        assert drawn.size == photo.size


@pytest.mark.timeout(120)
def test_the_web_pages_labels_are_numbered_as_its_table_rows(
    players: tuple[tuple[int, int], list[Identification]],
) -> None:
    """The web page's drawing numbers each label by its face's row in the table (1 for the
    first face, left to right), so that a row and its face can be told apart in a crowd; a
    poor-quality face's label is its number alone."""
    size, results = players
    labels = label_layout(size, results, font_px=web_label_px(*size), numbered=True)
    assert labels
    for label in labels:
        r = results[label.face]
        number = str(label.face + 1)
        if r.status == "poor_quality":
            assert label.text == number
        else:
            assert label.text.split(" ", 1)[0] == number and label.text.split(" ", 1)[1]
    named = [label for label in labels if results[label.face].person is not None]
    assert len(named) == 1 and named[0].text.endswith("Yao Ming 0.62")
    for a in labels:  # still inside, covering no face and no other label
        assert 0 <= a.box[0] and a.box[2] <= size[0] and 0 <= a.box[1] and a.box[3] <= size[1]
        assert all(overlap(a.box, box_of(r)) == 0 for r in results)
        assert all(overlap(a.box, b.box) == 0 for b in labels if b is not a)

"""Drawing identification results onto a photo (``facedb identify --draw``, the web page's
identify).

Each face gets a box and a label. The labels are placed (:func:`label_layout`) so that they
stay inside the picture and cover no face and no other label wherever the picture leaves room:
beside their own face when they can, further away with a thin line to it when they must. A
named face's label is larger and shows the similarity; an unknown or ambiguous face says only
that (a negative or tiny similarity means nothing to a viewer); a face too poor to recognise
gets a thin grey box and a small label, left out when it would cover anything.
"""

from __future__ import annotations

import io
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import NDArray
from PIL import Image, ImageDraw, ImageFont

from facedb.errors import ConfigError

if TYPE_CHECKING:
    from facedb.results import Identification

__all__ = ["DRAWING_SUFFIXES", "Label", "draw_identifications", "drawn_jpeg", "label_layout", "label_of"]

#: The file name endings --draw can write.
DRAWING_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".bmp")

KNOWN = (46, 204, 64)
UNKNOWN = (255, 65, 54)
AMBIGUOUS = (255, 133, 27)
POOR = (110, 110, 110)

#: A rectangle in pixels: (left, top, right, bottom).
Box = tuple[float, float, float, float]


@dataclass(frozen=True, slots=True)
class _Style:
    color: tuple[int, int, int]
    font_scale: float  # of the picture's label size
    line_scale: int  # of the picture's line width
    rank: int  # labels are placed in this order: the named first, the poor-quality last


_STYLES = {
    "named": _Style(KNOWN, 1.25, 2, 0),
    "ambiguous": _Style(AMBIGUOUS, 1.0, 1, 1),
    "unknown": _Style(UNKNOWN, 1.0, 1, 2),
    "poor_quality": _Style(POOR, 0.75, 1, 3),
}


@dataclass(frozen=True, slots=True)
class Label:
    """Where one face's label is drawn.

    Attributes:
        face: the face's position in the results.
        text: what the label says.
        box: its background, ``(left, top, right, bottom)`` in the picture's pixels.
        status: the face's status (``"named"``, ``"unknown"``, ...), which sets its colour.
    """

    face: int
    text: str
    box: Box
    status: str


def label_of(r: Identification) -> str:
    """What a face is called (the web page's table): the name, else "unknown", "ambiguous"
    or "poor quality"."""
    if r.person is not None:
        return r.person.name
    if r.status == "poor_quality":
        return "poor quality"
    return "ambiguous" if r.ambiguous else "unknown"


def _box_of(r: Identification) -> Box:
    x1, y1, x2, y2 = (float(v) for v in r.face.bbox)
    return x1, y1, x2, y2


def _status(r: Identification) -> str:
    if r.person is not None:
        return "named"
    if r.status == "poor_quality":
        return "poor_quality"
    return "ambiguous" if r.ambiguous else "unknown"


def _text(r: Identification, number: int | None = None) -> str:
    """A label's words: the similarity only where it says something (the person named);
    with ``number``, the face's row in a table first (a poor-quality face: the number only)."""
    words = f"{r.person.name} {r.similarity:.2f}" if r.person is not None else label_of(r)
    if number is None:
        return words
    return str(number) if _status(r) == "poor_quality" else f"{number} {words}"


def _font(px: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    try:
        return ImageFont.load_default(size=px)
    except TypeError:  # Pillow < 10.1 has no sized default font
        return ImageFont.load_default()


def _label_px(size: tuple[int, int], font_px: int | None) -> int:
    """The labels' size: ``font_px``, by default 1/40 of the picture's shorter side (>= 12)."""
    return font_px or max(12, min(size) // 40)


def _line_width(size: tuple[int, int]) -> int:
    return max(2, min(size) // 300)


class _Measure:
    """The size of a label's background, and where its text starts in it, per style."""

    def __init__(self, label_px: int) -> None:
        self.fonts = {s: _font(max(10, round(label_px * st.font_scale))) for s, st in _STYLES.items()}
        self.pad = max(2, label_px // 8)

    def size(self, status: str, text: str) -> tuple[float, float]:
        font = self.fonts[status]
        _, top, _, bottom = font.getbbox("Ag")  # one height for every label of a style
        return font.getlength(text) + 2 * self.pad, (bottom - top) + 2 * self.pad

    def origin(self, status: str, box: Box) -> tuple[float, float]:
        top = self.fonts[status].getbbox("Ag")[1]
        return box[0] + self.pad, box[1] + self.pad - top


def _overlap(a: Box, b: Box) -> float:
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    return w * h if w > 0 and h > 0 else 0.0


def _gap(a: Box, b: Box) -> float:
    """The distance between two rectangles (0 when they touch or overlap)."""
    dx = max(b[0] - a[2], a[0] - b[2], 0.0)
    dy = max(b[1] - a[3], a[1] - b[3], 0.0)
    return float(np.hypot(dx, dy))


def _candidates(face: Box, w: float, h: float, margin: float) -> Iterator[tuple[float, float]]:
    """Top-left corners to try for a w x h label, nearest to the face first: above it, below
    it, beside it, then the same further away."""
    x1, y1, x2, y2 = face
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    xs = [x1, x2 - w, cx - w / 2, cx - w, cx, cx - 1.5 * w, cx + 0.5 * w]
    ys = [y1, cy - h / 2, y2 - h]
    for k in range(6):
        for y in (y1 - margin - h - k * (h + margin), y2 + margin + k * (h + margin)):
            for x in xs:
                yield x, y
        for x in (x1 - margin - w - k * w / 2, x2 + margin + k * w / 2):
            for y in ys:
                yield x, y


def _layout(
    size: tuple[int, int], results: Sequence[Identification], measure: _Measure, numbered: bool = False
) -> list[Label]:
    width, height = size
    margin = _line_width(size) + 1
    faces = [(x1 - margin, y1 - margin, x2 + margin, y2 + margin) for x1, y1, x2, y2 in map(_box_of, results)]
    statuses = [_status(r) for r in results]
    area = [(f[2] - f[0]) * (f[3] - f[1]) for f in faces]
    order = sorted(range(len(results)), key=lambda i: (_STYLES[statuses[i]].rank, -area[i], i))
    placed: list[Label] = []
    for i in order:
        text = _text(results[i], i + 1 if numbered else None)
        w, h = measure.size(statuses[i], text)
        if w > width or h > height:
            continue  # a picture smaller than one label: boxes only
        best: tuple[tuple[bool, float, float], Box] | None = None
        for x, y in _candidates(faces[i], w, h, margin):
            x, y = min(max(x, 0.0), width - w), min(max(y, 0.0), height - h)
            box = (x, y, x + w, y + h)
            covered = sum(_overlap(box, f) for f in faces) + sum(_overlap(box, p.box) for p in placed)
            key = (covered > 0, covered, _gap(box, faces[i]))
            if best is None or key < best[0]:
                best = (key, box)
                if key == (False, 0.0, 0.0):
                    break
        assert best is not None
        if best[0][0] and statuses[i] == "poor_quality":
            continue  # its grey box marks it; its label would cover somebody
        placed.append(Label(i, text, best[1], statuses[i]))
    return sorted(placed, key=lambda label: label.face)


def label_layout(
    size: tuple[int, int],
    results: Sequence[Identification],
    font_px: int | None = None,
    numbered: bool = False,
) -> list[Label]:
    """Where the labels of a drawing go, for a picture of ``size`` (width, height): each
    inside the picture, covering no face's box and no other label wherever there is room (the
    named first, then the ambiguous, the unknown, and the poor-quality faces, whose label is
    left out rather than cover anything). ``font_px``: the labels' size (default: 1/40 of
    the shorter side, at least 12). ``numbered``: each label starts with its face's number,
    1 for the first of ``results`` (the web page's table rows)."""
    return _layout(size, results, _Measure(_label_px(size, font_px)), numbered)


def _nearest(a: Box, b: Box) -> tuple[tuple[float, float], tuple[float, float]]:
    """A point of ``a`` and a point of ``b`` nearest to each other (for a label's line)."""

    def axis(lo1: float, hi1: float, lo2: float, hi2: float) -> tuple[float, float]:
        if hi1 < lo2:
            return hi1, lo2
        if hi2 < lo1:
            return lo1, hi2
        mid = (max(lo1, lo2) + min(hi1, hi2)) / 2
        return mid, mid

    ax, bx = axis(a[0], a[2], b[0], b[2])
    ay, by = axis(a[1], a[3], b[1], b[3])
    return (ax, ay), (bx, by)


def _drawn(
    rgb: NDArray[np.uint8],
    results: Sequence[Identification],
    font_px: int | None = None,
    numbered: bool = False,
) -> Image.Image:
    """The photo with a box per face (green: named; orange: ambiguous; red: unknown; grey:
    poor quality) and the labels of :func:`label_layout`."""
    image = Image.fromarray(np.ascontiguousarray(rgb), "RGB")
    draw = ImageDraw.Draw(image)
    measure = _Measure(_label_px(image.size, font_px))
    width = _line_width(image.size)
    boxes = [_box_of(r) for r in results]
    # The named last, so that their boxes are on top of any box they touch.
    for i in sorted(range(len(results)), key=lambda i: -_STYLES[_status(results[i])].rank):
        style = _STYLES[_status(results[i])]
        line = 1 if style is _STYLES["poor_quality"] else width * style.line_scale
        draw.rectangle(boxes[i], outline=style.color, width=line)
    labels = _layout(image.size, results, measure, numbered)
    for label in labels:
        face = boxes[label.face]
        if _gap(label.box, face) > width + 2:  # not beside its face: a line to it
            start, end = _nearest(label.box, face)
            draw.line((start, end), fill=_STYLES[label.status].color, width=max(1, width // 2))
    for label in labels:
        draw.rectangle(label.box, fill=_STYLES[label.status].color)
        draw.text(
            measure.origin(label.status, label.box),
            label.text,
            fill=(255, 255, 255),
            font=measure.fonts[label.status],
        )
    return image


def draw_identifications(rgb: NDArray[np.uint8], results: Sequence[Identification], out: Path) -> None:
    """Writes the photo (HxWx3 RGB) with a box and a label per face (see :func:`label_layout`)
    to ``out``, a .jpg, .png, .webp or .bmp file."""
    suffix = out.suffix.lower()
    if suffix not in DRAWING_SUFFIXES:
        raise ConfigError(f"--draw needs a .jpg, .png, .webp or .bmp file name, got {out}")
    image = _drawn(rgb, results)
    out.parent.mkdir(parents=True, exist_ok=True)
    image.save(out, quality=92) if suffix in (".jpg", ".jpeg") else image.save(out)


def drawn_jpeg(
    rgb: NDArray[np.uint8], results: Sequence[Identification], *, max_side: int = 1600, numbered: bool = False
) -> bytes:
    """The photo (HxWx3 RGB) drawn as :func:`draw_identifications` draws it, as JPEG bytes,
    shrunk (after drawing) so that its longer side is at most ``max_side`` pixels. The labels
    are sized for a page that shows the photo smaller: 1/40 of the longer side.
    ``numbered``: labels start with the face's number (the web page's table rows)."""
    image = _drawn(rgb, results, font_px=web_label_px(rgb.shape[1], rgb.shape[0]), numbered=numbered)
    if max(image.size) > max_side:
        image.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=85)
    return out.getvalue()


def web_label_px(width: int, height: int) -> int:
    """The labels' size on the web page's drawing: 1/40 of the longer side, at least 14."""
    return max(14, max(width, height) // 40)

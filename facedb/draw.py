"""Drawing identification results onto a photo (``facedb identify --draw``, the web page's
identify)."""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import NDArray
from PIL import Image, ImageDraw, ImageFont

from facedb.errors import ConfigError

if TYPE_CHECKING:
    from facedb.results import Identification

__all__ = ["draw_identifications", "drawn_jpeg", "label_of"]

KNOWN = (46, 204, 64)
UNKNOWN = (255, 65, 54)


def label_of(r: Identification) -> str:
    """What a face is called on a drawing: the name, else "unknown", "ambiguous" or "poor
    quality"."""
    if r.person is not None:
        return r.person.name
    if r.status == "poor_quality":
        return "poor quality"
    return "ambiguous" if r.ambiguous else "unknown"


def _drawn(
    rgb: NDArray[np.uint8], results: Sequence[Identification], font_px: int | None = None
) -> Image.Image:
    """The photo with a box per face, labelled with the name and the similarity (green:
    named; red: unknown, ambiguous or poor quality); ``font_px``: the labels' size (default:
    1/40 of the shorter side, at least 12)."""
    image = Image.fromarray(np.ascontiguousarray(rgb), "RGB")
    draw = ImageDraw.Draw(image)
    size = font_px or max(12, min(image.size) // 40)
    try:
        font: ImageFont.ImageFont | ImageFont.FreeTypeFont = ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1 has no sized default font
        font = ImageFont.load_default()
    width = max(2, min(image.size) // 300)
    for r in results:
        x1, y1, x2, y2 = (float(v) for v in r.face.bbox)
        color = KNOWN if r.person is not None else UNKNOWN
        draw.rectangle((x1, y1, x2, y2), outline=color, width=width)
        label = f"{label_of(r)} {r.similarity:.2f}"
        left, top, right, bottom = draw.textbbox((x1, y1), label, font=font)
        top_y = y1 - (bottom - top) - 4 if y1 - (bottom - top) - 4 >= 0 else y2 + 2
        draw.rectangle((x1, top_y, x1 + (right - left) + 4, top_y + (bottom - top) + 4), fill=color)
        draw.text((x1 + 2, top_y + 2 - (top - y1)), label, fill=(255, 255, 255), font=font)
    return image


def draw_identifications(rgb: NDArray[np.uint8], results: Sequence[Identification], out: Path) -> None:
    """Writes the photo (HxWx3 RGB) with a box per face, labelled with the name and the
    similarity (green: named; red: unknown, ambiguous or poor quality)."""
    suffix = out.suffix.lower()
    if suffix not in (".jpg", ".jpeg", ".png", ".webp", ".bmp"):
        raise ConfigError(f"--draw needs a .jpg, .png, .webp or .bmp file name, got {out}")
    image = _drawn(rgb, results)
    out.parent.mkdir(parents=True, exist_ok=True)
    image.save(out, quality=92) if suffix in (".jpg", ".jpeg") else image.save(out)


def drawn_jpeg(rgb: NDArray[np.uint8], results: Sequence[Identification], *, max_side: int = 1600) -> bytes:
    """The photo (HxWx3 RGB) drawn as :func:`draw_identifications` draws it, as JPEG bytes,
    shrunk (after drawing) so that its longer side is at most ``max_side`` pixels. The labels
    are sized for a page that shows the photo smaller: 1/40 of the longer side."""
    image = _drawn(rgb, results, font_px=max(14, max(rgb.shape[:2]) // 40))
    if max(image.size) > max_side:
        image.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=85)
    return out.getvalue()

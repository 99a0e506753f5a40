"""Genuine and impostor similarities on the real photos, and the margins the default threshold
(the model's prior, benchmarks/prior.py) leaves on either side.

Every face with a known identity in ../shared/faces (gallery/NAME/*, and the probes, more/
and closeups/ faces named in expected.csv) is compared with every other; photos with the
same content (byte-identical copies) are counted once. Prints the lowest genuine and the
highest impostor similarity, the margin the default threshold leaves on either side, and,
scored as a gallery scores (each face against each person's best gallery face), the same two
figures.

    .venv/bin/python benchmarks/threshold.py [--faces ../shared/faces] [--json OUT]
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import itertools
import json
from pathlib import Path

import numpy as np

import facedb

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--faces", type=Path, default=ROOT.parent / "shared" / "faces")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    faces_dir: Path = args.faces
    engine = facedb.default_engine()

    labelled: dict[str, tuple[str, np.ndarray]] = {}  # content hash -> (identity, template)
    gallery: dict[str, list[np.ndarray]] = {}
    for photo in sorted((faces_dir / "gallery").glob("*/*")):
        digest = hashlib.sha256(photo.read_bytes()).hexdigest()
        template = engine.embedding(photo)
        labelled[digest] = (photo.parent.name, template)
        gallery.setdefault(photo.parent.name, []).append(template)
    probes: list[tuple[str, np.ndarray]] = []
    with open(faces_dir / "expected.csv", newline="") as f:
        for row in csv.DictReader(f):
            photo = faces_dir / row["image"]
            names = row["faces"].split(";")
            faces = engine.detect(photo)
            if len(faces) != len(names):
                raise SystemExit(f"{photo}: {len(faces)} faces found, expected.csv names {len(names)}")
            digest = hashlib.sha256(photo.read_bytes()).hexdigest()
            for i, (name, face) in enumerate(zip(names, faces, strict=True)):
                labelled.setdefault(f"{digest}:{i}" if len(faces) > 1 else digest, (name, face.embedding))
                probes.append((name, face.embedding))

    genuine, impostor = [], []
    for (a, ea), (b, eb) in itertools.combinations(labelled.values(), 2):
        same = a == b and a != "unknown"  # 'unknown' faces are strangers to everybody
        (genuine if same else impostor).append(float(ea @ eb))

    scored_genuine, scored_impostor = [], []
    for name, emb in probes:
        for person, templates in gallery.items():
            best = max(float(emb @ t) for t in templates)
            if best > 0.9999:  # the probe is a copy of this gallery photo
                continue
            (scored_genuine if person == name else scored_impostor).append(best)

    threshold = facedb.DEFAULT_THRESHOLD
    figures = {
        "photos_distinct": len(labelled),
        "pairs_genuine": len(genuine),
        "pairs_impostor": len(impostor),
        "genuine_min": min(genuine),
        "impostor_max": max(impostor),
        "gallery_scored_genuine_min": min(scored_genuine),
        "gallery_scored_impostor_max": max(scored_impostor),
        "threshold": threshold,
        "margin_to_genuine": min(scored_genuine) - threshold,
        "margin_to_impostor": threshold - max(scored_impostor),
    }
    width = max(map(len, figures))
    for key, value in figures.items():
        print(f"{key:<{width}}  {value:.3f}" if isinstance(value, float) else f"{key:<{width}}  {value}")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()

"""Both model packs side by side, in one run, on every labelled set we have
(benchmarks/labelled.py): buffalo_s (SCRFD-500M + w600k MobileFaceNet, insightface's,
non-commercial) and sface (YuNet + SFace, OpenCV Zoo's, Apache-2.0).

For each pack:

- verification: AUC over every pair of labelled faces, and the share of pairs decided right
  at the pack's own prior threshold (FMR 1e-4; what ``verify`` uses without a gallery), with
  the lowest genuine and the highest impostor score;
- open-set identification: a gallery of the pack enrolled from gallery/NAME/* of the test
  photos; every face of expected.csv is identified: named right, named wrong (a silent
  wrong answer), an enrolled person reported unknown, a stranger rightly unknown;
- faces the pack's detector missed (against the default detector's);
- speed, warm, one call at a time: ``detect`` per photo (p50 over the test photos) and the
  recognizer per face (``embed_crops`` on 32 crops);
- storage per face: the template and the kept crop (facedb.crops).

    .venv/bin/python benchmarks/packs.py [--faces ../shared/faces] [--repeat 3] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

import facedb
from facedb.crops import crop_png

sys.path.insert(0, str(Path(__file__).resolve().parent))
from labelled import faces_in_reference_order, iou, labelled_sets, pairs  # beside this script

ROOT = Path(__file__).resolve().parent.parent


def auc(genuine: list[float], impostor: list[float]) -> float:
    """The probability that a genuine pair scores above an impostor pair (ties count half)."""
    g, i = np.asarray(genuine)[:, None], np.asarray(impostor)[None, :]
    return float((g > i).mean() + 0.5 * (g == i).mean())


def identification(engine: facedb.FaceEngine, faces_dir: Path) -> dict[str, int]:
    """Open-set identification of expected.csv's faces against a gallery of gallery/*."""
    import csv

    counts = {"named_right": 0, "named_wrong": 0, "enrolled_reported_unknown": 0, "stranger_unknown": 0}
    counts |= {"stranger_named": 0, "not_detected": 0}
    with tempfile.TemporaryDirectory() as tmp, facedb.FaceDB(Path(tmp) / "g", engine=engine) as db:
        for person in sorted((faces_dir / "gallery").iterdir()):
            db.enroll(person.name, sorted(person.iterdir()))
        with open(faces_dir / "expected.csv", newline="") as f:
            for row in csv.DictReader(f):
                photo = faces_dir / row["image"]
                wanted = row["faces"].split(";")
                found = db.identify(photo)
                for name, ref in zip(
                    wanted, faces_in_reference_order(facedb.default_engine(), photo), strict=True
                ):
                    assert ref is not None
                    match = max(found, key=lambda r: iou(r.face.bbox, ref.bbox), default=None)
                    if match is None or iou(match.face.bbox, ref.bbox) <= 0.4:
                        counts["not_detected"] += 1
                        continue
                    got = match.person.name if match.person else None
                    if name == "unknown":
                        counts["stranger_unknown" if got is None else "stranger_named"] += 1
                    elif got is None:
                        counts["enrolled_reported_unknown"] += 1
                    else:
                        counts["named_right" if got == name else "named_wrong"] += 1
    return counts


def speed(engine: facedb.FaceEngine, photos: list[Path], repeat: int) -> dict[str, float]:
    """Warm timings: detect per photo, and the recognizer per face on a batch of 32."""
    for photo in photos[:2]:
        engine.detect(photo)
    per_photo = []
    for _ in range(repeat):
        for photo in photos:
            start = time.perf_counter()
            engine.detect(photo)
            per_photo.append(time.perf_counter() - start)
    face = max(engine.detect(photos[0]), key=lambda f: f.score)
    crops = np.repeat(engine.align(photos[0], [face]).crops, 32, axis=0)
    engine.embed_crops(crops)
    per_face = []
    for _ in range(repeat):
        start = time.perf_counter()
        engine.embed_crops(crops)
        per_face.append((time.perf_counter() - start) / 32)
    return {
        "detect_ms_p50": round(1000 * statistics.median(per_photo), 1),
        "embed_ms_per_face": round(1000 * statistics.median(per_face), 2),
    }


def storage(engine: facedb.FaceEngine, photos: list[Path]) -> dict[str, float]:
    """Bytes a gallery keeps per face: the template, and the crop kept for reembed."""
    sizes = []
    for photo in photos:
        faces = engine.detect(photo)
        if faces:
            sizes += [len(crop_png(c)) for c in engine.align(photo, faces).crops]
    return {"template_bytes": 4 * engine.embedding_size, "crop_png_bytes_mean": round(statistics.mean(sizes))}


def measure(pack: str, faces_dir: Path, repeat: int) -> dict[str, Any]:
    """Every figure of one pack."""
    engine = facedb.engine.pack_engine(pack)
    found = labelled_sets(engine, faces_dir)
    everything = {k: v for labelled in found.sets.values() for k, v in labelled.items()}
    genuine, impostor = pairs(everything)
    threshold = engine.threshold
    right = sum(g >= threshold for g in genuine) + sum(i < threshold for i in impostor)
    photos = sorted(p for p in (faces_dir / "gallery").glob("*/*")) + sorted((faces_dir / "probes").glob("*"))
    return {
        "pack": pack,
        "model": engine.model_id,
        "template_dimension": engine.embedding_size,
        "labelled_faces": len(everything),
        "faces_missed_by_detector": found.missed,
        "pairs": f"{len(genuine)} genuine / {len(impostor)} impostor",
        "auc": round(auc(genuine, impostor), 4),
        "threshold": threshold,
        "pairs_right_at_threshold": f"{right}/{len(genuine) + len(impostor)}",
        "genuine_accepted": f"{sum(g >= threshold for g in genuine)}/{len(genuine)}",
        "genuine_min": round(min(genuine), 3),
        "impostor_max": round(max(impostor), 3),
        **identification(engine, faces_dir),
        **speed(engine, photos, repeat),
        **storage(engine, photos[:8]),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--faces", type=Path, default=ROOT.parent / "shared" / "faces")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    load = os.getloadavg()
    results = [measure(pack, args.faces, args.repeat) for pack in facedb.engine.PACKS]
    print(f"load average before the run: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} ({os.cpu_count()} cores)")
    width = max(len(k) for k in results[0])
    print(f"{'':<{width}}  " + "  ".join(f"{r['pack']:>24}" for r in results))
    for key in results[0]:
        if key != "pack":
            print(f"{key:<{width}}  " + "  ".join(f"{r[key]!s:>24}" for r in results))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()

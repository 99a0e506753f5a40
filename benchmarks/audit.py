"""The enrollment audit (``FaceDB.audit``) at scale, on synthetic galleries.

For each size N: N/4 people of 4 faces each (a random unit centre per person, each face the
centre plus Gaussian noise of sigma 0.045 per dimension, renormalised: cosine about 0.70 with
the centre, like a genuine pair), written through the store in one transaction; then planted
errors: 10 faces moved to another person (mislabels) and 10 people enrolled twice (a copy of
a person's faces, noised again, under a second name). Measured:

* audit: wall time of ``db.audit()`` (the index is caught up before), and the peak of the
  memory numpy and Python allocate during it (tracemalloc; numpy reports its buffers to it),
  against N x 512 x 4 bytes of templates: linear, not N x N.
* found: how many of the planted mislabels and duplicates the findings name, and how many
  findings there are in all (the rest are false alarms on random data).

    .venv/bin/python benchmarks/audit.py --n 10000,100000 [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
import tracemalloc
from pathlib import Path
from typing import Any

import numpy as np

import facedb
from facedb.store import FaceInfo


def _noised(rng: np.random.Generator, centre: np.ndarray, n: int) -> np.ndarray:
    x = centre[None, :] + rng.normal(0, 0.045, size=(n, centre.size))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def run(n: int, seed: int = 1) -> dict[str, Any]:
    """One size: build, plant, audit; the figures as a dict."""
    rng = np.random.default_rng(seed)
    people = n // 4
    centres = rng.normal(size=(people, 512)).astype(np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    faces = np.vstack([_noised(rng, c, 4) for c in centres])
    owners = np.repeat(np.arange(people), 4)
    moved = rng.choice(len(faces), 10, replace=False)  # mislabels: given to the next person
    owners[moved] = (owners[moved] + 1) % people
    twins = rng.choice(people, 10, replace=False)
    extra = np.vstack([_noised(rng, centres[t], 2) for t in twins])
    with tempfile.TemporaryDirectory() as folder:
        db = facedb.FaceDB(Path(folder) / "g")
        try:
            with db.store.write() as s:
                ids = db.store.add_people(
                    s, [f"p{i}" for i in range(people + len(twins))], [{}] * (people + len(twins))
                )
                person_of = np.asarray(ids)
                face_people = [int(person_of[o]) for o in owners] + [
                    int(person_of[people + i]) for i in range(len(twins)) for _ in range(2)
                ]
                templates = np.vstack([faces, extra])
                face_ids = db.store.add_faces(
                    s, face_people, db.facts.model_id, templates, [FaceInfo()] * len(templates)
                )
                db.store.bump(s, added=face_ids)
            db.sync_vectors()
            tracemalloc.start()
            began = time.perf_counter()
            findings = db.audit()
            seconds = time.perf_counter() - began
            peak = tracemalloc.get_traced_memory()[1]
            tracemalloc.stop()
        finally:
            db.close()
    moved_ids = {int(face_ids[i]) for i in moved}
    twin_pairs = {
        (
            min(int(person_of[t]), int(person_of[people + i])),
            max(int(person_of[t]), int(person_of[people + i])),
        )
        for i, t in enumerate(twins)
    }
    found_moved = {f.face_id for f in findings if f.face_id in moved_ids}
    found_twins = {
        (min(f.person.id, f.other.id), max(f.person.id, f.other.id))
        for f in findings
        if f.kind == "duplicate_person" and f.other is not None
    } & twin_pairs
    return {
        "faces": len(templates),
        "people": people + len(twins),
        "audit_s": round(seconds, 2),
        "peak_mb": round(peak / 2**20, 1),
        "templates_mb": round(templates.nbytes / 2**20, 1),
        "mislabels_found": f"{len(found_moved)}/10",
        "duplicates_found": f"{len(found_twins)}/10",
        "findings": len(findings),
    }


def main() -> None:
    """Runs the sizes asked for; prints a table and writes JSON."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", default="10000", help="gallery sizes, comma-separated")
    parser.add_argument("--json", help="write the figures here")
    args = parser.parse_args()
    rows = [run(int(n)) for n in args.n.split(",")]
    keys = list(rows[0])
    print("  ".join(f"{k:>16}" for k in keys))
    for row in rows:
        print("  ".join(f"{row[k]!s:>16}" for k in keys))
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()

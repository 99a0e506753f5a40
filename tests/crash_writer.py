"""A child process for tests/test_crash.py: writes to a gallery forever and prints one line
per acknowledged write (after the call returned), until it is killed. A removal is
announced before its call (REMOVING) and acknowledged after it (DEL).

    python crash_writer.py GALLERY SEED PHOTO...

GALLERY is a folder or a SQL URL (with an optional vectors= parameter for Milvus).
"""

from __future__ import annotations

import sys

import numpy as np
from helpers import unit_vector as template  # this folder is first on sys.path

import facedb


def main() -> None:
    folder, seed, photos = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
    rng = np.random.default_rng(seed)
    alive: list[int] = []
    with facedb.FaceDB(folder) as db:
        print("READY", flush=True)
        n = 0
        while True:
            n += 1
            roll = rng.random()
            if roll < 0.5 or not alive:
                seeds = [seed * 1_000_000 + n * 10 + i for i in range(int(rng.integers(1, 4)))]
                people = db.import_embeddings(
                    [f"imp{s}" for s in seeds], np.vstack([template(s) for s in seeds])
                )
                for p, s in zip(people, seeds, strict=True):
                    alive.append(p.id)
                    print(f"ADD {p.id} {s}", flush=True)
            elif roll < 0.65 and photos:
                p = db.enroll(f"photo{n}", [photos[n % len(photos)]], force=True)
                alive.append(p.id)
                print(f"ADD {p.id} -1", flush=True)
            else:
                victim = alive.pop(int(rng.integers(len(alive))))
                # Announced first: if the kill lands before DEL is printed, this removal may
                # or may not have happened, and both are correct.
                print(f"REMOVING {victim}", flush=True)
                db.remove(victim)
                print(f"DEL {victim}", flush=True)


if __name__ == "__main__":
    main()

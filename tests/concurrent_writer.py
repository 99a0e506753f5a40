"""A child process for tests/test_concurrency.py: one of several writers sharing a gallery.

    python concurrent_writer.py GALLERY CACHE_DIR WRITER PEOPLE

Opens the gallery (all writers at once: a fresh PostgreSQL database is migrated by whoever
comes first), prints READY, waits for a line on stdin, then imports PEOPLE people one call at
a time and removes every third of its own. It prints `DONE {"alive": [...], "removed": [...]}`
and waits for a JSON line naming everybody who should be found (and who should be gone) across
all writers, checks them from this same open gallery, and prints `RESULT {...}`.
"""

from __future__ import annotations

import json
import sys

import numpy as np
from helpers import unit_vector  # this folder is first on sys.path

import facedb


def template(writer: int, i: int) -> np.ndarray:
    """The template of the `i`-th person of `writer` (the checking writer computes it again)."""
    return unit_vector(writer * 100_000 + i)


def main() -> None:
    gallery, cache, writer, count = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    with facedb.FaceDB(gallery, cache_dir=cache) as db:
        print("READY", flush=True)
        sys.stdin.readline()
        alive: list[list[int]] = []  # [person id, writer, i]
        removed: list[list[int]] = []
        for i in range(count):
            (person,) = db.import_embeddings([f"w{writer}-{i}"], template(writer, i)[None, :])
            alive.append([person.id, writer, i])
            if i % 3 == 2:
                victim = alive.pop(len(alive) - 2)
                db.remove(victim[0])
                removed.append(victim)
        print("DONE " + json.dumps({"alive": alive, "removed": removed}), flush=True)
        everyone = json.loads(sys.stdin.readline())
        missing = []
        for pid, w, i in everyone["alive"]:
            best = db.search(template(w, i), k=1)[0]
            if not best or best[0].person.id != pid:
                missing.append(pid)
        resurrected = []
        for pid, w, i in everyone["removed"]:
            found = db.search(template(w, i), k=3)[0]
            if any(c.person.id == pid for c in found):
                resurrected.append(pid)
        report = db.check(repair=False)
        result = {
            "missing": missing,
            "resurrected": resurrected,
            "check_ok": report.ok,
            "problems": report.problems,
            "people": len(db),
        }
        print("RESULT " + json.dumps(result), flush=True)


if __name__ == "__main__":
    main()

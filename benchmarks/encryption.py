"""What encryption at rest costs: the same gallery with and without a key, in one run.

For each size N (random unit 512-d templates, one person each; 300 probes at cosine ~0.70,
as CONTRACTS.md "How figures are measured" says), two galleries are made from the same
templates, one plain and one sealed with a key (``FaceDB(folder, key=...)``), and for each:

* import: ``db.import_embeddings`` of the N templates (SQL rows sealed one by one, the index
  saved, its segments sealed);
* search: single-query ``db.search(probe, k=5)`` p50 / p99 over the probes (the index is in
  memory either way: sealing costs nothing here) and rank-1;
* rebuild: ``db.rebuild_index()`` (every template read from SQL and opened, the index sealed
  and saved);
* reopen in a new interpreter: ``FaceDB(folder)`` plus the first answered search (every
  segment read and decrypted, where the plain gallery maps its files), best of 3, and that
  process's anonymous and file-backed resident memory (``RssAnon``, ``RssFile`` of
  /proc/self/status): a sealed index lives in each process's own memory; a plain one is
  file pages of the page cache, shared by every process on the machine;
* rekey: ``db.rekey(new key)`` of the sealed gallery (every value opened and sealed again,
  the index rebuilt, the old files zeroed).

And the cipher alone: seal and open of one 2 KiB template (microseconds, median of 20,000).

Run: ``.venv/bin/python benchmarks/encryption.py [--sizes 10000,100000]``. Prints the machine's
load average before and after: these figures are only comparable within one run.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

import facedb
from facedb import FaceDB
from facedb.encryption import Cipher

_REOPEN = """
import json, sys, time
t0 = time.perf_counter()
import facedb, numpy as np
t1 = time.perf_counter()
db = facedb.FaceDB(sys.argv[1], key=sys.argv[2] or None)
probe = np.load(sys.argv[3])
db.search(probe, k=5)
t2 = time.perf_counter()
mem = {}
for line in open("/proc/self/status"):
    name, _, rest = line.partition(":")
    if name in ("RssAnon", "RssFile"):
        mem[name] = int(rest.split()[0]) / 1024
print(json.dumps({"import_s": t1 - t0, "open_first_s": t2 - t1, **mem}))
db.close()
"""


def templates(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 512)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    sources = rng.choice(n, size=300, replace=False)
    probes = x[sources] + rng.normal(scale=0.045, size=(300, 512)).astype(np.float32)
    probes /= np.linalg.norm(probes, axis=1, keepdims=True)
    return x, probes, sources


def reopen(folder: Path, key: str | None, probe_file: Path) -> dict[str, float]:
    done = subprocess.run(
        [sys.executable, "-c", _REOPEN, str(folder), key or "", str(probe_file)],
        capture_output=True,
        text=True,
        timeout=600,
        check=True,
    )
    found: dict[str, float] = json.loads(done.stdout)
    return found


def measure(
    base: Path, x: np.ndarray, probes: np.ndarray, sources: np.ndarray
) -> dict[str, dict[str, float]]:
    """Both galleries side by side; the searches and reopens interleaved, so that the load
    of a shared machine falls on both alike."""
    key = facedb.new_key()
    keys = {"plain": None, "sealed": key}
    out: dict[str, dict[str, float]] = {kind: {} for kind in keys}
    names = [f"p{i}" for i in range(len(x))]
    dbs = {}
    for kind, k in keys.items():
        t = time.perf_counter()
        dbs[kind] = FaceDB(base / kind, key=k)
        dbs[kind].import_embeddings(names, x)
        out[kind]["import_s"] = time.perf_counter() - t
        dbs[kind].search(probes[0], k=5)
    lat: dict[str, list[float]] = {kind: [] for kind in keys}
    hits = dict.fromkeys(keys, 0)
    for probe, source in zip(probes, sources, strict=True):
        for kind, db in dbs.items():
            t = time.perf_counter()
            (found,) = db.search(probe, k=5)
            lat[kind].append((time.perf_counter() - t) * 1000)
            hits[kind] += bool(found) and found[0].person.name == names[source]
    for kind, db in dbs.items():
        out[kind]["p50_ms"] = float(np.percentile(lat[kind], 50))
        out[kind]["p99_ms"] = float(np.percentile(lat[kind], 99))
        out[kind]["rank1"] = hits[kind] / len(probes)
        t = time.perf_counter()
        db.rebuild_index()
        out[kind]["rebuild_s"] = time.perf_counter() - t
        db.close()
    probe_file = base / "probe.npy"
    np.save(probe_file, probes[0])
    runs: dict[str, list[dict[str, float]]] = {kind: [] for kind in keys}
    for _ in range(3):
        for kind, k in keys.items():
            runs[kind].append(reopen(base / kind, k, probe_file))
    for kind in keys:
        best = min(runs[kind], key=lambda r: r["open_first_s"])
        out[kind]["reopen_s"] = best["open_first_s"]
        out[kind]["anon_mb"] = best["RssAnon"]
        out[kind]["file_mb"] = best["RssFile"]
    with FaceDB(base / "sealed", key=key) as db:
        t = time.perf_counter()
        db.rekey(facedb.new_key())
        out["sealed"]["rekey_s"] = time.perf_counter() - t
    return out


def cipher_alone() -> tuple[float, float]:
    cipher = Cipher(facedb.new_key())
    value = np.random.default_rng(1).normal(size=512).astype(np.float32).tobytes()
    seal, open_ = [], []
    for _ in range(20_000):
        t = time.perf_counter_ns()
        sealed = cipher.seal(value, b"template")
        t2 = time.perf_counter_ns()
        cipher.open(sealed, b"template")
        seal.append(t2 - t)
        open_.append(time.perf_counter_ns() - t2)
    return statistics.median(seal) / 1000, statistics.median(open_) / 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000")
    args = parser.parse_args()
    print(f"load average before: {os.getloadavg()}")
    seal_us, open_us = cipher_alone()
    print(
        f"cipher alone, one 2 KiB template: seal {seal_us:.1f} us, open {open_us:.1f} us (median of 20,000)"
    )
    rows = ["import_s", "p50_ms", "p99_ms", "rank1", "rebuild_s", "reopen_s", "anon_mb", "file_mb"]
    for n in (int(s) for s in args.sizes.split(",")):
        x, probes, sources = templates(n)
        base = Path(tempfile.mkdtemp(prefix=f"facedb-enc-{n}-"))
        try:
            both = measure(base, x, probes, sources)
            plain, sealed = both["plain"], both["sealed"]
        finally:
            shutil.rmtree(base, ignore_errors=True)
        print(f"\nN = {n:,}")
        print(f"{'':16}{'plain':>10}{'sealed':>10}{'sealed/plain':>14}")
        for row in rows:
            a, b = plain[row], sealed[row]
            ratio = f"{b / a:.2f}x" if a else "-"
            print(f"{row:16}{a:10.3f}{b:10.3f}{ratio:>14}")
        print(f"{'rekey_s':16}{'':10}{sealed['rekey_s']:10.3f}")
    print(f"\nload average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()

"""How soon another process's addition is found on Milvus, and what a strong read costs.

Two processes share one gallery, its vectors in Milvus: a writer (A, a child process) and this
process (B), which opened the gallery before A's writes and writes nothing meanwhile (so its
Session reads wait for no write of its own, as in a service that only identifies).

* freshness at the gallery's consistency (the URL's; Session by default): A imports one
  template (``import_embeddings``, one person) and says so once the call returned; B then
  searches it (``FaceDB.search``, k = 1) back to back until its person comes first. The lag
  is from the acknowledgement to the end of the search that found it; also how many of the
  trials the first search already found.
* freshness with ``consistency="strong"``: the same, B's first search only; every one must
  find the addition.
* cost: ``FaceDB.search`` of one probe (a template plus Gaussian noise of sigma 0.045 per
  dimension, renormalised) at the gallery's consistency and with ``consistency="strong"``,
  alternating, ``--repeat`` of each after one untimed warm pair, on a gallery of ``--n``
  templates; and the same for the Milvus search alone (``db.vectors.search``).

A Strong search waits for the server's next time tick (``proxy.timeTickInterval``: 200 ms by
default, 50 ms on the test server of scripts/milvus.sh). So does, once a second at most, the
readiness check of any search (a Strong count; facedb.milvus.store): it shows in the p90 of
Session searches. The gallery is a new SQLite folder
(or ``--db``, an empty SQL database) and a new collection, dropped at the end.

    uri=$(scripts/milvus.sh start /tmp/milvus-bench)          # http://127.0.0.1:PORT
    .venv/bin/python benchmarks/freshness.py --vectors "milvus://${uri#http://}" [--n 10000]
        [--trials 50] [--repeat 50] [--db URL] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import numpy as np

import facedb

# Imports one person per line of stdin (a seed: person "new{seed}", template from the seed)
# and answers each line once import_embeddings returned.
WRITER = """
import sys
import numpy as np
import facedb
with facedb.FaceDB(sys.argv[1], vectors=sys.argv[2]) as db:
    print("ready", flush=True)
    while line := sys.stdin.readline().strip():
        db.import_embeddings([f"new{line}"], np.random.default_rng(int(line)).normal(size=(1, 512)))
        print(line, flush=True)
"""


def _seeded(seed: int) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(1, 512))[0]


def _ms(values: list[float], q: float) -> float:
    return round(1000 * float(np.quantile(values, q)), 1)


def _load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def measure(db_location: str, url: str, n: int, trials: int, repeat: int) -> dict[str, Any]:
    """Builds the gallery, runs the writer against this process; the figures."""
    rng = np.random.default_rng(7)
    x = rng.standard_normal((n, 512)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    with facedb.FaceDB(db_location, vectors=url) as setup:
        setup.import_embeddings([f"p{i}" for i in range(n)], x)
    with facedb.FaceDB(db_location, vectors=url) as db:
        db.search(x[0], k=1)
        writer = subprocess.Popen(
            [sys.executable, "-c", WRITER, db_location, url],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)},
        )
        requests, answers = writer.stdin, writer.stdout
        assert requests is not None and answers is not None
        try:
            if answers.readline().strip() != "ready":
                raise SystemExit("the writer did not start")

            def write(seed: int) -> float:
                requests.write(f"{seed}\n")
                requests.flush()
                if answers.readline().strip() != str(seed):
                    raise SystemExit("the writer stopped")
                return time.monotonic()

            def found(seed: int, consistency: Any = None) -> bool:
                best = db.search(_seeded(seed), k=1, consistency=consistency)[0]
                return bool(best) and best[0].person.name == f"new{seed}"

            lags, first, searches = [], 0, []
            for seed in range(1, trials + 1):
                acknowledged, count = write(seed), 1
                while not found(seed):
                    count += 1
                    if time.monotonic() - acknowledged > 60:
                        raise SystemExit(f"new{seed} not found within 60 s")
                lags.append(time.monotonic() - acknowledged)
                first += count == 1
                searches.append(count)
            strong_first = strong_missed = 0
            for seed in range(10_001, 10_001 + trials):
                write(seed)
                if found(seed, "strong"):
                    strong_first += 1
                else:
                    strong_missed += 1
        finally:
            requests.close()
            writer.wait(timeout=60)

        probes = x[rng.choice(n, size=repeat + 1)] + rng.normal(scale=0.045, size=(repeat + 1, 512))
        probes = (probes / np.linalg.norm(probes, axis=1, keepdims=True)).astype(np.float32)
        timed: dict[str, list[float]] = {"session": [], "strong": [], "store session": [], "store strong": []}
        for i, probe in enumerate(probes):
            for name, consistency in (("session", None), ("strong", "strong")):
                began = time.perf_counter()
                db.search(probe, k=5, consistency=consistency)
                if i:  # the first pair warms up
                    timed[name].append(time.perf_counter() - began)
                began = time.perf_counter()
                db.vectors.search(probe[None, :], 64, consistency=consistency)
                if i:
                    timed[f"store {name}"].append(time.perf_counter() - began)
        return {
            "n": n,
            "consistency": db.vectors.kind.rsplit(", ", 1)[-1].removesuffix(" consistency"),
            "trials": trials,
            "found_by_first_search": f"{first}/{trials}",
            "lag_ms_p50": _ms(lags, 0.5),
            "lag_ms_p90": _ms(lags, 0.9),
            "lag_ms_max": round(1000 * max(lags), 1),
            "searches_to_find_max": max(searches),
            "strong_found_by_first_search": f"{strong_first}/{trials}",
            "strong_missed": strong_missed,
            "repeat": repeat,
            **{f"{name} p50 ms": _ms(values, 0.5) for name, values in timed.items()},
            **{f"{name} p90 ms": _ms(values, 0.9) for name, values in timed.items()},
        }


def main() -> None:
    """Runs the measurement; prints the figures and writes JSON."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--vectors", required=True, help="milvus://host:port[/name][?options]")
    parser.add_argument("--db", help="an empty SQL database (default: a new SQLite folder)")
    parser.add_argument("--n", type=int, default=10_000, help="templates in the gallery")
    parser.add_argument("--trials", type=int, default=50, help="additions timed, each way")
    parser.add_argument("--repeat", type=int, default=50, help="searches timed, each way")
    parser.add_argument("--json", help="write the figures here")
    args = parser.parse_args()
    base, _, options = args.vectors.partition("?")
    address, _, name = base.removeprefix("milvus://").partition("/")
    name = name.strip("/") or "facedb_fresh"
    collection = f"{name}_{uuid.uuid4().hex[:8]}"
    url = f"milvus://{address}/{collection}" + (f"?{options}" if options else "")
    print(f"load average before: {_load()}")
    try:
        with tempfile.TemporaryDirectory() as folder:
            figures = measure(args.db or str(Path(folder) / "g"), url, args.n, args.trials, args.repeat)
    finally:
        from pymilvus import MilvusClient

        client = MilvusClient(uri=f"http://{address}")
        if client.has_collection(collection):
            client.release_collection(collection)
            client.drop_collection(collection)
        client.close()
    print(f"load average after:  {_load()}")
    width = max(len(k) for k in figures)
    for key, value in figures.items():
        print(f"{key:>{width}}  {value}")
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()

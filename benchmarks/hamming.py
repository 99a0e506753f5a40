"""The first pass of the approximate search alone: the Hamming top-k scan of the sign codes.

For each size N, N random 64-byte codes (one sign bit a dimension of a 512-d template; random
templates have independent fair sign bits) and ``--queries`` random query codes; each query
asks for its ``--k`` nearest codes (64, the searcher's rerank depth), one query a call, as a
single ``FaceDB.search`` does. Timed, in turn for each query so that load changes hit all
alike:

* faiss: ``faiss.knn_hamming`` on one OpenMP thread (what facedb called before; more OpenMP
  threads made single queries many times slower on this busy machine, see DESIGN.md);
* native 1 / native 2: ``facedb._native.knn_hamming(codes, q, k, threads)`` on 1 and 2
  threads; native auto: ``threads=0``, what facedb uses (one thread below 16 MB of codes times queries);

each as p50 / p99 wall time, the bytes of codes read a second at p50, the process CPU time a
call (all threads), and the ratio of its p50 and p99 to faiss's. And a batch: all queries in
one call (median of 3). The answers are checked against faiss's (same distances; rows equal
where distances are distinct).

Run: ``.venv/bin/python benchmarks/hamming.py [--n 100000,1000000,10000000] [--json OUT]``.
Prints the load average before and after: the machine has 2 cores and is shared, and a
second thread only pays when the other core is free.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections.abc import Callable

import faiss
import numpy as np

from facedb._native import knn_hamming

WIDTH = 64  # bytes of a 512-d template's sign code


def timed(call: Callable[[], object]) -> tuple[float, float]:
    """(wall, process CPU) seconds of one call."""
    t, c = time.perf_counter(), time.process_time()
    call()
    return time.perf_counter() - t, time.process_time() - c


def ms(seconds: float) -> float:
    return round(seconds * 1e3, 3)


def check(codes: np.ndarray, queries: np.ndarray, k: int) -> None:
    """The native answer is faiss's up to ties."""
    fd, fr = faiss.knn_hamming(queries, codes, k)
    nd, nr = knn_hamming(codes, queries, k)
    assert (fd == nd).all(), "distances differ from faiss"
    distinct = (np.diff(fd, axis=1, prepend=-1) != 0) & (np.diff(fd, axis=1, append=2**31) != 0)
    assert (fr[distinct] == nr[distinct]).all(), "rows differ from faiss"


def measure(n: int, args: argparse.Namespace) -> dict:
    rng = np.random.default_rng(args.seed)
    codes = np.empty((n, WIDTH), dtype=np.uint8)
    for s in range(0, n, 1 << 20):
        codes[s : s + (1 << 20)] = rng.integers(0, 256, size=(min(1 << 20, n - s), WIDTH), dtype=np.uint8)
    queries = rng.integers(0, 256, size=(args.queries, WIDTH), dtype=np.uint8)
    k = args.k
    check(codes, queries[:20], k)
    ways: dict[str, Callable[[np.ndarray], object]] = {
        "faiss": lambda q: faiss.knn_hamming(q, codes, k),
        "native 1": lambda q: knn_hamming(codes, q, k, 1),
        "native 2": lambda q: knn_hamming(codes, q, k, 2),
        "native auto": lambda q: knn_hamming(codes, q, k),
    }
    walls: dict[str, list[float]] = {w: [] for w in ways}
    cpus: dict[str, list[float]] = {w: [] for w in ways}
    for q in queries[:3]:  # warm: pages touched, threads' code paged in
        for way in ways.values():
            way(q[None])
    for q in queries:
        for name, way in ways.items():
            wall, cpu = timed(lambda: way(q[None]))  # noqa: B023 (called at once)
            walls[name].append(wall)
            cpus[name].append(cpu)
    out: dict = {"n": n, "codes_mb": round(codes.nbytes / 1e6, 1), "queries": args.queries, "k": k}
    base50, base99 = np.percentile(walls["faiss"], 50), np.percentile(walls["faiss"], 99)
    for name in ways:
        p50, p99 = np.percentile(walls[name], 50), np.percentile(walls[name], 99)
        out[name] = {
            "p50_ms": ms(p50),
            "p99_ms": ms(p99),
            "gb_per_s_p50": round(codes.nbytes / p50 / 1e9, 1),
            "cpu_ms_p50": ms(float(np.percentile(cpus[name], 50))),
            "faiss_p50_over_this": round(base50 / p50, 2),
            "faiss_p99_over_this": round(base99 / p99, 2),
        }
    batch = {
        "faiss": lambda: faiss.knn_hamming(queries, codes, k),
        "native auto": lambda: knn_hamming(codes, queries, k),
    }
    for name, call in batch.items():
        out[f"batch {name} ms"] = ms(float(np.median([timed(call)[0] for _ in range(3)])))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", default="100000,1000000", help="sizes, comma-separated")
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--k", type=int, default=64)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", help="write the figures here")
    args = parser.parse_args()
    faiss.omp_set_num_threads(1)
    load_before = os.getloadavg()
    print(f"load average before: {load_before[0]:.2f} {load_before[1]:.2f} {load_before[2]:.2f}")
    results = []
    for n in [int(x) for x in args.n.split(",")]:
        r = measure(n, args)
        results.append(r)
        print(f"\nN = {n:,} ({r['codes_mb']} MB of codes), {args.queries} single queries, k = {args.k}")
        heads = ("p50 ms", "p99 ms", "GB/s", "CPU ms", "faiss/this p50", "p99")
        print(f"{'':12}" + "".join(f"{h:>15}" for h in heads))
        for name in ("faiss", "native 1", "native 2", "native auto"):
            f = r[name]
            cells = (
                "p50_ms",
                "p99_ms",
                "gb_per_s_p50",
                "cpu_ms_p50",
                "faiss_p50_over_this",
                "faiss_p99_over_this",
            )
            print(f"{name:12}" + "".join(f"{f[c]:>15}" for c in cells))
        batch = f"faiss {r['batch faiss ms']} ms, native auto {r['batch native auto ms']} ms"
        print(f"batch of {args.queries} queries in one call: {batch}")
    load_after = os.getloadavg()
    print(f"\nload average after: {load_after[0]:.2f} {load_after[1]:.2f} {load_after[2]:.2f}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"load_before": load_before, "load_after": load_after, "results": results}, f, indent=1)


if __name__ == "__main__":
    main()

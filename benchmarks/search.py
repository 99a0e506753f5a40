"""Speed and accuracy of the gallery's vector index (facedb.index.FaissStore) at scale.

As CONTRACTS.md "How figures are measured" asks, for each gallery size N:

* N random unit templates (512-d, float32) with ids 1..N; 300 probes, each a random
  template plus Gaussian noise of sigma 0.045 per dimension, renormalised (cosine about 0.70
  with its source); k = 5.
* build = ``store.add(ids, templates)`` (validation, sign codes, segmenting); save = the first
  ``store.save(generation)`` (every segment written and fsynced, then the manifest).
* single-query latency p50/p99: each probe searched alone, after one untimed warm query;
  rank-1 = the fraction of probes whose top-1 id is their source template.
* batch: all 300 probes in one ``search`` call, queries per second (median of 3).
* remove+save: ``store.remove([one id])`` then ``store.save(generation + 1)`` at size N.
* reopen: ``FaissStore.open`` (every checksum verified) plus the first answered query; the
  files were just written, so they are in the page cache (a cold disk adds its read time).
  Single-query latency is measured again on the reopened (memory-mapped) store, and one
  more remove+save on it (the gallery's case: open, remove, save).
* baseline, in the same run on the same vectors: raw ``faiss.IndexFlatIP`` (exact), its
  single-query latency on one OpenMP thread, its rank-1, and the ratio to the store.
* RSS after each stage (VmRSS, and the peak VmHWM).

This measures the store directly; the gallery will wrap it (templates imported through SQL),
which adds the SQL import to the build time and a filter of hits against SQL to each query.

Run it from the repository root, in the venv::

    .venv/bin/python benchmarks/search.py                      # N = 10k, 100k, 1M
    .venv/bin/python benchmarks/search.py --n 100000 --json out.json
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import faiss
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from facedb.index import FaissStore

DIM = 512
MODEL = "benchmark-random-512"


def rss_mb() -> tuple[float, float]:
    """(VmRSS, VmHWM) of this process in MB."""
    values = {}
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(("VmRSS:", "VmHWM:")):
                key, value, _ = line.split()
                values[key] = int(value) / 1024
    return values.get("VmRSS:", float("nan")), values.get("VmHWM:", float("nan"))


def templates(n: int, rng: np.random.Generator, chunk: int = 65536) -> np.ndarray:
    x = np.empty((n, DIM), dtype=np.float32)
    for s in range(0, n, chunk):
        part = rng.standard_normal((min(chunk, n - s), DIM), dtype=np.float32)
        part /= np.linalg.norm(part, axis=1, keepdims=True)
        x[s : s + len(part)] = part
    return x


def probes(
    x: np.ndarray, count: int, sigma: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    src = rng.choice(len(x), size=count, replace=False)
    p = x[src] + rng.standard_normal((count, DIM), dtype=np.float32) * np.float32(sigma)
    p /= np.linalg.norm(p, axis=1, keepdims=True)
    return p, src


def single_latencies(search, p: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-probe latency in seconds and the top-1 row of each probe (after one warm query)."""
    search(p[:1], k)
    times = np.empty(len(p))
    top1 = np.empty(len(p), dtype=np.int64)
    for i in range(len(p)):
        t = time.perf_counter()
        _, ids = search(p[i : i + 1], k)
        times[i] = time.perf_counter() - t
        top1[i] = ids[0, 0]
    return times, top1


def ms(seconds: float) -> float:
    return round(seconds * 1e3, 3)


def run(n: int, args: argparse.Namespace) -> dict:
    rng = np.random.default_rng(args.seed)
    out: dict = {"n": n, "dim": DIM, "k": args.k, "probes": args.probes, "sigma": args.sigma}
    t = time.perf_counter()
    x = templates(n, rng)
    p, src = probes(x, args.probes, args.sigma, rng)
    ids = np.arange(1, n + 1, dtype=np.int64)
    truth = ids[src]
    out["probe_cosine_mean"] = round(float(np.einsum("ij,ij->i", p, x[src]).mean()), 4)
    out["generate_s"] = round(time.perf_counter() - t, 2)
    out["rss_mb_data"] = round(rss_mb()[0])

    folder = Path(tempfile.mkdtemp(prefix=f"facedb-search-{n}-", dir=args.dir))
    try:
        store = FaissStore(folder, dim=DIM, model=MODEL, mode=args.mode, threads=args.threads)
        t = time.perf_counter()
        store.add(ids, x)
        out["build_s"] = round(time.perf_counter() - t, 3)
        t = time.perf_counter()
        store.save(1)
        out["save_s"] = round(time.perf_counter() - t, 3)
        out["kind"] = store.kind
        out["segments"] = store.segment_count
        out["index_bytes"] = sum(f.stat().st_size for f in folder.iterdir())
        out["rss_mb_store"] = round(rss_mb()[0])

        times, top1 = single_latencies(store.search, p, args.k)
        out["single_p50_ms"] = ms(np.percentile(times, 50))
        out["single_p99_ms"] = ms(np.percentile(times, 99))
        out["rank1"] = float((top1 == truth).mean())
        batch = []
        for _ in range(3):
            t = time.perf_counter()
            _, bids = store.search(p, args.k)
            batch.append(time.perf_counter() - t)
        out["batch_qps"] = round(args.probes / float(np.median(batch)), 1)
        out["batch_rank1"] = float((bids[:, 0] == truth).mean())

        victim = int(ids[np.setdiff1d(np.arange(n), src)[rng.integers(0, n - len(src))]])
        t = time.perf_counter()
        store.remove([victim])
        t_remove = time.perf_counter() - t
        store.save(2)
        out["remove_s"] = round(t_remove, 4)
        out["remove_save_s"] = round(time.perf_counter() - t, 3)
        store.close()
        del store

        t = time.perf_counter()
        again = FaissStore.open(
            folder, dim=DIM, model=MODEL, generation=2, mode=args.mode, threads=args.threads
        )
        again.search(p[:1], args.k)
        out["reopen_s"] = round(time.perf_counter() - t, 3)
        times, top1 = single_latencies(again.search, p, args.k)
        out["reopened_single_p50_ms"] = ms(np.percentile(times, 50))
        out["reopened_single_p99_ms"] = ms(np.percentile(times, 99))
        out["reopened_rank1"] = float((top1 == truth).mean())
        out["victim_found_after_reopen"] = bool(again.contains(victim))
        out["rss_mb_reopened"] = round(rss_mb()[0])
        # the gallery's case: open, remove a person's template, save
        victim2 = int(ids[np.setdiff1d(np.arange(n), src)[rng.integers(0, n - len(src))]])
        victim2 = victim2 if victim2 != victim else victim2 % n + 1
        t = time.perf_counter()
        again.remove([victim2])
        again.save(3)
        out["reopened_remove_save_s"] = round(time.perf_counter() - t, 3)
        again.close()
        del again
    finally:
        if not args.keep:
            shutil.rmtree(folder, ignore_errors=True)

    # Baseline: raw exact faiss on the same vectors, one OpenMP thread per query.
    t = time.perf_counter()
    flat = faiss.IndexFlatIP(DIM)
    flat.add(x)
    out["baseline_build_s"] = round(time.perf_counter() - t, 3)
    previous = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    try:
        count = min(args.probes, args.baseline_single)
        times, top1 = single_latencies(flat.search, p[:count], args.k)
        out["baseline_single_queries"] = count
        out["baseline_single_p50_ms"] = ms(np.percentile(times, 50))
        out["baseline_single_p99_ms"] = ms(np.percentile(times, 99))
        t = time.perf_counter()
        _, rows = flat.search(p, args.k)
        out["baseline_batch_qps"] = round(args.probes / (time.perf_counter() - t), 1)
    finally:
        faiss.omp_set_num_threads(previous)
    out["baseline_rank1"] = float((ids[rows[:, 0]] == truth).mean())
    out["speedup_single_p50"] = round(out["baseline_single_p50_ms"] / out["single_p50_ms"], 2)
    out["rss_mb_baseline"] = round(rss_mb()[0])
    out["rss_mb_peak"] = round(rss_mb()[1])
    del flat, x
    return out


ROWS = [
    ("kind", "index kind", ""),
    ("segments", "segments", ""),
    ("index_bytes", "index size on disk", "bytes"),
    ("probe_cosine_mean", "probe cosine to source (mean)", ""),
    ("build_s", "build (add N templates)", "s"),
    ("save_s", "first save (write + fsync all)", "s"),
    ("single_p50_ms", "single query p50", "ms"),
    ("single_p99_ms", "single query p99", "ms"),
    ("rank1", "rank-1 (single queries)", ""),
    ("batch_qps", "batch of all probes", "queries/s"),
    ("batch_rank1", "rank-1 (batch)", ""),
    ("remove_s", "remove one template (memory)", "s"),
    ("remove_save_s", "remove one + save", "s"),
    ("reopen_s", "reopen (open, verify, first query)", "s"),
    ("reopened_single_p50_ms", "reopened: single query p50", "ms"),
    ("reopened_single_p99_ms", "reopened: single query p99", "ms"),
    ("reopened_rank1", "reopened: rank-1", ""),
    ("reopened_remove_save_s", "reopened: remove one + save", "s"),
    ("baseline_build_s", "faiss IndexFlatIP: build", "s"),
    ("baseline_single_p50_ms", "faiss IndexFlatIP: single p50", "ms"),
    ("baseline_single_p99_ms", "faiss IndexFlatIP: single p99", "ms"),
    ("baseline_batch_qps", "faiss IndexFlatIP: batch (1 thread)", "queries/s"),
    ("baseline_rank1", "faiss IndexFlatIP: rank-1", ""),
    ("speedup_single_p50", "IndexFlatIP p50 / store p50", "x"),
    ("rss_mb_data", "RSS: templates generated", "MB"),
    ("rss_mb_store", "RSS: + store built", "MB"),
    ("rss_mb_reopened", "RSS: store closed, reopened", "MB"),
    ("rss_mb_baseline", "RSS: + IndexFlatIP", "MB"),
    ("rss_mb_peak", "RSS peak so far", "MB"),
]


def print_table(results: list[dict]) -> None:
    width = 2 + max(len(f"{r.get(key)!s}") for r in results for key, _, _ in ROWS)
    print(f"{'':44}" + "".join(f"{'N=' + format(r['n'], ','):>{width}}" for r in results))
    for key, label, unit in ROWS:
        cells = "".join(f"{r.get(key)!s:>{width}}" for r in results)
        print(f"{(label + (f' ({unit})' if unit else '')):44}{cells}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", default="10000,100000,1000000", help="gallery sizes, comma-separated")
    parser.add_argument("--probes", type=int, default=300)
    parser.add_argument("--k", type=int, default=5)
    parser.add_argument("--sigma", type=float, default=0.045, help="noise per dimension of a probe")
    parser.add_argument("--mode", choices=["auto", "exact", "approximate"], default="auto")
    parser.add_argument("--threads", type=int, default=1, help="batch threads (store default: 1)")
    parser.add_argument(
        "--baseline-single", type=int, default=300, help="probes timed one by one on IndexFlatIP"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--dir", default=None, help="where the index folder is made (default: temp)")
    parser.add_argument("--keep", action="store_true", help="keep the index folder")
    parser.add_argument("--json", metavar="OUT", help="also write the figures as JSON")
    args = parser.parse_args()

    sizes = [int(v) for v in args.n.split(",")]
    print(
        f"facedb vector store (facedb.index.FaissStore, mode={args.mode}), measured directly "
        f"(not yet through the gallery's SQL import); faiss {faiss.__version__}, "
        f"{os.cpu_count()} cores, batch threads {args.threads}",
        flush=True,
    )
    results = []
    for n in sizes:
        r = run(n, args)
        results.append(r)
        print(f"\nN={n:,}: " + json.dumps(r), flush=True)
    print()
    print_table(results)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()

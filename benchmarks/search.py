"""Speed and accuracy of gallery search at scale, through the facedb API (facedb.FaceDB).

As CONTRACTS.md "How figures are measured" asks, for each gallery size N:

* N random unit templates (512-d, float32); 300 probes, each a random template plus Gaussian
  noise of sigma 0.045 per dimension, renormalised (cosine about 0.70 with its source); k = 5.

Gallery mode (the default) times the public API on a new gallery folder:

* open (new) = ``FaceDB(folder)`` on an empty folder (loads the face engine's ONNX models).
* import = ``db.import_embeddings(names, X)``, one person per row (SQLite rows, change log,
  then the vector index saved after each batch).
* single-query latency p50/p99: ``db.search(probe, k=5)`` for each probe alone, after one
  untimed warm query; rank-1 = the fraction of probes whose top candidate is the person
  imported from their source template. The calling thread's CPU time per query is shown
  too: on a shared machine (see the load average) wall minus CPU is waiting for a core.
* batch: ``db.search(all 300 probes, k=5)`` in one call, queries per second (median of 3).
* remove = ``db.remove(person id)`` of a person who is not a probe's source, at size N (SQL
  delete, WAL checkpoint, one index segment rewritten); then that person's own template is
  searched to check that they are gone.
* close = ``db.close()``. The benchmark then drops its own copy of the templates, so that
  the RSS after reopening is the reopened gallery's (plus the probes and the interpreter).
* reopen = ``FaceDB(folder)`` (schema check, engine load, every index checksum verified) plus
  the first answered ``db.search``; the files were just written, so they are in the page
  cache (a cold disk adds its read time). Latency and rank-1 are measured again after it.
  This process has already loaded the face engine, so the same reopen is also timed in a
  new interpreter (``FaceDB(folder)`` with the engine's first load, plus the first answer;
  importing facedb shown apart).
* disk = gallery.db (its WAL is checkpointed on close) and the index folder.
* RSS (VmRSS) after each stage and the process peak (``resource.getrusage``; the peak is
  the whole process's, so it includes the baseline's and, for later N, earlier runs).
* baseline, in the same run on the same vectors (before the gallery, so that the
  templates can be dropped afterwards): raw ``faiss.IndexFlatIP`` (exact), its single-query
  latency on one OpenMP thread, its rank-1, and the ratio of its p50 to the gallery's.

``--store-only`` instead measures the vector store (facedb.index.FaissStore) directly, with
ids 1..N: build = ``store.add``, first save, single/batch search, remove + save, reopen
(``FaissStore.open`` plus the first query), and the same baseline.

Run it from the repository root, in the venv::

    .venv/bin/python benchmarks/search.py                      # N = 10k, 100k, 1M
    .venv/bin/python benchmarks/search.py --n 100000 --json out.json
    .venv/bin/python benchmarks/search.py --store-only --n 100000
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import faiss
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import facedb
from facedb.index import FaissStore

DIM = 512
MODEL = "benchmark-random-512"


def rss_mb() -> tuple[float, float]:
    """(VmRSS, peak RSS) of this process in MB; the peak from getrusage (ru_maxrss, KB)."""
    rss = float("nan")
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1]) / 1024
    return rss, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def folder_bytes(folder: Path) -> int:
    return sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())


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


def single_latencies(
    search: Callable[[np.ndarray], Any], p: np.ndarray, top1: Callable[[Any], int]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Wall-clock latency in seconds of ``search(probe)`` for each probe alone (after one
    untimed warm query), the calling thread's CPU time of each (on a busy machine the gap is
    time spent waiting for a core), and ``top1(answer)`` of each, taken outside the timing."""
    search(p[0])
    times = np.empty(len(p))
    cpu = np.empty(len(p))
    best = np.empty(len(p), dtype=np.int64)
    for i in range(len(p)):
        c = time.thread_time()
        t = time.perf_counter()
        answer = search(p[i])
        times[i] = time.perf_counter() - t
        cpu[i] = time.thread_time() - c
        best[i] = top1(answer)
    return times, cpu, best


def ms(seconds: float) -> float:
    return round(seconds * 1e3, 3)


def latency_figures(out: dict, prefix: str, times: np.ndarray, cpu: np.ndarray, hits: np.ndarray) -> None:
    out[f"{prefix}single_p50_ms"] = ms(np.percentile(times, 50))
    out[f"{prefix}single_p99_ms"] = ms(np.percentile(times, 99))
    out[f"{prefix}single_cpu_p50_ms"] = ms(np.percentile(cpu, 50))
    out[f"{prefix}single_cpu_p99_ms"] = ms(np.percentile(cpu, 99))
    out[f"{prefix}rank1"] = float(hits.mean())


def dataset(
    n: int, args: argparse.Namespace
) -> tuple[dict, np.random.Generator, np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(args.seed)
    out: dict = {"n": n, "dim": DIM, "k": args.k, "probes": args.probes, "sigma": args.sigma}
    out["load_avg_1min"] = round(os.getloadavg()[0], 2)
    t = time.perf_counter()
    x = templates(n, rng)
    p, src = probes(x, args.probes, args.sigma, rng)
    out["probe_cosine_mean"] = round(float(np.einsum("ij,ij->i", p, x[src]).mean()), 4)
    out["generate_s"] = round(time.perf_counter() - t, 2)
    out["rss_mb_data"] = round(rss_mb()[0])
    return out, rng, x, p, src


def non_probe_row(n: int, src: np.ndarray, rng: np.random.Generator, avoid: int = -1) -> int:
    """A random row that is no probe's source (and not ``avoid``)."""
    free = np.setdiff1d(np.arange(n), src)
    free = free[free != avoid]
    return int(free[rng.integers(0, len(free))])


def baseline(x: np.ndarray, p: np.ndarray, src: np.ndarray, args: argparse.Namespace) -> dict:
    """Raw exact faiss on the same vectors: IndexFlatIP, one OpenMP thread per query."""
    out: dict = {}
    t = time.perf_counter()
    flat = faiss.IndexFlatIP(DIM)
    flat.add(x)
    out["baseline_build_s"] = round(time.perf_counter() - t, 3)
    previous = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    try:
        count = min(args.probes, args.baseline_single)
        times, _, top1 = single_latencies(
            lambda q: flat.search(q[None], args.k), p[:count], lambda r: int(r[1][0, 0])
        )
        out["baseline_single_queries"] = count
        out["baseline_single_p50_ms"] = ms(np.percentile(times, 50))
        out["baseline_single_p99_ms"] = ms(np.percentile(times, 99))
        out["baseline_single_rank1"] = float((top1 == src[:count]).mean())
        t = time.perf_counter()
        _, rows = flat.search(p, args.k)
        out["baseline_batch_qps"] = round(args.probes / (time.perf_counter() - t), 1)
    finally:
        faiss.omp_set_num_threads(previous)
    out["baseline_rank1"] = float((rows[:, 0] == src).mean())
    out["rss_mb_baseline"] = round(rss_mb()[0])
    return out  # the index is freed here


# -- gallery mode (through facedb.FaceDB) ----------------------------------------------------


def gallery_search(db: facedb.FaceDB, k: int) -> Callable[[np.ndarray], Any]:
    return lambda q: db.search(q, k=k)


def gallery_top1(answer: list[list[facedb.Candidate]]) -> int:
    return answer[0][0].person.id if answer and answer[0] else -1


# Run in a new interpreter: the time to import facedb, then FaceDB(folder) (with the engine's
# first load, which this process had already done) and FaceDB(folder) + the first answer.
FRESH_PROCESS = """
import json, sys, time
t0 = time.perf_counter()
import numpy as np
import facedb
t1 = time.perf_counter()
probe = np.array(json.loads(sys.stdin.read()), dtype=np.float32)
db = facedb.FaceDB(sys.argv[1], index=sys.argv[2])
t2 = time.perf_counter()
answer = db.search(probe, k=int(sys.argv[3]))
t3 = time.perf_counter()
db.close()
print(json.dumps({"import": t1 - t0, "open": t2 - t1, "reopen": t3 - t1, "top1": answer[0][0].person.id}))
"""


def reopen_in_new_process(folder: Path, probe: np.ndarray, args: argparse.Namespace) -> dict:
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parent.parent))
    done = subprocess.run(
        [sys.executable, "-c", FRESH_PROCESS, str(folder), args.mode, str(args.k)],
        input=json.dumps(probe.tolist()),
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    return {
        "new_process_import_s": round(figures["import"], 3),
        "new_process_open_s": round(figures["open"], 3),
        "new_process_reopen_s": round(figures["reopen"], 3),
    }


def run_gallery(n: int, args: argparse.Namespace) -> dict:
    out, rng, x, p, src = dataset(n, args)
    out["mode"] = "gallery"
    out.update(baseline(x, p, src, args))
    victim_row = non_probe_row(n, src, rng)
    victim_vector = x[victim_row].copy()

    folder = Path(tempfile.mkdtemp(prefix=f"facedb-gallery-{n}-", dir=args.dir))
    try:
        t = time.perf_counter()
        db = facedb.FaceDB(folder, index=args.mode)
        out["open_new_s"] = round(time.perf_counter() - t, 3)
        names = [f"person {i}" for i in range(n)]
        t = time.perf_counter()
        people = db.import_embeddings(names, x)
        out["import_s"] = round(time.perf_counter() - t, 2)
        out["import_per_s"] = round(n / out["import_s"])
        person_ids = np.fromiter((person.id for person in people), dtype=np.int64, count=n)
        del people, names
        truth = person_ids[src]
        out["index_kind"] = db.index.kind
        out["rss_mb_imported"] = round(rss_mb()[0])

        times, cpu, top1 = single_latencies(gallery_search(db, args.k), p, gallery_top1)
        latency_figures(out, "", times, cpu, top1 == truth)
        batch = []
        for _ in range(3):
            t = time.perf_counter()
            answer = db.search(p, k=args.k)
            batch.append(time.perf_counter() - t)
        out["batch_qps"] = round(args.probes / float(np.median(batch)), 1)
        out["batch_rank1"] = float((np.array([gallery_top1([a]) for a in answer]) == truth).mean())

        victim = int(person_ids[victim_row])
        t = time.perf_counter()
        db.remove(victim)
        out["remove_s"] = round(time.perf_counter() - t, 3)
        out["removed_found"] = victim in {c.person.id for c in db.search(victim_vector, k=args.k)[0]}
        t = time.perf_counter()
        db.close()
        out["close_s"] = round(time.perf_counter() - t, 3)
        del db, x  # the benchmark's own copy of the templates: RSS from here on is the gallery's
        out["disk_db_bytes"] = folder_bytes(folder) - folder_bytes(folder / "index")
        out["disk_index_bytes"] = folder_bytes(folder / "index")
        out["disk_db_mb"] = round(out["disk_db_bytes"] / 2**20, 1)
        out["disk_index_mb"] = round(out["disk_index_bytes"] / 2**20, 1)
        out["index_segments"] = len(list((folder / "index").glob("*.fseg")))

        t = time.perf_counter()
        db = facedb.FaceDB(folder, index=args.mode)
        out["reopen_open_s"] = round(time.perf_counter() - t, 3)
        db.search(p[0], k=args.k)
        out["reopen_s"] = round(time.perf_counter() - t, 3)
        times, cpu, top1 = single_latencies(gallery_search(db, args.k), p, gallery_top1)
        latency_figures(out, "reopened_", times, cpu, top1 == truth)
        out["rss_mb_reopened"] = round(rss_mb()[0])
        db.close()
        del db
        out.update(reopen_in_new_process(folder, p[0], args))
    finally:
        if args.keep:
            print(f"kept {folder}", flush=True)
        else:
            shutil.rmtree(folder, ignore_errors=True)
    out["speedup_single_p50"] = round(out["baseline_single_p50_ms"] / out["single_p50_ms"], 2)
    out["rss_mb_peak"] = round(rss_mb()[1])
    return out


GALLERY_ROWS = [
    ("index_segments", "index segments", "", ""),
    ("disk_db_mb", "disk: gallery.db (after close)", "MB", ""),
    ("disk_index_mb", "disk: index/", "MB", ""),
    ("probe_cosine_mean", "probe cosine to source (mean)", "", ""),
    ("load_avg_1min", "machine load average (1 min) at start", "", ""),
    ("open_new_s", "open new gallery (engine load)", "s", ""),
    ("import_s", "import_embeddings (N people)", "s", "<= 120"),
    ("import_per_s", "import rate", "people/s", ""),
    ("single_p50_ms", "single query p50", "ms", ""),
    ("single_p99_ms", "single query p99", "ms", "<= 10"),
    ("single_cpu_p50_ms", "single query p50, CPU time", "ms", ""),
    ("single_cpu_p99_ms", "single query p99, CPU time", "ms", ""),
    ("rank1", "rank-1 (single queries)", "", ">= 0.99"),
    ("batch_qps", "batch of all probes", "queries/s", ""),
    ("batch_rank1", "rank-1 (batch)", "", ""),
    ("remove_s", "remove one person", "s", ""),
    ("removed_found", "removed person still found", "", "False"),
    ("close_s", "close (WAL checkpoint)", "s", ""),
    ("reopen_open_s", "reopen: FaceDB() alone", "s", ""),
    ("reopen_s", "reopen: FaceDB() + first query", "s", "<= 3"),
    ("new_process_import_s", "new process: import facedb", "s", ""),
    ("new_process_open_s", "new process: FaceDB() (engine load too)", "s", ""),
    ("new_process_reopen_s", "new process: FaceDB() + first query", "s", "<= 3"),
    ("reopened_single_p50_ms", "reopened: single query p50", "ms", ""),
    ("reopened_single_p99_ms", "reopened: single query p99", "ms", "<= 10"),
    ("reopened_single_cpu_p99_ms", "reopened: single query p99, CPU time", "ms", ""),
    ("reopened_rank1", "reopened: rank-1", "", ">= 0.99"),
    ("baseline_build_s", "faiss IndexFlatIP: build", "s", ""),
    ("baseline_single_p50_ms", "faiss IndexFlatIP: single p50", "ms", ""),
    ("baseline_single_p99_ms", "faiss IndexFlatIP: single p99", "ms", ""),
    ("baseline_batch_qps", "faiss IndexFlatIP: batch (1 thread)", "queries/s", ""),
    ("baseline_rank1", "faiss IndexFlatIP: rank-1", "", ""),
    ("speedup_single_p50", "IndexFlatIP p50 / gallery p50", "x", ""),
    ("rss_mb_data", "RSS: templates generated", "MB", ""),
    ("rss_mb_baseline", "RSS: + IndexFlatIP (freed after)", "MB", ""),
    ("rss_mb_imported", "RSS: + gallery imported", "MB", ""),
    ("rss_mb_reopened", "RSS: templates dropped, reopened", "MB", ""),
    ("rss_mb_peak", "RSS peak (process, getrusage)", "MB", ""),
]


# -- store-only mode (facedb.index.FaissStore directly) --------------------------------------


def run_store(n: int, args: argparse.Namespace) -> dict:
    out, rng, x, p, src = dataset(n, args)
    out["mode"] = "store"
    ids = np.arange(1, n + 1, dtype=np.int64)
    truth = ids[src]

    def store_search(store: FaissStore) -> Callable[[np.ndarray], Any]:
        return lambda q: store.search(q[None], args.k)

    def store_top1(answer: tuple[np.ndarray, np.ndarray]) -> int:
        return int(answer[1][0, 0])

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
        out["index_bytes"] = folder_bytes(folder)
        out["rss_mb_store"] = round(rss_mb()[0])

        times, cpu, top1 = single_latencies(store_search(store), p, store_top1)
        latency_figures(out, "", times, cpu, top1 == truth)
        batch = []
        for _ in range(3):
            t = time.perf_counter()
            _, bids = store.search(p, args.k)
            batch.append(time.perf_counter() - t)
        out["batch_qps"] = round(args.probes / float(np.median(batch)), 1)
        out["batch_rank1"] = float((bids[:, 0] == truth).mean())

        victim = int(ids[non_probe_row(n, src, rng)])
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
        times, cpu, top1 = single_latencies(store_search(again), p, store_top1)
        latency_figures(out, "reopened_", times, cpu, top1 == truth)
        out["victim_found_after_reopen"] = bool(again.contains(victim))
        out["rss_mb_reopened"] = round(rss_mb()[0])
        # the gallery's case: open, remove a person's template, save
        victim2 = int(ids[non_probe_row(n, src, rng, avoid=victim - 1)])
        t = time.perf_counter()
        again.remove([victim2])
        again.save(3)
        out["reopened_remove_save_s"] = round(time.perf_counter() - t, 3)
        again.close()
        del again
    finally:
        if args.keep:
            print(f"kept {folder}", flush=True)
        else:
            shutil.rmtree(folder, ignore_errors=True)

    out.update(baseline(x, p, src, args))
    out["speedup_single_p50"] = round(out["baseline_single_p50_ms"] / out["single_p50_ms"], 2)
    out["rss_mb_peak"] = round(rss_mb()[1])
    del x
    return out


STORE_ROWS = [
    ("segments", "segments", "", ""),
    ("index_bytes", "index size on disk", "bytes", ""),
    ("probe_cosine_mean", "probe cosine to source (mean)", "", ""),
    ("build_s", "build (add N templates)", "s", ""),
    ("save_s", "first save (write + fsync all)", "s", ""),
    ("single_p50_ms", "single query p50", "ms", ""),
    ("single_p99_ms", "single query p99", "ms", ""),
    ("rank1", "rank-1 (single queries)", "", ""),
    ("batch_qps", "batch of all probes", "queries/s", ""),
    ("batch_rank1", "rank-1 (batch)", "", ""),
    ("remove_s", "remove one template (memory)", "s", ""),
    ("remove_save_s", "remove one + save", "s", ""),
    ("reopen_s", "reopen (open, verify, first query)", "s", ""),
    ("reopened_single_p50_ms", "reopened: single query p50", "ms", ""),
    ("reopened_single_p99_ms", "reopened: single query p99", "ms", ""),
    ("reopened_rank1", "reopened: rank-1", "", ""),
    ("reopened_remove_save_s", "reopened: remove one + save", "s", ""),
    ("baseline_build_s", "faiss IndexFlatIP: build", "s", ""),
    ("baseline_single_p50_ms", "faiss IndexFlatIP: single p50", "ms", ""),
    ("baseline_single_p99_ms", "faiss IndexFlatIP: single p99", "ms", ""),
    ("baseline_batch_qps", "faiss IndexFlatIP: batch (1 thread)", "queries/s", ""),
    ("baseline_rank1", "faiss IndexFlatIP: rank-1", "", ""),
    ("speedup_single_p50", "IndexFlatIP p50 / store p50", "x", ""),
    ("rss_mb_data", "RSS: templates generated", "MB", ""),
    ("rss_mb_store", "RSS: + store built", "MB", ""),
    ("rss_mb_reopened", "RSS: store closed, reopened", "MB", ""),
    ("rss_mb_baseline", "RSS: + IndexFlatIP", "MB", ""),
    ("rss_mb_peak", "RSS peak (process, getrusage)", "MB", ""),
]


def print_table(results: list[dict], rows: list[tuple[str, str, str, str]]) -> None:
    for r in results:
        print(f"N={r['n']:,}: index kind {r.get('index_kind', r.get('kind'))}")
    width = 2 + max(len(f"{r.get(key)!s}") for r in results for key, *_ in rows)
    width = max(width, 2 + max(len(f"N={r['n']:,}") for r in results))
    labels = [label + (f" ({unit})" if unit else "") for _, label, unit, _ in rows]
    left = 2 + max(len(label) for label in labels)
    targets = any(target for *_, target in rows)
    header = "".join(f"{'N=' + format(r['n'], ','):>{width}}" for r in results)
    print(f"{'':{left}}{header}" + ("   target at N=1M" if targets else ""))
    for (key, _, _, target), label in zip(rows, labels, strict=True):
        cells = "".join(f"{r.get(key)!s:>{width}}" for r in results)
        line = f"{label:{left}}{cells}"
        print(f"{line}   {target}" if target else line)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", default="10000,100000,1000000", help="gallery sizes, comma-separated")
    parser.add_argument("--store-only", action="store_true", help="measure FaissStore directly")
    parser.add_argument("--probes", type=int, default=300)
    parser.add_argument("--k", type=int, default=5)
    parser.add_argument("--sigma", type=float, default=0.045, help="noise per dimension of a probe")
    parser.add_argument(
        "--mode",
        choices=["auto", "exact", "approximate"],
        default="auto",
        help="index kind (FaceDB(index=...) / FaissStore(mode=...))",
    )
    parser.add_argument(
        "--threads", type=int, default=1, help="--store-only: batch threads (store default: 1)"
    )
    parser.add_argument(
        "--baseline-single", type=int, default=300, help="probes timed one by one on IndexFlatIP"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--dir", "--workdir", dest="dir", default=None, help="where the folders are made (default: temp)"
    )
    parser.add_argument("--keep", action="store_true", help="keep the gallery / index folder")
    parser.add_argument("--json", metavar="OUT", help="also write the figures as JSON")
    args = parser.parse_args()

    sizes = [int(v) for v in args.n.split(",")]
    where = f"faiss {faiss.__version__}, {os.cpu_count()} cores"
    if args.store_only:
        print(
            f"facedb vector store (facedb.index.FaissStore, mode={args.mode}), measured directly; "
            f"{where}, batch threads {args.threads}",
            flush=True,
        )
        run, rows = run_store, STORE_ROWS
    else:
        print(
            f"facedb gallery through its API (facedb.FaceDB, index={args.mode}, SQLite folder); "
            f"{where}; baseline raw faiss IndexFlatIP (exact) on the same vectors",
            flush=True,
        )
        run, rows = run_gallery, GALLERY_ROWS
    results = []
    for n in sizes:
        r = run(n, args)
        results.append(r)
        print(f"\nN={n:,}: " + json.dumps(r), flush=True)
    print()
    print_table(results, rows)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()

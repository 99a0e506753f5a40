"""Speed and accuracy of gallery search at scale, through the facedb API (facedb.FaceDB).

As CONTRACTS.md "How figures are measured" asks, for each gallery size N:

* N random unit templates (512-d, float32); 300 probes, each a random template plus Gaussian
  noise of sigma 0.045 per dimension, renormalised (cosine about 0.70 with its source); k = 5.

Gallery mode (the default) times the public API on a new gallery folder:

* open (new) = ``FaceDB(folder)`` on an empty folder (loads the face engine's ONNX models).
* import = ``db.import_embeddings(names, X)``, one person per row (SQLite rows, change log,
  the vector index saved every 64K rows and at the end).
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
* reopen = ``FaceDB(folder)`` (schema check, the installed recognizer's identity, the index's
  manifest and its ids, checksums and sign codes verified; the face engine's models load
  at the first photo, so not here) plus the first answered ``db.search``; the files were
  just written, so they are in the page cache (a cold disk adds its read time). Latency and
  rank-1 are measured again after it. The same reopen is also timed in a new interpreter,
  with importing facedb and the modules ``FaceDB`` needs shown apart, and the sum.
* disk = gallery.db (its WAL is checkpointed on close) and the index folder.
* RSS (VmRSS) after each stage and the process peak (``resource.getrusage``; the peak is
  the whole process's, so it includes the baseline's and, for later N, earlier runs).
* baseline, in the same run on the same vectors (before the gallery, so that the
  templates can be dropped afterwards): raw ``faiss.IndexFlatIP`` (exact), its single-query
  latency on one OpenMP thread, its rank-1, and the ratio of its p50 to the gallery's.

``--vectors milvus://host:port[/name][?ef=..&candidates=..&consistency=..]`` measures, in the
same run and on the same templates and probes (generated again from the seed, after the FAISS
gallery is closed), the gallery with its vectors in Milvus: ``FaceDB(folder, vectors=URL)``,
SQLite in a new folder, and a new collection per N (``name_N_RANDOM``, default name
facedb_bench; released and dropped at the end unless ``--keep``). Besides the figures above:

* just imported: single queries right after ``import_embeddings`` returns. facedb does not
  flush, so the tail of the import is still in a growing segment, which Milvus searches
  through its interim IVF index (queryNode.segcore.interimIndex) until the segment is sealed
  (when idle for dataCoord.segment.maxIdleTime) and indexed.
* indexed: ``--flush-after`` seconds after the import (default 0) the benchmark flushes the
  collection itself (pymilvus); it waits until the server reports the HNSW index built on
  every row, and ``--settle`` seconds more for the query node to swap the indexed segments
  in; every later figure is of that state. Meanwhile, every ``--poll`` seconds, it records
  the indexed row count and the rank-1 of the store's answer to all probes (one request):
  printed as a timeline, with the time from which that rank-1 stays >= 0.99.
* store search alone: ``db.vectors.search`` (the Milvus search as FaceDB calls it, for
  max(4k, 16) faces) without the SQL checks and the hit filter that ``FaceDB.search`` does
  around it; and the p50 of ``len(db.vectors)`` (a count(*) query at Strong consistency).
* the server's memory: RSS summed over the process group of the process listening on the
  URL's port (``milvus run standalone`` and anything it started, read from /proc; or
  ``--milvus-pid``) after each stage, its peak sampled every 0.5 s, the server's CPU time
  during the import and during flush + indexing, and the size of its data folder.
* ``--split-cores``: once the index is built, before any timed search, every thread of the
  server's process group is pinned to the last core and this client to the others (restored
  at the end): on a 2-core machine, as if the server had a machine of its own, so that the
  client's work between two queries does not delay the server's answer to the next.
* ``--sweep OPTIONS ...``: URL options (``candidates=128&ef=256&consistency=Bounded``), each
  measured on the same indexed collection (rank-1 and p50/p99 through FaceDB.search and of
  the store alone) and printed as a table of its own.

``--skip-faiss`` leaves the FAISS gallery out (the raw IndexFlatIP baseline stays).

``--store-only`` instead measures the vector store (facedb.faiss.FaissStore) directly, with
ids 1..N: build = ``store.add``, first save, single/batch search, remove + save, reopen
(``FaissStore.open`` plus the first query), and the same baseline.

Run it from the repository root, in the venv::

    .venv/bin/python benchmarks/search.py                      # N = 10k, 100k, 1M
    .venv/bin/python benchmarks/search.py --n 100000 --json out.json
    .venv/bin/python benchmarks/search.py --store-only --n 100000
    uri=$(scripts/milvus.sh start /tmp/milvus-bench)          # http://127.0.0.1:PORT
    url="milvus://${uri#http://}"
    .venv/bin/python benchmarks/search.py --n 100000 --vectors "$url" --split-cores
    .venv/bin/python benchmarks/search.py --n 100000 --vectors "$url" --skip-faiss \\
        --sweep 'candidates=128&ef=256' 'consistency=Bounded'
    scripts/milvus.sh stop /tmp/milvus-bench
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
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import faiss
import numpy as np

# --code PATH measures the facedb of another checkout (e.g. the main branch: today's layout)
# with this same script, data and probes; read before facedb is imported.
CODE = next((sys.argv[i + 1] for i, a in enumerate(sys.argv[:-1]) if a == "--code"), None)
sys.path.insert(0, CODE or str(Path(__file__).resolve().parent.parent))

import facedb  # noqa: E402
from facedb.faiss import FaissStore  # noqa: E402

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


def templates(
    n: int, rng: np.random.Generator, chunk: int = 65536, family: int = 1, cosine: float = 0.6
) -> np.ndarray:
    """N random unit templates; with ``family`` > 1, consecutive runs of ``family`` people
    are look-alikes: each is a shared random direction (weight sqrt(cosine)) plus a direction
    of their own, so that two of them are at about ``cosine``."""
    x = np.empty((n, DIM), dtype=np.float32)
    shared = np.float32(np.sqrt(cosine))
    own = np.float32(np.sqrt(1 - cosine))
    for s in range(0, n, chunk):
        part = rng.standard_normal((min(chunk, n - s), DIM), dtype=np.float32)
        part /= np.linalg.norm(part, axis=1, keepdims=True)
        if family > 1:
            rows = np.arange(s, s + len(part))
            first = rows[0] // family
            centres = rng.standard_normal((rows[-1] // family - first + 1, DIM), dtype=np.float32)
            centres /= np.linalg.norm(centres, axis=1, keepdims=True)
            part = shared * centres[rows // family - first] + own * part
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
    x = templates(n, rng, family=args.lookalikes, cosine=args.lookalike_cosine)
    p, src = probes(x, args.probes, args.sigma, rng)
    if args.lookalikes > 1:
        out["lookalikes"] = args.lookalikes
        mate = np.where(src % args.lookalikes == 0, src + 1, src - 1)
        mate = np.minimum(mate, n - 1)
        out["lookalike_cosine_mean"] = round(float(np.einsum("ij,ij->i", x[mate], x[src]).mean()), 4)
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
    EXACT_ROWS[id(p)] = rows  # the exact top-k of each probe, for the top-k agreement
    return out  # the index is freed here


EXACT_ROWS: dict[int, np.ndarray] = {}


def topk_agreement(found: list[list[int]], exact: np.ndarray) -> float:
    """The fraction of the exact top-k (rows of ``exact``) found in each answer's top k."""
    hits = sum(len(set(f) & set(e.tolist())) for f, e in zip(found, exact, strict=True))
    return round(hits / exact.size, 4)


def memory_status() -> dict[str, float]:
    """Private (RssAnon) and file-backed (RssFile) resident memory of this process, in MB,
    and the bytes it has read with read() and friends (rchar)."""
    out: dict[str, float] = {}
    with open("/proc/self/status") as f:
        for line in f:
            key = line.split(":")[0]
            if key in ("RssAnon", "RssFile"):
                out[key] = round(int(line.split()[1]) / 1024, 1)
    with open("/proc/self/io") as f:
        for line in f:
            if line.startswith("rchar:"):
                out["rchar_mb"] = round(int(line.split()[1]) / 2**20, 1)
    return out


class PeakRSS:
    """Samples this process's VmRSS every 20 ms while in use; ``above`` = the peak minus the
    RSS on entry, in MB (the peak above what the caller already held)."""

    def __init__(self) -> None:
        self.start = self.peak = rss_mb()[0]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.02):
            self.peak = max(self.peak, rss_mb()[0])

    def __enter__(self) -> PeakRSS:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, rss_mb()[0])

    @property
    def above(self) -> float:
        return round(self.peak - self.start)


# -- gallery mode (through facedb.FaceDB) ----------------------------------------------------


def gallery_search(db: facedb.FaceDB, k: int) -> Callable[[np.ndarray], Any]:
    return lambda q: db.search(q, k=k)


def gallery_top1(answer: list[list[facedb.Candidate]]) -> int:
    return answer[0][0].person.id if answer and answer[0] else -1


# Run in a new interpreter: the time to import facedb and the modules FaceDB needs (import
# facedb alone is lazy), then FaceDB(folder) and FaceDB(folder) + the first answer (a search
# by template: the face engine's models load at the first photo), and all of it together.
FRESH_PROCESS = """
import json, sys, time
t0 = time.perf_counter()
import numpy as np
import facedb
from facedb import FaceDB
t1 = time.perf_counter()
probes = np.atleast_2d(np.array(json.loads(sys.stdin.read()), dtype=np.float32))
vectors = sys.argv[4] if len(sys.argv) > 4 else None
db = facedb.FaceDB(sys.argv[1], index=sys.argv[2], vectors=vectors)
t2 = time.perf_counter()
answer = db.search(probes[0], k=int(sys.argv[3]))
t3 = time.perf_counter()
times = []
for probe in probes[1:]:
    t = time.perf_counter()
    db.search(probe, k=int(sys.argv[3]))
    times.append(time.perf_counter() - t)
memory = {}
for line in open("/proc/self/status"):
    if line.split(":")[0] in ("RssAnon", "RssFile"):
        memory[line.split(":")[0]] = int(line.split()[1]) / 1024
for line in open("/proc/self/io"):
    if line.startswith("rchar:"):
        memory["rchar"] = int(line.split()[1]) / 2**20
db.close()
print(json.dumps({"import": t1 - t0, "open": t2 - t1, "reopen": t3 - t1, "whole": t3 - t0,
                  "top1": answer[0][0].person.id,
                  "p50": float(np.percentile(times, 50)) if times else None,
                  "p99": float(np.percentile(times, 99)) if times else None, **memory}))
"""


def reopen_in_new_process(
    folder: Path, probe: np.ndarray, args: argparse.Namespace, vectors: str | None = None
) -> dict:
    root = CODE or str(Path(__file__).resolve().parent.parent)
    env = dict(os.environ, PYTHONPATH=root)
    command = [sys.executable, "-c", FRESH_PROCESS, str(folder), args.mode, str(args.k)]
    done = subprocess.run(
        command + ([vectors] if vectors else []),
        input=json.dumps(probe.tolist()),
        capture_output=True,
        text=True,
        env=env,
        cwd=root,  # `python -c` puts the working folder first on sys.path
    )
    if done.returncode:
        raise RuntimeError(f"the new process failed: {done.stderr}")
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    out = {
        "new_process_import_s": round(figures["import"], 3),
        "new_process_open_s": round(figures["open"], 3),
        "new_process_reopen_s": round(figures["reopen"], 3),
        "new_process_whole_s": round(figures["whole"], 3),
    }
    if figures.get("p50") is not None:
        out["new_process_single_p50_ms"] = ms(figures["p50"])
        out["new_process_single_p99_ms"] = ms(figures["p99"])
    for key, name in (("RssAnon", "private_mb"), ("RssFile", "file_mb"), ("rchar", "read_mb")):
        if key in figures:
            out[f"new_process_{name}"] = round(figures[key], 1)
    return out


def run_gallery(n: int, args: argparse.Namespace) -> dict:
    out, rng, x, p, src = dataset(n, args)
    out["mode"] = "gallery"
    out.update(baseline(x, p, src, args))
    if args.skip_faiss:
        out["rss_mb_peak"] = round(rss_mb()[1])
        return out
    victim_row = non_probe_row(n, src, rng)
    victim_vector = x[victim_row].copy()

    folder = Path(tempfile.mkdtemp(prefix=f"facedb-gallery-{n}-", dir=args.dir))
    try:
        t = time.perf_counter()
        db = facedb.FaceDB(folder, index=args.mode)
        out["open_new_s"] = round(time.perf_counter() - t, 3)
        names = [f"person {i}" for i in range(n)]
        t = time.perf_counter()
        with PeakRSS() as peak:
            people = db.import_embeddings(names, x)
        out["import_s"] = round(time.perf_counter() - t, 2)
        out["import_peak_mb_above"] = peak.above
        out["import_per_s"] = round(n / out["import_s"])
        person_ids = np.fromiter((person.id for person in people), dtype=np.int64, count=n)
        del people, names
        truth = person_ids[src]
        out["index_kind"] = db.vectors.kind
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
        if id(p) in EXACT_ROWS:
            exact_people = person_ids[EXACT_ROWS[id(p)]]
            found = [[c.person.id for c in a] for a in answer]
            out["topk_agreement"] = topk_agreement(found, exact_people)
        out.update({f"served_{k}": v for k, v in memory_status().items()})
        # the vector index alone, as FaceDB calls it: the rest of a query is SQL and Python
        times, _, _ = single_latencies(store_search(db), p, lambda answer: 0)
        out["index_single_p50_ms"] = ms(np.percentile(times, 50))
        out["index_single_p99_ms"] = ms(np.percentile(times, 99))

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
        out.update(reopen_in_new_process(folder, p, args))
        # what a new process pays whatever the gallery's size (imports, engine, schema check)
        tiny = folder.parent / (folder.name + "-tiny")
        with facedb.FaceDB(tiny, index=args.mode) as one:
            one.import_embeddings(["one"], p[:1])
        out["new_process_reopen_tiny_s"] = reopen_in_new_process(tiny, p[:1], args)["new_process_reopen_s"]
        shutil.rmtree(tiny, ignore_errors=True)
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
    ("lookalike_cosine_mean", "look-alike cosine to source (mean)", "", "~0.6"),
    ("load_avg_1min", "machine load average (1 min) at start", "", ""),
    ("open_new_s", "open new gallery (engine load)", "s", ""),
    ("import_s", "import_embeddings (N people)", "s", "<= 30"),
    ("import_per_s", "import rate", "people/s", ""),
    ("import_peak_mb_above", "import: peak RSS above the caller's", "MB", "<= 1536"),
    ("single_p50_ms", "single query p50", "ms", ""),
    ("single_p99_ms", "single query p99", "ms", "<= 2"),
    ("single_cpu_p50_ms", "single query p50, CPU time", "ms", ""),
    ("single_cpu_p99_ms", "single query p99, CPU time", "ms", ""),
    ("index_single_p50_ms", "the vector index alone: single p50", "ms", ""),
    ("index_single_p99_ms", "the vector index alone: single p99", "ms", ""),
    ("rank1", "rank-1 (single queries)", "", "1.0"),
    ("batch_qps", "batch of all probes", "queries/s", ">= today"),
    ("batch_rank1", "rank-1 (batch)", "", ""),
    ("topk_agreement", "top-k agreement with exact (batch)", "", ">= 0.99"),
    ("served_RssAnon", "after the queries: private memory", "MB", ""),
    ("served_RssFile", "after the queries: file pages mapped", "MB", ""),
    ("remove_s", "remove one person", "s", ""),
    ("removed_found", "removed person still found", "", "False"),
    ("close_s", "close (WAL checkpoint)", "s", ""),
    ("reopen_open_s", "reopen: FaceDB() alone", "s", ""),
    ("reopen_s", "reopen: FaceDB() + first query", "s", "<= 3"),
    ("new_process_import_s", "new process: import facedb and FaceDB's modules", "s", ""),
    ("new_process_open_s", "new process: FaceDB() (no model loaded)", "s", ""),
    ("new_process_reopen_s", "new process: FaceDB() + first query", "s", "<= 0.2"),
    ("new_process_whole_s", "new process: imports + FaceDB() + first query", "s", ""),
    ("new_process_reopen_tiny_s", "new process: the same for a 1-person gallery", "s", ""),
    ("new_process_single_p50_ms", "new process: single query p50", "ms", ""),
    ("new_process_single_p99_ms", "new process: single query p99", "ms", "<= 2"),
    ("new_process_private_mb", "new process, after the probes: private", "MB", "<= 300"),
    ("new_process_file_mb", "new process, after the probes: file pages", "MB", "<= 400"),
    ("new_process_read_mb", "new process: bytes read (rchar)", "MB", ""),
    ("reopened_single_p50_ms", "reopened: single query p50", "ms", ""),
    ("reopened_single_p99_ms", "reopened: single query p99", "ms", ""),
    ("reopened_single_cpu_p99_ms", "reopened: single query p99, CPU time", "ms", ""),
    ("reopened_rank1", "reopened: rank-1", "", "1.0"),
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


# -- the Milvus gallery (--vectors milvus://...) -----------------------------------------------


def collection_url(base: str, n: int) -> str:
    """``base`` with a collection of its own for size ``n``: the base URL's collection name (or
    facedb_bench) plus the size and a random suffix; the base URL's options are kept."""
    parts = urlsplit(base)
    stem = parts.path.strip("/") or "facedb_bench"
    return urlunsplit(parts._replace(path=f"/{stem}_{n}_{uuid.uuid4().hex[:8]}"))


def with_options(url: str, options: str) -> str:
    """``url`` with the query options in ``options`` (``ef=256&candidates=128``) set."""
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query))
    query.update(parse_qsl(options))
    return urlunsplit(parts._replace(query=urlencode(query)))


def listening_pid(port: int) -> int | None:
    """The process listening on TCP ``port`` here (found through /proc), if it can be seen."""
    sockets = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:
                sockets.add(f"socket:[{fields[9]}]")
    if not sockets:
        return None
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            for fd in (proc / "fd").iterdir():
                if os.readlink(fd) in sockets:
                    return int(proc.name)
        except OSError:
            continue
    return None


class ServerWatch:
    """RSS and CPU time of the Milvus server: every process of the process group of the
    process that listens on its port (``milvus run standalone`` and anything it started), read
    from /proc; a thread samples the RSS every ``interval`` seconds for the peak."""

    PAGE = os.sysconf("SC_PAGE_SIZE")
    TICK = os.sysconf("SC_CLK_TCK")

    def __init__(self, pid: int, interval: float = 0.5) -> None:
        self.pid = pid
        self.pgid = os.getpgid(pid)
        self.cwd = Path(os.readlink(f"/proc/{pid}/cwd"))
        self.interval = interval
        self.peak_mb = 0.0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def sample(self) -> tuple[float, float, int]:
        """(RSS MB summed over the group, CPU seconds user+system of live members, members)."""
        rss = cpu = 0.0
        members = 0
        for proc in Path("/proc").iterdir():
            if not proc.name.isdigit():
                continue
            try:
                stat = (proc / "stat").read_text()
                fields = stat[stat.rindex(")") + 2 :].split()
                if int(fields[2]) != self.pgid:
                    continue
                resident = int((proc / "statm").read_text().split()[1])
            except (OSError, ValueError):
                continue
            members += 1
            rss += resident * self.PAGE / 2**20
            cpu += (int(fields[11]) + int(fields[12])) / self.TICK
        self.peak_mb = max(self.peak_mb, rss)
        return rss, cpu, members

    def rss(self) -> int:
        return round(self.sample()[0])

    def pin(self, cpus: set[int]) -> None:
        """Runs every thread of the server's process group on ``cpus`` (threads it starts
        later inherit that from the thread that starts them)."""
        for proc in Path("/proc").iterdir():
            if not proc.name.isdigit():
                continue
            try:
                if os.getpgid(int(proc.name)) != self.pgid:
                    continue
                for task in (proc / "task").iterdir():
                    os.sched_setaffinity(int(task.name), cpus)
            except (OSError, ValueError):
                continue

    def cpu(self) -> float:
        return self.sample()[1]

    def start(self) -> None:
        def run() -> None:
            while not self._stop.wait(self.interval):
                self.sample()

        self.sample()
        self._thread = threading.Thread(target=run, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join()


def pin_self(cpus: set[int]) -> None:
    """Runs every thread of this process on ``cpus``."""
    for task in Path("/proc/self/task").iterdir():
        os.sched_setaffinity(int(task.name), cpus)


def find_server(args: argparse.Namespace) -> ServerWatch | None:
    pid = args.milvus_pid or listening_pid(urlsplit(args.vectors).port or 19530)
    try:
        return ServerWatch(pid) if pid else None
    except OSError:
        return None


def admin_client(url: str) -> tuple[Any, str]:
    from pymilvus import MilvusClient

    from facedb.milvus import MilvusSettings

    settings = MilvusSettings(url)
    return MilvusClient(uri=settings.uri, token=settings.token, timeout=120), settings.collection


def wait_indexed(
    client: Any,
    name: str,
    rows: int,
    db: facedb.FaceDB,
    p: np.ndarray,
    face_truth: np.ndarray,
    since: float,
    args: argparse.Namespace,
) -> dict:
    """From the end of the import (``since``, a perf_counter time) until the server has built
    the HNSW index on all ``rows`` and ``args.settle`` seconds more (the query node swaps the
    indexed segments in), every ``args.poll`` seconds: the indexed row count and the rank-1 of
    the store's answers to all probes in one request. ``args.flush_after`` seconds after the
    import the collection is flushed here (pymilvus): facedb itself never flushes, and an
    unflushed growing segment is only sealed (then indexed) once it has been idle for
    dataCoord.segment.maxIdleTime (600 s); until then Milvus searches it through its interim
    IVF index (queryNode.segcore.interimIndex)."""
    out: dict = {}
    timeline: list[tuple[int, int, float]] = []
    index = (client.list_indexes(name) or ["vector"])[0]
    flushed = False
    indexed_at = None
    while True:
        now = time.perf_counter() - since
        if not flushed and now >= args.flush_after:
            t = time.perf_counter()
            client.flush(name)
            out["flush_s"] = round(time.perf_counter() - t, 2)
            out["flushed_at_s"] = round(now, 1)
            flushed = True
        indexed = int(client.describe_index(name, index).get("indexed_rows", 0))
        _, ids = db.vectors.search(p, 20)
        timeline.append((round(now), indexed, round(float((ids[:, 0] == face_truth).mean()), 4)))
        if flushed and indexed_at is None and indexed >= rows:
            indexed_at = now
            out["indexed_at_s"] = round(now, 1)
        if indexed_at is not None and now - indexed_at >= args.settle:
            break
        if now > args.index_timeout:
            out["index_timed_out"] = True
            break
        time.sleep(args.poll)
    out["indexed_rows"] = indexed
    out["timeline"] = timeline
    low = [i for i, (*_, rank1) in enumerate(timeline) if rank1 < 0.99]
    after = low[-1] + 1 if low else 0
    out["store_rank1_099_from_s"] = timeline[after][0] if after < len(timeline) else None
    return out


def store_search(db: facedb.FaceDB) -> Callable[[np.ndarray], Any]:
    """The vector store's own search, as FaceDB calls it (max(4k, 16) faces), without the
    SQL checks, the count and the people lookup around it."""
    return lambda q: db.vectors.search(q[None], 20)


def store_top1(answer: tuple[np.ndarray, np.ndarray]) -> int:
    return int(answer[1][0, 0])


def count_latency(db: facedb.FaceDB, times: int = 30) -> float:
    """p50 of ``len(db.vectors)`` (a count(*) query at Strong consistency)."""
    took = []
    for _ in range(times):
        t = time.perf_counter()
        len(db.vectors)
        took.append(time.perf_counter() - t)
    return ms(np.percentile(took, 50))


def milvus_sweep(
    folder: Path, url: str, p: np.ndarray, truth: np.ndarray, face_truth: np.ndarray, args: argparse.Namespace
) -> list[dict]:
    """Rank-1 and single-query latency, through FaceDB and of the store alone, for each of
    ``args.sweep`` (URL options) on the same, already indexed, collection."""
    rows = []
    for options in args.sweep:
        db = facedb.FaceDB(folder, vectors=with_options(url, options))
        row: dict = {"options": options, "kind": db.vectors.kind}
        times, cpu, top1 = single_latencies(gallery_search(db, args.k), p, gallery_top1)
        latency_figures(row, "", times, cpu, top1 == truth)
        times, cpu, top1 = single_latencies(store_search(db), p, store_top1)
        latency_figures(row, "store_", times, cpu, top1 == face_truth)
        db.close()
        rows.append(row)
        print(f"  sweep {options}: " + json.dumps(row), flush=True)
    return rows


def run_milvus(n: int, args: argparse.Namespace) -> dict:
    """The gallery with its vectors in Milvus (SQLite folder for the rest), on the same
    templates and probes as the FAISS gallery (generated again from the same seed)."""
    out, rng, x, p, src = dataset(n, args)
    out["mode"] = "gallery+milvus"
    victim_row = non_probe_row(n, src, rng)  # the same person as in the FAISS gallery
    victim_vector = x[victim_row].copy()
    url = collection_url(args.vectors, n)
    client, name = admin_client(url)
    out["collection"] = name
    out["server_version"] = client.get_server_version()
    server = find_server(args)
    if server:
        out["server_pid"], out["server_group_members"] = server.pid, server.sample()[2]
        out["server_rss_mb_start"] = server.rss()
        server.start()

    folder = Path(tempfile.mkdtemp(prefix=f"facedb-milvus-{n}-", dir=args.dir))
    try:
        t = time.perf_counter()
        db = facedb.FaceDB(folder, vectors=url)
        out["open_new_s"] = round(time.perf_counter() - t, 3)
        out["index_kind"] = db.vectors.kind
        names = [f"person {i}" for i in range(n)]
        cpu0 = server.cpu() if server else 0.0
        t = time.perf_counter()
        people = db.import_embeddings(names, x)
        imported = time.perf_counter()
        out["import_s"] = round(imported - t, 2)
        out["import_per_s"] = round(n / out["import_s"])
        if server:
            out["server_cpu_import_s"] = round(server.cpu() - cpu0, 1)
            out["server_rss_mb_imported"] = server.rss()
        person_ids = np.fromiter((person.id for person in people), dtype=np.int64, count=n)
        del people, names
        truth = person_ids[src]
        face_truth = np.array([db._face_ids(int(pid))[0] for pid in truth], dtype=np.int64)
        out["rss_mb_imported"] = round(rss_mb()[0])

        # What a caller sees at once: the tail of the import is not yet indexed.
        times, cpu, top1 = single_latencies(gallery_search(db, args.k), p, gallery_top1)
        latency_figures(out, "fresh_", times, cpu, top1 == truth)

        cpu0 = server.cpu() if server else 0.0
        out.update(wait_indexed(client, name, n, db, p, face_truth, imported, args))
        if server:
            out["server_cpu_index_s"] = round(server.cpu() - cpu0, 1)
            out["server_rss_mb_indexed"] = server.rss()
        if args.split_cores and server:
            # From here on, as if the server had a machine of its own: its threads on the
            # last core, this client on the others (restored at the end).
            every = set(range(os.cpu_count() or 1))
            server_cpus = {max(every)}
            client_cpus = every - server_cpus or every
            server.pin(server_cpus)
            pin_self(client_cpus)
            out["split_cores"] = f"server on CPU {sorted(server_cpus)}, client on {sorted(client_cpus)}"

        times, cpu, top1 = single_latencies(gallery_search(db, args.k), p, gallery_top1)
        latency_figures(out, "", times, cpu, top1 == truth)
        times, cpu, top1 = single_latencies(store_search(db), p, store_top1)
        latency_figures(out, "store_", times, cpu, top1 == face_truth)
        out["count_p50_ms"] = count_latency(db)
        batch = []
        for _ in range(3):
            t = time.perf_counter()
            answer = db.search(p, k=args.k)
            batch.append(time.perf_counter() - t)
        out["batch_qps"] = round(args.probes / float(np.median(batch)), 1)
        out["batch_rank1"] = float((np.array([gallery_top1([a]) for a in answer]) == truth).mean())
        if id(p) in EXACT_ROWS:
            exact_people = person_ids[EXACT_ROWS[id(p)]]
            found = [[c.person.id for c in a] for a in answer]
            out["topk_agreement"] = topk_agreement(found, exact_people)
        out.update({f"served_{k}": v for k, v in memory_status().items()})
        # the vector index alone, as FaceDB calls it: the rest of a query is SQL and Python
        times, _, _ = single_latencies(store_search(db), p, lambda answer: 0)
        out["index_single_p50_ms"] = ms(np.percentile(times, 50))
        out["index_single_p99_ms"] = ms(np.percentile(times, 99))
        if server:
            out["server_rss_mb_searched"] = server.rss()

        if args.sweep:
            out["sweep"] = milvus_sweep(folder, url, p, truth, face_truth, args)

        victim = int(person_ids[victim_row])
        t = time.perf_counter()
        db.remove(victim)
        out["remove_s"] = round(time.perf_counter() - t, 3)
        out["removed_found"] = victim in {c.person.id for c in db.search(victim_vector, k=args.k)[0]}
        t = time.perf_counter()
        db.close()
        out["close_s"] = round(time.perf_counter() - t, 3)
        del db, x
        out["disk_db_mb"] = round(folder_bytes(folder) / 2**20, 1)
        if server:
            try:
                out["server_disk_mb"] = round(folder_bytes(server.cwd) / 2**20, 1)
            except OSError:
                pass

        t = time.perf_counter()
        db = facedb.FaceDB(folder, vectors=url)
        out["reopen_open_s"] = round(time.perf_counter() - t, 3)
        db.search(p[0], k=args.k)
        out["reopen_s"] = round(time.perf_counter() - t, 3)
        times, cpu, top1 = single_latencies(gallery_search(db, args.k), p, gallery_top1)
        latency_figures(out, "reopened_", times, cpu, top1 == truth)
        out["rss_mb_reopened"] = round(rss_mb()[0])
        db.close()
        del db
        out.update(reopen_in_new_process(folder, p[0], args, url))
        if server:
            out["server_rss_mb_reopened"] = server.rss()
    finally:
        if server:
            server.stop()
            if args.split_cores:
                every = set(range(os.cpu_count() or 1))
                server.pin(every)
                pin_self(every)
            out["server_rss_mb_peak"] = round(server.peak_mb)
        if args.keep:
            print(f"kept {folder} and the collection {name}", flush=True)
        else:
            shutil.rmtree(folder, ignore_errors=True)
            try:
                if client.has_collection(name):
                    client.release_collection(name)
                    client.drop_collection(name)
            except Exception as e:  # the figures are still worth printing
                print(f"could not drop the collection {name}: {e}", flush=True)
        client.close()
    out["rss_mb_peak"] = round(rss_mb()[1])
    return out


# The two galleries side by side: (key, label, unit, target). A key missing on one side is "-".
COMPARE_ROWS = [
    ("open_new_s", "open new gallery (engine; Milvus: connect, create)", "s", ""),
    ("import_s", "import_embeddings (N people)", "s", ""),
    ("import_per_s", "import rate", "people/s", "printed"),
    ("server_cpu_import_s", "server CPU time during import", "s", ""),
    ("fresh_single_p50_ms", "just imported: single query p50", "ms", ""),
    ("fresh_single_p99_ms", "just imported: single query p99", "ms", ""),
    ("fresh_rank1", "just imported: rank-1", "", ""),
    ("flushed_at_s", "flushed (by the benchmark) at, after import", "s", ""),
    ("flush_s", "flush call", "s", ""),
    ("indexed_at_s", "HNSW built on every row at, after import", "s", ""),
    ("store_rank1_099_from_s", "store rank-1 >= 0.99 from, after import", "s", ""),
    ("server_cpu_index_s", "server CPU time: until indexed + settle", "s", ""),
    ("single_p50_ms", "single query p50", "ms", ""),
    ("single_p99_ms", "single query p99", "ms", "<= 20"),
    ("single_cpu_p50_ms", "single query p50, client CPU time", "ms", ""),
    ("rank1", "rank-1 (single queries)", "", ">= 0.99"),
    ("store_single_p50_ms", "store search alone (db.vectors.search): p50", "ms", ""),
    ("store_single_p99_ms", "store search alone: p99", "ms", ""),
    ("store_rank1", "store search alone: rank-1", "", ""),
    ("count_p50_ms", "len(db.vectors) (count(*), Strong): p50", "ms", ""),
    ("batch_qps", "batch of all probes", "queries/s", ""),
    ("batch_rank1", "rank-1 (batch)", "", ""),
    ("remove_s", "remove one person", "s", ""),
    ("removed_found", "removed person still found", "", "False"),
    ("close_s", "close", "s", ""),
    ("reopen_open_s", "reopen: FaceDB() alone", "s", ""),
    ("reopen_s", "reopen: FaceDB() + first query", "s", "<= 3"),
    ("new_process_reopen_s", "new process: FaceDB() + first query", "s", ""),
    ("reopened_single_p50_ms", "reopened: single query p50", "ms", ""),
    ("reopened_single_p99_ms", "reopened: single query p99", "ms", ""),
    ("reopened_rank1", "reopened: rank-1", "", ""),
    ("disk_db_mb", "disk: gallery folder (Milvus: SQLite only)", "MB", ""),
    ("server_disk_mb", "disk: Milvus server's data folder (all of it)", "MB", ""),
    ("baseline_single_p50_ms", "faiss IndexFlatIP: single p50", "ms", ""),
    ("baseline_rank1", "faiss IndexFlatIP: rank-1", "", ""),
    ("rss_mb_imported", "client RSS: gallery imported (templates held)", "MB", ""),
    ("rss_mb_reopened", "client RSS: templates dropped, reopened", "MB", ""),
    ("server_rss_mb_start", "server RSS: before", "MB", ""),
    ("server_rss_mb_imported", "server RSS: imported", "MB", ""),
    ("server_rss_mb_indexed", "server RSS: indexed", "MB", "printed"),
    ("server_rss_mb_searched", "server RSS: after the searches", "MB", ""),
    ("server_rss_mb_reopened", "server RSS: after remove and reopen", "MB", ""),
    ("server_rss_mb_peak", "server RSS: peak (sampled every 0.5 s)", "MB", ""),
]

SWEEP_ROWS = [
    ("rank1", "rank-1", "", ">= 0.99"),
    ("single_p50_ms", "FaceDB.search p50", "ms", ""),
    ("single_p99_ms", "FaceDB.search p99", "ms", "<= 20"),
    ("store_rank1", "store alone: rank-1", "", ""),
    ("store_single_p50_ms", "store alone: p50", "ms", ""),
    ("store_single_p99_ms", "store alone: p99", "ms", ""),
]


# -- store-only mode (facedb.faiss.FaissStore directly) --------------------------------------


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
        extra = {"precision": args.precision} if args.precision != "float32" else {}
        store = FaissStore(folder, dim=DIM, model=MODEL, mode=args.mode, threads=args.threads, **extra)
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
            folder, dim=DIM, model=MODEL, generation=2, mode=args.mode, threads=args.threads, **extra
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
    out["topk_agreement"] = topk_agreement(bids.tolist(), ids[EXACT_ROWS.pop(id(p))])
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
    ("topk_agreement", "top-k agreement with exact (batch)", "", ""),
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


def print_table(
    columns: list[tuple[str, dict]],
    rows: list[tuple[str, str, str, str]],
    target_header: str = "target at N=1M",
) -> None:
    """One column per (header, figures); a figure a column lacks is shown as "-"."""
    cell = {key: [f"{r.get(key, '-')!s}" for _, r in columns] for key, *_ in rows}
    width = 2 + max(max(len(c) for cells in cell.values() for c in cells), *(len(h) for h, _ in columns))
    labels = [label + (f" ({unit})" if unit else "") for _, label, unit, _ in rows]
    left = 2 + max(len(label) for label in labels)
    targets = any(target for *_, target in rows)
    header = "".join(f"{h:>{width}}" for h, _ in columns)
    print(f"{'':{left}}{header}" + (f"   {target_header}" if targets else ""))
    for (key, _, _, target), label in zip(rows, labels, strict=True):
        line = f"{label:{left}}" + "".join(f"{c:>{width}}" for c in cell[key])
        print(f"{line}   {target}" if target else line)


def run_codes(n: int, args: argparse.Namespace) -> dict:
    """The approximate search at a size too big to build here (10M: 20 GB of float32
    templates), simulated on what it scans: the sign codes held in memory.

    For isotropic random templates the sign bits are independent fair coins, and a template
    with a given sign pattern is that pattern times the absolute values of a Gaussian vector
    (sign and magnitude of a Gaussian are independent). So N random codes are drawn directly,
    and a random row's template is made when the re-rank asks for it, from a generator seeded
    by its row. Each probe's family (its source and ``--lookalikes - 1`` look-alikes at
    ``--lookalike-cosine``; the probe at sigma's cosine to the source) is made as in the
    gallery benchmark and planted at random rows. The exact top-k is taken to be the family
    (at 10M the best random template is at cosine ~0.25, a look-alike at ~0.42 to the probe;
    checked at 1M, where the exact search can be run). Timed: the Hamming scan (facedb's
    native knn_hamming, as the gallery runs it; benchmarks/hamming.py compares it with faiss's)
    and the re-rank of its ``rerank`` best, templates made on demand
    outside the timing (the gallery reads them from the page cache: measured at 1M).
    """
    from facedb._native import knn_hamming
    from facedb.faiss import DEFAULT_RERANK

    rng = np.random.default_rng(args.seed)
    family = max(args.lookalikes, 1)
    out: dict = {"n": n, "mode": "codes-only simulation", "load_avg_1min": round(os.getloadavg()[0], 2)}
    t = time.perf_counter()
    codes = np.empty((n, DIM // 8), dtype=np.uint8)
    for s in range(0, n, 1 << 20):
        codes[s : s + (1 << 20)] = rng.integers(0, 256, size=(min(1 << 20, n - s), DIM // 8), dtype=np.uint8)
    out["generate_s"] = round(time.perf_counter() - t, 1)
    out["codes_mb"] = round(codes.nbytes / 2**20)
    out["ram_per_template_bytes"] = DIM // 8 + 8 + 4  # code, id, row checksum
    planted: dict[int, np.ndarray] = {}
    probes_, families = [], []
    rows = rng.choice(n, size=args.probes * family, replace=False).reshape(args.probes, family)
    for i in range(args.probes):
        members = templates(family, rng, family=family, cosine=args.lookalike_cosine)
        q = members[0] + rng.standard_normal(DIM, dtype=np.float32) * np.float32(args.sigma)
        probes_.append(q / np.linalg.norm(q))
        for row, v in zip(rows[i].tolist(), members, strict=True):
            planted[row] = v
            codes[row] = np.packbits(v > 0)
        families.append(rows[i])

    def template(row: int) -> np.ndarray:
        if row in planted:
            return planted[row]
        magnitude = np.abs(np.random.default_rng(row).standard_normal(DIM, dtype=np.float32))
        v = np.where(np.unpackbits(codes[row]).astype(bool), magnitude, -magnitude)
        return v / np.linalg.norm(v)

    depth = DEFAULT_RERANK
    scan, rerank, hits, rank1 = [], [], 0, 0
    previous = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    try:
        for q, fam in zip(probes_, families, strict=True):
            qc = np.packbits(q > 0)[None]
            t = time.perf_counter()
            _, cand = knn_hamming(codes, qc, depth)
            scan.append(time.perf_counter() - t)
            vecs = np.stack([template(int(r)) for r in cand[0]])
            t = time.perf_counter()
            sims = vecs @ q
            best = cand[0][np.argsort(-sims)[: args.k]]
            rerank.append(time.perf_counter() - t)
            hits += len(set(best.tolist()) & set(fam[: args.k].tolist()))
            rank1 += int(best[0] == fam[0])
    finally:
        faiss.omp_set_num_threads(previous)
    out["scan_p50_ms"] = ms(np.percentile(scan, 50))
    out["scan_p99_ms"] = ms(np.percentile(scan, 99))
    out["rerank_math_p50_ms"] = ms(np.percentile(rerank, 50))
    out["rank1"] = round(rank1 / args.probes, 4)
    out["topk_agreement"] = round(hits / (args.probes * min(args.k, family)), 4)
    out["rss_mb"] = round(rss_mb()[0])
    return out


CODES_ROWS = [
    ("load_avg_1min", "machine load average (1 min) at start", "", ""),
    ("codes_mb", "sign codes in memory", "MB", ""),
    ("ram_per_template_bytes", "memory a template (code, id, checksum)", "bytes", ""),
    ("scan_p50_ms", "Hamming scan p50 (native, as searched)", "ms", ""),
    ("scan_p99_ms", "Hamming scan p99 (native, as searched)", "ms", ""),
    ("rerank_math_p50_ms", "re-rank arithmetic p50", "ms", ""),
    ("rank1", "rank-1", "", ""),
    ("topk_agreement", "top-k agreement with the family", "", ""),
    ("rss_mb", "RSS", "MB", ""),
]


def run_today(n: int, args: argparse.Namespace) -> dict:
    """The same gallery benchmark of size ``n`` on the facedb of ``args.today``, in a child
    process (the same script, data and probes; run to completion before this one starts)."""
    argv = [a for a in sys.argv[1:]]
    for flag in ("--today", "--n", "--json", "--code"):
        while flag in argv:
            i = argv.index(flag)
            del argv[i : i + 2]
    with tempfile.TemporaryDirectory() as tmp:
        out_json = Path(tmp) / "today.json"
        command = [
            sys.executable,
            __file__,
            *argv,
            "--n",
            str(n),
            "--code",
            args.today,
            "--json",
            str(out_json),
        ]
        print(f"measuring {args.today} first: {' '.join(command[1:])}", flush=True)
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
        return dict(json.loads(out_json.read_text())[0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", default="10000,100000,1000000", help="gallery sizes, comma-separated")
    parser.add_argument("--store-only", action="store_true", help="measure FaissStore directly")
    parser.add_argument(
        "--codes-only", action="store_true", help="simulate the approximate search on its codes (for 10M)"
    )
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
        "--lookalikes",
        type=int,
        default=1,
        metavar="F",
        help="people come in families of F look-alikes (default 1: every template independent)",
    )
    parser.add_argument("--lookalike-cosine", type=float, default=0.6, help="cosine between look-alikes")
    parser.add_argument(
        "--precision",
        choices=["float32", "float16"],
        default="float32",
        help="--store-only: template storage",
    )
    parser.add_argument(
        "--today",
        metavar="CHECKOUT",
        help="also measure the gallery of another checkout (e.g. the main branch, today's layout) with this "
        "script, the same data and probes, in a child process run before this one's gallery",
    )
    parser.add_argument("--code", metavar="CHECKOUT", help="import facedb from this checkout (see --today)")
    parser.add_argument(
        "--dir", "--workdir", dest="dir", default=None, help="where the folders are made (default: temp)"
    )
    parser.add_argument("--keep", action="store_true", help="keep the gallery / index folder")
    parser.add_argument("--json", metavar="OUT", help="also write the figures as JSON")
    milvus = parser.add_argument_group("the Milvus gallery (beside the FAISS one, same vectors)")
    milvus.add_argument(
        "--vectors",
        metavar="URL",
        help="milvus://host:port[/collection][?ef=..&candidates=..&consistency=..]; each N gets a "
        "new collection (the name, default facedb_bench, plus N and a random suffix), dropped after",
    )
    milvus.add_argument(
        "--sweep",
        nargs="*",
        default=[],
        metavar="OPTIONS",
        help="URL options to measure on the indexed collection too, e.g. 'candidates=128&ef=256'",
    )
    milvus.add_argument("--skip-faiss", action="store_true", help="baseline and Milvus gallery only")
    milvus.add_argument(
        "--index-timeout", type=float, default=7200, help="seconds to wait for the server's index build"
    )
    milvus.add_argument(
        "--settle", type=float, default=20, help="seconds to wait after the index is built (handoff)"
    )
    milvus.add_argument(
        "--flush-after", type=float, default=0, help="seconds after the import to flush (facedb never does)"
    )
    milvus.add_argument("--poll", type=float, default=10, help="seconds between timeline samples")
    milvus.add_argument(
        "--split-cores",
        action="store_true",
        help="once indexed, run the server on the last core and this client on the others, "
        "as if each had its own machine (Linux; the server must be on this machine)",
    )
    milvus.add_argument(
        "--milvus-pid", type=int, help="the server's pid (default: the process listening on the port)"
    )
    args = parser.parse_args()
    if args.vectors and (args.store_only or not args.vectors.startswith("milvus://")):
        parser.error("--vectors takes a milvus:// URL, in gallery mode")
    if (args.sweep or args.skip_faiss) and not args.vectors:
        parser.error("--sweep and --skip-faiss go with --vectors")

    sizes = [int(v) for v in args.n.split(",")]
    where = f"faiss {faiss.__version__}, {os.cpu_count()} cores"
    if args.codes_only:
        print(f"the sign-code scan and re-rank, simulated on codes alone; {where}", flush=True)
        run, rows = run_codes, CODES_ROWS
    elif args.store_only:
        print(
            f"facedb vector store (facedb.faiss.FaissStore, mode={args.mode}), measured directly; "
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
        if args.vectors:
            print(f"and the same gallery with its vectors in Milvus: {args.vectors} (new collection per N)")
        run, rows = run_gallery, GALLERY_ROWS
    results = []
    for n in sizes:
        today = run_today(n, args) if args.today and not (args.store_only or args.codes_only) else None
        r = run(n, args)
        if today is not None:
            r["today"] = today
        print(f"\nN={n:,}: " + json.dumps(r), flush=True)
        if args.vectors:
            r["milvus"] = run_milvus(n, args)
            print(f"\nN={n:,}, Milvus: " + json.dumps(r["milvus"]), flush=True)
        results.append(r)
    print()
    if not args.skip_faiss:
        for r in results:
            print(f"N={r['n']:,}: index kind {r.get('index_kind', r.get('kind'))}")
        columns = []
        for r in results:
            if "today" in r:
                columns.append((f"today {r['n']:,}", r["today"]))
            columns.append((f"N={r['n']:,}", r))
        print_table(columns, rows)
    if args.vectors:
        print("\nFAISS gallery and Milvus gallery, same templates and probes")
        for r in results:
            m = r["milvus"]
            print(
                f"N={r['n']:,}: Milvus {m['server_version']} collection {m['collection']}, "
                f"{m['index_kind']}; server pid {m.get('server_pid', 'not found')}"
                + (f"; once indexed, {m['split_cores']}" if "split_cores" in m else "")
            )
        columns = []
        for r in results:
            columns += [
                (f"FAISS {r['n']:,}", {k: v for k, v in r.items() if not args.skip_faiss or "baseline" in k}),
                (f"Milvus {r['n']:,}", r["milvus"]),
            ]
        print_table(columns, COMPARE_ROWS, target_header="target (Milvus, N=100k)")
        for r in results:
            line = ", ".join(f"{t} s: {rows} {rank1}" for t, rows, rank1 in r["milvus"].get("timeline", []))
            print(f"\nN={r['n']:,}, Milvus after the import (seconds: rows indexed, store rank-1): {line}")
        for r in results:
            sweep = r["milvus"].get("sweep")
            if sweep:
                print(f"\nN={r['n']:,}, Milvus URL options swept on the indexed collection:")
                print_table([(row["options"], row) for row in sweep], SWEEP_ROWS, target_header="target")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()

"""What both searchers share: the searcher interface, top-k selection and threads.

The exact searcher runs FAISS on one OpenMP thread per calling thread (:func:`omp_threads`):
on a busy machine several OpenMP threads made a single query 10-50 times slower. The
sign-bit searcher does not use FAISS (its scan is native and chooses its own threads), so
FAISS is imported only when an exact search first runs: a new process serving a large gallery
never loads it. A batch can be cut into chunks searched on ``threads`` Python threads
(:class:`BatchThreads`; default 1, see :class:`~facedb.faiss.store.FaissStore`).
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Final, Protocol

import numpy as np

from facedb.faiss.segments import F32, I64, Segments

__all__ = ["BatchThreads", "Searcher", "omp_threads", "top_k"]

_BATCH_MIN: Final = 8  # queries below this run on the calling thread


class Searcher(Protocol):
    """A search strategy over the store's segments (exact, or sign bits then rerank)."""

    @property
    def kind(self) -> str:
        """A short name of the search structure, shown in statistics."""
        ...

    def search(self, segments: Segments, q: F32, k: int) -> tuple[F32, I64]:
        """Top-k of each query: (similarities[Q, k], global rows[Q, k]), -1 where missing."""
        ...


@contextmanager
def omp_threads(n: int) -> Iterator[None]:
    """Run faiss on ``n`` OpenMP threads in this thread (the setting is per thread)."""
    import faiss  # here: see the module

    previous = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(n)
    try:
        yield
    finally:
        faiss.omp_set_num_threads(previous)


def top_k(sims: F32, rows: I64, k: int) -> tuple[F32, I64]:
    """Best k of each row of (sims, rows) by decreasing similarity; pads with -inf / -1."""
    q, m = sims.shape
    out_s = np.full((q, k), -np.inf, dtype=np.float32)
    out_r = np.full((q, k), -1, dtype=np.int64)
    if m == 0:
        return out_s, out_r
    if m > k:
        part = np.argpartition(-sims, k - 1, axis=1)[:, :k]
        sims = np.take_along_axis(sims, part, axis=1)
        rows = np.take_along_axis(rows, part, axis=1)
    order = np.argsort(-sims, axis=1, kind="stable")
    take = min(k, sims.shape[1])
    out_s[:, :take] = np.take_along_axis(sims, order, axis=1)[:, :take]
    out_r[:, :take] = np.take_along_axis(rows, order, axis=1)[:, :take]
    return out_s, out_r


class BatchThreads:
    """Runs a search over a batch of queries on ``threads`` Python threads; small batches
    (and ``threads=1``) run on the calling thread."""

    def __init__(self, threads: int) -> None:
        self._threads = threads
        self._pool: ThreadPoolExecutor | None = None
        self._pool_lock = threading.Lock()

    def run(self, search: Callable[[F32], tuple[F32, I64]], q: F32) -> tuple[F32, I64]:
        """``search(q)``, with the rows of ``q`` spread over the threads."""
        nq = len(q)
        if nq < _BATCH_MIN or self._threads == 1:
            return search(q)
        pool = self._get_pool()
        chunk = math.ceil(nq / self._threads)
        parts = list(pool.map(lambda s: search(q[s : s + chunk]), range(0, nq, chunk)))
        return (
            np.concatenate([p[0] for p in parts]),
            np.concatenate([p[1] for p in parts]),
        )

    def _get_pool(self) -> ThreadPoolExecutor:
        with self._pool_lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(self._threads, thread_name_prefix="facedb-index")
            return self._pool

    def shutdown(self) -> None:
        """Stop the threads (waiting for running searches); :meth:`run` may start them again."""
        with self._pool_lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True)

"""The exact searcher: every template scored by inner product (``faiss.knn``, flat IP).

Templates are unit vectors, so the inner product is the cosine similarity. The store uses it
while it is small (``EXACT_LIMIT`` templates or fewer under ``mode="auto"``) or when told to
(``mode="exact"``).
"""

from __future__ import annotations

import numpy as np

from facedb.faiss.search import omp_threads, top_k
from facedb.faiss.segments import F32, I64, Segments

__all__ = ["FlatSearch"]


class FlatSearch:
    """Scores every template of every segment and keeps the best k (FAISS's IndexFlatIP)."""

    kind = "flat-ip (exact)"

    def search(self, segments: Segments, q: F32, k: int) -> tuple[F32, I64]:
        """Top-k of each query: (similarities[Q, k], global rows[Q, k]), -1 where missing."""
        import faiss  # on first use: see facedb.faiss.search

        all_s: list[F32] = []
        all_r: list[I64] = []
        for seg, start in segments.with_starts():
            seg.verify()  # every template is read: a segment not yet hashed is hashed first
            rows = seg.view()
            if rows.dtype != np.float32:  # float16 storage: faiss scores float32
                rows = rows.astype(np.float32)
            with omp_threads(1):
                s, r = faiss.knn(q, rows, min(k, seg.n), metric=faiss.METRIC_INNER_PRODUCT)
            all_s.append(s)
            all_r.append(np.where(r >= 0, r + start, -1))
        return top_k(np.concatenate(all_s, axis=1), np.concatenate(all_r, axis=1), k)

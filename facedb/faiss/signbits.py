"""The approximate searcher: a Hamming scan over sign bits, then an exact rerank.

One sign bit per dimension (64 bytes a 512-d template) is scanned by the native
``knn_hamming`` (FAISS's ``knn_hamming`` answer, as IndexBinaryFlat gives it, with AVX-512
popcounts; a million codes are scanned at the memory's speed, 30-38 GB/s on one core here,
and a second thread helps only when the other core is free); the ``rerank`` best candidates
are then scored exactly (as IndexRefine does). Templates of different people are nearly orthogonal
while a genuine match is far closer, so the coarse scan keeps the true match among its
candidates (measured with ``benchmarks/search.py``).
"""

from __future__ import annotations

import numpy as np

from facedb._native import knn_hamming
from facedb.faiss.search import top_k
from facedb.faiss.segments import F32, I64, U8, Segments

__all__ = ["SignBitSearch", "sign_codes"]


def sign_codes(vectors: F32) -> U8:
    """One bit per dimension (set when the component is positive), packed 8 to a byte."""
    codes = np.empty((len(vectors), (vectors.shape[1] + 7) // 8), dtype=np.uint8)
    for start in range(0, len(vectors), 65_536):  # bounded temporaries for big batches
        codes[start : start + 65_536] = np.packbits(vectors[start : start + 65_536] > 0, axis=1)
    return codes


class SignBitSearch:
    """Hamming top-``rerank`` over the sign codes, reranked by exact inner product.

    Args:
        rerank: candidates of the sign-bit scan that are scored exactly (at least ``k``).
    """

    def __init__(self, rerank: int) -> None:
        self.rerank = rerank

    @property
    def kind(self) -> str:
        """The structure's name, with its rerank depth."""
        return f"sign-hamming+rerank-{self.rerank} (approximate)"

    def search(self, segments: Segments, q: F32, k: int) -> tuple[F32, I64]:
        """Top-k of each query: (similarities[Q, k], global rows[Q, k]), -1 where missing."""
        n = segments.n
        depth = min(max(self.rerank, k), n)
        _, cand = knn_hamming(segments.codes[:n], sign_codes(q), depth)
        vecs = segments.gather(cand.reshape(-1)).reshape(len(q), depth, segments.dim)
        sims = np.einsum("qrd,qd->qr", vecs, q).astype(np.float32, copy=False)
        return top_k(sims, cand, k)

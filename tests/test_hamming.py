"""The native Hamming top-k scan (facedb._native.knn_hamming) against faiss.knn_hamming, the
answer facedb's approximate search was built on."""

from __future__ import annotations

import threading

import faiss
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from facedb._native import knn_hamming
from facedb.errors import ConfigError
from facedb.faiss.segments import Segments
from facedb.faiss.signbits import SignBitSearch, sign_codes

from .helpers import unit_rows as unit


def assert_same_up_to_ties(codes: np.ndarray, queries: np.ndarray, k: int, **kw: int) -> None:
    """Same distances; the same rows where a distance is unique within the query's answer."""
    fd, fr = faiss.knn_hamming(queries, codes, k)
    nd, nr = knn_hamming(codes, queries, k, **kw)
    assert nd.dtype == np.int32 and nr.dtype == np.int64
    assert nd.shape == nr.shape == (len(queries), k)
    np.testing.assert_array_equal(nd, fd)
    # Only a code that is not beaten or tied by another outside the answer can differ: check
    # the rows where the distance is unique among all codes.
    all_d = np.unpackbits(codes[None, :, :] ^ queries[:, None, :], axis=2).sum(axis=2)
    for i in range(len(queries)):
        for j in range(min(k, len(codes))):
            if (all_d[i] == nd[i, j]).sum() == 1:
                assert nr[i, j] == fr[i, j]
        # Each answer is sorted by (distance, row) and holds real rows at their distances.
        found = nr[i][nr[i] >= 0]
        assert len(set(found.tolist())) == len(found)
        np.testing.assert_array_equal(all_d[i][found], nd[i, : len(found)])
        assert [(d, r) for d, r in zip(nd[i], nr[i], strict=True)][: len(found)] == sorted(
            zip(nd[i, : len(found)].tolist(), found.tolist(), strict=True)
        )
    np.testing.assert_array_equal(nr[:, len(codes) :], -1)
    np.testing.assert_array_equal(nd[:, len(codes) :], 2**31 - 1)


@settings(max_examples=150, deadline=None)
@given(
    n=st.integers(0, 300),
    q=st.integers(1, 4),
    k=st.integers(1, 80),
    width=st.sampled_from([1, 2, 5, 8, 12, 16, 32, 64, 128, 256]),
    alphabet=st.sampled_from([2, 4, 256]),  # few distinct byte values make many ties
    threads=st.sampled_from([0, 1, 3]),
    seed=st.integers(0, 2**32 - 1),
)
def test_matches_faiss_up_to_ties(n, q, k, width, alphabet, threads, seed):
    rng = np.random.default_rng(seed)
    codes = rng.integers(0, alphabet, size=(n, width), dtype=np.uint8)
    queries = rng.integers(0, alphabet, size=(q, width), dtype=np.uint8)
    assert_same_up_to_ties(codes, queries, k, threads=threads)


def test_large_scan_on_threads_matches_faiss():
    rng = np.random.default_rng(1)
    codes = rng.integers(0, 256, size=(150_000, 64), dtype=np.uint8)
    codes[70_000] = codes[3]  # a tie across the threads' blocks
    queries = np.concatenate([codes[3:4], rng.integers(0, 256, size=(5, 64), dtype=np.uint8)])
    fd, fr = faiss.knn_hamming(queries, codes, 64)
    for threads in (0, 1, 2):
        nd, nr = knn_hamming(codes, queries, 64, threads)
        np.testing.assert_array_equal(nd, fd)
        assert nr[0, :2].tolist() == [3, 70_000]
        assert (nr[1:, 1:] == fr[1:, 1:]).mean() > 0.9  # random codes: ties are rare


def test_empty_codes_and_k_zero():
    queries = np.zeros((2, 64), dtype=np.uint8)
    d, r = knn_hamming(np.zeros((0, 64), dtype=np.uint8), queries, 3)
    assert d.tolist() == [[2**31 - 1] * 3] * 2 and r.tolist() == [[-1] * 3] * 2
    d, r = knn_hamming(np.zeros((5, 64), dtype=np.uint8), queries, 0)
    assert d.shape == r.shape == (2, 0)
    d, r = knn_hamming(np.zeros((5, 64), dtype=np.uint8), queries[:0], 4)
    assert d.shape == r.shape == (0, 4)


@pytest.mark.parametrize(
    ("codes", "queries", "k", "threads"),
    [
        (np.zeros((4, 64), np.float32), np.zeros((1, 64), np.uint8), 1, 0),  # dtype
        (np.zeros(64, np.uint8), np.zeros((1, 64), np.uint8), 1, 0),  # 1-D
        (np.zeros((4, 0), np.uint8), np.zeros((1, 0), np.uint8), 1, 0),  # no bytes
        (np.zeros((4, 64), np.uint8), np.zeros((1, 32), np.uint8), 1, 0),  # widths differ
        (np.zeros((4, 128), np.uint8)[:, ::2], np.zeros((1, 64), np.uint8), 1, 0),  # strided
        (np.zeros((64, 4), np.uint8).T, np.zeros((1, 64), np.uint8), 1, 0),  # Fortran order
        (np.zeros((4, 64), np.uint8), np.zeros((1, 64), np.uint8), -1, 0),  # negative k
        (np.zeros((4, 64), np.uint8), np.zeros((1, 64), np.uint8), 1, -2),  # negative threads
        ([[0] * 64], np.zeros((1, 64), np.uint8), 1, 0),  # not an array
    ],
)
def test_bad_inputs_are_config_errors(codes, queries, k, threads):
    with pytest.raises(ConfigError):
        knn_hamming(codes, queries, k, threads)


def test_codes_are_read_in_place_without_the_gil():
    """A scan of 64 MB of codes lets another Python thread run meanwhile."""
    codes = np.random.default_rng(2).integers(0, 256, size=(1_000_000, 64), dtype=np.uint8)
    ticks = 0
    stop = threading.Event()

    def tick() -> None:
        nonlocal ticks
        while not stop.is_set():
            ticks += 1

    t = threading.Thread(target=tick)
    t.start()
    try:
        before = ticks
        for _ in range(20):
            knn_hamming(codes, codes[:1], 8, 1)
        assert ticks > before
    finally:
        stop.set()
        t.join()


def test_sign_bit_search_answers_as_before():
    """The searcher on the native scan: the source of each noisy probe first (as with faiss's
    scan), every similarity the exact one of its row, in decreasing order."""
    rng = np.random.default_rng(5)
    x = unit(rng, 3_000)
    segments = Segments(512, 1_000, "the test's store")
    segments.add(np.arange(len(x), dtype=np.int64), x, sign_codes(x))
    sources = rng.choice(len(x), 20, replace=False)
    probes = x[sources] + rng.standard_normal((20, 512)).astype(np.float32) * np.float32(0.045)
    probes /= np.linalg.norm(probes, axis=1, keepdims=True)
    sims, rows = SignBitSearch(rerank=64).search(segments, probes, 5)
    _, cand = faiss.knn_hamming(sign_codes(probes), segments.codes[: segments.n], 64)
    assert (cand == sources[:, None]).any(axis=1).all()  # faiss's scan found them too
    np.testing.assert_array_equal(rows[:, 0], sources)
    np.testing.assert_allclose(sims, np.einsum("qkd,qd->qk", x[rows], probes), rtol=1e-5, atol=1e-6)
    assert (np.diff(sims, axis=1) <= 0).all()

"""The vector index (facedb/faiss/): search against brute force, persistence and its failure
modes, erasure of removed templates from every file, and searches beside writers."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import threading
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from facedb.errors import ConfigError, GalleryError, IndexUnavailable
from facedb.faiss import MANIFEST_NAME, FaissStore

from .helpers import files_bytes, join_all
from .helpers import unit_rows as unit

MODEL = "test-model"


def probes_of(rng: np.random.Generator, x: np.ndarray, cosine: float = 0.7) -> np.ndarray:
    """Noisy copies of x at about the given cosine (sigma 0.045 at 512-d for 0.7)."""
    d = x.shape[1]
    sigma = np.sqrt((1 / cosine**2 - 1) / d)
    p = x + rng.standard_normal(x.shape).astype(np.float32) * np.float32(sigma)
    return p / np.linalg.norm(p, axis=1, keepdims=True)


def brute(ids: np.ndarray, x: np.ndarray, q: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    sims = q @ x.T
    order = np.argsort(-sims, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(sims, order, axis=1), ids[order]


def assert_same_topk(got_s, got_i, want_s, want_i, tol=1e-5):
    """Same similarities; same ids wherever the ranking is not a near tie."""
    np.testing.assert_allclose(got_s, want_s, atol=tol)
    for gs, gi, ws, wi in zip(got_s, got_i, want_s, want_i, strict=True):
        for j in range(len(wi)):
            near_tie = (j > 0 and ws[j - 1] - ws[j] < tol) or (j + 1 < len(ws) and ws[j] - ws[j + 1] < tol)
            if not near_tie:
                assert gi[j] == wi[j], (gs, gi, ws, wi)


# ----------------------------------------------------------------------------- search


@pytest.mark.parametrize("threads", [1, 2])
def test_exact_matches_brute_force(tmp_path, threads):
    rng = np.random.default_rng(1)
    x = unit(rng, 3000, 64)
    ids = rng.permutation(10_000)[:3000].astype(np.int64)
    store = FaissStore(tmp_path, dim=64, model=MODEL, mode="exact", segment_size=700, threads=threads)
    store.add(ids, x)
    assert store.segment_count == 5
    assert store.kind.startswith("flat-ip")
    q = unit(rng, 40, 64)
    want_s, want_i = brute(ids, x, q, 7)
    got_s, got_i = store.search(q, 7)  # a batch
    assert got_s.dtype == np.float32 and got_i.dtype == np.int64 and got_i.shape == (40, 7)
    assert_same_topk(got_s, got_i, want_s, want_i)
    for i in range(3):  # single queries
        s, r = store.search(q[i : i + 1], 7)
        assert_same_topk(s, r, want_s[i : i + 1], want_i[i : i + 1])


def test_approximate_with_full_rerank_is_exact(tmp_path):
    rng = np.random.default_rng(2)
    x = unit(rng, 2000, 64)
    ids = np.arange(2000, dtype=np.int64) * 5
    store = FaissStore(tmp_path, dim=64, model=MODEL, mode="approximate", segment_size=300, rerank=2000)
    store.add(ids, x)
    assert store.kind.startswith("sign-hamming")
    q = unit(rng, 30, 64)
    assert_same_topk(*store.search(q, 5), *brute(ids, x, q, 5))


def test_approximate_finds_the_source_of_noisy_probes(tmp_path):
    rng = np.random.default_rng(3)
    d = 256
    x = unit(rng, 20_000, d)
    ids = np.arange(20_000, dtype=np.int64) + 100
    store = FaissStore(tmp_path, dim=d, model=MODEL, mode="approximate", segment_size=4096, rerank=32)
    store.add(ids, x)
    src = rng.choice(20_000, 200, replace=False)
    q = probes_of(rng, x[src])
    sims, got = store.search(q, 5)
    assert (got[:, 0] == ids[src]).mean() >= 0.99
    # the scores are the exact cosines of the ids returned, best first
    np.testing.assert_allclose(sims, np.einsum("qd,qkd->qk", q, x[got - 100]), atol=1e-5)
    assert (np.diff(sims, axis=1) <= 1e-7).all()
    want_s, _ = brute(ids, x, q, 1)
    np.testing.assert_allclose(sims[:, 0], want_s[:, 0], atol=1e-5)


def test_auto_switches_to_approximate_past_the_limit(tmp_path):
    rng = np.random.default_rng(4)
    store = FaissStore(tmp_path, dim=32, model=MODEL, exact_limit=100)
    store.add(np.arange(100), unit(rng, 100, 32))
    assert store.kind.startswith("flat-ip")
    store.add([100], unit(rng, 1, 32))
    assert store.kind.startswith("sign-hamming")
    store.remove([0])
    assert store.kind.startswith("flat-ip")
    assert FaissStore(tmp_path, dim=32, model=MODEL, mode="exact", exact_limit=0).kind.startswith("flat")


def test_padding_and_empty(tmp_path):
    rng = np.random.default_rng(5)
    store = FaissStore(tmp_path, dim=16, model=MODEL)
    s, i = store.search(unit(rng, 2, 16), 3)
    assert (i == -1).all() and np.isneginf(s).all()
    store.add([4, 9], unit(rng, 2, 16))
    for mode in ("exact", "approximate"):
        st_ = FaissStore(tmp_path / mode, dim=16, model=MODEL, mode=mode)  # type: ignore[arg-type]
        st_.add([4, 9], unit(rng, 2, 16))
        s, i = st_.search(unit(rng, 3, 16), 4)
        assert i.shape == (3, 4) and (i[:, 2:] == -1).all() and np.isneginf(s[:, 2:]).all()
        assert set(i[0, :2].tolist()) == {4, 9}
    assert store.search(np.zeros((0, 16), np.float32), 2)[1].shape == (0, 2)


def test_protocol_and_basic_queries(tmp_path):
    rng = np.random.default_rng(6)
    store = FaissStore(tmp_path, dim=16, model=MODEL)
    # What the VectorStore protocol required (every member present), plus digest, which
    # SyncedIndex uses too.
    members = (
        "dim",
        "kind",
        "generation",
        "__len__",
        "add",
        "remove",
        "search",
        "contains",
        "ids",
        "save",
        "close",
    )
    for member in (*members, "digest"):
        assert hasattr(store, member), member
    store.add(np.array([3, 1, 2], dtype=np.uint32), unit(rng, 3, 16).astype(np.float64))
    assert len(store) == 3 and store.contains(1) and not store.contains(5)
    assert sorted(store.ids().tolist()) == [1, 2, 3]
    assert store.remove([2, 2, 77]) == 1
    assert store.remove([]) == 0
    assert sorted(store.ids().tolist()) == [1, 3] and not store.contains(2)
    store.close()
    store.close()
    with pytest.raises(GalleryError, match="closed"):
        store.search(unit(rng, 1, 16), 1)


def test_bad_inputs_are_refused_and_change_nothing(tmp_path):
    rng = np.random.default_rng(7)
    store = FaissStore(tmp_path, dim=16, model=MODEL)
    store.add([1, 2], unit(rng, 2, 16))
    good = unit(rng, 2, 16)
    with pytest.raises(GalleryError, match="8-d vectors.*16-d"):
        store.add([3, 4], unit(rng, 2, 8))
    with pytest.raises(GalleryError, match="already in the index: 2"):
        store.add([3, 2], good)
    with pytest.raises(GalleryError, match="repeated in the batch: 5"):
        store.add([5, 5], good)
    bad = good.copy()
    bad[1, 3] = np.nan
    with pytest.raises(ConfigError, match="NaN or infinite values in rows 1"):
        store.add([3, 4], bad)
    with pytest.raises(ConfigError, match="unit length"):
        store.add([3, 4], good * 2)
    with pytest.raises(ConfigError, match=">= 0"):
        store.add([-3, 4], good)
    with pytest.raises(ConfigError, match="2 ids for 1 vectors"):
        store.add([3, 4], good[:1])
    with pytest.raises(ConfigError, match="2-D"):
        store.add([3], good[0])
    with pytest.raises(ConfigError, match="integers"):
        store.add([3.0, 4.0], good)
    with pytest.raises(ConfigError, match="k must be"):
        store.search(good, 0)
    with pytest.raises(GalleryError, match="8-d"):
        store.search(unit(rng, 1, 8), 1)
    with pytest.raises(ConfigError, match="NaN"):
        store.search(np.full((1, 16), np.inf, np.float32), 1)
    assert len(store) == 2 and sorted(store.ids().tolist()) == [1, 2]
    for kwargs in ({"dim": 0}, {"mode": "fast"}, {"segment_size": 0}, {"rerank": 0}, {"threads": 0}):
        with pytest.raises(ConfigError):
            FaissStore(tmp_path, **{"dim": 16, "model": MODEL, **kwargs})  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="generation"):
        store.save(-1)


# ----------------------------------------------------------------------------- persistence


def saved_store(
    folder: Path, n: int = 500, d: int = 32, generation: int = 3
) -> tuple[FaissStore, np.ndarray]:
    rng = np.random.default_rng(8)
    x = unit(rng, n, d)
    store = FaissStore(folder, dim=d, model=MODEL, segment_size=128)
    store.add(np.arange(n) + 1000, x)
    store.save(generation)
    return store, x


def test_save_open_round_trip(tmp_path):
    store, x = saved_store(tmp_path)
    store.remove([1000, 1200])
    store.add([7], x[:1])
    store.save(4)
    q = unit(np.random.default_rng(9), 20, 32)
    want = store.search(q, 5)
    again = FaissStore.open(tmp_path, dim=32, model=MODEL, generation=4)
    assert again.generation == 4 and len(again) == len(store) == 499
    assert sorted(again.ids().tolist()) == sorted(store.ids().tolist())
    got = again.search(q, 5)
    np.testing.assert_array_equal(got[1], want[1])
    np.testing.assert_allclose(got[0], want[0])
    # an opened store keeps working: mutate, save, reopen
    again.remove([7, 1001])
    again.add([8], x[1:2])
    again.save(5)
    third = FaissStore.open(tmp_path, dim=32, model=MODEL, generation=5, mode="approximate")
    assert len(third) == 498 and third.contains(8) and not third.contains(1001)
    s, i = third.search(x[1:2], 1)
    assert i[0, 0] == 8 and s[0, 0] == pytest.approx(1.0, abs=1e-5)


def test_files_are_only_those_named_by_the_manifest(tmp_path):
    store, _ = saved_store(tmp_path)
    (tmp_path / ".tmp-seg-0000000099.fseg").write_bytes(b"crash leftover")
    (tmp_path / "seg-0000000098.fseg").write_bytes(b"orphan")
    (tmp_path / "notes.txt").write_text("not ours")
    store.remove([1000])
    store.save(4)
    manifest = json.loads((tmp_path / MANIFEST_NAME).read_text())
    named = {e["file"] for e in manifest["segments"]}
    assert set(os.listdir(tmp_path)) == named | {MANIFEST_NAME, "notes.txt"}
    assert "seg-0000000098.fseg" not in named  # new names never reuse an existing one


def test_failed_save_keeps_the_previous_index(tmp_path, monkeypatch):
    import facedb.faiss.format as format_module

    store, x = saved_store(tmp_path)
    before = sorted(os.listdir(tmp_path))
    real = format_module.write_file

    def fail_on_manifest(path, parts):
        if path.name == MANIFEST_NAME:
            raise OSError(28, "No space left on device")
        real(path, parts)

    monkeypatch.setattr(format_module, "write_file", fail_on_manifest)
    store.remove([1000])
    with pytest.raises(GalleryError, match="No space left"):
        store.save(4)
    assert sorted(os.listdir(tmp_path)) == before
    assert len(FaissStore.open(tmp_path, dim=32, model=MODEL, generation=3)) == 500
    monkeypatch.setattr(format_module, "write_file", real)
    store.save(4)  # the removal is still pending and is written now
    assert not any(x[0].tobytes() in b for b in files_bytes(tmp_path))
    assert len(FaissStore.open(tmp_path, dim=32, model=MODEL, generation=4)) == 499


def test_new_store_replaces_an_existing_index(tmp_path):
    saved_store(tmp_path, n=300)
    rng = np.random.default_rng(10)
    fresh = FaissStore(tmp_path, dim=32, model=MODEL)
    fresh.add([1], unit(rng, 1, 32))
    fresh.save(1)
    assert len(FaissStore.open(tmp_path, dim=32, model=MODEL, generation=1)) == 1
    assert len([n for n in os.listdir(tmp_path) if n.endswith(".fseg")]) == 1


def open_reason(folder: Path, **kwargs) -> str:
    args = {"dim": 32, "model": MODEL, "generation": 3, **kwargs}
    with pytest.raises(IndexUnavailable) as info:
        FaissStore.open(folder, **args)
    assert isinstance(info.value, GalleryError) and str(folder) in str(info.value)
    return info.value.reason


def segment_files(folder: Path) -> list[Path]:
    return sorted(folder.glob("seg-*.fseg"))


def test_missing_index(tmp_path):
    assert open_reason(tmp_path) == "missing"
    assert open_reason(tmp_path / "nowhere") == "missing"


def test_stale_index(tmp_path):
    saved_store(tmp_path, generation=3)
    assert open_reason(tmp_path, generation=4) == "stale"
    store = FaissStore.open(tmp_path, dim=32, model=MODEL, generation=4, allow_stale=True)
    assert store.generation == 3 and len(store) == 500


def test_foreign_index(tmp_path):
    saved_store(tmp_path)
    assert open_reason(tmp_path, dim=64) == "foreign"
    assert open_reason(tmp_path, model="another-model") == "foreign"


@pytest.mark.parametrize("where", ["segment-payload", "segment-header", "manifest"])
def test_flipped_byte_is_corrupt(tmp_path, where):
    saved_store(tmp_path)
    path = tmp_path / MANIFEST_NAME if where == "manifest" else segment_files(tmp_path)[1]
    data = bytearray(path.read_bytes())
    offset = {"segment-payload": len(data) - 1000, "segment-header": 30, "manifest": len(data) // 2}[where]
    data[offset] ^= 0x01
    path.write_bytes(bytes(data))
    assert open_reason(tmp_path) == "corrupt"


def test_truncated_and_missing_segments_are_corrupt(tmp_path):
    saved_store(tmp_path)
    seg = segment_files(tmp_path)[0]
    good = seg.read_bytes()
    seg.write_bytes(good[:-1])
    assert open_reason(tmp_path) == "corrupt"
    seg.write_bytes(good[:100])
    assert open_reason(tmp_path) == "corrupt"
    seg.write_bytes(b"")
    assert open_reason(tmp_path) == "corrupt"
    seg.unlink()
    assert open_reason(tmp_path) == "corrupt"
    (tmp_path / MANIFEST_NAME).write_bytes((tmp_path / MANIFEST_NAME).read_bytes()[:50])
    assert open_reason(tmp_path) == "corrupt"


def test_a_segment_of_another_index_is_corrupt(tmp_path):
    saved_store(tmp_path / "a")
    saved_store(tmp_path / "b", n=400)
    a, b = segment_files(tmp_path / "a"), segment_files(tmp_path / "b")
    shutil.copy(b[-1], a[-1])  # same name, other content
    assert open_reason(tmp_path / "a") == "corrupt"


# ----------------------------------------------------------------------------- erasure


@pytest.mark.parametrize("mode", ["exact", "approximate"])
def test_removed_template_is_in_no_file(tmp_path, mode):
    rng = np.random.default_rng(11)
    d = 128
    x = unit(rng, 300, d)
    ids = np.arange(300, dtype=np.int64) + 1
    store = FaissStore(tmp_path, dim=d, model=MODEL, segment_size=64, mode=mode)
    store.add(ids, x)
    store.save(1)
    extra = unit(rng, 1, d)
    store.add([999], extra)  # added and removed between two saves: never written
    codes = np.packbits(x > 0, axis=1)
    gone = [5, 70, 71, 299]  # two segments, one of them twice, and the last row
    kept = [6, 150]
    before = files_bytes(tmp_path)
    for i in gone:
        assert any(x[i - 1].tobytes() in b for b in before)
    store.remove([*gone, 999])
    store.save(2)
    after = files_bytes(tmp_path)
    for i in gone:
        assert not any(x[i - 1].tobytes() in b for b in after), i
        assert not any(codes[i - 1].tobytes() in b for b in after), i
    assert not any(extra.tobytes() in b for b in after)
    for i in kept:  # the same scan does find what is kept: nothing is hidden by an encoding
        assert any(x[i - 1].tobytes() in b for b in after)
        assert any(codes[i - 1].tobytes() in b for b in after)
    reopened = FaissStore.open(tmp_path, dim=d, model=MODEL, generation=2, mode=mode)
    _, i = reopened.search(x[[4, 5]], 1)
    assert i[0, 0] != 5 and i[1, 0] == 6


def test_removing_a_whole_segment_and_everything(tmp_path):
    rng = np.random.default_rng(12)
    x = unit(rng, 100, 32)
    store = FaissStore(tmp_path, dim=32, model=MODEL, segment_size=10)
    store.add(np.arange(100), x)
    store.save(1)
    store.remove(np.arange(10, 20))
    store.save(2)
    assert store.segment_count == 9 and len(segment_files(tmp_path)) == 9
    assert not any(x[15].tobytes() in b for b in files_bytes(tmp_path))
    store.remove(np.arange(100))
    store.save(3)
    assert segment_files(tmp_path) == []
    assert not any(x[50].tobytes() in b for b in files_bytes(tmp_path))
    empty = FaissStore.open(tmp_path, dim=32, model=MODEL, generation=3)
    assert len(empty) == 0 and (empty.search(x[:1], 2)[1] == -1).all()


def test_removal_rewrites_only_the_segments_it_touches(tmp_path):
    store, _ = saved_store(tmp_path, n=640)  # 5 segments of 128
    before = {p.name: p.stat().st_mtime_ns for p in segment_files(tmp_path)}
    store.remove([1000 + 130])
    store.save(4)
    after = {p.name for p in segment_files(tmp_path)}
    assert len(after) == 5 and len(after - set(before)) == 1


def test_fragmented_segments_are_repacked(tmp_path):
    rng = np.random.default_rng(13)
    x = unit(rng, 400, 16)
    store = FaissStore(tmp_path, dim=16, model=MODEL, segment_size=20)
    store.add(np.arange(400), x)
    store.save(1)
    store.remove([i for i in range(400) if i % 20])  # one row left in each of 20 segments
    assert store.segment_count == 1 and len(store) == 20
    store.save(2)
    assert len(segment_files(tmp_path)) == 1
    assert not any(x[1].tobytes() in b for b in files_bytes(tmp_path))
    assert any(x[20].tobytes() in b for b in files_bytes(tmp_path))
    assert sorted(FaissStore.open(tmp_path, dim=16, model=MODEL, generation=2).ids().tolist()) == list(
        range(0, 400, 20)
    )


# ----------------------------------------------------------------------------- threads


def test_searches_beside_writers(tmp_path):
    rng = np.random.default_rng(14)
    d = 32
    store = FaissStore(tmp_path, dim=d, model=MODEL, segment_size=500, exact_limit=3000, threads=2)
    x = unit(rng, 6000, d)
    store.add(np.arange(2000), x[:2000])
    removed: set[int] = set()
    errors: list[BaseException] = []
    stop = threading.Event()

    def searcher(seed: int) -> None:
        r = np.random.default_rng(seed)
        try:
            while not stop.is_set():
                snapshot = set(removed)  # removals that returned before this search began
                nq = int(r.choice([1, 16]))
                rows = r.integers(0, 6000, nq)
                _, got = store.search(x[rows], 5)
                hit = snapshot.intersection(got.ravel().tolist())
                assert not hit, f"removed ids returned: {hit}"
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=searcher, args=(s,)) for s in range(3)]
    for t in threads:
        t.start()
    try:
        for step, start in enumerate(range(2000, 6000, 250)):
            store.add(np.arange(start, start + 250), x[start : start + 250])
            victims = rng.choice(start + 250, 40, replace=False).tolist()
            store.remove(victims)
            removed.update(victims)
            if step % 5 == 0:
                store.save(step + 1)
    finally:
        stop.set()
        join_all(threads, 120)
    assert not errors, errors[0]
    assert set(store.ids().tolist()) == set(range(6000)) - removed
    assert store.kind.startswith("sign-hamming")


# ----------------------------------------------------------------------------- model check


class StoreMachine(RuleBasedStateMachine):
    """Random add/remove/search/save/reopen sequences against a dict of id -> vector."""

    def __init__(self) -> None:
        super().__init__()
        self.folder = Path(tempfile.mkdtemp(prefix="facedb-index-"))
        self.model: dict[int, np.ndarray] = {}
        self.saved: dict[int, np.ndarray] = {}
        self.generation = 0
        self.dim = 12

    @initialize(mode=st.sampled_from(["exact", "approximate"]), seed=st.integers(0, 2**32 - 1))
    def start(self, mode: str, seed: int) -> None:
        self.mode = mode
        self.rng = np.random.default_rng(seed)
        self.store = self.make(FaissStore, self.folder)

    def make(self, factory, folder, **extra):
        # rerank covers everything, so the approximate path must give exact answers too
        return factory(
            folder, dim=self.dim, model=MODEL, mode=self.mode, segment_size=4, rerank=10_000, **extra
        )

    @rule(ids=st.lists(st.integers(0, 60), min_size=1, max_size=9, unique=True))
    def add(self, ids: list[int]) -> None:
        vecs = unit(self.rng, len(ids), self.dim)
        if any(i in self.model for i in ids):
            with pytest.raises(GalleryError):
                self.store.add(ids, vecs)
            return
        self.store.add(ids, vecs)
        self.model.update(zip(ids, vecs, strict=True))

    @rule(ids=st.lists(st.integers(0, 60), max_size=9))
    def remove(self, ids: list[int]) -> None:
        expected = len(set(ids) & set(self.model))
        assert self.store.remove(ids) == expected
        for i in ids:
            self.model.pop(i, None)

    @rule(k=st.integers(1, 6), nq=st.integers(1, 10))
    def search(self, k: int, nq: int) -> None:
        q = unit(self.rng, nq, self.dim)
        s, i = self.store.search(q, k)
        if not self.model:
            assert (i == -1).all()
            return
        ids = np.array(sorted(self.model), dtype=np.int64)
        x = np.stack([self.model[j] for j in ids.tolist()])
        want_s, want_i = brute(ids, x, q, k)
        m = min(k, len(ids))
        assert_same_topk(s[:, :m], i[:, :m], want_s, want_i)
        assert (i[:, m:] == -1).all()

    @rule()
    def save(self) -> None:
        self.generation += 1
        self.store.save(self.generation)
        self.saved = dict(self.model)

    @precondition(lambda self: self.generation > 0)
    @rule()
    def reopen(self) -> None:
        self.store.close()
        self.store = self.make(FaissStore.open, self.folder, generation=self.generation)
        self.model = dict(self.saved)  # unsaved changes are dropped by close()

    @invariant()
    def same_ids(self) -> None:
        if hasattr(self, "store"):
            assert sorted(self.store.ids().tolist()) == sorted(self.model)
            assert len(self.store) == len(self.model)

    def teardown(self) -> None:
        if hasattr(self, "store"):
            self.store.close()
        shutil.rmtree(self.folder, ignore_errors=True)


StoreMachine.TestCase.settings = settings(
    max_examples=60,
    stateful_step_count=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
test_store_against_a_model = StoreMachine.TestCase

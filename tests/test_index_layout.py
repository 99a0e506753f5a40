"""The memory-mapped index layout (facedb/faiss/format.py, version 2): opening reads the
manifest and each segment's ids and codes, not the templates; a search reads only the rows it
re-ranks; float16 storage keeps rank-1; damaged templates are never scored; removed rows
leave no byte in any file; an index of the previous format (version 1) still opens and is
rewritten."""

from __future__ import annotations

import hashlib
import json
import struct
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from facedb import FaceDB
from facedb.errors import IndexUnavailable
from facedb.faiss import MANIFEST_NAME, FaissStore
from facedb.faiss.format import _manifest_checksum
from facedb.faiss.segments import row_sums

from .helpers import files_bytes
from .helpers import unit_rows as unit

MODEL = "test-model"

pytestmark = pytest.mark.timeout(120)


def probes_of(rng: np.random.Generator, x: np.ndarray, sigma: float = 0.045) -> np.ndarray:
    p = x + rng.standard_normal(x.shape).astype(np.float32) * np.float32(sigma)
    return p / np.linalg.norm(p, axis=1, keepdims=True)


def mapped_rss_kb(folder: Path) -> int:
    """Resident KB of this process's mappings of the folder's segment files (/proc/self/smaps)."""
    total, inside = 0, False
    with open("/proc/self/smaps") as f:
        for line in f:
            first = line.split(maxsplit=1)[0]
            if "-" in first and not first.endswith(":"):  # a mapping's header line
                inside = str(folder) in line and line.rstrip().endswith(".fseg")
            elif inside and first == "Rss:":
                total += int(line.split()[1])
    return total


def bytes_read() -> int:
    """Bytes this process has read with read() and friends (/proc/self/io rchar)."""
    with open("/proc/self/io") as f:
        for line in f:
            if line.startswith("rchar:"):
                return int(line.split()[1])
    raise AssertionError("no rchar in /proc/self/io")


def big_store(folder: Path, n: int = 20_000, d: int = 128, precision: str = "float32", seed: int = 3):
    rng = np.random.default_rng(seed)
    x = unit(rng, n, d)
    store = FaissStore(folder, dim=d, model=MODEL, mode="approximate", segment_size=4096, precision=precision)
    store.add(np.arange(n, dtype=np.int64), x)
    store.save(1)
    store.close()
    return x, rng


# ----------------------------------------------------------------------------- opening


def test_opening_reads_the_codes_not_the_templates(tmp_path):
    n, d = 16_384, 512
    x, rng = big_store(tmp_path, n, d)
    templates = n * d * 4
    before = bytes_read()
    store = FaissStore.open(tmp_path, dim=d, model=MODEL, generation=1, mode="approximate")
    read = bytes_read() - before
    assert read < templates / 20, read  # ids, row checksums and codes: 76 of 2124 bytes a row
    assert mapped_rss_kb(tmp_path) * 1024 < templates / 20  # nothing of the templates faulted in
    p = probes_of(rng, x[:10])
    before = bytes_read()
    for i, q in enumerate(p):
        _, ids = store.search(q[None], 5)
        assert ids[0, 0] == i
    # 10 queries re-rank 64 rows of 2 KB each: 1.3 MB read, nothing mapped, not 32 MB
    assert bytes_read() - before <= 10 * 64 * 2048 + 65536  # (+ reading /proc/self/io)
    assert mapped_rss_kb(tmp_path) * 1024 < templates / 20
    _, ids = store.search(p, 5)  # a batch: its rows are copied through the mappings,
    assert (ids[:, 0] == np.arange(10)).all()
    assert mapped_rss_kb(tmp_path) * 1024 < templates / 20  # whose pages are then let go
    store.close()


def test_an_exact_store_hashes_its_templates_on_opening(tmp_path):
    rng = np.random.default_rng(4)
    x = unit(rng, 300, 32)
    store = FaissStore(tmp_path, dim=32, model=MODEL, segment_size=128)
    store.add(np.arange(300), x)
    store.save(1)
    seg = sorted(tmp_path.glob("seg-*.fseg"))[0]
    data = bytearray(seg.read_bytes())
    data[-7] ^= 0x10  # a template byte
    seg.write_bytes(bytes(data))
    with pytest.raises(IndexUnavailable) as info:
        FaissStore.open(tmp_path, dim=32, model=MODEL, generation=1)  # exact: hashed at once
    assert info.value.reason == "corrupt" and seg.name in str(info.value)


def test_a_damaged_template_is_never_scored(tmp_path):
    n, d = 8192, 64
    x, rng = big_store(tmp_path, n, d)
    seg = sorted(tmp_path.glob("seg-*.fseg"))[0]
    data = bytearray(seg.read_bytes())
    row = 10
    start = data.find(x[row].tobytes())
    assert start > 0
    data[start + 5] ^= 0x01
    seg.write_bytes(bytes(data))
    store = FaissStore.open(tmp_path, dim=d, model=MODEL, generation=1, mode="approximate")  # lazy
    _, ids = store.search(probes_of(rng, x[100:110]), 3)  # other rows are served
    assert (ids[:, 0] == np.arange(100, 110)).all()
    with pytest.raises(IndexUnavailable) as info:
        store.search(x[row : row + 1], 3)
    assert info.value.reason == "corrupt" and str(tmp_path) in str(info.value)
    with pytest.raises(IndexUnavailable):  # changing the segment hashes it whole first
        store.remove([11])
    with pytest.raises(IndexUnavailable):  # as does an exact search, which reads every row
        FaissStore.open(tmp_path, dim=d, model=MODEL, generation=1, mode="approximate")._exact.search(
            store._segments, x[:1], 1
        )


def test_a_gallery_rebuilds_an_index_whose_template_was_damaged(tmp_path):
    folder = tmp_path / "g"
    rng = np.random.default_rng(5)
    x = unit(rng, 300, 512)
    with FaceDB(folder, index="approximate") as db:
        people = db.import_embeddings([f"p{i}" for i in range(300)], x)
    seg = next((folder / "index").glob("seg-*.fseg"))
    data = bytearray(seg.read_bytes())
    start = data.find(x[7].tobytes())
    assert start > 0
    data[start + 100] ^= 0x40
    seg.write_bytes(bytes(data))
    with FaceDB(folder, index="approximate") as db:
        (found,) = db.search(x[7], k=1)
        assert found[0].person.id == people[7].id and found[0].similarity > 0.999
        assert db.check().ok


# ----------------------------------------------------------------------------- float16


def test_float16_keeps_rank1_and_halves_the_files(tmp_path):
    n, d = 6000, 512
    _, rng = big_store(tmp_path / "f16", n, d, precision="float16", seed=6)
    x32, _ = big_store(tmp_path / "f32", n, d, precision="float32", seed=6)
    size = {p: sum(f.stat().st_size for f in (tmp_path / p).glob("*.fseg")) for p in ("f16", "f32")}
    assert size["f16"] < 0.55 * size["f32"]
    p = probes_of(rng, x32[:200])
    s16, i16 = FaissStore.open(
        tmp_path / "f16", dim=d, model=MODEL, generation=1, precision="float16"
    ).search(p, 5)
    s32, i32 = FaissStore.open(tmp_path / "f32", dim=d, model=MODEL, generation=1).search(p, 5)
    assert (i16[:, 0] == np.arange(200)).all() and (i32[:, 0] == np.arange(200)).all()
    np.testing.assert_allclose(s16, s32, atol=2e-3)
    with pytest.raises(IndexUnavailable) as info:  # the precision is part of the format
        FaissStore.open(tmp_path / "f16", dim=d, model=MODEL, generation=1)
    assert info.value.reason == "foreign"


@pytest.mark.parametrize("precision", ["float32", "float16"])
def test_removed_rows_leave_no_byte_in_any_file(tmp_path, precision):
    rng = np.random.default_rng(7)
    d = 128
    x = unit(rng, 400, d)
    store = FaissStore(
        tmp_path, dim=d, model=MODEL, segment_size=100, mode="approximate", precision=precision
    )
    store.add(np.arange(400), x)
    store.save(1)
    store.close()
    store = FaissStore.open(
        tmp_path, dim=d, model=MODEL, generation=1, mode="approximate", precision=precision
    )
    stored = x.astype(np.float16) if precision == "float16" else x
    codes = np.packbits(x > 0, axis=1)
    gone, kept = [3, 150, 151, 399], [4, 200]
    store.remove(gone)
    store.save(2)
    after = files_bytes(tmp_path)
    for i in gone:
        assert not any(stored[i].tobytes() in b for b in after), i
        assert not any(codes[i].tobytes() in b for b in after), i
    for i in kept:  # the same scan finds what is kept
        assert any(stored[i].tobytes() in b for b in after)
        assert any(codes[i].tobytes() in b for b in after)
    reopened = FaissStore.open(
        tmp_path, dim=d, model=MODEL, generation=2, mode="approximate", precision=precision
    )
    assert sorted(reopened.ids().tolist()) == sorted(set(range(400)) - set(gone))


def test_a_saved_segment_is_served_from_its_file(tmp_path):
    """After a save, the importing process holds the templates as file pages, not copies."""
    rng = np.random.default_rng(8)
    x = unit(rng, 1000, 64)
    store = FaissStore(tmp_path, dim=64, model=MODEL, segment_size=256)
    store.add(np.arange(1000), x)
    assert all(seg.mapping is None for seg in store._segments.segments)
    store.save(1)
    assert all(seg.mapping is not None for seg in store._segments.segments)
    _, ids = store.search(x[:5], 1)
    assert ids[:, 0].tolist() == [0, 1, 2, 3, 4]
    store.remove([0])  # a mapped segment is copied when changed
    store.save(2)
    assert not any(x[0].tobytes() in b for b in files_bytes(tmp_path))


# ----------------------------------------------------------------------------- checksums


@settings(max_examples=60, deadline=None)
@given(
    st.integers(1, 40),
    st.sampled_from([np.float32, np.float16]),
    st.data(),
)
def test_row_sums_notice_any_changed_word(rows, dtype, data):
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    x = unit(rng, rows, 64).astype(dtype)
    r = data.draw(st.integers(0, rows - 1))
    j = data.draw(st.integers(0, 63))
    bit = data.draw(st.integers(0, 8 * x.itemsize - 1))
    changed = x.copy()
    words = changed.view(np.uint32 if x.itemsize == 4 else np.uint16)
    words[r, j] ^= words.dtype.type(1 << bit)
    before, after = row_sums(x), row_sums(changed)
    assert before[r] != after[r]
    assert (np.delete(before, r) == np.delete(after, r)).all()


@settings(max_examples=15, deadline=None)
@given(
    st.integers(0, 300),
    st.integers(1, 130),
    st.sampled_from(["float32", "float16"]),
    st.sampled_from(["exact", "approximate"]),
)
def test_save_open_round_trip_in_any_shape(tmp_path_factory, n, segment_size, precision, mode):
    folder = tmp_path_factory.mktemp("rt")
    rng = np.random.default_rng(n)
    x = unit(rng, n, 24)
    store = FaissStore(folder, dim=24, model=MODEL, segment_size=segment_size, precision=precision, mode=mode)
    store.add(np.arange(n) * 3, x)
    store.save(5)
    store.close()
    opened = FaissStore.open(folder, dim=24, model=MODEL, generation=5, precision=precision, mode=mode)
    assert opened.ids().tolist() == (np.arange(n) * 3).tolist()
    if n:
        rows = opened._segments.gather(np.arange(n))
        np.testing.assert_array_equal(rows, x.astype(precision).astype(np.float32))


# ----------------------------------------------------------------------------- format 1


def write_v1(folder: Path, model: str, generation: int, ids: np.ndarray, x: np.ndarray, size: int) -> None:
    """An index as facedb wrote it before the memory-mapped layout (format version 1)."""
    for name in [p.name for p in folder.glob("*")]:
        (folder / name).unlink()
    d = x.shape[1]
    model_digest = hashlib.sha256(model.encode()).digest()
    entries = []
    for j, start in enumerate(range(0, len(ids), size)):
        part_ids = np.ascontiguousarray(ids[start : start + size], dtype="<i8")
        part = np.ascontiguousarray(x[start : start + size], dtype="<f4")
        codes = np.packbits(part > 0, axis=1)
        payload = part_ids.tobytes() + part.tobytes() + codes.tobytes()
        digest = hashlib.sha256(payload).digest()
        header = struct.pack(
            "<8sIIIIQQ32s32s",
            b"FDBVSEG1",
            1,
            128,
            d,
            (d + 7) // 8,
            len(part),
            generation,
            model_digest,
            digest,
        ).ljust(128, b"\0")
        name = f"seg-{j + 1:010d}.fseg"
        (folder / name).write_bytes(header + payload)
        entries.append({"file": name, "count": len(part), "sha256": digest.hex()})
    body = {
        "format": "facedb-vector-index",
        "version": 1,
        "dim": d,
        "model": model,
        "generation": generation,
        "code_bytes": (d + 7) // 8,
        "count": len(ids),
        "segments": entries,
    }
    body["checksum"] = _manifest_checksum(body)
    (folder / MANIFEST_NAME).write_text(json.dumps(body))


def test_an_index_of_format_1_opens_and_is_rewritten(tmp_path):
    rng = np.random.default_rng(9)
    x = unit(rng, 500, 32)
    write_v1(tmp_path, MODEL, 3, np.arange(500) + 10, x, 128)
    store = FaissStore.open(tmp_path, dim=32, model=MODEL, generation=3, mode="approximate")
    assert store.outdated and len(store) == 500
    _, ids = store.search(probes_of(rng, x[:20], 0.02), 1)
    assert (ids[:, 0] == np.arange(20) + 10).all()
    store.remove([10])
    store.save(4)
    assert not store.outdated
    manifest = json.loads((tmp_path / MANIFEST_NAME).read_text())
    assert manifest["version"] == 2 and all(
        p.read_bytes()[:8] == b"FDBVSEG2" for p in tmp_path.glob("*.fseg")
    )
    assert not any(x[0].tobytes() in b for b in files_bytes(tmp_path))
    reopened = FaissStore.open(tmp_path, dim=32, model=MODEL, generation=4)
    assert sorted(reopened.ids().tolist()) == list(range(11, 510))


@pytest.mark.parametrize("read_only", [False, True])
def test_a_gallery_with_an_index_of_format_1_opens(tmp_path, read_only):
    folder = tmp_path / "g"
    rng = np.random.default_rng(10)
    x = unit(rng, 200, 512)
    with FaceDB(folder) as db:
        people = db.import_embeddings([f"p{i}" for i in range(200)], x)
        model = db.vectors.model_id
    index = folder / "index"
    manifest = json.loads((index / MANIFEST_NAME).read_text())
    opened = FaissStore.open(index, dim=512, model=model, generation=manifest["generation"])
    write_v1(index, model, manifest["generation"], opened.ids(), opened._segments.gather(np.arange(200)), 64)
    opened.close()
    with FaceDB(folder, read_only=read_only) as db:
        (found,) = db.search(x[42], k=1)
        assert found[0].person.id == people[42].id
    version = json.loads((index / MANIFEST_NAME).read_text())["version"]
    assert version == (1 if read_only else 2)  # a read-only opener writes nothing


# ----------------------------------------------------------------------------- two processes


def test_a_reader_catches_up_with_rows_another_writer_erased(tmp_path):
    """A writer's save zeroes the removed rows in the file a reader still maps: the reader's
    catch-up (the same removal) checks the kept rows only, and a search that meets a zeroed
    row before the catch-up raises (the gallery then loads the folder again)."""
    n, d = 8192, 64
    x, rng = big_store(tmp_path, n, d)
    reader = FaissStore.open(tmp_path, dim=d, model=MODEL, generation=1, mode="approximate")
    writer = FaissStore.open(tmp_path, dim=d, model=MODEL, generation=1, mode="approximate")
    writer.remove([5, 6])
    writer.save(2)
    with pytest.raises(IndexUnavailable):  # row 5 reads as zeros now: never scored
        reader.search(x[5:6], 3)
    assert reader.remove([5, 6]) == 2  # what a catch-up does: the kept rows are intact
    _, ids = reader.search(probes_of(rng, x[10:30]), 1)
    assert (ids[:, 0] == np.arange(10, 30)).all()


def test_a_gallery_reader_follows_a_writers_removal(tmp_path):
    folder = tmp_path / "g"
    rng = np.random.default_rng(12)
    x = unit(rng, 400, 512)
    with FaceDB(folder, index="approximate") as writer:
        people = writer.import_embeddings([f"p{i}" for i in range(400)], x)
    with FaceDB(folder, index="approximate") as writer, FaceDB(folder, index="approximate") as reader:
        (found,) = reader.search(x[3], k=1)
        assert found[0].person.id == people[3].id
        writer.remove(people[3].id)
        assert all(c.person.id != people[3].id for c in reader.search(x[3], k=5)[0])
        (found,) = reader.search(x[4], k=1)
        assert found[0].person.id == people[4].id
        assert reader.check().ok

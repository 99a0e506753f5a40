"""Encryption at rest: a gallery opened with a key keeps no template or thumbnail in
plaintext (SQL, the index's segment files, the WAL; a PostgreSQL dump), refuses to open
without its key or with another, and changes keys (rekey) without leaving the old bytes."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import LargeBinary, select, text, type_coerce

import facedb
from facedb import FaceDB
from facedb.encryption import OVERHEAD, Cipher, read_key_file
from facedb.faiss import FaissStore
from facedb.models import FaceRow
from facedb.store.sealing import sealed_columns
from tests.helpers import (
    enroll_gallery,
    files_bytes,
    fresh_database,
    run_cli,
    run_python,
    server_url_or_skip,
    unit_rows,
    unit_vector,
)

pytestmark = pytest.mark.timeout(300)


def windows(value: bytes) -> list[bytes]:
    """Pieces of a stored value, any of which found in a file means the value is there in
    plaintext (32 bytes: a template's 8 floats, a thumbnail's JPEG stream)."""
    step = max(1, (len(value) - 32) // 4)
    return [value[i : i + 32] for i in range(0, len(value) - 32, step)][:5]


def plaintexts(db: FaceDB) -> list[bytes]:
    """Every template and thumbnail the gallery holds, as the key opens them."""
    found: list[bytes] = []
    with db.store.read() as s:
        for table, name, _ in sealed_columns():
            found += [bytes(v) for (v,) in s.execute(select(table.c[name]).where(table.c[name].is_not(None)))]
    assert found
    return found


def leaked(folder_or_bytes: Path | list[bytes], values: list[bytes]) -> int:
    """How many of ``values`` are found, in plaintext, in the files (or bytes)."""
    blobs = files_bytes(folder_or_bytes) if isinstance(folder_or_bytes, Path) else folder_or_bytes
    return sum(any(w in blob for blob in blobs for w in windows(v)) for v in values)


def fill(db: FaceDB, faces_dir: Path) -> None:
    """People with thumbnails, a negative example and groups of unnamed faces (templates and
    thumbnails in every sealed table but visits')."""
    enroll_gallery(db, faces_dir)
    db.reject(unit_vector(7), db.find("obama")[0])
    db.discover([faces_dir / "closeups"])


def names(db: FaceDB, photo: Path) -> list[str | None]:
    return [r.person.name if r.person else None for r in db.identify(photo)]


def test_a_sealed_gallery_keeps_no_template_or_thumbnail_in_plain(tmp_path: Path, faces_dir: Path) -> None:
    key = facedb.new_key()
    sealed, plain = tmp_path / "sealed", tmp_path / "plain"
    with FaceDB(sealed, key=key) as db, FaceDB(plain) as control:
        fill(db, faces_dir)
        fill(control, faces_dir)
        values = plaintexts(db)
        assert names(db, faces_dir / "probes/obama1.jpg") == ["obama"]
        # Stored sealed: version byte, nonce, ciphertext, tag.
        with db.store.read() as s:
            raw = s.execute(select(type_coerce(FaceRow.template, LargeBinary))).scalars().first()
        assert raw is not None and raw[:1] == b"\x01" and len(raw) == 512 * 4 + OVERHEAD
        # The scan finds what is there: in the unsealed gallery, every value.
        assert leaked(plain, plaintexts(control)) == len(plaintexts(control))
        assert leaked(sealed, values) == 0  # gallery.db, its WAL, the index's segments
    assert leaked(sealed, values) == 0  # and after the close's checkpoint
    manifest = json.loads((sealed / "index" / "index.json").read_text())
    assert manifest["sealed"] == Cipher(key).key_id
    with FaceDB(sealed, key=key) as db:  # reopened: the index is read and decrypted
        assert names(db, faces_dir / "probes/obama1.jpg") == ["obama"]
        assert db.check().ok and db.stats()["encrypted"] is True


def test_without_its_key_or_with_another_a_sealed_gallery_does_not_open(tmp_path: Path) -> None:
    key = facedb.new_key()
    with FaceDB(tmp_path / "g", key=key) as db:
        db.import_embeddings(["a"], unit_rows(1, 1))
    with pytest.raises(facedb.EncryptionKeyError, match="is encrypted: open it with its key"):
        FaceDB(tmp_path / "g")
    with pytest.raises(facedb.EncryptionKeyError, match="does not open the gallery"):
        FaceDB(tmp_path / "g", key=facedb.new_key())
    with pytest.raises(facedb.EncryptionKeyError, match="is encrypted"):
        FaceDB(tmp_path / "g", read_only=True)
    with FaceDB(tmp_path / "plain") as db:
        db.import_embeddings(["a"], unit_rows(1, 1))
    with pytest.raises(facedb.EncryptionKeyError, match="is not encrypted, and a key was given"):
        FaceDB(tmp_path / "plain", key=key)
    # The key is never in a message.
    for bad in ("not a key", key[:-4], key + "AAAA"):
        with pytest.raises(facedb.ConfigError, match="is not a gallery key") as info:
            FaceDB(tmp_path / "g", key=bad)
        assert bad not in str(info.value)
    with pytest.raises(facedb.ConfigError, match="32 random bytes"):
        FaceDB(tmp_path / "g", key=b"\0" * 31)
    with FaceDB(tmp_path / "g", key=key.encode()) as db:  # a key file's bytes
        assert [p.name for p in db.people()] == ["a"]


def test_the_key_comes_from_a_file_or_the_environment(tmp_path: Path) -> None:
    key_file = tmp_path / "key"
    key_file.write_text(facedb.new_key() + "\n")
    assert read_key_file(key_file) == key_file.read_text().strip()
    (tmp_path / "bad").write_text("secret-but-not-a-key\n")
    with pytest.raises(facedb.ConfigError, match="key file .*bad is not a gallery key"):
        read_key_file(tmp_path / "bad")
    with pytest.raises(facedb.ConfigError, match="cannot read the gallery key file"):
        read_key_file(tmp_path / "missing")
    code = (
        "import facedb, numpy as np\n"
        f"db = facedb.FaceDB({str(tmp_path / 'g')!r})\n"
        "db.import_embeddings(['a'], np.eye(1, 512, dtype='float32'))\n"
        "print(db.stats()['encrypted']); db.close()\n"
    )
    out = run_python(code, env={"FACEDB_KEY_FILE": str(key_file)})
    assert out.returncode == 0 and out.stdout.strip() == "True", out.stderr
    with pytest.raises(facedb.EncryptionKeyError):
        FaceDB(tmp_path / "g")
    with FaceDB(tmp_path / "g", key=read_key_file(key_file)) as db:
        assert len(db) == 1


def test_rekey_encrypts_changes_keys_and_decrypts_leaving_nothing(tmp_path: Path, faces_dir: Path) -> None:
    folder = tmp_path / "g"
    with FaceDB(folder) as db:
        fill(db, faces_dir)
        values = plaintexts(db)
        assert leaked(folder, values) == len(values)
        first, second = facedb.new_key(), facedb.new_key()
        assert db.rekey(first) == len(values)
        assert leaked(folder, values) == 0  # no plaintext left: SQLite pages, WAL, old segments
        assert names(db, faces_dir / "probes/obama1.jpg") == ["obama"]
    with FaceDB(folder, key=first) as db:
        with db.store.read() as s:
            old_sealed = [bytes(v) for (v,) in s.execute(select(type_coerce(FaceRow.template, LargeBinary)))]
        db.rekey(second)
        assert names(db, faces_dir / "probes/obama1.jpg") == ["obama"]
    assert leaked(folder, old_sealed) == 0  # nothing left under the old key either
    with pytest.raises(facedb.EncryptionKeyError):
        FaceDB(folder, key=first)
    with FaceDB(folder, key=second) as db:
        assert db.check().ok
        db.rekey(None)
    with FaceDB(folder) as db:
        assert db.check().ok and db.stats()["encrypted"] is False
        assert plaintexts(db) == values
        assert names(db, faces_dir / "probes/obama1.jpg") == ["obama"]


def test_a_process_with_the_old_key_fails_loudly_after_a_rekey_and_writes_nothing(tmp_path: Path) -> None:
    key = facedb.new_key()
    rows = unit_rows(3, 4)
    with FaceDB(tmp_path / "g", key=key) as db:
        db.import_embeddings(["a", "b", "c", "d"], rows)
    stale = FaceDB(tmp_path / "g", key=key)
    assert stale.search(rows[0], k=1)[0][0].person.name == "a"
    new = facedb.new_key()
    with FaceDB(tmp_path / "g", key=key) as db:
        db.rekey(new)
    # Its index in memory must not go on answering for a gallery it can no longer read.
    with pytest.raises(facedb.EncryptionKeyError, match="changed with `facedb rekey`"):
        stale.search(rows[0], k=1)
    with pytest.raises(facedb.EncryptionKeyError):
        stale.import_embeddings(["e"], unit_rows(4, 1))
    stale.close()
    with FaceDB(tmp_path / "g", key=new) as db:
        assert sorted(p.name for p in db.people()) == ["a", "b", "c", "d"]


def test_an_altered_sealed_value_is_an_error_not_a_template(tmp_path: Path) -> None:
    key = facedb.new_key()
    with FaceDB(tmp_path / "g", key=key) as db:
        db.import_embeddings(["a", "b"], unit_rows(5, 2))
        with db.store.write() as s:
            raw = s.execute(select(type_coerce(FaceRow.template, LargeBinary))).scalars().first()
            assert raw is not None
            flipped = raw[:-1] + bytes([raw[-1] ^ 1])
            s.execute(text("UPDATE faces SET template = :v WHERE id = 1"), {"v": flipped})
        with pytest.raises(facedb.EncryptionKeyError, match="altered"):
            db.rebuild_index()


def test_sealed_segment_files_round_trip_and_are_foreign_under_another_key(tmp_path: Path) -> None:
    cipher, other = Cipher(facedb.new_key()), Cipher(facedb.new_key())
    rows = unit_rows(9, 300)
    ids = np.arange(1, 301, dtype=np.int64)
    store = FaissStore(tmp_path / "i", dim=512, model="m", cipher=cipher, segment_size=128)
    store.add(ids, rows)
    store.save(1)
    store.close()
    blobs = files_bytes(tmp_path / "i")
    assert leaked(blobs, [r.tobytes() for r in rows]) == 0
    opened = FaissStore.open(
        tmp_path / "i", dim=512, model="m", generation=1, cipher=cipher, segment_size=128
    )
    scores, found = opened.search(rows[:5], 1)
    assert found[:, 0].tolist() == ids[:5].tolist() and np.allclose(scores[:, 0], 1.0, atol=1e-5)
    opened.close()
    for wrong in (other, None):
        with pytest.raises(facedb.errors.IndexUnavailable) as info:
            FaissStore.open(tmp_path / "i", dim=512, model="m", generation=1, cipher=wrong)
        assert info.value.reason == "foreign"


def test_a_sealed_gallery_on_postgresql_dumps_no_template(tmp_path: Path, faces_dir: Path) -> None:
    server = server_url_or_skip()
    pg_dump = shutil.which("pg_dump") or next(
        iter(sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_dump"))), None
    )
    if pg_dump is None:
        pytest.fail("pg_dump not found beside the test server")
    key = facedb.new_key()
    with fresh_database(server) as url:
        with FaceDB(url=url, key=key, cache_dir=tmp_path / "cache") as db:
            fill(db, faces_dir)
            values = plaintexts(db)
            assert names(db, faces_dir / "probes/obama1.jpg") == ["obama"]
        dump = subprocess.run(
            [str(pg_dump), "--data-only", url.replace("postgresql+psycopg://", "postgresql://")],
            capture_output=True,
            timeout=120,
        )
        assert dump.returncode == 0, dump.stderr[-500:]
        # COPY writes bytea as hex: look for the values both ways.
        text_dump = dump.stdout
        hex_values = [v.hex().encode() for v in values]
        assert b"\\\\x" in text_dump or b"\\x" in text_dump  # bytea is there, sealed
        assert leaked([text_dump], values) == 0 and leaked([text_dump], hex_values) == 0
        assert leaked(tmp_path / "cache", values) == 0
        with pytest.raises(facedb.EncryptionKeyError):
            FaceDB(url=url, cache_dir=tmp_path / "cache")


def test_the_cli_opens_rekeys_and_refuses_by_key_file(tmp_path: Path) -> None:
    made = run_cli("new-key")
    assert made.returncode == 0
    key_file = tmp_path / "key"
    key_file.write_text(made.stdout)
    assert Cipher(read_key_file(key_file))
    folder = tmp_path / "g"
    with FaceDB(folder) as db:
        db.import_embeddings(["a"], unit_rows(2, 1))
    done = run_cli("--db", str(folder), "rekey", "--new-key-file", str(key_file))
    assert done.returncode == 0 and "encrypted with the new key" in done.stdout, done.stderr
    refused = run_cli("--db", str(folder), "people")
    assert refused.returncode == 6 and "is encrypted" in refused.stderr
    assert "Traceback" not in refused.stderr and len(refused.stderr.strip().splitlines()) == 1
    listed = run_cli("--db", str(folder), "--key-file", str(key_file), "people")
    assert listed.returncode == 0 and "a" in listed.stdout
    plain = run_cli("--db", str(folder), "--key-file", str(key_file), "rekey", "--to-plaintext")
    assert plain.returncode == 0 and "decrypted" in plain.stdout
    assert run_cli("--db", str(folder), "people").returncode == 0


def test_a_copy_is_sealed_with_the_destinations_key(tmp_path: Path, faces_dir: Path) -> None:
    from facedb.transfer import copy_gallery

    src_key, dst_key = facedb.new_key(), facedb.new_key()
    with FaceDB(tmp_path / "src", key=src_key) as src, FaceDB(tmp_path / "dst", key=dst_key) as dst:
        fill(src, faces_dir)
        values = plaintexts(src)
        report = copy_gallery(src, dst)
        assert report.identical, report.problems
        assert names(dst, faces_dir / "probes/obama1.jpg") == ["obama"]
        assert sorted(plaintexts(dst)) == sorted(values)
    assert leaked(tmp_path / "dst", values) == 0
    with pytest.raises(facedb.EncryptionKeyError):
        FaceDB(tmp_path / "dst", key=src_key)

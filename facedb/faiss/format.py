"""The index's files: segment files, the manifest that commits them, and their erasure.

Files (all in the store's folder; nothing else there is touched)
    ``index.json``
        the manifest: format version, dimension, model id, the caller's generation, and
        for each segment its file, row count and SHA-256; the manifest's own SHA-256 (over
        its canonical JSON without that field) is stored in it.
    ``seg-NNNNNNNNNN.fseg``
        a sealed segment of up to ``segment_size`` templates: a 128-byte header (magic,
        version, dimension, row count, generation it was written at, SHA-256 of the model
        id, SHA-256 of the payload) then ids int64[n], vectors float32[n, dim] and sign codes
        uint8[n, ceil(dim / 8)], little-endian. Segment files are never modified in place:
        a changed segment is written under a new name and the manifest switched to it.

    With a gallery key (facedb.encryption) the payload of every segment (ids, vectors and
    codes) is sealed with AES-256-GCM (its SHA-256 is then over the sealed bytes) and the
    manifest names the key's id: such segments are read into memory and decrypted, not
    memory-mapped, and an index sealed with another key, or none, is foreign.

    Every file is written to a temporary name, fsynced, renamed into place, and the folder
    fsynced; the manifest is written last, so it is the commit point and a crash leaves
    either the old or the new index. Opening verifies every checksum (SHA-256 over every
    byte) and reads nothing it cannot verify; no pickle anywhere. A missing, corrupt,
    foreign (other dimension, model or format) or stale (other generation) index raises
    :class:`~facedb.errors.IndexUnavailable` with its ``reason`` so that the gallery can
    catch up or rebuild. Segments are memory-mapped read-only (private mappings).

Erasure
    Templates are biometric data. A save writes the affected segments anew, commits the
    manifest, overwrites the removed rows (id, vector and sign code) with zeros in the
    replaced files, fsyncs and deletes them, and deletes any other file of the index format
    that the manifest does not name (left by a crash or by an index this one replaced).
    After ``remove()`` then ``save()`` no byte of a removed template or of its sign code is
    in any file of the folder. Removing one template at 1M templates rewrites one segment
    (32 MB at the default 16384 x 512-d), not the whole index. A crash between the
    manifest's commit and the deletions leaves the replaced files behind until the next
    save, which deletes them. Another process that still has the old index open reads zeros
    in place of the removed rows.
"""

from __future__ import annotations

import hashlib
import json
import mmap
import os
import re
import struct
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Final

import numpy as np

from facedb.encryption import OVERHEAD, Cipher
from facedb.errors import GalleryError, IndexUnavailable
from facedb.faiss.segments import F32, I64, U8, Segment, Segments

__all__ = ["MANIFEST_NAME", "SegmentFiles", "fsync_dir", "write_file"]

MANIFEST_NAME: Final = "index.json"
_FORMAT: Final = "facedb-vector-index"
_VERSION: Final = 1
_SEGMENT_RE: Final = re.compile(r"^seg-(\d{10})\.fseg$")
_TMP_PREFIX: Final = ".tmp-"
_MAGIC: Final = b"FDBVSEG1"
_SEALED_MAGIC: Final = b"FDBVSEGK"
_PURPOSE: Final = b"segment"
_HEADER: Final = struct.Struct("<8sIIIIQQ32s32s")
_HEADER_SIZE: Final = 128

Loaded = tuple[mmap.mmap | None, I64, F32, U8]
"""One verified segment file: its mapping (None if read into memory), ids, vectors, codes."""


def fsync_dir(folder: Path) -> None:
    """Make the folder's entries (creations, renames, deletions) durable."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_file(path: Path, parts: list[bytes | memoryview]) -> None:
    """Write ``parts`` to a temporary file beside ``path``, fsync it and rename it into place.

    The caller fsyncs the folder. The temporary file is removed if anything fails.
    """
    tmp = path.with_name(_TMP_PREFIX + path.name)
    try:
        with open(tmp, "wb") as f:
            for part in parts:
                f.write(part)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _manifest_checksum(body: dict[str, Any]) -> str:
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(canonical.encode("ascii")).hexdigest()


class SegmentFiles:
    """The index format in one folder, for templates of one dimension and model: reads and
    verifies a saved index, saves :class:`~facedb.faiss.segments.Segments` and erases what
    the new manifest no longer names.

    Args:
        folder: where the index files live (created by :meth:`save` if missing).
        dim: template dimension.
        model: the model id string the files are stamped with.
        cipher: the gallery key's cipher: segments are sealed with it (None: plaintext).
    """

    def __init__(self, folder: Path, dim: int, model: str, cipher: Cipher | None = None) -> None:
        self.folder = folder
        self._dim = dim
        self._model = model
        self._cipher = cipher
        self._key_id = None if cipher is None else cipher.key_id
        self._code_bytes = (dim + 7) // 8
        self._serial = 0  # the highest segment file number seen; new files take the next

    # ----------------------------------------------------------------- reading

    def load(self, segments: Segments, generation: int, allow_stale: bool) -> int:
        """Load the saved index into the empty ``segments``; return its generation.

        Raises:
            IndexUnavailable: missing, corrupt, foreign, or stale (unless ``allow_stale``);
                nothing of such an index is used.
        """
        folder = self.folder
        manifest = self._read_manifest()
        found: int = manifest["generation"]
        if found != generation and not allow_stale:
            raise IndexUnavailable(
                "stale",
                f"the vector index in {folder} is at generation {found}, the database at {generation}",
                found,
            )
        entries: list[dict[str, Any]] = manifest["segments"]
        model_digest = hashlib.sha256(self._model.encode()).digest()
        workers = max(1, min(len(entries), os.cpu_count() or 1, 4))
        loaded: list[Loaded] = []
        try:
            with ThreadPoolExecutor(workers) as pool:
                futures = [pool.submit(self._load_segment, entry, found, model_digest) for entry in entries]
                error: BaseException | None = None
                for future in futures:
                    try:
                        loaded.append(future.result())
                    except BaseException as e:
                        error = error or e
                if error is not None:
                    raise error
        except BaseException:
            for mapping, *_ in loaded:
                if mapping is not None:
                    try:
                        mapping.close()
                    except BufferError:
                        pass
            raise
        n = sum(len(ids) for _, ids, _, _ in loaded)
        if n != manifest["count"]:
            raise IndexUnavailable(
                "corrupt",
                f"the vector index in {folder}: segments hold {n} rows, the manifest says "
                f"{manifest['count']}",
                found,
            )
        segments.load(loaded, [e["file"] for e in entries], [e["sha256"] for e in entries])
        for entry in entries:
            m = _SEGMENT_RE.match(entry["file"])
            assert m is not None
            self._serial = max(self._serial, int(m.group(1)))
        return found

    def _read_manifest(self) -> dict[str, Any]:
        path = self.folder / MANIFEST_NAME
        where = f"the vector index in {self.folder}"
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            raise IndexUnavailable("missing", f"no vector index in {self.folder}") from None
        except OSError as e:
            raise IndexUnavailable("corrupt", f"{where}: cannot read {MANIFEST_NAME}: {e}") from e
        try:
            body = json.loads(raw.decode("ascii"))
        except (UnicodeDecodeError, json.JSONDecodeError):
            raise IndexUnavailable("corrupt", f"{where}: {MANIFEST_NAME} is not valid JSON") from None
        if not isinstance(body, dict) or not isinstance(body.get("checksum"), str):
            raise IndexUnavailable("corrupt", f"{where}: {MANIFEST_NAME} has no checksum")
        checksum = body.pop("checksum")
        if checksum != _manifest_checksum(body):
            raise IndexUnavailable("corrupt", f"{where}: {MANIFEST_NAME} fails its checksum")
        if body.get("format") != _FORMAT or body.get("version") != _VERSION:
            raise IndexUnavailable(
                "foreign",
                f"{where} has format {body.get('format')!r} version {body.get('version')!r}, "
                f"expected {_FORMAT!r} version {_VERSION}",
            )
        found = body.get("generation")
        found_gen = found if isinstance(found, int) else None
        if body.get("dim") != self._dim or body.get("model") != self._model:
            raise IndexUnavailable(
                "foreign",
                f"{where} holds {body.get('dim')}-d templates of model {body.get('model')!r}, "
                f"expected {self._dim}-d of {self._model!r}",
                found_gen,
            )
        if body.get("sealed") != self._key_id:
            state = "is not encrypted" if body.get("sealed") is None else "is encrypted with another key"
            raise IndexUnavailable(
                "foreign",
                f"{where} {state}" + ("" if self._key_id else ", and no key was given"),
                found_gen,
            )

        def valid_entry(e: object) -> bool:
            return (
                isinstance(e, dict)
                and isinstance(e.get("file"), str)
                and _SEGMENT_RE.match(e["file"]) is not None
                and isinstance(e.get("count"), int)
                and e["count"] > 0
                and isinstance(e.get("sha256"), str)
            )

        segments = body.get("segments")
        if (
            found_gen is None
            or found_gen < 0
            or body.get("code_bytes") != self._code_bytes
            or not isinstance(body.get("count"), int)
            or not isinstance(segments, list)
            or not all(valid_entry(e) for e in segments)
        ):
            raise IndexUnavailable("corrupt", f"{where}: {MANIFEST_NAME} is malformed", found_gen)
        return body

    def _load_segment(self, entry: dict[str, Any], generation: int, model_digest: bytes) -> Loaded:
        """Map one segment file read-only and verify it; raise IndexUnavailable if it fails."""
        name: str = entry["file"]
        count: int = entry["count"]
        path = self.folder / name

        def corrupt(what: str) -> IndexUnavailable:
            return IndexUnavailable(
                "corrupt", f"the vector index in {self.folder}: {name} {what}", generation
            )

        row_bytes = 8 + 4 * self._dim + self._code_bytes
        sealed = self._cipher is not None
        expected = _HEADER_SIZE + count * row_bytes + (OVERHEAD if sealed else 0)
        try:
            with open(path, "rb") as f:
                size = os.fstat(f.fileno()).st_size
                if size != expected:
                    raise corrupt(f"has {size} bytes, expected {expected} (truncated or extended)")
                header = f.read(_HEADER_SIZE)
                fields = _HEADER.unpack_from(header)
                magic, version, header_size, dim, code_bytes, n, seg_gen, seg_model, digest = fields
                if (
                    magic != (_SEALED_MAGIC if sealed else _MAGIC)
                    or version != _VERSION
                    or header_size != _HEADER_SIZE
                    or dim != self._dim
                    or code_bytes != self._code_bytes
                    or n != count
                    or seg_gen > generation
                    or seg_model != model_digest
                    or digest.hex() != entry["sha256"]
                ):
                    raise corrupt("has a header that does not match the manifest")
                mapping: mmap.mmap | None
                buffer: Any
                if sealed:  # decrypted into memory: ciphertext cannot be searched in place
                    mapping = None
                    f.seek(0)
                    buffer = f.read()
                elif hasattr(mmap, "MAP_PRIVATE"):
                    flags = mmap.MAP_PRIVATE | getattr(mmap, "MAP_POPULATE", 0)
                    mapping = mmap.mmap(f.fileno(), size, flags=flags, prot=mmap.PROT_READ)
                    buffer = mapping
                else:  # pragma: no cover - platforms without POSIX mmap flags
                    mapping = None
                    f.seek(0)
                    buffer = f.read()
        except FileNotFoundError:
            raise corrupt("is missing") from None
        except OSError as e:
            raise corrupt(f"cannot be read: {e}") from e
        with memoryview(buffer) as view:
            ok = hashlib.sha256(view[_HEADER_SIZE:]).digest() == digest
        if not ok:
            if mapping is not None:
                mapping.close()
            raise corrupt("fails its checksum")
        start = _HEADER_SIZE  # where the rows begin in `buffer`
        if self._cipher is not None:
            try:
                buffer, start = self._cipher.open(memoryview(buffer)[_HEADER_SIZE:], _PURPOSE), 0
            except GalleryError as e:
                raise corrupt(f"cannot be decrypted: {e}") from None
        vec_off = start + 8 * count
        code_off = vec_off + 4 * self._dim * count
        ids = np.frombuffer(buffer, dtype="<i8", count=count, offset=start)
        vecs = np.frombuffer(buffer, dtype="<f4", count=count * self._dim, offset=vec_off)
        codes = np.frombuffer(buffer, dtype=np.uint8, count=count * self._code_bytes, offset=code_off)
        return (
            mapping,
            ids.astype(np.int64),
            vecs.reshape(count, self._dim).astype(np.float32, copy=False),
            codes.reshape(count, self._code_bytes).copy(),
        )

    # ----------------------------------------------------------------- writing

    def commit(self, segments: Segments, generation: int) -> None:
        """Write the changed segments and commit the manifest; then :meth:`erase` what it
        replaced.

        Raises:
            OSError: the folder cannot be written; the previous index stays as it was.
        """
        folder = self.folder
        folder.mkdir(parents=True, exist_ok=True)
        existing = os.listdir(folder)
        for name in existing:
            match = _SEGMENT_RE.match(name)
            if match:
                self._serial = max(self._serial, int(match.group(1)))
        model_digest = hashlib.sha256(self._model.encode()).digest()
        written: list[tuple[Segment, str, str]] = []
        try:
            for seg, start in segments.with_starts():
                if seg.dirty or seg.file is None:
                    self._serial += 1
                    name = f"seg-{self._serial:010d}.fseg"
                    digest = self._write_segment(
                        folder / name, segments, seg, start, generation, model_digest
                    )
                    written.append((seg, name, digest))
            fsync_dir(folder)
            new_names = {id(seg): (name, digest) for seg, name, digest in written}
            entries = []
            for seg in segments.segments:
                name, digest = new_names.get(id(seg), (seg.file or "", seg.digest))
                entries.append({"file": name, "count": seg.n, "sha256": digest})
            body: dict[str, Any] = {
                "format": _FORMAT,
                "version": _VERSION,
                "dim": self._dim,
                "model": self._model,
                "generation": generation,
                "code_bytes": self._code_bytes,
                "count": segments.n,
                "segments": entries,
            }
            if self._key_id is not None:
                body["sealed"] = self._key_id
            body["checksum"] = _manifest_checksum(body)
            write_file(folder / MANIFEST_NAME, [json.dumps(body, indent=1).encode("ascii")])
            fsync_dir(folder)
        except BaseException:
            for _, name, _ in written:
                (folder / name).unlink(missing_ok=True)
            raise
        # Committed. Bookkeeping, then erase what the new manifest no longer names.
        for seg, name, digest in written:
            if seg.file is not None:
                segments.obsolete.append(seg.obsolete())
            seg.file, seg.digest, seg.disk_count = name, digest, seg.n
            seg.disk_rows, seg.scrub, seg.dirty = None, None, False

    def erase(self, segments: Segments, wipe: bool = False) -> None:
        """After a :meth:`commit`: zero the removed rows of the files it replaced and delete
        them, with every other file of the format that the manifest does not name (``wipe``:
        zero those whole before deleting them, after a rekey, when every such file holds
        templates under the old key or none; not otherwise: another process may still be
        reading a file of a replaced index through its mapping).

        Raises:
            OSError: a file could not be deleted (the next save deletes what is left).
        """
        folder = self.folder
        obsolete, segments.obsolete = segments.obsolete, []
        for name, count, rows in obsolete:
            self._scrub(folder / name, count, rows)
        referenced = {seg.file for seg in segments.segments}
        for name in os.listdir(folder):
            if name.startswith(_TMP_PREFIX) or (_SEGMENT_RE.match(name) and name not in referenced):
                if wipe:
                    _zero_fill(folder / name)
                (folder / name).unlink(missing_ok=True)
        fsync_dir(folder)

    def _write_segment(
        self, path: Path, segments: Segments, seg: Segment, start: int, generation: int, model_digest: bytes
    ) -> str:
        n = seg.n
        ids = np.ascontiguousarray(segments.ids[start : start + n], dtype="<i8")
        vecs = np.ascontiguousarray(seg.view(), dtype="<f4")
        codes = np.ascontiguousarray(segments.codes[start : start + n])
        payload: list[bytes | memoryview] = [ids.data.cast("B"), vecs.data.cast("B"), codes.data.cast("B")]
        if self._cipher is not None:
            payload = [self._cipher.seal(b"".join(payload), _PURPOSE)]
        h = hashlib.sha256()
        for part in payload:
            h.update(part)
        digest = h.digest()
        header = _HEADER.pack(
            _SEALED_MAGIC if self._cipher is not None else _MAGIC,
            _VERSION,
            _HEADER_SIZE,
            self._dim,
            self._code_bytes,
            n,
            generation,
            model_digest,
            digest,
        ).ljust(_HEADER_SIZE, b"\0")
        write_file(path, [header, *payload])
        return digest.hex()

    def _scrub(self, path: Path, count: int, rows: list[int]) -> None:
        """Zero the given rows (id, vector, code) of a segment file, fsync it, delete it.

        The file is no longer named by the manifest; zeroing first keeps removed templates
        out of the disk blocks the deletion frees (on filesystems that write in place). The
        zeroing is best effort; the deletion is not (its failure is an error of save).
        """
        if rows and self._cipher is None:  # sealed rows are ciphertext: deleting is enough
            vec_bytes, code_bytes = 4 * self._dim, self._code_bytes
            vec_off = _HEADER_SIZE + 8 * count
            code_off = vec_off + vec_bytes * count
            try:
                with open(path, "r+b") as f:
                    for r in rows:
                        for offset, size in (
                            (_HEADER_SIZE + 8 * r, 8),
                            (vec_off + vec_bytes * r, vec_bytes),
                            (code_off + code_bytes * r, code_bytes),
                        ):
                            f.seek(offset)
                            f.write(b"\0" * size)
                    f.flush()
                    os.fsync(f.fileno())
            except OSError:
                pass
        path.unlink(missing_ok=True)


def _zero_fill(path: Path) -> None:
    """Overwrite a file with zeros and fsync it (best effort: the caller deletes it)."""
    try:
        with open(path, "r+b") as f:
            size = os.fstat(f.fileno()).st_size
            block = bytes(1 << 20)
            for start in range(0, size, len(block)):
                f.write(block[: min(len(block), size - start)])
            f.flush()
            os.fsync(f.fileno())
    except OSError:
        pass

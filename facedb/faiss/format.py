"""The index's files: segment files, the manifest that commits them, and their erasure.

Files (all in the store's folder; nothing else there is touched)
    ``index.json``
        the manifest: format version, dimension, model id, the caller's generation, the
        templates' precision, and for each segment its file, row count and the SHA-256 of its
        rows' ids, checksums and codes (``sha256``) and of its templates
        (``vectors_sha256``); the manifest's own SHA-256 (over its canonical JSON without that
        field) is stored in it.
    ``seg-NNNNNNNNNN.fseg``
        a segment of up to ``segment_size`` templates (format version 2): a 256-byte header
        (magic, version, dimension, code size, row count, generation it was written at,
        SHA-256 of the model id, of the rows' head and of the templates, bytes per value,
        where the templates start), then the head: ids int64[n], row checksums uint32[n]
        (:func:`~facedb.faiss.segments.row_sums`) and sign codes uint8[n, ceil(dim / 8)];
        zeros up to the next 4096-byte boundary; then the templates float32 or float16
        [n, dim], little-endian. The templates are page-aligned so that they are
        memory-mapped where they lie. Segment files are never modified in place: a changed
        segment is written under a new name and the manifest switched to it.

    Format version 1 (facedb before the memory-mapped layout: a 128-byte header, then ids,
    float32 templates and codes, one SHA-256 over all of them) is still read, verified whole;
    the next save rewrites it in version 2 (:attr:`SegmentFiles.outdated`).

    With a gallery key (facedb.encryption) everything after the header (head, padding and
    templates) is sealed with AES-256-GCM (``sha256`` is then over the sealed bytes) and the
    manifest names the key's id: such segments are read into memory and decrypted, never
    memory-mapped (ciphertext cannot be searched in place), so a sealed index keeps its cost:
    every byte read on opening, and the templates in each process's own memory. An index
    sealed with another key, or none, is foreign.

    Every file is written to a temporary name, fsynced, renamed into place, and the folder
    fsynced; the manifest is written last, so it is the commit point and a crash leaves
    either the old or the new index. No pickle anywhere. A missing, corrupt, foreign (other
    dimension, model, precision or format) or stale (other generation) index raises
    :class:`~facedb.errors.IndexUnavailable` with its ``reason`` so that the gallery can
    catch up or rebuild.

Opening reads the manifest and each segment's head (ids, checksums, codes: 76 bytes a 512-d
template), verified against its SHA-256; the templates are memory-mapped read-only (private
mappings, random access advised), not read. When the store will search exactly (every
template read by each query anyway) they are hashed at once; otherwise a search checks each
row it reads against its row checksum, and a segment is hashed whole before it is read whole,
changed or rewritten (:mod:`facedb.faiss.segments`). A damaged template is therefore never
scored: it raises IndexUnavailable (``"corrupt"``) when first read.

Erasure
    Templates are biometric data. A save writes the affected segments anew, commits the
    manifest, overwrites the removed rows (id, row checksum, sign code and template) with
    zeros in the replaced files, fsyncs and deletes them, and deletes any other file of the
    index format that the manifest does not name (left by a crash or by an index this one
    replaced). After ``remove()`` then ``save()`` no byte of a removed template or of its
    sign code is in any file of the folder. The sign codes are the templates' own signs (no
    rotation or trained model is stored), so there is no other file to erase. Removing one
    template at 1M templates rewrites one segment (33 MB at the default 16384 x 512-d
    float32), not the whole index. A crash between the manifest's commit and the deletions
    leaves the replaced files behind until the next save, which deletes them. Another
    process that still has the old index open reads zeros in place of the removed rows; they
    fail their row checksums, so it never scores them: it removes them too when it catches
    up with the change log, which checks only the rows it keeps (facedb.faiss.sync).
"""

from __future__ import annotations

import hashlib
import json
import mmap
import os
import re
import struct
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Final

import numpy as np

from facedb.encryption import OVERHEAD, Cipher
from facedb.errors import GalleryError, IndexUnavailable
from facedb.faiss.segments import I64, PRECISIONS, U8, Precision, Segment, Segments, row_sums

__all__ = ["MANIFEST_NAME", "SegmentFiles", "fsync_dir", "wipe_folder", "write_file"]

MANIFEST_NAME: Final = "index.json"
_FORMAT: Final = "facedb-vector-index"
_VERSION: Final = 2
_V1: Final = 1  # read, verified whole, rewritten as version 2 by the next save
_SEGMENT_RE: Final = re.compile(r"^seg-(\d{10})\.fseg$")
_TMP_PREFIX: Final = ".tmp-"
_MAGIC_V1: Final = b"FDBVSEG1"
_SEALED_MAGIC_V1: Final = b"FDBVSEGK"
_MAGIC: Final = b"FDBVSEG2"
_SEALED_MAGIC: Final = b"FDBVSEGL"
_PURPOSE: Final = b"segment"
_HEADER_V1: Final = struct.Struct("<8sIIIIQQ32s32s")
_HEADER_SIZE_V1: Final = 128
# magic, version, header size, dim, code bytes, n, generation, model digest, head digest,
# templates digest, bytes per value, reserved, offset of the templates
_HEADER: Final = struct.Struct("<8sIIIIQQ32s32s32sIIQ")
_HEADER_SIZE: Final = 256
_PAGE: Final = 4096

Loaded = tuple[Segment, I64, U8]
"""One opened segment file: the segment (templates mapped or in memory), its ids and codes."""


def _layout(n: int, dim: int, code_bytes: int, itemsize: int) -> tuple[int, int, int, int, int]:
    """Offsets in a version-2 file: (sums, codes, end of the head, templates, end of file),
    the ids starting right after the header."""
    sums = _HEADER_SIZE + 8 * n
    codes = sums + 4 * n
    head_end = codes + code_bytes * n
    vectors = -(-head_end // _PAGE) * _PAGE
    return sums, codes, head_end, vectors, vectors + itemsize * dim * n


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
        precision: how the templates are stored (``"float32"`` or ``"float16"``); an index
            saved with the other one is foreign.
    """

    def __init__(
        self,
        folder: Path,
        dim: int,
        model: str,
        cipher: Cipher | None = None,
        precision: Precision = "float32",
    ) -> None:
        self.folder = folder
        self._dim = dim
        self._model = model
        self._cipher = cipher
        self._key_id = None if cipher is None else cipher.key_id
        self._code_bytes = (dim + 7) // 8
        self._precision: Precision = precision
        self._itemsize = np.dtype(PRECISIONS[precision]).itemsize
        self._serial = 0  # the highest segment file number seen; new files take the next
        #: The index last loaded is in format version 1: the next save rewrites every segment.
        self.outdated = False

    # ----------------------------------------------------------------- reading

    def load(
        self, segments: Segments, generation: int, allow_stale: bool, verify: Callable[[int], bool]
    ) -> int:
        """Load the saved index into the empty ``segments``; return its generation.

        ``verify(count)`` says whether the templates of an index of ``count`` rows are hashed
        now (the store will search it exactly) or row by row as they are read.

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
        version: int = manifest["version"]
        hash_now = version == _V1 or verify(manifest["count"])
        model_digest = hashlib.sha256(self._model.encode()).digest()
        workers = max(1, min(len(entries), os.cpu_count() or 1, 4))
        loaded: list[Loaded] = []
        try:
            with ThreadPoolExecutor(workers) as pool:
                futures = [
                    pool.submit(self._load_segment, entry, version, found, model_digest, hash_now)
                    for entry in entries
                ]
                error: BaseException | None = None
                for future in futures:
                    try:
                        loaded.append(future.result())
                    except BaseException as e:
                        error = error or e
                if error is not None:
                    raise error
        except BaseException:
            for seg, _, _ in loaded:
                seg.replace_buffer(np.zeros((0, self._dim), dtype=segments.dtype))
            raise
        n = sum(len(ids) for _, ids, _ in loaded)
        if n != manifest["count"]:
            for seg, _, _ in loaded:
                seg.replace_buffer(np.zeros((0, self._dim), dtype=segments.dtype))
            raise IndexUnavailable(
                "corrupt",
                f"the vector index in {folder}: segments hold {n} rows, the manifest says "
                f"{manifest['count']}",
                found,
            )
        segments.load([s for s, _, _ in loaded], [i for _, i, _ in loaded], [c for _, _, c in loaded])
        for entry in entries:
            m = _SEGMENT_RE.match(entry["file"])
            assert m is not None
            self._serial = max(self._serial, int(m.group(1)))
        self.outdated = version == _V1
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
        version = body.get("version")
        if body.get("format") != _FORMAT or version not in (_V1, _VERSION):
            raise IndexUnavailable(
                "foreign",
                f"{where} has format {body.get('format')!r} version {version!r}, "
                f"expected {_FORMAT!r} version {_V1} or {_VERSION}",
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
        precision = body.get("precision", "float32") if version == _VERSION else "float32"
        if precision != self._precision:
            raise IndexUnavailable(
                "foreign", f"{where} holds {precision} templates, expected {self._precision}", found_gen
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
                and (version == _V1 or isinstance(e.get("vectors_sha256"), str))
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

    def _load_segment(
        self, entry: dict[str, Any], version: int, generation: int, model_digest: bytes, hash_now: bool
    ) -> Loaded:
        """Open one segment file and verify it; raise IndexUnavailable if it fails."""
        if version == _V1:
            return self._load_segment_v1(entry, generation, model_digest)
        name: str = entry["file"]
        count: int = entry["count"]
        path = self.folder / name

        def corrupt(what: str) -> IndexUnavailable:
            return IndexUnavailable(
                "corrupt", f"the vector index in {self.folder}: {name} {what}", generation
            )

        dim, cb, itemsize = self._dim, self._code_bytes, self._itemsize
        sums_off, codes_off, head_end, vec_off, end = _layout(count, dim, cb, itemsize)
        sealed = self._cipher is not None
        expected = _HEADER_SIZE + (end - _HEADER_SIZE + OVERHEAD if sealed else end - _HEADER_SIZE)
        mapping: mmap.mmap | None = None
        try:
            with open(path, "rb") as f:
                size = os.fstat(f.fileno()).st_size
                if size != expected:
                    raise corrupt(f"has {size} bytes, expected {expected} (truncated or extended)")
                fields = _HEADER.unpack_from(f.read(_HEADER_SIZE))
                magic, version_, header_size, dim_, cb_, n, seg_gen, seg_model, head_digest = fields[:9]
                vec_digest, itemsize_, _, vec_off_ = fields[9:]
                if (
                    magic != (_SEALED_MAGIC if sealed else _MAGIC)
                    or version_ != _VERSION
                    or header_size != _HEADER_SIZE
                    or dim_ != dim
                    or cb_ != cb
                    or n != count
                    or seg_gen > generation
                    or seg_model != model_digest
                    or head_digest.hex() != entry["sha256"]
                    or itemsize_ != itemsize
                    or vec_off_ != vec_off
                    or (not sealed and vec_digest.hex() != entry["vectors_sha256"])
                ):
                    raise corrupt("has a header that does not match the manifest")
                if sealed:
                    rest = f.read()
                else:
                    rest = f.read(head_end - _HEADER_SIZE)  # the head only: ids, sums, codes
                if hashlib.sha256(rest).digest() != head_digest:
                    raise corrupt("fails its checksum")
                if not sealed:
                    mapping = mmap.mmap(f.fileno(), size, flags=mmap.MAP_PRIVATE, prot=mmap.PROT_READ)
        except FileNotFoundError:
            raise corrupt("is missing") from None
        except OSError as e:
            raise corrupt(f"cannot be read: {e}") from e
        dtype = f"<f{itemsize}"
        seg = Segment(
            np.zeros((0, dim), dtype=dtype),
            count,
            file=name,
            digest=entry["sha256"],
            vectors_digest=entry["vectors_sha256"],
            disk_count=count,
            dirty=False,
            folder=str(self.folder),
        )
        if sealed:  # decrypted into memory: ciphertext cannot be searched in place
            try:
                plain = self._cipher.open(memoryview(rest), _PURPOSE)  # type: ignore[union-attr]
            except GalleryError as e:
                raise corrupt(f"cannot be decrypted: {e}") from None
            base = _HEADER_SIZE
            head: Any = plain
            vecs = np.frombuffer(plain, dtype=dtype, count=count * dim, offset=vec_off - base)
        else:
            assert mapping is not None
            base = _HEADER_SIZE
            head = rest
            if hash_now:
                with memoryview(mapping) as view:
                    ok = hashlib.sha256(view[vec_off:end]).digest() == vec_digest
                if not ok:
                    mapping.close()
                    raise corrupt("fails its checksum")
            vecs = np.frombuffer(mapping, dtype=dtype, count=count * dim, offset=vec_off)
            seg.mapping = mapping
            seg.fd, seg.vectors_offset = _open_for_rows(path), vec_off
            if not hash_now:
                if hasattr(mmap, "MADV_RANDOM"):  # read a row's pages, not its neighbours'
                    mapping.madvise(mmap.MADV_RANDOM)
                seg.unverified = vec_digest
                seg.sums = np.frombuffer(head, dtype="<u4", count=count, offset=sums_off - base).astype(
                    np.uint32
                )
        seg.vectors = vecs.reshape(count, dim)
        ids = np.frombuffer(head, dtype="<i8", count=count, offset=0).astype(np.int64)
        codes = np.frombuffer(head, dtype=np.uint8, count=count * cb, offset=codes_off - base)
        return seg, ids, codes.reshape(count, cb)  # copied once, by Segments.load

    def _load_segment_v1(self, entry: dict[str, Any], generation: int, model_digest: bytes) -> Loaded:
        """Read a format-1 segment file and verify it whole (rewritten by the next save)."""
        name: str = entry["file"]
        count: int = entry["count"]
        path = self.folder / name

        def corrupt(what: str) -> IndexUnavailable:
            return IndexUnavailable(
                "corrupt", f"the vector index in {self.folder}: {name} {what}", generation
            )

        row_bytes = 8 + 4 * self._dim + self._code_bytes
        sealed = self._cipher is not None
        expected = _HEADER_SIZE_V1 + count * row_bytes + (OVERHEAD if sealed else 0)
        try:
            with open(path, "rb") as f:
                size = os.fstat(f.fileno()).st_size
                if size != expected:
                    raise corrupt(f"has {size} bytes, expected {expected} (truncated or extended)")
                buffer = f.read()
        except FileNotFoundError:
            raise corrupt("is missing") from None
        except OSError as e:
            raise corrupt(f"cannot be read: {e}") from e
        magic, version, header_size, dim, code_bytes, n, seg_gen, seg_model, digest = _HEADER_V1.unpack_from(
            buffer
        )
        if (
            magic != (_SEALED_MAGIC_V1 if sealed else _MAGIC_V1)
            or version != _V1
            or header_size != _HEADER_SIZE_V1
            or dim != self._dim
            or code_bytes != self._code_bytes
            or n != count
            or seg_gen > generation
            or seg_model != model_digest
            or digest.hex() != entry["sha256"]
        ):
            raise corrupt("has a header that does not match the manifest")
        payload: Any = memoryview(buffer)[_HEADER_SIZE_V1:]
        if hashlib.sha256(payload).digest() != digest:
            raise corrupt("fails its checksum")
        if self._cipher is not None:
            try:
                payload = self._cipher.open(payload, _PURPOSE)
            except GalleryError as e:
                raise corrupt(f"cannot be decrypted: {e}") from None
        vec_off = 8 * count
        code_off = vec_off + 4 * self._dim * count
        ids = np.frombuffer(payload, dtype="<i8", count=count).astype(np.int64)
        vecs = np.frombuffer(payload, dtype="<f4", count=count * self._dim, offset=vec_off)
        codes = np.frombuffer(payload, dtype=np.uint8, count=count * self._code_bytes, offset=code_off)
        seg = Segment(
            vecs.reshape(count, self._dim),
            count,
            file=name,
            digest=entry["sha256"],
            disk_count=count,
            dirty=True,
            folder=str(self.folder),
        )
        return seg, ids, codes.reshape(count, self._code_bytes)  # copied by Segments.load

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
        written: list[tuple[Segment, str, str, str]] = []
        try:
            for seg, start in segments.with_starts():
                if seg.dirty or seg.file is None:
                    self._serial += 1
                    name = f"seg-{self._serial:010d}.fseg"
                    digest, vec_digest = self._write_segment(
                        folder / name, segments, seg, start, generation, model_digest
                    )
                    written.append((seg, name, digest, vec_digest))
            fsync_dir(folder)
            new_names = {id(seg): (name, digest, vec) for seg, name, digest, vec in written}
            entries = []
            for seg in segments.segments:
                name, digest, vec = new_names.get(id(seg), (seg.file or "", seg.digest, seg.vectors_digest))
                entries.append({"file": name, "count": seg.n, "sha256": digest, "vectors_sha256": vec})
            body: dict[str, Any] = {
                "format": _FORMAT,
                "version": _VERSION,
                "dim": self._dim,
                "model": self._model,
                "precision": self._precision,
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
            for _, name, _, _ in written:
                (folder / name).unlink(missing_ok=True)
            raise
        # Committed. Bookkeeping, then erase what the new manifest no longer names.
        self.outdated = False
        for seg, name, digest, vec_digest in written:
            if seg.file is not None:
                segments.obsolete.append(seg.obsolete())
            seg.file, seg.digest, seg.vectors_digest, seg.disk_count = name, digest, vec_digest, seg.n
            seg.disk_rows, seg.scrub, seg.dirty = None, None, False
            seg.folder = str(folder)
            if self._cipher is None:
                self._map_written(seg)

    def _map_written(self, seg: Segment) -> None:
        """Serve a segment just written from its file: its templates become shared file
        pages instead of this process's memory (an import of a million templates does not
        keep 2 GB of copies). Best effort: if the file cannot be mapped, the copy stays."""
        assert seg.file is not None
        _, _, _, vec_off, end = _layout(seg.n, self._dim, self._code_bytes, self._itemsize)
        try:
            with open(self.folder / seg.file, "rb") as f:
                mapping = mmap.mmap(f.fileno(), end, flags=mmap.MAP_PRIVATE, prot=mmap.PROT_READ)
        except (OSError, ValueError):
            return
        if hasattr(mmap, "MADV_RANDOM"):
            mapping.madvise(mmap.MADV_RANDOM)
        vecs = np.frombuffer(mapping, dtype=f"<f{self._itemsize}", count=seg.n * self._dim, offset=vec_off)
        seg.replace_buffer(vecs.reshape(seg.n, self._dim))
        seg.mapping = mapping
        seg.fd, seg.vectors_offset = _open_for_rows(self.folder / seg.file), vec_off

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
    ) -> tuple[str, str]:
        """Write one segment file (format version 2); return the hex SHA-256 of its head (of
        everything after the header when sealed) and of its templates ("" when sealed)."""
        seg.verify()  # a damaged template is never copied into a new file
        n, dim, cb = seg.n, self._dim, self._code_bytes
        ids = np.ascontiguousarray(segments.ids[start : start + n], dtype="<i8")
        vecs = np.ascontiguousarray(seg.view(), dtype=f"<f{self._itemsize}")
        codes = np.ascontiguousarray(segments.codes[start : start + n])
        sums = row_sums(vecs).astype("<u4")
        _, _, head_end, vec_off, _ = _layout(n, dim, cb, self._itemsize)
        head: list[bytes | memoryview] = [ids.data.cast("B"), sums.data.cast("B"), codes.data.cast("B")]
        pad = bytes(vec_off - head_end)
        vec_view = vecs.data.cast("B")
        body: list[bytes | memoryview] = [*head, pad, vec_view]
        if self._cipher is not None:
            sealed = self._cipher.seal(b"".join(body), _PURPOSE)
            head_digest, vec_digest, body = hashlib.sha256(sealed).digest(), bytes(32), [sealed]
        else:
            h = hashlib.sha256()
            for part in head:
                h.update(part)
            head_digest, vec_digest = h.digest(), hashlib.sha256(vec_view).digest()
        header = _HEADER.pack(
            _SEALED_MAGIC if self._cipher is not None else _MAGIC,
            _VERSION,
            _HEADER_SIZE,
            dim,
            cb,
            n,
            generation,
            model_digest,
            head_digest,
            vec_digest,
            self._itemsize,
            0,
            vec_off,
        ).ljust(_HEADER_SIZE, b"\0")
        write_file(path, [header, *body])
        return head_digest.hex(), ("" if self._cipher is not None else vec_digest.hex())

    def _row_spans(self, header: bytes, count: int, row: int) -> list[tuple[int, int]]:
        """Where row ``row`` of a plaintext segment file of ``count`` rows lies, as (offset,
        size) pairs, from its header's magic (format 1 or 2); [] for an unknown header."""
        dim, cb = self._dim, self._code_bytes
        if header[:8] == _MAGIC_V1:
            vec_off = _HEADER_SIZE_V1 + 8 * count
            code_off = vec_off + 4 * dim * count
            return [
                (_HEADER_SIZE_V1 + 8 * row, 8),
                (vec_off + 4 * dim * row, 4 * dim),
                (code_off + cb * row, cb),
            ]
        if header[:8] == _MAGIC and len(header) >= _HEADER.size:
            itemsize = _HEADER.unpack_from(header)[10]
            sums_off, codes_off, _, vec_off, _ = _layout(count, dim, cb, itemsize)
            return [
                (_HEADER_SIZE + 8 * row, 8),
                (sums_off + 4 * row, 4),
                (codes_off + cb * row, cb),
                (vec_off + itemsize * dim * row, itemsize * dim),
            ]
        return []

    def _scrub(self, path: Path, count: int, rows: list[int]) -> None:
        """Zero the given rows (id, checksum, code, template) of a segment file, fsync it,
        delete it.

        The file is no longer named by the manifest; zeroing first keeps removed templates
        out of the disk blocks the deletion frees (on filesystems that write in place). The
        zeroing is best effort; the deletion is not (its failure is an error of save).
        """
        if rows and self._cipher is None:  # sealed rows are ciphertext: deleting is enough
            try:
                with open(path, "r+b") as f:
                    header = f.read(_HEADER_SIZE)
                    spans = [span for r in rows for span in self._row_spans(header, count, r)]
                    if not spans:  # not a file of ours as we know it: zero it whole
                        f.seek(0)
                        size = os.fstat(f.fileno()).st_size
                        spans = [(0, size)]
                    for offset, size in spans:
                        f.seek(offset)
                        f.write(b"\0" * size)
                    f.flush()
                    os.fsync(f.fileno())
            except OSError:
                pass
        path.unlink(missing_ok=True)


def _open_for_rows(path: Path) -> int | None:
    """A read-only descriptor for reading rows of a segment file (None if it cannot be
    opened: rows are then read through the mapping)."""
    try:
        return os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
    except OSError:
        return None


def wipe_folder(folder: str | os.PathLike[str]) -> None:
    """Zeroes every index file in ``folder`` whole, then deletes it (the lock file stays):
    an index of another model (``reembed``) leaves no template bytes behind, and the index
    is rebuilt at the next open."""
    path = Path(folder)
    if not path.is_dir():
        return
    for file in sorted(path.iterdir()):
        if file.name == ".lock" or not file.is_file() or file.is_symlink():
            continue
        _zero_fill(file)
        file.unlink()


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

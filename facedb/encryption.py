"""Encryption at rest: a gallery opened with a key keeps its templates and thumbnails sealed.

A key is 32 random bytes, written as base64 (``facedb new-key`` prints one; so does
:func:`new_key`). A gallery opened with one (``FaceDB(path, key=...)``, ``--key-file``, or
the environment: ``FACEDB_KEY_FILE``, a file holding the key, else ``FACEDB_KEY``, the key
itself) stores every template (faces, groups, visits, rejections) and every thumbnail sealed
with AES-256-GCM, in SQL (SQLite or PostgreSQL) and in the FAISS index's segment files. The
gallery records which key it was sealed with (a key id derived from the key, never the key),
so opening it without its key or with another one is a clear
:class:`~facedb.errors.EncryptionKeyError`, never garbage.

Sealed value: ``0x01 | nonce (12 random bytes) | ciphertext | tag (16 bytes)``, with what the
value is (``template``, ``thumbnail``, ``segment``) as associated data, so a sealed thumbnail
cannot pass for a template. Keys used: HKDF-SHA256 of the key, one for AES-256-GCM and one
for the key id. A random 96-bit nonce per value is safe for far more values than a gallery
holds (NIST SP 800-38D bounds one key at 2^32 of them).

What is not sealed: names, metadata, boxes, times and ids (a gallery must be searchable by
name); and the vectors in a Milvus collection, which Milvus must read to search them (use
the disk encryption of Milvus's storage there).
"""

from __future__ import annotations

import base64
import binascii
import os
import secrets
from pathlib import Path
from typing import TYPE_CHECKING, Final

from facedb.errors import ConfigError, EncryptionKeyError
from facedb.extras import load

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

__all__ = [
    "KEY_ENV",
    "KEY_FILE_ENV",
    "Cipher",
    "cipher_from",
    "key_from_environment",
    "new_key",
    "read_key_file",
]

#: The environment variable naming a file that holds the gallery key.
KEY_FILE_ENV: Final = "FACEDB_KEY_FILE"
#: The environment variable holding the gallery key itself (the file is preferred).
KEY_ENV: Final = "FACEDB_KEY"

_VERSION: Final = b"\x01"
_NONCE: Final = 12
_TAG: Final = 16
#: Bytes a sealed value has beyond its plaintext.
OVERHEAD: Final = 1 + _NONCE + _TAG
_KEY_BYTES: Final = 32
_HOW: Final = "a gallery key is 32 random bytes written in base64 (make one with `facedb new-key`)"


def new_key() -> str:
    """A new random gallery key, as the text a key file holds (base64, 44 characters).

    Keep it apart from the gallery (a secret store, a file readable only by the service's
    user): whoever has the gallery and the key has the templates; a gallery without its key
    cannot be read by anyone, facedb included.
    """
    return base64.urlsafe_b64encode(secrets.token_bytes(_KEY_BYTES)).decode("ascii")


def _decode(text: str, where: str) -> bytes:
    cleaned = "".join(text.split())
    padded = cleaned + "=" * (-len(cleaned) % 4)
    try:
        raw = base64.b64decode(padded.replace("-", "+").replace("_", "/"), validate=True)
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) != _KEY_BYTES:
        # Never the key itself in a message: it may be a secret pasted into the wrong place.
        raise ConfigError(f"{where} is not a gallery key ({len(cleaned)} characters): {_HOW}")
    return raw


def read_key_file(path: str | os.PathLike[str]) -> str:
    """The key held in a file (surrounding whitespace ignored).

    Raises:
        ConfigError: the file cannot be read or holds no key.
    """
    try:
        text = Path(path).read_text(encoding="ascii")
    except (OSError, UnicodeDecodeError) as e:
        reason = e.strerror if isinstance(e, OSError) and e.strerror else "not a key file"
        raise ConfigError(f"cannot read the gallery key file {os.fspath(path)}: {reason}") from None
    _decode(text, f"the key file {os.fspath(path)}")
    return text.strip()


def key_from_environment() -> str | None:
    """The key the environment gives: the file ``FACEDB_KEY_FILE`` names, else
    ``FACEDB_KEY``; None when neither is set."""
    path = os.environ.get(KEY_FILE_ENV)
    if path:
        return read_key_file(path)
    text = os.environ.get(KEY_ENV)
    return text.strip() if text else None


class Cipher:
    """Seals and opens a gallery's values with one key.

    Args:
        key: the key: its base64 text (a str, or the bytes of a key file), or its 32 bytes.

    Raises:
        ConfigError: not a key.
        MissingExtra: the ``encryption`` extra (cryptography) is not installed.
    """

    def __init__(self, key: str | bytes) -> None:
        raw = bytes(key) if isinstance(key, bytes | bytearray) else b""
        if len(raw) != _KEY_BYTES:  # the text form, as str or as the bytes of a key file
            text = key if isinstance(key, str) else raw.decode("ascii", "replace")
            raw = _decode(text, "the key given")
        if len(raw) != _KEY_BYTES:
            raise ConfigError(f"the key given has {len(raw)} bytes: {_HOW}")
        aead = load("cryptography.hazmat.primitives.ciphers.aead", "encryption", "a gallery key")
        hashes = load("cryptography.hazmat.primitives.hashes", "encryption", "a gallery key")
        hkdf = load("cryptography.hazmat.primitives.kdf.hkdf", "encryption", "a gallery key")

        def derive(info: bytes, length: int) -> bytes:
            derived: bytes = hkdf.HKDF(hashes.SHA256(), length, None, info).derive(raw)
            return derived

        self._aead: AESGCM = aead.AESGCM(derive(b"facedb AES-256-GCM v1", 32))
        self._invalid_tag: type[Exception] = load(
            "cryptography.exceptions", "encryption", "a gallery key"
        ).InvalidTag
        #: Names the key without revealing it (stored in the gallery, shown by ``stats``).
        self.key_id = derive(b"facedb key id v1", 16).hex()

    def __repr__(self) -> str:
        return f"Cipher(key_id={self.key_id[:8]}...)"

    def seal(self, plain: bytes | memoryview, purpose: bytes) -> bytes:
        """``plain`` encrypted and authenticated, as stored."""
        nonce = os.urandom(_NONCE)
        return _VERSION + nonce + self._aead.encrypt(nonce, plain, purpose)

    def open(self, sealed: bytes | memoryview, purpose: bytes) -> bytes:
        """The plaintext of a value :meth:`seal` made with this key.

        Raises:
            EncryptionKeyError: not sealed, sealed with another key, or altered.
        """
        what = purpose.decode("ascii", "replace")
        data = memoryview(sealed)  # slices without copies: a segment is tens of megabytes
        if len(data) < OVERHEAD or data[0] != _VERSION[0]:
            raise EncryptionKeyError(
                f"a stored {what} is not encrypted although the gallery is (written by a "
                "process without the gallery's key?): run `facedb check`"
            )
        try:
            plain: bytes = self._aead.decrypt(data[1 : 1 + _NONCE], data[1 + _NONCE :], purpose)
        except self._invalid_tag:
            raise EncryptionKeyError(
                f"a stored {what} cannot be decrypted with this key: the gallery was sealed "
                "with another key (changed by `facedb rekey` since this process opened it?), "
                "or the stored value was altered"
            ) from None
        return plain


def cipher_from(key: str | bytes | None) -> Cipher | None:
    """The cipher of ``key``; of the environment's key when ``key`` is None (see
    :func:`key_from_environment`); None without either (no encryption)."""
    if key is None:
        key = key_from_environment()
    return None if key is None else Cipher(key)

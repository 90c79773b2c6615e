"""Sealing secrets at rest: AES-256-GCM under a master key that the database never holds.

A sealed blob is

    version (1 byte, 0x01) | length of the master-key id (1 byte) | master-key id (ASCII)
    | nonce (12 random bytes) | ciphertext | GCM tag (16 bytes)

The header (version and master-key id) and the caller's associated data are both authenticated, so a
blob opens only under the master key it names *and* for the row it was sealed for: a blob copied
onto another merchant's row, or a changed byte anywhere, fails to open. Naming the master key in
each blob lets a new master key be introduced while blobs sealed under the old one still open, and
be re-sealed at leisure (`Sealer.reseal`).
"""

import logging
import os
import re
import secrets
import stat
from collections.abc import Iterable, Mapping
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

log = logging.getLogger(__name__)

MASTER_KEY_BYTES = 32
NONCE_BYTES = 12
TAG_BYTES = 16
FORMAT_VERSION = 1

ENV_MASTER_KEY = "PAYSWITCH_MASTER_KEY"
ENV_MASTER_KEY_FILE = "PAYSWITCH_MASTER_KEY_FILE"
ENV_MASTER_KEY_ID = "PAYSWITCH_MASTER_KEY_ID"
DEFAULT_MASTER_KEY_ID = "mk1"

_KEY_ID = re.compile(r"[A-Za-z0-9_.\-]{1,64}\Z")
_HEX_KEY = re.compile(r"[0-9a-fA-F]{64}\Z")


class MasterKeyError(ValueError):
    """A master key cannot be read or is malformed; the message names where it came from, never the key."""


class SealingError(Exception):
    """A blob does not open: malformed, sealed under an unknown master key, for another row, or altered."""


class MasterKey:
    """32 bytes under an id. Seals and opens blobs that name this id; its repr never shows the key."""

    __slots__ = ("key_id", "_aead")

    def __init__(self, key_id: str, key: bytes):
        if not isinstance(key_id, str) or not _KEY_ID.match(key_id):
            raise MasterKeyError("a master-key id is 1 to 64 of A-Z a-z 0-9 _ - .")
        if not isinstance(key, (bytes, bytearray)) or len(key) != MASTER_KEY_BYTES:
            raise MasterKeyError(f"master key {key_id!r} must be exactly {MASTER_KEY_BYTES} bytes")
        self.key_id = key_id
        self._aead = AESGCM(bytes(key))

    def __repr__(self) -> str:
        return f"MasterKey({self.key_id!r}, key=***)"

    @classmethod
    def generate(cls, key_id: str = DEFAULT_MASTER_KEY_ID) -> "MasterKey":
        """A fresh random master key (tests, and `python -c` to make one: see docs/keys.md)."""
        return cls(key_id, secrets.token_bytes(MASTER_KEY_BYTES))

    @classmethod
    def from_hex(cls, key_id: str, text: str) -> "MasterKey":
        """The key written as 64 hex digits (surrounding whitespace ignored)."""
        text = text.strip() if isinstance(text, str) else ""
        if not _HEX_KEY.match(text):
            raise MasterKeyError(f"master key {key_id!r} must be {MASTER_KEY_BYTES} bytes written as 64 hex digits")
        return cls(key_id, bytes.fromhex(text))

    @classmethod
    def from_file(cls, key_id: str, path: str | Path) -> "MasterKey":
        """The key in a file: 64 hex digits, or exactly 32 raw bytes. Warns if others may read the file."""
        try:
            data = Path(path).read_bytes()
            mode = os.stat(path).st_mode
        except OSError as error:
            raise MasterKeyError(f"master key file {path}: {error.strerror}") from None
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            log.warning("master key file %s is readable by group or others; chmod 600 it", path)
        if len(data) == MASTER_KEY_BYTES:
            return cls(key_id, data)
        try:
            return cls.from_hex(key_id, data.decode("ascii"))
        except (UnicodeDecodeError, MasterKeyError):
            raise MasterKeyError(f"master key file {path} must hold {MASTER_KEY_BYTES} raw bytes or 64 hex "
                                 "digits") from None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ, *, variable: str = ENV_MASTER_KEY,
                 file_variable: str = ENV_MASTER_KEY_FILE, key_id_variable: str = ENV_MASTER_KEY_ID,
                 default_key_id: str = DEFAULT_MASTER_KEY_ID) -> "MasterKey | None":
        """The key from `PAYSWITCH_MASTER_KEY` (hex) or the file named by `PAYSWITCH_MASTER_KEY_FILE`,
        under the id in `PAYSWITCH_MASTER_KEY_ID` (default "mk1"); None when neither is set."""
        key_id = environ.get(key_id_variable) or default_key_id
        if not _KEY_ID.match(key_id):
            raise MasterKeyError(f"{key_id_variable} must be 1 to 64 of A-Z a-z 0-9 _ - .")
        text, path = environ.get(variable), environ.get(file_variable)
        if text and path:
            raise MasterKeyError(f"set only one of {variable} and {file_variable}")
        if path:
            return cls.from_file(key_id, path)
        if text:
            try:
                return cls.from_hex(key_id, text)
            except MasterKeyError:
                raise MasterKeyError(
                    f"{variable} must hold {MASTER_KEY_BYTES} bytes written as 64 hex digits") from None
        return None

    def seal(self, plaintext: bytes, associated_data: bytes) -> bytes:
        """The blob of `plaintext`, bound to `associated_data` (which is authenticated, not stored)."""
        header = _header(self.key_id)
        nonce = secrets.token_bytes(NONCE_BYTES)
        return header + nonce + self._aead.encrypt(nonce, bytes(plaintext), header + bytes(associated_data))

    def open(self, blob: bytes, associated_data: bytes) -> bytes:
        """The plaintext of a blob this key sealed for the same associated data; SealingError otherwise."""
        key_id, header_length = parse_header(blob)
        if key_id != self.key_id:
            raise SealingError(f"the blob was sealed under master key {key_id!r}, not {self.key_id!r}")
        header = bytes(blob[:header_length])
        nonce = bytes(blob[header_length:header_length + NONCE_BYTES])
        try:
            return self._aead.decrypt(nonce, bytes(blob[header_length + NONCE_BYTES:]),
                                      header + bytes(associated_data))
        except InvalidTag:
            raise SealingError(f"the blob does not open under master key {self.key_id!r}: another key with "
                               "that id, sealed for another row, or altered") from None


class Sealer:
    """The master keys in use: seals under `primary`, opens blobs under any of them by the id they name.

    Rotating the master key: make a new one the primary, keep the old one among `retired` until every
    blob is re-sealed (SigningKeyStore.reseal), then drop it.
    """

    def __init__(self, primary: MasterKey, retired: Iterable[MasterKey] = ()):
        self.primary = primary
        self._keys = {primary.key_id: primary}
        for key in retired:
            if key.key_id in self._keys:
                raise MasterKeyError(f"master-key id {key.key_id!r} is given twice")
            self._keys[key.key_id] = key

    def __repr__(self) -> str:
        return f"Sealer(primary={self.primary.key_id!r}, keys={sorted(self._keys)!r})"

    @property
    def key_ids(self) -> frozenset[str]:
        return frozenset(self._keys)

    def seal(self, plaintext: bytes, associated_data: bytes) -> bytes:
        return self.primary.seal(plaintext, associated_data)

    def open(self, blob: bytes, associated_data: bytes) -> bytes:
        key_id, _ = parse_header(blob)
        key = self._keys.get(key_id)
        if key is None:
            raise SealingError(f"the blob was sealed under master key {key_id!r}, which is not configured")
        return key.open(blob, associated_data)

    def needs_reseal(self, blob: bytes) -> bool:
        """True if the blob is sealed under a master key other than the primary."""
        return parse_header(blob)[0] != self.primary.key_id

    def reseal(self, blob: bytes, associated_data: bytes) -> bytes:
        """The same plaintext sealed again under the primary key (the blob itself if it already is)."""
        if not self.needs_reseal(blob):
            return blob
        return self.seal(self.open(blob, associated_data), associated_data)


def parse_header(blob: bytes) -> tuple[str, int]:
    """(master-key id, header length) of a blob; SealingError if it is not a well-formed blob."""
    if len(blob) < 2 or blob[0] != FORMAT_VERSION:
        raise SealingError("not a sealed blob of a known format version")
    length = blob[1]
    end = 2 + length
    if len(blob) < end + NONCE_BYTES + TAG_BYTES:
        raise SealingError("the sealed blob is truncated")
    try:
        key_id = bytes(blob[2:end]).decode("ascii")
    except UnicodeDecodeError:
        raise SealingError("the sealed blob names a malformed master-key id") from None
    if not _KEY_ID.match(key_id):
        raise SealingError("the sealed blob names a malformed master-key id")
    return key_id, end


def master_key_id(blob: bytes) -> str:
    """The id of the master key a blob is sealed under."""
    return parse_header(blob)[0]


def _header(key_id: str) -> bytes:
    encoded = key_id.encode("ascii")
    return bytes((FORMAT_VERSION, len(encoded))) + encoded

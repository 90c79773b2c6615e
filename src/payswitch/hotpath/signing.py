"""PAYSWITCH-HMAC-SHA256 v1 request signing (docs/signing.md), the pure-Python twin.

The compiled twin in ext/payswitch/_speedups/signing.pyx has the same names and behaviour; pick
between them only through payswitch.hotpath.
"""

import hashlib
import hmac
import re
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping

SCHEME = b"PAYSWITCH-HMAC-SHA256"
WINDOW_SECONDS = 300
DEFAULT_NONCE_CAPACITY = 1_000_000

MERCHANT_HEADER = "x-payswitch-merchant"
KEY_ID_HEADER = "x-payswitch-key-id"
TIMESTAMP_HEADER = "x-payswitch-timestamp"
NONCE_HEADER = "x-payswitch-nonce"
SIGNATURE_HEADER = "x-payswitch-signature"
SIGNING_HEADERS = (MERCHANT_HEADER, KEY_ID_HEADER, TIMESTAMP_HEADER, NONCE_HEADER, SIGNATURE_HEADER)

_IDENTIFIER = re.compile(rb"[A-Za-z0-9_.\-]{1,64}\Z")
_NONCE = re.compile(rb"[A-Za-z0-9_\-]{16,64}\Z")
_TIMESTAMP = re.compile(rb"[0-9]{1,32}\Z")
_SIGNATURE = re.compile(rb"v1=[0-9a-f]{64}\Z")


class SigningError(Exception):
    """A request failed verification; `reason` is the failure name of the signing spec."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


def _ascii(value: str | bytes) -> bytes:
    return value if isinstance(value, bytes) else value.encode("ascii")


def string_to_sign(method, merchant, key_id, timestamp, nonce, body: bytes) -> bytes:
    """The exact bytes the HMAC covers."""
    return b"\n".join((SCHEME, _ascii(method), _ascii(merchant), _ascii(key_id), _ascii(timestamp),
                       _ascii(nonce), bytes(body)))


def sign(secret: bytes, method, merchant, key_id, timestamp, nonce, body: bytes) -> str:
    """The `x-payswitch-signature` value for one request."""
    digest = hmac.digest(secret, string_to_sign(method, merchant, key_id, timestamp, nonce, body), "sha256")
    return "v1=" + digest.hex()


class NonceCache:
    """Nonces seen per merchant within the window, bounded in size.

    When full, the oldest entries are evicted and `floor` rises to their expiry: a request whose
    timestamp is not newer than the floor could replay an evicted nonce, so it is refused as a
    replay. The bound therefore costs availability under flood, never safety.
    """

    def __init__(self, window_seconds: int, capacity: int):
        self._window = window_seconds
        self._capacity = capacity
        self._seen: dict[tuple[bytes, bytes], int] = {}
        self._expiry_order: deque[tuple[int, tuple[bytes, bytes]]] = deque()
        self._floor = -(1 << 62)

    def __len__(self) -> int:
        return len(self._seen)

    def check_and_add(self, merchant: bytes, nonce: bytes, timestamp: int, now: int) -> bool:
        """Records the nonce; False if it was seen (or may have been seen) within the window."""
        self._expire(now)
        key = (merchant, nonce)
        if key in self._seen or timestamp <= self._floor:
            return False
        expires_at = max(timestamp, now) + self._window
        if len(self._seen) >= self._capacity:
            evicted_expiry, evicted = self._expiry_order.popleft()
            self._seen.pop(evicted, None)
            self._floor = max(self._floor, evicted_expiry - self._window)
        self._seen[key] = expires_at
        self._expiry_order.append((expires_at, key))
        return True

    def _expire(self, now: int) -> None:
        order = self._expiry_order
        while order and order[0][0] < now:
            _, key = order.popleft()
            self._seen.pop(key, None)


class Verifier:
    """Checks signed requests in the order the spec gives and remembers nonces.

    `keys` maps (merchant, key id) to the raw secret. `clock` returns Unix seconds; it is injected so
    the window is testable without sleeping.
    """

    def __init__(self, keys: Mapping[tuple[str, str], bytes], window_seconds: int = WINDOW_SECONDS,
                 clock: Callable[[], float] = time.time, nonce_capacity: int = DEFAULT_NONCE_CAPACITY):
        self._window = window_seconds
        self._clock = clock
        self._nonces = NonceCache(window_seconds, nonce_capacity)
        self._keys: dict[tuple[bytes, bytes], bytes] = {}
        self.set_keys(keys)

    def set_keys(self, keys: Mapping[tuple[str, str], bytes]) -> None:
        """Replaces the key table at once (rotation, revocation)."""
        self._keys = {(_ascii(m), _ascii(k)): bytes(secret) for (m, k), secret in keys.items()}

    def verify(self, method, metadata: Iterable[tuple[str, str | bytes]], body: bytes,
               now: int | None = None) -> str:
        """Returns the merchant id of a well-signed request, or raises SigningError."""
        values: dict[str, bytes] = {}
        for key, value in metadata:
            if key in SIGNING_HEADERS:
                if key in values:
                    raise SigningError("duplicate_metadata")  # which of the two was signed is ambiguous
                values[key] = _ascii(value) if isinstance(value, bytes) else value.encode("ascii", "replace")
        if len(values) != len(SIGNING_HEADERS):
            raise SigningError("missing_metadata")
        merchant = values[MERCHANT_HEADER]
        key_id = values[KEY_ID_HEADER]
        timestamp = values[TIMESTAMP_HEADER]
        nonce = values[NONCE_HEADER]
        signature = values[SIGNATURE_HEADER]
        if not _IDENTIFIER.match(merchant):
            raise SigningError("malformed_merchant")
        if not _IDENTIFIER.match(key_id):
            raise SigningError("malformed_key_id")
        if not _TIMESTAMP.match(timestamp):
            raise SigningError("malformed_timestamp")
        if not _NONCE.match(nonce):
            raise SigningError("malformed_nonce")
        if not _SIGNATURE.match(signature):
            raise SigningError("malformed_signature")
        secret = self._keys.get((merchant, key_id))
        if secret is None:
            raise SigningError("unknown_key")
        if now is None:
            now = int(self._clock())
        stamp = int(timestamp)
        if abs(now - stamp) > self._window:
            raise SigningError("timestamp_out_of_window")
        expected = hmac.digest(secret, string_to_sign(method, merchant, key_id, timestamp, nonce, body),
                               hashlib.sha256)
        if not hmac.compare_digest(expected.hex().encode("ascii"), signature[3:]):
            raise SigningError("signature_mismatch")
        if not self._nonces.check_and_add(merchant, nonce, stamp, now):
            raise SigningError("replayed_nonce")
        return merchant.decode("ascii")

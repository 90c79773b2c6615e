"""Signing metadata for one merchant key, per docs/signing.md."""

import secrets
import time

from ..hotpath import signing
from ..vocabulary import MIN_SECRET_BYTES, SECRET_WANTED, secret_from_hex


def signing_secret(secret: bytes | str) -> bytes:
    """The key's secret as bytes, from raw bytes or from the hex string the switch's configuration holds
    (secret_hex, or the variable secret_env names). A wrong one is refused here, when the client is
    made, rather than by the compiled signer or the switch on the first call; it is never quoted."""
    if isinstance(secret, str):
        raw = secret_from_hex(secret.strip())
        if raw is None:
            raise ValueError(f"secret: a string secret must be {SECRET_WANTED}")
        return raw
    if isinstance(secret, (bytes, bytearray, memoryview)):
        raw = bytes(secret)
        if len(raw) < MIN_SECRET_BYTES:
            raise ValueError(f"secret: must be at least {MIN_SECRET_BYTES} bytes, got {len(raw)}")
        return raw
    raise TypeError(f"secret: must be bytes or a hex string, not {type(secret).__name__}")


class RequestSigner:
    """Makes the five x-payswitch-* entries for a request; each call draws a fresh nonce."""

    def __init__(self, merchant_id: str, key_id: str, secret: bytes | str, clock=time.time):
        self.merchant_id = merchant_id
        self._key_id = key_id
        self._secret = signing_secret(secret)
        self._clock = clock

    def __repr__(self) -> str:
        return f"RequestSigner({self.merchant_id!r}, {self._key_id!r}, secret=***)"

    def metadata(self, method: str, body: bytes) -> tuple[tuple[str, str], ...]:
        merchant, key_id, timestamp, nonce, signature = self.values(method, body)
        return ((signing.MERCHANT_HEADER, merchant), (signing.KEY_ID_HEADER, key_id),
                (signing.TIMESTAMP_HEADER, timestamp), (signing.NONCE_HEADER, nonce),
                (signing.SIGNATURE_HEADER, signature))

    def values(self, method: str, body: bytes) -> tuple[str, str, str, str, str]:
        """(merchant, key id, timestamp, nonce, signature): for a stream message, which carries them itself."""
        timestamp = str(int(self._clock()))
        nonce = secrets.token_urlsafe(24)
        signature = signing.sign(self._secret, method, self.merchant_id, self._key_id, timestamp, nonce, body)
        return self.merchant_id, self._key_id, timestamp, nonce, signature

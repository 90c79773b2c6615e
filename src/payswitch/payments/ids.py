"""Identifiers for payments and operations: time-ordered, unguessable, and injectable in tests."""

import os
import time

_CROCKFORD = "0123456789abcdefghjkmnpqrstvwxyz"


def _base32(value: int, length: int) -> str:
    chars = []
    for _ in range(length):
        value, remainder = divmod(value, 32)
        chars.append(_CROCKFORD[remainder])
    return "".join(reversed(chars))


class IdSource:
    """ULID-shaped ids: 48 bits of milliseconds then 80 random bits, so ids sort by creation time."""

    def __init__(self, clock_ms=lambda: time.time_ns() // 1_000_000, random_bytes=os.urandom):
        self._clock_ms = clock_ms
        self._random_bytes = random_bytes

    def _ulid(self) -> str:
        value = (self._clock_ms() << 80) | int.from_bytes(self._random_bytes(10), "big")
        return _base32(value, 26)

    def payment_id(self) -> str:
        return "pay_" + self._ulid()

    def operation_id(self) -> str:
        return "op_" + self._ulid()

"""Identifiers for payments and operations: time-ordered, unguessable, and injectable in tests."""

import os
import time

_CROCKFORD = "0123456789abcdefghjkmnpqrstvwxyz"
# Every 10-bit value as two characters: an id is 13 table lookups, not 26 divisions.
_PAIRS = [first + second for first in _CROCKFORD for second in _CROCKFORD]
_RANDOM_BYTES = 10  # 80 bits
_POOL_IDS = 256  # random bytes are drawn for this many ids at once: one system call, not one per id


def _base32(value: int, pairs: int) -> str:
    return "".join(_PAIRS[(value >> shift) & 1023] for shift in range(10 * (pairs - 1), -1, -10))


class IdSource:
    """ULID-shaped ids: 48 bits of milliseconds then 80 random bits, so ids sort by creation time."""

    def __init__(self, clock_ms=lambda: time.time_ns() // 1_000_000, random_bytes=os.urandom):
        self._clock_ms = clock_ms
        self._random_bytes = random_bytes
        self._pool = b""
        self._pool_offset = 0
        self._last_ms = None
        self._time_part = ""

    def _ulid(self) -> str:
        now_ms = self._clock_ms()
        if now_ms != self._last_ms:
            self._last_ms, self._time_part = now_ms, _base32(now_ms, 5)
        offset = self._pool_offset
        if offset >= len(self._pool):
            self._pool, offset = self._random_bytes(_RANDOM_BYTES * _POOL_IDS), 0
        self._pool_offset = offset + _RANDOM_BYTES
        bits = int.from_bytes(self._pool[offset:offset + _RANDOM_BYTES], "big")
        pairs = _PAIRS
        return (self._time_part + pairs[bits >> 70] + pairs[(bits >> 60) & 1023] + pairs[(bits >> 50) & 1023]
                + pairs[(bits >> 40) & 1023] + pairs[(bits >> 30) & 1023] + pairs[(bits >> 20) & 1023]
                + pairs[(bits >> 10) & 1023] + pairs[bits & 1023])

    def payment_id(self) -> str:
        return "pay_" + self._ulid()

    def operation_id(self) -> str:
        return "op_" + self._ulid()

    def card_token(self) -> str:
        return "tok_" + self._ulid()

"""Unique authorizations for the load generator, encoded from pre-built wire fragments.

The load generator shares the machine's cores with the switch it measures, so every microsecond it
spends per item is taken from the switch. Building a protobuf message per item costs ~3 us; splicing
pre-encoded fragments around a fresh idempotency key and reference costs a fraction of that, and
yields exactly the bytes protobuf itself would produce (tests/cli/test_bench.py checks this). Only
the encoding is pre-built: every request has its own key and reference, and the client signs each
call when it is sent.
"""

import itertools
import time

from ..v1 import switch_pb2, types_pb2
from ..wire_format import varint

# The simulator approves these (docs/channel-simulator.md); they never leave this module.
APPROVING_CARDS = ("4242424242424242", "5555555555554444")
CURRENCIES = ("USD", "EUR", "GBP")
# 97 amounts from 1.00 to ~999.00, spread so consecutive requests differ.
AMOUNTS_MINOR = tuple(100 + (i * 10_289) % 99_900 for i in range(97))

# Field tags (field number << 3 | wire type 2) of the length-delimited fields used here.
_FIELD_1 = b"\x0a"  # AuthorizeRequest.idempotency_key, BatchItem.authorize, BatchRequest.items
_FIELD_2 = b"\x12"  # AuthorizeRequest.merchant_reference


class AuthorizationWorkload:
    """Authorizations with unique idempotency keys and merchant references, varied amounts,
    currencies and approving cards.

    `label` must be unique per run and per load-generator process (a random run id and the process
    number), so no two requests anywhere share a key, even against a switch that keeps its store.
    """

    KEY_DIGITS = 10

    def __init__(self, label: str, *, exp_year: int | None = None):
        if not label or len(label) > 40:
            raise ValueError("label must be 1 to 40 characters")
        self._key_prefix = f"bench-{label}-".encode("ascii")
        self._reference_prefix = f"order-{label}-".encode("ascii")
        exp_year = exp_year or time.gmtime().tm_year + 3
        tails = []
        for amount, currency, number in itertools.product(AMOUNTS_MINOR, CURRENCIES, APPROVING_CARDS):
            money = types_pb2.Money(amount_minor=amount, currency=currency)
            card = types_pb2.Card(number=number, exp_month=12, exp_year=exp_year, cvv="123", holder_name="Bench Holder")
            # Fields 3 (amount) and 4 (card) in field order, as protobuf serializes them.
            tails.append(switch_pb2.AuthorizeRequest(amount=money, card=card).SerializeToString())
        self._tails = tuple(tails)
        key_length = len(self._key_prefix) + self.KEY_DIGITS
        reference_length = len(self._reference_prefix) + self.KEY_DIGITS
        self._key_header = _FIELD_1 + varint(key_length)
        self._reference_header = _FIELD_2 + varint(reference_length)
        # Keys and references have a fixed width, so each tail fixes the whole request's length and
        # the BatchRequest.items / BatchItem.authorize headers can be computed once per tail.
        self._item_headers = []
        for tail in self._tails:
            request_length = (len(self._key_header) + key_length + len(self._reference_header) + reference_length
                              + len(tail))
            item_length = 1 + len(varint(request_length)) + request_length
            self._item_headers.append(_FIELD_1 + varint(item_length) + _FIELD_1 + varint(request_length))
        self._counter = itertools.count()

    def authorize_bytes(self) -> bytes:
        """One serialized AuthorizeRequest, never issued before by this workload."""
        number = next(self._counter)
        digits = b"%010d" % number
        return b"".join((self._key_header, self._key_prefix, digits, self._reference_header, self._reference_prefix,
                         digits, self._tails[number % len(self._tails)]))

    def authorize_request(self) -> switch_pb2.AuthorizeRequest:
        return switch_pb2.AuthorizeRequest.FromString(self.authorize_bytes())

    def batch_bytes(self, items: int) -> bytes:
        """One serialized BatchRequest of `items` authorizations, each never issued before."""
        parts = []
        append = parts.append
        key_header, reference_header = self._key_header, self._reference_header
        key_prefix, reference_prefix = self._key_prefix, self._reference_prefix
        tails, headers, count = self._tails, self._item_headers, len(self._tails)
        counter = self._counter
        for _ in range(items):
            number = next(counter)
            digits = b"%010d" % number
            variant = number % count
            append(headers[variant])
            append(key_header)
            append(key_prefix)
            append(digits)
            append(reference_header)
            append(reference_prefix)
            append(digits)
            append(tails[variant])
        return b"".join(parts)

    def batch_request(self, items: int) -> switch_pb2.BatchRequest:
        return switch_pb2.BatchRequest.FromString(self.batch_bytes(items))

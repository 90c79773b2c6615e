"""Requests from the wire into validated commands, every bad field named.

Amounts are checked here, once, against the currency's ISO 4217 exponent; nothing below the edge
re-validates what a command guarantees.
"""

import re

from google.protobuf.message import DecodeError

from ..payments.cards import CardDetails, Sensitive, WalletDetails, luhn_valid
from ..payments.commands import AuthorizeCommand, CaptureCommand, RefundCommand, VoidCommand
from ..payments.errors import InvalidRequest
from ..payments.money import CURRENCY_EXPONENTS, MAX_AMOUNT_MINOR, Money
from ..v1 import switch_pb2

_KEY = re.compile(r"[A-Za-z0-9_.\-]{1,64}\Z")
_PRINTABLE = re.compile(r"[\x20-\x7e]+\Z")
_PAYMENT_ID = re.compile(r"pay_[0-9a-z]{26}\Z")
_DIGITS = re.compile(r"[0-9]+\Z")
_PROVIDER = re.compile(r"[a-z0-9_]{1,32}\Z")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_MAX_TIMESTAMP_SECONDS = 253402300799  # 9999-12-31T23:59:59Z, protobuf's Timestamp bound
MAX_PAGE_SIZE = 500
DEFAULT_PAGE_SIZE = 50


def parse(message_type, body: bytes):
    """The message, or InvalidRequest when the bytes are not one."""
    try:
        return message_type.FromString(body)
    except DecodeError:
        raise InvalidRequest({"request": f"is not a valid {message_type.DESCRIPTOR.full_name}"}) from None


class _Violations(dict):
    def check(self, ok: bool, field: str, description: str) -> bool:
        if not ok and field not in self:
            self[field] = description
        return ok

    def raise_any(self):
        if self:
            raise InvalidRequest(dict(self))


def _text(violations, value: str, field: str, max_length: int, required: bool) -> None:
    if not value:
        violations.check(not required, field, "is required")
    elif violations.check(len(value) <= max_length, field, f"must be at most {max_length} characters"):
        violations.check(not _CONTROL.search(value), field, "must not contain control characters")


def _idempotency_key(violations, value: str) -> None:
    if violations.check(bool(value), "idempotency_key", "is required"):
        violations.check(bool(_KEY.match(value)), "idempotency_key", "must be 1 to 64 of A-Z a-z 0-9 _ - .")


def _payment_id(violations, value: str) -> None:
    if violations.check(bool(value), "payment_id", "is required"):
        violations.check(bool(_PAYMENT_ID.match(value)), "payment_id", "is not a payment id (pay_ and 26 characters)")


def _money(violations, message, field: str) -> Money | None:
    currency = message.currency
    exponent = CURRENCY_EXPONENTS.get(currency)
    ok = violations.check(exponent is not None, f"{field}.currency",
                          "is not an ISO 4217 currency code" if currency else "is required")
    ok &= violations.check(message.amount_minor > 0, f"{field}.amount_minor", "must be greater than zero")
    ok &= violations.check(message.amount_minor <= MAX_AMOUNT_MINOR, f"{field}.amount_minor",
                           f"must be at most {MAX_AMOUNT_MINOR}")
    if ok and message.HasField("exponent"):
        ok = violations.check(message.exponent == exponent, f"{field}.exponent",
                              f"{currency} has {exponent} decimal places, not {message.exponent}")
    return Money(message.amount_minor, currency) if ok else None


def _card(violations, card, year_month: tuple[int, int]) -> CardDetails:
    number = card.number
    if violations.check(bool(number), "card.number", "is required"):
        if violations.check(12 <= len(number) <= 19 and bool(_DIGITS.match(number)), "card.number",
                            "must be 12 to 19 digits"):
            violations.check(luhn_valid(number), "card.number", "fails the Luhn check")
    violations.check(1 <= card.exp_month <= 12, "card.exp_month", "must be 1 to 12")
    if violations.check(2000 <= card.exp_year <= 2099, "card.exp_year", "must be a four-digit year"):
        if 1 <= card.exp_month <= 12:
            violations.check((card.exp_year, card.exp_month) >= year_month, "card.exp_year", "the card has expired")
    if card.cvv:
        violations.check(len(card.cvv) in (3, 4) and bool(_DIGITS.match(card.cvv)), "card.cvv", "must be 3 or 4 digits")
    _text(violations, card.holder_name, "card.holder_name", 128, required=False)
    return CardDetails(Sensitive(number), card.exp_month, card.exp_year, Sensitive(card.cvv), card.holder_name)


def _wallet(violations, wallet) -> WalletDetails:
    violations.check(bool(_PROVIDER.match(wallet.provider)), "wallet.provider", "must be 1 to 32 of a-z 0-9 _")
    token = wallet.token
    if violations.check(bool(token), "wallet.token", "is required"):
        violations.check(len(token) <= 2048 and bool(_PRINTABLE.match(token)), "wallet.token",
                         "must be at most 2048 printable ASCII characters")
    return WalletDetails(wallet.provider, Sensitive(token))


def authorize_command(merchant_id: str, body: bytes, year_month: tuple[int, int]) -> AuthorizeCommand:
    """`year_month` is today's (year, month), for the card expiry check."""
    request = parse(switch_pb2.AuthorizeRequest, body)
    violations = _Violations()
    _idempotency_key(violations, request.idempotency_key)
    if violations.check(bool(request.merchant_reference), "merchant_reference", "is required"):
        violations.check(len(request.merchant_reference) <= 64 and bool(_PRINTABLE.match(request.merchant_reference)),
                         "merchant_reference", "must be 1 to 64 printable ASCII characters")
    amount = _money(violations, request.amount, "amount") if violations.check(
        request.HasField("amount"), "amount", "is required") else None
    method = request.WhichOneof("method")
    card = _card(violations, request.card, year_month) if method == "card" else None
    wallet = _wallet(violations, request.wallet) if method == "wallet" else None
    violations.check(method is not None, "method", "one of card or wallet is required")
    _text(violations, request.description, "description", 256, required=False)
    violations.raise_any()
    return AuthorizeCommand(merchant_id, request.idempotency_key, request.merchant_reference, amount, card, wallet,
                            request.description)


def capture_command(merchant_id: str, body: bytes) -> CaptureCommand:
    request = parse(switch_pb2.CaptureRequest, body)
    violations = _Violations()
    _idempotency_key(violations, request.idempotency_key)
    _payment_id(violations, request.payment_id)
    amount = _money(violations, request.amount, "amount") if request.HasField("amount") else None
    violations.raise_any()
    return CaptureCommand(merchant_id, request.idempotency_key, request.payment_id, amount)


def void_command(merchant_id: str, body: bytes) -> VoidCommand:
    request = parse(switch_pb2.VoidRequest, body)
    violations = _Violations()
    _idempotency_key(violations, request.idempotency_key)
    _payment_id(violations, request.payment_id)
    violations.raise_any()
    return VoidCommand(merchant_id, request.idempotency_key, request.payment_id)


def refund_command(merchant_id: str, body: bytes) -> RefundCommand:
    request = parse(switch_pb2.RefundRequest, body)
    violations = _Violations()
    _idempotency_key(violations, request.idempotency_key)
    _payment_id(violations, request.payment_id)
    amount = _money(violations, request.amount, "amount") if request.HasField("amount") else None
    _text(violations, request.reason, "reason", 256, required=False)
    violations.raise_any()
    return RefundCommand(merchant_id, request.idempotency_key, request.payment_id, amount, request.reason)


def payment_id(body: bytes) -> str:
    request = parse(switch_pb2.GetPaymentRequest, body)
    violations = _Violations()
    _payment_id(violations, request.payment_id)
    violations.raise_any()
    return request.payment_id


def _micros(violations, message, field: str) -> int:
    ok = violations.check(0 <= message.seconds <= _MAX_TIMESTAMP_SECONDS, f"{field}.seconds", "is out of range")
    ok &= violations.check(0 <= message.nanos < 1_000_000_000, f"{field}.nanos", "must be 0 to 999999999")
    return message.seconds * 1_000_000 + message.nanos // 1000 if ok else 0


def list_query(body: bytes) -> tuple[int | None, int | None, int, str]:
    """(created_from_us, created_to_us, page size with the default applied, page_token)."""
    request = parse(switch_pb2.ListPaymentsRequest, body)
    violations = _Violations()
    created_from = _micros(violations, request.created_from, "created_from") if request.HasField("created_from") else None
    created_to = _micros(violations, request.created_to, "created_to") if request.HasField("created_to") else None
    if created_from is not None and created_to is not None:
        violations.check(created_from < created_to, "created_to", "must be after created_from")
    violations.check(0 <= request.page_size <= MAX_PAGE_SIZE, "page_size", f"must be 0 to {MAX_PAGE_SIZE}")
    violations.check(len(request.page_token) <= 512, "page_token", "is too long")
    violations.raise_any()
    return created_from, created_to, request.page_size or DEFAULT_PAGE_SIZE, request.page_token

"""Requests from the wire into validated commands, every bad field named.

Amounts are checked here, once, against the currency's ISO 4217 exponent; nothing below the edge
re-validates what a command guarantees. The four payment operations and Tokenize are decoded and checked
by the hot path's `wire` module (compiled, or its pure twin), straight from the request bytes; the rarer
reads (GetPayment, ListPayments) still go through protobuf's message objects.
"""

import re

from google.protobuf.message import DecodeError

from ..hotpath import wire
from ..payments.card_numbers import contains_card_number
from ..payments.cards import CardDetails, Sensitive, WalletDetails
from ..payments.commands import (AuthorizeCommand, CaptureCommand, RefundCommand, TokenizeCommand, TokenReference,
                                 VoidCommand)
from ..payments.errors import InvalidRequest
from ..payments.money import Money
from ..v1 import switch_pb2

_PAYMENT_ID = re.compile(r"pay_[0-9a-z]{26}\Z")
_MAX_TIMESTAMP_SECONDS = 253402300799  # 9999-12-31T23:59:59Z, protobuf's Timestamp bound
MAX_PAGE_SIZE = 500
DEFAULT_PAGE_SIZE = 50


def parse(message_type, body: bytes):
    """The message, or InvalidRequest when the bytes are not one."""
    try:
        return message_type.FromString(body)
    except DecodeError:
        raise InvalidRequest({"request": f"is not a valid {message_type.DESCRIPTOR.full_name}"}) from None


def _decode(decoder, body: bytes):
    """The request's fields, or InvalidRequest when the bytes are not one (the same words as parse's)."""
    try:
        return decoder(body)
    except wire.WireError as error:
        raise InvalidRequest({"request": f"is not a valid {error.message_name}"}) from None


class _Violations(dict):
    def check(self, ok: bool, field: str, description: str) -> bool:
        if not ok and field not in self:
            self[field] = description
        return ok

    def raise_any(self):
        if self:
            raise InvalidRequest(dict(self))


def _raise_any(violations: dict[str, str], **free_text: str) -> None:
    """Raises for the wire's violations, and for free text holding a card number: such text would be
    stored and shown in clear, where only the vault may keep a card number."""
    for field, text in free_text.items():
        if field not in violations and text and contains_card_number(text):
            violations = {**violations, field: "must not contain a card number; send cards only as a card"}
    if violations:
        raise InvalidRequest(violations)


def _amount(fields) -> Money | None:
    """The request's amount once validated: present, or None where it is optional and absent."""
    return Money(fields.amount_minor, fields.currency) if fields.has_amount else None


def _card(fields) -> CardDetails:
    """The card of validated AuthorizeFields (method "card") or TokenizeFields: both use the same names."""
    return CardDetails(Sensitive(fields.card_number), fields.card_exp_month, fields.card_exp_year,
                       Sensitive(fields.card_cvv), fields.card_holder_name)


def _authorize(merchant_id: str, fields, year_month: tuple[int, int]) -> AuthorizeCommand:
    _raise_any(wire.validate_authorize(fields, year_month[0], year_month[1]),
               merchant_reference=fields.merchant_reference, description=fields.description)
    card = wallet = card_token = None
    method = fields.method
    if method == "card":
        card = _card(fields)
    elif method == "wallet":
        wallet = WalletDetails(fields.wallet_provider, Sensitive(fields.wallet_token))
    elif method == "card_token":
        card_token = TokenReference(fields.card_token, Sensitive(fields.card_token_cvv))
    return AuthorizeCommand(merchant_id, fields.idempotency_key, fields.merchant_reference, _amount(fields), card,
                            wallet, fields.description, card_token, fields.allow_partial_authorization)


def _capture(merchant_id: str, fields) -> CaptureCommand:
    _raise_any(wire.validate_capture(fields))
    return CaptureCommand(merchant_id, fields.idempotency_key, fields.payment_id, _amount(fields))


def _void(merchant_id: str, fields) -> VoidCommand:
    _raise_any(wire.validate_void(fields))
    return VoidCommand(merchant_id, fields.idempotency_key, fields.payment_id)


def _refund(merchant_id: str, fields) -> RefundCommand:
    _raise_any(wire.validate_refund(fields), reason=fields.reason)
    return RefundCommand(merchant_id, fields.idempotency_key, fields.payment_id, _amount(fields), fields.reason)


_MISSING_OPERATION = {"operation": "is required: one of authorize, capture, void, refund"}
_SEVERAL_OPERATIONS = {"operation": "must be exactly one of authorize, capture, void, refund; the item sets several"}


def command_from_fields(merchant_id: str, fields, year_month: tuple[int, int]):
    """The command for one decoded request (a batch item's, say), or InvalidRequest naming each bad field.

    `fields` comes from a wire.decode_* function; `year_month` is today's (year, month), for the card
    expiry check.
    """
    kind = fields.kind
    if kind == "authorize":
        return _authorize(merchant_id, fields, year_month)
    if kind == "capture":
        return _capture(merchant_id, fields)
    if kind == "void":
        return _void(merchant_id, fields)
    if kind == "refund":
        return _refund(merchant_id, fields)
    if fields.operation_cases > 1:
        raise InvalidRequest(dict(_SEVERAL_OPERATIONS))
    raise InvalidRequest(dict(_MISSING_OPERATION))


def authorize_command(merchant_id: str, body: bytes, year_month: tuple[int, int]) -> AuthorizeCommand:
    """`year_month` is today's (year, month), for the card expiry check."""
    return _authorize(merchant_id, _decode(wire.decode_authorize, body), year_month)


def capture_command(merchant_id: str, body: bytes) -> CaptureCommand:
    return _capture(merchant_id, _decode(wire.decode_capture, body))


def void_command(merchant_id: str, body: bytes) -> VoidCommand:
    return _void(merchant_id, _decode(wire.decode_void, body))


def refund_command(merchant_id: str, body: bytes) -> RefundCommand:
    return _refund(merchant_id, _decode(wire.decode_refund, body))


def tokenize_command(merchant_id: str, body: bytes, year_month: tuple[int, int]) -> TokenizeCommand:
    """The card to store, checked as an authorization's card is but with no CVV allowed; `year_month`
    is today's (year, month), for the expiry check."""
    fields = _decode(wire.decode_tokenize, body)
    _raise_any(wire.validate_tokenize(fields, year_month[0], year_month[1]))
    return TokenizeCommand(merchant_id, _card(fields))


def _payment_id(violations, value: str) -> None:
    if violations.check(bool(value), "payment_id", "is required"):
        violations.check(bool(_PAYMENT_ID.match(value)), "payment_id", "is not a payment id (pay_ and 26 characters)")


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

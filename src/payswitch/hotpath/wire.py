"""Request bytes into flat field objects, and the field rules of the edge: the pure-Python twin.

The compiled twin in ext/payswitch/_speedups/wire.pyx has the same names and behaviour; pick between
them only through payswitch.hotpath. This twin is the readable reference: it lets protobuf's own parser
decode, so it is right by construction, and it checks fields with the regular expressions the rules
were first written in.

Decoding gives exactly what `switch_pb2.X.FromString` gives for the same bytes (defaults for absent
fields, the last value of a repeated scalar, merged repeats of a submessage, the last case of a oneof,
unknown fields skipped), flattened into one object per request, plus what a message object cannot
show: how many distinct cases of a oneof the bytes set, since a request naming two payment methods (or a
batch item two operations) is refused rather than read as its last one:

    every operation   kind ("authorize", "capture", "void", "refund"), idempotency_key
    authorize         merchant_reference, description, allow_partial_authorization
    capture, refund   payment_id
    refund            reason
    with an amount    has_amount (whether `amount` was present), amount_minor, currency,
                      has_exponent (whether `amount.exponent` was present), exponent
    authorize         method: "card", "wallet", "card_token" or None (the oneof's last case);
                      method_cases: how many distinct cases the bytes set (0 to 3);
                      card_number, card_exp_month, card_exp_year, card_cvv, card_holder_name;
                      wallet_provider, wallet_token; card_token, card_token_cvv
                      (each case's fields keep their defaults unless that case is set)
    a Tokenize call   kind "tokenize", has_card (whether `card` was present), card_number,
                      card_exp_month, card_exp_year, card_cvv, card_holder_name (the card's fields
                      under authorize's names, so one set of card rules serves both)

A batch item with no operation, or with more than one distinct operation, decodes to a NoOperation,
whose kind is None and whose operation_cases says how many it set. WireError is raised
exactly when FromString raises DecodeError. The validate_* functions return the violations (field path
-> description; empty when valid) of server/validation.py's rules, in the order it finds them.

Field objects are read-only, never pickled, and their repr masks the card number to its first six and
last four digits and leaves out every CVV and the wallet token. A card token is shown: it stands in for
a card number precisely so that it may be logged, and only its own merchant can pay with it.
"""

import re
from dataclasses import dataclass
from typing import ClassVar

from google.protobuf import empty_pb2, unknown_fields
from google.protobuf.message import DecodeError

from ..payments.cards import luhn_valid
from ..payments.money import CURRENCY_EXPONENTS, MAX_AMOUNT_MINOR
from ..v1 import switch_pb2

#: The attributes of each kind's field object besides `kind`, in declaration order.
FIELD_NAMES: dict[str | None, tuple[str, ...]] = {
    "authorize": ("idempotency_key", "merchant_reference", "has_amount", "amount_minor", "currency",
                  "has_exponent", "exponent", "method", "method_cases", "card_number", "card_exp_month",
                  "card_exp_year", "card_cvv", "card_holder_name", "wallet_provider", "wallet_token", "card_token",
                  "card_token_cvv", "description", "allow_partial_authorization"),
    "capture": ("idempotency_key", "payment_id", "has_amount", "amount_minor", "currency", "has_exponent",
                "exponent"),
    "void": ("idempotency_key", "payment_id"),
    "refund": ("idempotency_key", "payment_id", "has_amount", "amount_minor", "currency", "has_exponent",
               "exponent", "reason"),
    "tokenize": ("has_card", "card_number", "card_exp_month", "card_exp_year", "card_cvv", "card_holder_name"),
    None: ("operation_cases",),
}

#: Left out of every repr: they must never reach a log line.
SECRET_FIELDS = frozenset({"card_cvv", "wallet_token", "card_token_cvv"})


class WireError(ValueError):
    """The bytes are not a valid message of the named type (protobuf's DecodeError, as our own type).

    The message names the type and never quotes the bytes, which may hold card data.
    """

    def __init__(self, message_name: str):
        super().__init__(f"not a valid {message_name}")
        self.message_name = message_name


# ---- field objects --------------------------------------------------------------------------------

def mask_card_number(number: str) -> str:
    """The first six and last four characters with the rest starred; all starred when under 13 long,
    so at least three characters always stay hidden."""
    if len(number) < 13:
        return "*" * len(number)
    return number[:6] + "*" * (len(number) - 10) + number[-4:]


def describe_fields(fields) -> str:
    """The repr of a field object of either twin: card number masked, secrets left out."""
    parts = []
    for name in FIELD_NAMES[fields.kind]:
        if name in SECRET_FIELDS:
            continue
        value = getattr(fields, name)
        if name == "card_number":
            value = mask_card_number(value)
        parts.append(f"{name}={value!r}")
    return f"{type(fields).__name__}({', '.join(parts)})"


class _FieldsBase:
    __slots__ = ()

    def __repr__(self) -> str:
        return describe_fields(self)

    def __reduce__(self):
        raise TypeError("request fields hold card data and are not picklable")


@dataclass(frozen=True, slots=True, repr=False, eq=False)
class AuthorizeFields(_FieldsBase):
    kind: ClassVar[str] = "authorize"
    idempotency_key: str
    merchant_reference: str
    has_amount: bool
    amount_minor: int
    currency: str
    has_exponent: bool
    exponent: int
    method: str | None
    method_cases: int
    card_number: str
    card_exp_month: int
    card_exp_year: int
    card_cvv: str
    card_holder_name: str
    wallet_provider: str
    wallet_token: str
    card_token: str
    card_token_cvv: str
    description: str
    allow_partial_authorization: bool


@dataclass(frozen=True, slots=True, repr=False, eq=False)
class CaptureFields(_FieldsBase):
    kind: ClassVar[str] = "capture"
    idempotency_key: str
    payment_id: str
    has_amount: bool
    amount_minor: int
    currency: str
    has_exponent: bool
    exponent: int


@dataclass(frozen=True, slots=True, repr=False, eq=False)
class VoidFields(_FieldsBase):
    kind: ClassVar[str] = "void"
    idempotency_key: str
    payment_id: str


@dataclass(frozen=True, slots=True, repr=False, eq=False)
class RefundFields(_FieldsBase):
    kind: ClassVar[str] = "refund"
    idempotency_key: str
    payment_id: str
    has_amount: bool
    amount_minor: int
    currency: str
    has_exponent: bool
    exponent: int
    reason: str


@dataclass(frozen=True, slots=True, repr=False, eq=False)
class TokenizeFields(_FieldsBase):
    kind: ClassVar[str] = "tokenize"
    has_card: bool
    card_number: str
    card_exp_month: int
    card_exp_year: int
    card_cvv: str
    card_holder_name: str


@dataclass(frozen=True, slots=True, repr=False, eq=False)
class NoOperation(_FieldsBase):
    """A batch item whose `operation` oneof is not set, or set to more than one case."""

    kind: ClassVar[None] = None
    operation_cases: int = 0


# ---- decoding -------------------------------------------------------------------------------------

def _parse(message_type, body: bytes):
    try:
        return message_type.FromString(body)
    except DecodeError:
        raise WireError(message_type.DESCRIPTOR.full_name) from None


def _amount(request) -> tuple:
    if not request.HasField("amount"):
        return False, 0, "", False, 0
    amount = request.amount
    return True, amount.amount_minor, amount.currency, amount.HasField("exponent"), amount.exponent


_DELIMITED = 2
_METHOD_NUMBERS = frozenset(field.number for field in
                            switch_pb2.AuthorizeRequest.DESCRIPTOR.oneofs_by_name["method"].fields)
_OPERATION_NUMBERS = frozenset(field.number for field in
                               switch_pb2.BatchItem.DESCRIPTOR.oneofs_by_name["operation"].fields)


def _top_level_fields(body: bytes) -> list:
    """(number, wire type, data) of each field of well-formed message bytes, in wire order: protobuf
    keeps every field of bytes parsed as Empty as an unknown one."""
    return [(field.field_number, field.wire_type, field.data)
            for field in unknown_fields.UnknownFieldSet(empty_pb2.Empty.FromString(body))]


def _cases(fields: list, numbers: frozenset) -> int:
    """How many distinct members of a oneof (its field numbers) the fields set."""
    return len({number for number, wire_type, _ in fields if wire_type == _DELIMITED and number in numbers})


def _authorize_fields(request, body: bytes) -> AuthorizeFields:
    # An unset case reads as its message's defaults, so only the chosen case contributes values.
    card, wallet, card_token = request.card, request.wallet, request.card_token
    return AuthorizeFields(request.idempotency_key, request.merchant_reference, *_amount(request),
                           request.WhichOneof("method"), _cases(_top_level_fields(body), _METHOD_NUMBERS),
                           card.number, card.exp_month, card.exp_year, card.cvv, card.holder_name, wallet.provider,
                           wallet.token, card_token.token, card_token.cvv, request.description,
                           request.allow_partial_authorization)


def _capture_fields(request) -> CaptureFields:
    return CaptureFields(request.idempotency_key, request.payment_id, *_amount(request))


def _void_fields(request) -> VoidFields:
    return VoidFields(request.idempotency_key, request.payment_id)


def _refund_fields(request) -> RefundFields:
    return RefundFields(request.idempotency_key, request.payment_id, *_amount(request), request.reason)


def decode_authorize(body: bytes) -> AuthorizeFields:
    return _authorize_fields(_parse(switch_pb2.AuthorizeRequest, body), bytes(body))


def decode_capture(body: bytes) -> CaptureFields:
    return _capture_fields(_parse(switch_pb2.CaptureRequest, body))


def decode_void(body: bytes) -> VoidFields:
    return _void_fields(_parse(switch_pb2.VoidRequest, body))


def decode_refund(body: bytes) -> RefundFields:
    return _refund_fields(_parse(switch_pb2.RefundRequest, body))


def decode_tokenize(body: bytes) -> TokenizeFields:
    request = _parse(switch_pb2.TokenizeRequest, body)
    card = request.card
    return TokenizeFields(request.HasField("card"), card.number, card.exp_month, card.exp_year, card.cvv,
                          card.holder_name)


_ITEM_FIELDS = {"capture": _capture_fields, "void": _void_fields, "refund": _refund_fields}


def decode_batch(body: bytes) -> list:
    """One field object per BatchRequest item, in order; NoOperation for an item with none set or more
    than one."""
    request = _parse(switch_pb2.BatchRequest, body)
    item_bodies = [data for number, wire_type, data in _top_level_fields(bytes(body))
                   if number == 1 and wire_type == _DELIMITED]
    items = []
    for item, item_body in zip(request.items, item_bodies, strict=True):
        operation = item.WhichOneof("operation")
        item_fields = _top_level_fields(item_body)
        cases = _cases(item_fields, _OPERATION_NUMBERS)
        if operation is None or cases > 1:
            items.append(NoOperation(cases))
        elif operation == "authorize":
            # The authorize case as parsed: its occurrences merged, as protobuf concatenates them.
            number = item.DESCRIPTOR.fields_by_name["authorize"].number
            authorize_body = b"".join(data for field, wire_type, data in item_fields
                                      if field == number and wire_type == _DELIMITED)
            items.append(_authorize_fields(item.authorize, authorize_body))
        else:
            items.append(_ITEM_FIELDS[operation](getattr(item, operation)))
    return items


# ---- validation -----------------------------------------------------------------------------------
# The rules of server/validation.py: within one field the first violation found is the one reported,
# and fields are reported in the order they are checked.

_KEY = re.compile(r"[A-Za-z0-9_.\-]{1,64}\Z")
_PRINTABLE = re.compile(r"[\x20-\x7e]+\Z")
_PAYMENT_ID = re.compile(r"pay_[0-9a-z]{26}\Z")
# Lowercase Crockford base32, payments/ids.py's alphabet: 0-9 and a-z without i, l, o, u.
_CARD_TOKEN = re.compile(r"tok_[0-9a-hjkmnp-tv-z]{26}\Z")
_DIGITS = re.compile(r"[0-9]+\Z")
_PROVIDER = re.compile(r"[a-z0-9_]{1,32}\Z")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def _check(violations: dict, ok: bool, field: str, description: str) -> bool:
    if not ok and field not in violations:
        violations[field] = description
    return ok


def _text(violations, value: str, field: str, max_length: int, required: bool) -> None:
    if not value:
        _check(violations, not required, field, "is required")
    elif _check(violations, len(value) <= max_length, field, f"must be at most {max_length} characters"):
        _check(violations, not _CONTROL.search(value), field, "must not contain control characters")


def _idempotency_key(violations, value: str) -> None:
    if _check(violations, bool(value), "idempotency_key", "is required"):
        _check(violations, bool(_KEY.match(value)), "idempotency_key", "must be 1 to 64 of A-Z a-z 0-9 _ - .")


def _payment_id(violations, value: str) -> None:
    if _check(violations, bool(value), "payment_id", "is required"):
        _check(violations, bool(_PAYMENT_ID.match(value)), "payment_id",
               "is not a payment id (pay_ and 26 characters)")


def _money(violations, fields) -> None:
    currency, amount_minor = fields.currency, fields.amount_minor
    exponent = CURRENCY_EXPONENTS.get(currency)
    ok = _check(violations, exponent is not None, "amount.currency",
                "is not an ISO 4217 currency code" if currency else "is required")
    ok &= _check(violations, amount_minor > 0, "amount.amount_minor", "must be greater than zero")
    ok &= _check(violations, amount_minor <= MAX_AMOUNT_MINOR, "amount.amount_minor",
                 f"must be at most {MAX_AMOUNT_MINOR}")
    if ok and fields.has_exponent:
        _check(violations, fields.exponent == exponent, "amount.exponent",
               f"{currency} has {exponent} decimal places, not {fields.exponent}")


def _cvv(violations, cvv: str, field: str) -> None:
    if cvv:
        _check(violations, len(cvv) in (3, 4) and bool(_DIGITS.match(cvv)), field, "must be 3 or 4 digits")


def _card(violations, fields, year_month: tuple[int, int], tokenizing: bool = False) -> None:
    """The card of an authorization, or with `tokenizing` of a Tokenize call, which takes no CVV: the
    vault never stores one."""
    number, month, year, cvv = fields.card_number, fields.card_exp_month, fields.card_exp_year, fields.card_cvv
    if _check(violations, bool(number), "card.number", "is required"):
        if _check(violations, 12 <= len(number) <= 19 and bool(_DIGITS.match(number)), "card.number",
                  "must be 12 to 19 digits"):
            _check(violations, luhn_valid(number), "card.number", "fails the Luhn check")
    _check(violations, 1 <= month <= 12, "card.exp_month", "must be 1 to 12")
    if _check(violations, 2000 <= year <= 2099, "card.exp_year", "must be a four-digit year"):
        if 1 <= month <= 12:
            _check(violations, (year, month) >= year_month, "card.exp_year", "the card has expired")
    if tokenizing:
        _check(violations, not cvv, "card.cvv", "is never stored; send it with the authorization")
    else:
        _cvv(violations, cvv, "card.cvv")
    _text(violations, fields.card_holder_name, "card.holder_name", 128, required=False)


def _wallet(violations, fields) -> None:
    _check(violations, bool(_PROVIDER.match(fields.wallet_provider)), "wallet.provider",
           "must be 1 to 32 of a-z 0-9 _")
    token = fields.wallet_token
    if _check(violations, bool(token), "wallet.token", "is required"):
        _check(violations, len(token) <= 2048 and bool(_PRINTABLE.match(token)), "wallet.token",
               "must be at most 2048 printable ASCII characters")


def _card_token(violations, fields) -> None:
    token = fields.card_token
    if _check(violations, bool(token), "card_token.token", "is required"):
        _check(violations, bool(_CARD_TOKEN.match(token)), "card_token.token",
               "is not a card token (tok_ and 26 characters)")
    _cvv(violations, fields.card_token_cvv, "card_token.cvv")


def validate_authorize(fields, year: int, month: int) -> dict[str, str]:
    """`year` and `month` are today's, for the card expiry check."""
    violations: dict[str, str] = {}
    _idempotency_key(violations, fields.idempotency_key)
    reference = fields.merchant_reference
    if _check(violations, bool(reference), "merchant_reference", "is required"):
        _check(violations, len(reference) <= 64 and bool(_PRINTABLE.match(reference)), "merchant_reference",
               "must be 1 to 64 printable ASCII characters")
    if _check(violations, fields.has_amount, "amount", "is required"):
        _money(violations, fields)
    method = fields.method
    if fields.method_cases > 1:
        _check(violations, False, "method", "must be exactly one of card, wallet or card_token; the request sets "
                                            "several")
    elif method == "card":
        _card(violations, fields, (year, month))
    elif method == "wallet":
        _wallet(violations, fields)
    elif method == "card_token":
        _card_token(violations, fields)
    _check(violations, method is not None, "method", "one of card, wallet or card_token is required")
    _text(violations, fields.description, "description", 256, required=False)
    return violations


def validate_capture(fields) -> dict[str, str]:
    violations: dict[str, str] = {}
    _idempotency_key(violations, fields.idempotency_key)
    _payment_id(violations, fields.payment_id)
    if fields.has_amount:
        _money(violations, fields)
    return violations


def validate_void(fields) -> dict[str, str]:
    violations: dict[str, str] = {}
    _idempotency_key(violations, fields.idempotency_key)
    _payment_id(violations, fields.payment_id)
    return violations


def validate_refund(fields) -> dict[str, str]:
    violations: dict[str, str] = {}
    _idempotency_key(violations, fields.idempotency_key)
    _payment_id(violations, fields.payment_id)
    if fields.has_amount:
        _money(violations, fields)
    _text(violations, fields.reason, "reason", 256, required=False)
    return violations


def validate_tokenize(fields, year: int, month: int) -> dict[str, str]:
    """`year` and `month` are today's, for the card expiry check."""
    violations: dict[str, str] = {}
    if _check(violations, fields.has_card, "card", "is required"):
        _card(violations, fields, (year, month), tokenizing=True)
    return violations

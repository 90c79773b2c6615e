"""The request decoder and field rules of the hot path, pinned for both backends against protobuf itself.

protobuf's parser (`FromString`, upb) is the oracle for decoding: every input, valid or not, must give
the same verdict (WireError exactly when FromString raises DecodeError) and the same field values; how
many cases of a oneof the bytes set, which a message object forgets, is read from the same bytes parsed
as google.protobuf.Empty, whose unknown fields protobuf lists in wire order. The
twins must also give equal violation dicts, in the same order. Hypothesis generates messages that
protobuf serialized, messages assembled piece by piece with repeated, merged, out-of-order and unknown
fields, random bytes, and mutations of valid messages.
"""

import itertools
import pickle
import string

import pytest
from conftest import BACKEND_NAMES, NO_EXTENSIONS, load_backend
from google.protobuf import empty_pb2
from google.protobuf.unknown_fields import UnknownFieldSet
from google.protobuf.message import DecodeError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from payswitch import hotpath
from payswitch.payments import ids
from payswitch.payments.money import CURRENCY_EXPONENTS
from payswitch.v1 import switch_pb2, types_pb2

MESSAGE_TYPES = {"authorize": switch_pb2.AuthorizeRequest, "capture": switch_pb2.CaptureRequest,
                 "void": switch_pb2.VoidRequest, "refund": switch_pb2.RefundRequest,
                 "tokenize": switch_pb2.TokenizeRequest, "batch": switch_pb2.BatchRequest}
KINDS = ("authorize", "capture", "void", "refund")  # a batch item's operations
ERROR = "WireError"
TODAY = (2026, 6)
VISA = "4242424242424242"
PAYMENT_ID = "pay_" + "0123456789abcdefghijklmnop"
CARD_TOKEN = "tok_" + "0123456789abcdefghjkmnpqrs"
DIFFERENTIAL = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@pytest.fixture(scope="module", params=BACKEND_NAMES)
def wire(request):
    """The wire module of one backend: tests get it only from here."""
    return load_backend(request.param, "wire")


@pytest.fixture(scope="module")
def pure_wire():
    return load_backend("pure", "wire")


# ---- the wire format, by hand ---------------------------------------------------------------------

def varint(value: int, length: int | None = None) -> bytes:
    """`value` as a varint, padded with continuation bytes to `length` (an overlong form) if given."""
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value or (length is not None and len(out) + 1 < length):
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def tag(number: int, wire_type: int) -> bytes:
    return varint(number << 3 | wire_type)


def delimited(number: int, payload: bytes) -> bytes:
    return tag(number, 2) + varint(len(payload)) + payload


def text(number: int, value: str) -> bytes:
    return delimited(number, value.encode())


def number(field: int, value: int) -> bytes:
    return tag(field, 0) + varint(value & (2**64 - 1))


def group(field: int, payload: bytes = b"") -> bytes:
    return tag(field, 3) + payload + tag(field, 4)


def nested_groups(count: int) -> bytes:
    return b"".join(tag(9, 3) for _ in range(count)) + b"".join(tag(9, 4) for _ in range(count))


# ---- the oracle: protobuf's own parser, flattened as the field objects are --------------------------

def _amount_values(request) -> dict:
    if not request.HasField("amount"):
        return dict(has_amount=False, amount_minor=0, currency="", has_exponent=False, exponent=0)
    amount = request.amount
    return dict(has_amount=True, amount_minor=amount.amount_minor, currency=amount.currency,
                has_exponent=amount.HasField("exponent"), exponent=amount.exponent)


def fields_on_the_wire(body: bytes) -> list[tuple[int, bytes]]:
    """(field number, data) of each length-delimited top-level field of well-formed bytes, in order."""
    parsed = empty_pb2.Empty.FromString(body)
    return [(field.field_number, field.data) for field in UnknownFieldSet(parsed) if field.wire_type == 2]


def distinct_cases(body: bytes, numbers: set[int]) -> int:
    return len({number for number, _ in fields_on_the_wire(body) if number in numbers})


def request_values(kind: str, request, body: bytes) -> dict:
    if kind == "authorize":
        card, wallet, card_token = request.card, request.wallet, request.card_token
        return dict(idempotency_key=request.idempotency_key, merchant_reference=request.merchant_reference,
                    **_amount_values(request), method=request.WhichOneof("method"),
                    method_cases=distinct_cases(body, {4, 5, 7}), card_number=card.number,
                    card_exp_month=card.exp_month, card_exp_year=card.exp_year, card_cvv=card.cvv,
                    card_holder_name=card.holder_name, wallet_provider=wallet.provider, wallet_token=wallet.token,
                    card_token=card_token.token, card_token_cvv=card_token.cvv, description=request.description,
                    allow_partial_authorization=request.allow_partial_authorization)
    if kind == "tokenize":
        card = request.card
        return dict(has_card=request.HasField("card"), card_number=card.number, card_exp_month=card.exp_month,
                    card_exp_year=card.exp_year, card_cvv=card.cvv, card_holder_name=card.holder_name)
    values = dict(idempotency_key=request.idempotency_key, payment_id=request.payment_id)
    if kind != "void":
        values.update(_amount_values(request))
    if kind == "refund":
        values["reason"] = request.reason
    return values


def typed(values: dict) -> dict:
    """Values with their types, so that True and 1, or 0 and False, do not pass for each other."""
    return {name: (type(value).__name__, value) for name, value in values.items()}


def expected(kind: str, body: bytes):
    try:
        message = MESSAGE_TYPES[kind].FromString(body)
    except DecodeError:
        return ERROR
    if kind == "batch":
        items = []
        item_bodies = [data for number, data in fields_on_the_wire(body) if number == 1]
        for item, item_body in zip(message.items, item_bodies, strict=True):
            operation = item.WhichOneof("operation")
            cases = distinct_cases(item_body, {1, 2, 3, 4})
            if operation is None or cases > 1:
                items.append((None, typed({"operation_cases": cases})))
                continue
            number = KINDS.index(operation) + 1  # the oneof's field numbers follow KINDS
            operation_body = b"".join(data for field, data in fields_on_the_wire(item_body) if field == number)
            items.append((operation, typed(request_values(operation, getattr(item, operation), operation_body))))
        return items
    return kind, typed(request_values(kind, message, body))


def flat(wire, fields) -> tuple:
    return fields.kind, typed({name: getattr(fields, name) for name in wire.FIELD_NAMES[fields.kind]})


def observed(wire, kind: str, body: bytes):
    try:
        decoded = getattr(wire, f"decode_{kind}")(body)
    except wire.WireError as error:
        assert str(error) == f"not a valid {MESSAGE_TYPES[kind].DESCRIPTOR.full_name}"
        return ERROR
    if kind == "batch":
        return [flat(wire, fields) for fields in decoded]
    return flat(wire, decoded)


def violations(wire, fields):
    """The violations as an ordered list, so that the order of reporting is compared too."""
    if fields.kind in ("authorize", "tokenize"):
        return list(getattr(wire, f"validate_{fields.kind}")(fields, *TODAY).items())
    return list(getattr(wire, f"validate_{fields.kind}")(fields).items())


def assert_agrees(wire, pure_wire, kind: str, body: bytes) -> None:
    """`wire` decodes `body` as protobuf does, and its rules agree with the pure twin's on the result."""
    assert observed(wire, kind, body) == expected(kind, body)
    if expected(kind, body) == ERROR:
        return
    decoded = getattr(wire, f"decode_{kind}")(body)
    reference = getattr(pure_wire, f"decode_{kind}")(body)
    for fields, pure_fields in zip(decoded if kind == "batch" else [decoded],
                                   reference if kind == "batch" else [reference], strict=True):
        if fields.kind is not None:
            assert violations(wire, fields) == violations(pure_wire, pure_fields)


def test_the_switch_point_exports_the_compiled_decoder_unless_told_not_to():
    assert hotpath.BACKENDS["wire"] == ("pure" if NO_EXTENSIONS else "compiled")


# ---- examples of every field ----------------------------------------------------------------------

def card_request(**changes) -> switch_pb2.AuthorizeRequest:
    request = switch_pb2.AuthorizeRequest(
        idempotency_key="key-1", merchant_reference="order-1",
        amount=types_pb2.Money(amount_minor=1999, currency="EUR", exponent=2),
        card=types_pb2.Card(number=VISA, exp_month=12, exp_year=2030, cvv="123", holder_name="Ada Lovelace"),
        description="Two tickets")
    for name, value in changes.items():
        setattr(request, name, value)
    return request


def test_every_authorize_field_with_a_card(wire):
    fields = wire.decode_authorize(card_request().SerializeToString())
    assert fields.kind == "authorize"
    assert (fields.idempotency_key, fields.merchant_reference, fields.description) == ("key-1", "order-1", "Two tickets")
    assert (fields.has_amount, fields.amount_minor, fields.currency) == (True, 1999, "EUR")
    assert (fields.has_exponent, fields.exponent) == (True, 2)
    assert fields.method == "card"
    assert (fields.card_number, fields.card_exp_month, fields.card_exp_year) == (VISA, 12, 2030)
    assert (fields.card_cvv, fields.card_holder_name) == ("123", "Ada Lovelace")
    assert (fields.wallet_provider, fields.wallet_token) == ("", "")
    assert wire.validate_authorize(fields, *TODAY) == {}


def test_every_authorize_field_with_a_wallet(wire):
    request = card_request()
    request.wallet.provider = "applepay"
    request.wallet.token = "tok_" + "x" * 300
    fields = wire.decode_authorize(request.SerializeToString())
    assert fields.method == "wallet"
    assert (fields.wallet_provider, fields.wallet_token) == ("applepay", "tok_" + "x" * 300)
    assert (fields.card_number, fields.card_exp_month, fields.card_exp_year, fields.card_cvv,
            fields.card_holder_name) == ("", 0, 0, "", "")
    assert wire.validate_authorize(fields, *TODAY) == {}


def card_token_request(token: str = CARD_TOKEN, cvv: str = "") -> switch_pb2.AuthorizeRequest:
    request = card_request()
    request.card_token.token, request.card_token.cvv = token, cvv
    return request


def test_every_authorize_field_with_a_card_token(wire):
    fields = wire.decode_authorize(card_token_request(cvv="1234").SerializeToString())
    assert fields.method == "card_token"
    assert (fields.card_token, fields.card_token_cvv) == (CARD_TOKEN, "1234")
    assert (fields.card_number, fields.card_exp_month, fields.card_exp_year, fields.card_cvv,
            fields.card_holder_name, fields.wallet_provider, fields.wallet_token) == ("", 0, 0, "", "", "", "")
    assert (fields.idempotency_key, fields.amount_minor, fields.description) == ("key-1", 1999, "Two tickets")
    assert wire.validate_authorize(fields, *TODAY) == {}
    without_cvv = wire.decode_authorize(card_token_request().SerializeToString())
    assert (without_cvv.card_token, without_cvv.card_token_cvv) == (CARD_TOKEN, "")
    assert wire.validate_authorize(without_cvv, *TODAY) == {}


def test_a_card_or_wallet_leaves_the_card_token_fields_empty(wire):
    fields = wire.decode_authorize(card_request().SerializeToString())
    assert (fields.card_token, fields.card_token_cvv) == ("", "")


def test_every_tokenize_field(wire):
    card = types_pb2.Card(number=VISA, exp_month=12, exp_year=2030, holder_name="Ada Lovelace")
    fields = wire.decode_tokenize(switch_pb2.TokenizeRequest(card=card).SerializeToString())
    assert fields.kind == "tokenize"
    assert (fields.has_card, fields.card_number, fields.card_exp_month, fields.card_exp_year, fields.card_cvv,
            fields.card_holder_name) == (True, VISA, 12, 2030, "", "Ada Lovelace")
    assert wire.validate_tokenize(fields, *TODAY) == {}
    empty = wire.decode_tokenize(b"")
    assert (empty.has_card, empty.card_number, empty.card_exp_month) == (False, "", 0)
    assert wire.validate_tokenize(empty, *TODAY) == {"card": "is required"}


def test_capture_void_and_refund_fields(wire):
    amount = types_pb2.Money(amount_minor=500, currency="JPY", exponent=0)
    capture = wire.decode_capture(switch_pb2.CaptureRequest(idempotency_key="c", payment_id=PAYMENT_ID,
                                                            amount=amount).SerializeToString())
    assert (capture.kind, capture.idempotency_key, capture.payment_id) == ("capture", "c", PAYMENT_ID)
    assert (capture.has_amount, capture.amount_minor, capture.currency, capture.has_exponent,
            capture.exponent) == (True, 500, "JPY", True, 0)
    void = wire.decode_void(switch_pb2.VoidRequest(idempotency_key="v", payment_id=PAYMENT_ID).SerializeToString())
    assert (void.kind, void.idempotency_key, void.payment_id) == ("void", "v", PAYMENT_ID)
    refund = wire.decode_refund(switch_pb2.RefundRequest(idempotency_key="r", payment_id=PAYMENT_ID,
                                                         reason="damaged").SerializeToString())
    assert (refund.kind, refund.payment_id, refund.reason, refund.has_amount) == ("refund", PAYMENT_ID, "damaged", False)
    for fields in (capture, void, refund):
        assert violations(wire, fields) == []


def test_an_empty_message_gives_every_default(wire):
    for kind in KINDS + ("tokenize",):
        assert observed(wire, kind, b"") == expected(kind, b"")
    fields = wire.decode_authorize(b"")
    assert fields.method is None and fields.has_amount is False and fields.amount_minor == 0


def test_a_batch_gives_one_object_per_item_and_no_operation_for_an_empty_item(wire):
    batch = switch_pb2.BatchRequest(items=[
        switch_pb2.BatchItem(authorize=card_request()), switch_pb2.BatchItem(),
        switch_pb2.BatchItem(capture=switch_pb2.CaptureRequest(idempotency_key="c", payment_id=PAYMENT_ID)),
        switch_pb2.BatchItem(void=switch_pb2.VoidRequest(idempotency_key="v", payment_id=PAYMENT_ID)),
        switch_pb2.BatchItem(refund=switch_pb2.RefundRequest(idempotency_key="r", payment_id=PAYMENT_ID)),
        switch_pb2.BatchItem(authorize=card_token_request(cvv="321")),
    ]).SerializeToString()
    items = wire.decode_batch(batch)
    assert [fields.kind for fields in items] == ["authorize", None, "capture", "void", "refund", "authorize"]
    assert items[0].card_number == VISA and items[4].idempotency_key == "r"
    assert (items[5].method, items[5].card_token, items[5].card_token_cvv) == ("card_token", CARD_TOKEN, "321")
    assert observed(wire, "batch", batch) == expected("batch", batch)
    assert wire.decode_batch(b"") == []


def test_two_cases_of_a_oneof_are_counted_so_the_rules_can_refuse_them(wire, pure_wire):
    """protobuf keeps the last case; the decoder also says how many distinct cases the bytes set."""
    card_then_wallet = card_request().SerializeToString() + delimited(5, text(1, "applepay") + text(2, "t"))
    card_twice = card_request().SerializeToString() + delimited(4, text(5, "Ada"))
    for body, cases, method in ((card_then_wallet, 2, "wallet"), (card_twice, 1, "card")):
        fields = wire.decode_authorize(body)
        assert (fields.method, fields.method_cases) == (method, cases)
    violations = wire.validate_authorize(wire.decode_authorize(card_then_wallet), *TODAY)
    assert violations == {"method": "must be exactly one of card, wallet or card_token; the request sets several"}
    assert_agrees(wire, pure_wire, "authorize", card_then_wallet)
    item = delimited(1, card_request().SerializeToString()) + delimited(3, text(1, "v"))
    [fields] = wire.decode_batch(delimited(1, item))
    assert (fields.kind, fields.operation_cases) == (None, 2)
    assert_agrees(wire, pure_wire, "batch", delimited(1, item) + delimited(1, delimited(2, text(1, "c"))))


def test_allow_partial_authorization_is_read(wire):
    assert wire.decode_authorize(card_request(allow_partial_authorization=True).SerializeToString()
                                 ).allow_partial_authorization is True
    assert wire.decode_authorize(card_request().SerializeToString()).allow_partial_authorization is False
    assert wire.decode_authorize(number(8, 2**64 - 1)).allow_partial_authorization is True


def test_non_ascii_text_and_bytes_like_bodies(wire):
    body = card_request(description="Grüße, 東京 🎫", merchant_reference="é").SerializeToString()
    assert wire.decode_authorize(body).description == "Grüße, 東京 🎫"
    for wrapped in (bytearray(body), memoryview(body)):
        assert flat(wire, wire.decode_authorize(wrapped)) == flat(wire, wire.decode_authorize(body))
    with pytest.raises(TypeError):
        wire.decode_authorize("not bytes")


# ---- protobuf's semantics, one by one -------------------------------------------------------------

CARD = text(1, VISA) + number(2, 12) + text(4, "123")
WALLET = text(1, "applepay") + text(2, "tok")
TOKEN = text(1, CARD_TOKEN) + text(2, "999")
SEMANTICS = {
    "the last of a repeated string wins": ("authorize", text(1, "first") + text(1, "second")),
    "repeated money merges": ("authorize", delimited(3, number(1, 100) + text(2, "USD") + number(3, 2))
                              + delimited(3, number(1, 5))),
    "an exponent set anywhere is present": ("authorize", delimited(3, number(3, 0)) + delimited(3, number(1, 7))),
    "a repeated card merges": ("authorize", delimited(4, CARD) + delimited(4, number(3, 2030))),
    "the last oneof case wins": ("authorize", delimited(4, CARD) + delimited(5, WALLET)),
    "a oneof case set again starts afresh": ("authorize", delimited(4, CARD) + delimited(5, WALLET)
                                             + delimited(4, number(3, 2030))),
    "an empty card still sets the case": ("authorize", delimited(4, b"")),
    "a card token after a card wins": ("authorize", delimited(4, CARD) + delimited(7, TOKEN)),
    "a card after a card token wins": ("authorize", delimited(7, TOKEN) + delimited(4, CARD)),
    "a wallet after a card token wins": ("authorize", delimited(7, TOKEN) + delimited(5, WALLET)),
    "a card token set again starts afresh": ("authorize", delimited(7, TOKEN) + delimited(5, WALLET)
                                             + delimited(7, text(1, "tok_again"))),
    "a card token set again after a card starts afresh": ("authorize", delimited(7, text(2, "12")) + delimited(4, CARD)
                                                          + delimited(7, text(1, CARD_TOKEN))),
    "a repeated card token merges": ("authorize", delimited(7, text(1, CARD_TOKEN)) + number(99, 1)
                                     + delimited(7, text(2, "4321"))),
    "an empty card token still sets the case": ("authorize", delimited(7, b"")),
    "a card token as a varint leaves the case alone": ("authorize", delimited(4, CARD) + number(7, 3)),
    "unknown fields inside a card token": ("authorize", delimited(7, group(9, b"\x00\x00") + TOKEN + number(3, 1)
                                                        + tag(1, 0) + varint(5))),
    "a batch item's card token": ("batch", delimited(1, delimited(1, delimited(4, CARD) + delimited(7, TOKEN)))),
    "a tokenize card": ("tokenize", delimited(1, CARD + number(3, 2030) + text(5, "Ada"))),
    "a repeated tokenize card merges": ("tokenize", delimited(1, CARD) + number(99, 1) + delimited(1, number(3, 2030))),
    "an empty tokenize card is present": ("tokenize", delimited(1, b"")),
    "a tokenize card as a varint is unknown": ("tokenize", number(1, 7)),
    "unknown fields around a tokenize card": ("tokenize", group(9, number(1, 1)) + delimited(2, b"\xff")
                                              + delimited(1, CARD + tag(9, 5) + b"abcd")),
    "unknown fields of every wire type": ("authorize", number(99, 5) + tag(98, 1) + b"12345678" + tag(97, 5) + b"1234"
                                          + delimited(96, b"\xff\xfe") + group(95, number(1, 1)) + text(1, "k")),
    "unknown fields inside submessages": ("authorize", delimited(4, group(9, b"\x00\x00") + CARD + number(77, 1))
                                          + delimited(3, tag(66, 5) + b"abcd" + number(1, 3))),
    "a known field with the wrong wire type is unknown": ("authorize", number(1, 5) + tag(3, 0) + varint(1)
                                                          + tag(4, 5) + b"abcd" + group(6) + text(2, "r")),
    "a card as a varint leaves the case alone": ("authorize", delimited(4, CARD) + number(5, 3)),
    "field 0 inside an unknown group": ("authorize", group(9, b"\x00\x00" + b"\x02\x00" + b"\x03\x04")),
    "invalid UTF-8 in an unknown field": ("authorize", delimited(9, b"\xc3\x28")),
    "uint32 keeps the low 32 bits": ("authorize", delimited(4, number(2, 2**32 + 5) + number(3, 2**64 - 1))),
    "int64 wraps": ("authorize", delimited(3, number(1, 2**64 - 1))),
    "a 10-byte varint keeps bit 63 of its last byte": ("authorize", delimited(3, tag(1, 0) + b"\x80" * 9 + b"\x7f")),
    "the uint32 exponent keeps the low 32 bits": ("capture", delimited(3, number(3, 2**32 + 2))),
    "overlong tags and lengths of 5 bytes": ("authorize", varint(10, 5) + varint(2, 5) + b"ab"),
    "a tag of the largest field number": ("void", tag(2**29 - 1, 0) + b"\x01"),
    "100 nested groups": ("void", b"".join(tag(9, 3) for _ in range(100)) + b"".join(tag(9, 4) for _ in range(100))),
    "99 nested groups in a card": ("authorize", delimited(4, b"".join(tag(9, 3) for _ in range(99))
                                                          + b"".join(tag(9, 4) for _ in range(99)))),
    "a batch item's repeated operation merges": ("batch", delimited(1, delimited(1, text(1, "k"))
                                                                    + delimited(1, text(2, "r")))),
    "a batch item's last operation wins": ("batch", delimited(1, delimited(1, text(1, "k")) + delimited(3, text(2, "p")))),
    "a batch item's operation set again starts afresh": ("batch", delimited(1, delimited(1, text(1, "k"))
                                                                            + delimited(2, b"")
                                                                            + delimited(1, text(2, "r")))),
    "a batch item with only unknown fields": ("batch", delimited(1, number(1, 1) + number(9, 9))),
    "items as a group are unknown": ("batch", group(1) + delimited(1, b"")),
}


@pytest.mark.parametrize("kind, body", SEMANTICS.values(), ids=SEMANTICS.keys())
def test_decodes_as_protobuf_does(wire, pure_wire, kind, body):
    assert expected(kind, body) != ERROR
    assert_agrees(wire, pure_wire, kind, body)


def test_every_sequence_of_up_to_three_method_cases(wire, pure_wire):
    """Each case of the `method` oneof with all its fields or none, in every order: a value left over
    from an earlier occurrence of a case, which protobuf clears when another case came between, shows."""
    occurrences = [delimited(field, payload) for field, full in ((4, CARD + number(3, 2030) + text(5, "Ada")),
                                                                 (5, WALLET), (7, TOKEN))
                   for payload in (full, b"")]
    for length in range(4):
        for sequence in itertools.product(occurrences, repeat=length):
            assert_agrees(wire, pure_wire, "authorize", text(1, "k") + b"".join(sequence))


MALFORMED = {
    "truncated varint": tag(9, 0) + b"\x80",
    "truncated tag": b"\x80",
    "11-byte varint": tag(9, 0) + b"\xff" * 10 + b"\x01",
    "length past the end": tag(1, 2) + varint(5) + b"abc",
    "length of 6 bytes": tag(1, 2) + varint(1, 6) + b"a",
    "tag of 6 bytes": varint(10, 6) + varint(1) + b"a",
    "tag above 2**32 - 1": b"\xf8\xff\xff\xff\x1f\x00",
    "truncated fixed64": tag(9, 1) + b"1234567",
    "truncated fixed32": tag(9, 5) + b"123",
    "field number 0": b"\x00\x00",
    "field number 0, length-delimited": b"\x02\x00",
    "field number 0 in a card": delimited(4, b"\x00\x00"),
    "wire type 6": tag(9, 6),
    "wire type 7": tag(9, 7),
    "an end of group at the top": tag(9, 4),
    "an end of group in a card": delimited(4, tag(9, 4)),
    "a mismatched end of group": tag(9, 3) + tag(10, 4),
    "nested groups closed in the wrong order": tag(9, 3) + tag(10, 3) + tag(9, 4) + tag(10, 4),
    "an unterminated group": tag(9, 3) + number(1, 1),
    "a group left open at the end of a card": delimited(4, tag(9, 3)) + tag(9, 4),
    "101 nested groups": b"".join(tag(9, 3) for _ in range(101)) + b"".join(tag(9, 4) for _ in range(101)),
    "100 nested groups in a card": delimited(4, b"".join(tag(9, 3) for _ in range(100))
                                             + b"".join(tag(9, 4) for _ in range(100))),
    "a varint running past its submessage": delimited(3, tag(1, 0) + b"\x80") + b"\x01",
    "a fixed64 running past its submessage": delimited(4, tag(9, 1) + b"1234") + b"5678",
    "a string running past its submessage": delimited(4, tag(1, 2) + varint(4) + b"42") + b"42",
    "invalid UTF-8": delimited(1, b"\xc3\x28"),
    "invalid UTF-8 in an overwritten string": delimited(1, b"\xff") + text(1, "fine"),
    "a UTF-8 surrogate": delimited(2, b"\xed\xa0\x80"),
    "an overlong UTF-8 form": delimited(6, b"\xc0\x80"),
    "a code point above U+10FFFF": delimited(6, b"\xf4\x90\x80\x80"),
    "a truncated UTF-8 sequence": delimited(6, b"ab\xe2\x82"),
    "invalid UTF-8 in a card": delimited(4, delimited(1, b"42\x80")),
    "invalid UTF-8 in a replaced oneof case": delimited(5, delimited(2, b"\xff")) + delimited(4, CARD),
    "invalid UTF-8 in a card token": delimited(7, delimited(1, b"tok_\x80")),
    "invalid UTF-8 in a replaced card token": delimited(7, delimited(2, b"\xff")) + delimited(4, CARD),
    "field number 0 in a card token": delimited(7, b"\x00\x00"),
    "an end of group in a card token": delimited(7, tag(9, 4)),
    "a string running past its card token": delimited(7, tag(1, 2) + varint(4) + b"to") + b"k_",
    "100 nested groups in a card token": delimited(7, nested_groups(100)),
}

TOKENIZE_MALFORMED = {
    "truncated varint": tag(9, 0) + b"\x80",
    "field number 0": b"\x00\x00",
    "field number 0 in the card": delimited(1, b"\x00\x00"),
    "invalid UTF-8 in the card": delimited(1, delimited(1, b"42\x80")),
    "invalid UTF-8 in an overwritten cvv": delimited(1, delimited(4, b"\xff")) + delimited(1, text(4, "1")),
    "a card running past the end": tag(1, 2) + varint(9) + CARD[:3],
    "an end of group in the card": delimited(1, tag(9, 4)),
    "100 nested groups in the card": delimited(1, nested_groups(100)),
}


@pytest.mark.parametrize("body", MALFORMED.values(), ids=MALFORMED.keys())
def test_refuses_what_protobuf_refuses(wire, body):
    assert expected("authorize", body) == ERROR, "protobuf accepts this: the case is wrong, not the decoder"
    with pytest.raises(wire.WireError):
        wire.decode_authorize(body)


@pytest.mark.parametrize("body", TOKENIZE_MALFORMED.values(), ids=TOKENIZE_MALFORMED.keys())
def test_refuses_the_tokenize_requests_protobuf_refuses(wire, body):
    assert expected("tokenize", body) == ERROR, "protobuf accepts this: the case is wrong, not the decoder"
    with pytest.raises(wire.WireError, match="TokenizeRequest"):
        wire.decode_tokenize(body)


def test_a_malformed_batch_item_fails_the_whole_batch(wire):
    body = delimited(1, delimited(2, text(1, "ok"))) + delimited(1, delimited(1, delimited(4, b"\x00\x00")))
    assert expected("batch", body) == ERROR
    with pytest.raises(wire.WireError, match="BatchRequest"):
        wire.decode_batch(body)


@pytest.mark.parametrize("wrap, allowed", [
    (lambda groups: groups, 100),
    (lambda groups: delimited(1, groups), 99),
    (lambda groups: delimited(1, delimited(1, groups)), 98),
    (lambda groups: delimited(1, delimited(1, delimited(4, groups))), 97),
    (lambda groups: delimited(1, delimited(4, delimited(3, groups))), 97),
    (lambda groups: delimited(1, delimited(1, delimited(7, groups))), 97),
], ids=["batch", "item", "operation", "card", "amount", "card_token"])
def test_nesting_is_limited_to_100_levels_counted_from_the_batch(wire, wrap, allowed):
    assert observed(wire, "batch", wrap(nested_groups(allowed))) == expected("batch", wrap(nested_groups(allowed)))
    assert expected("batch", wrap(nested_groups(allowed + 1))) == ERROR
    with pytest.raises(wire.WireError):
        wire.decode_batch(wrap(nested_groups(allowed + 1)))


def test_a_tokenize_cards_nesting_is_limited_as_protobuf_limits_it(wire):
    for body in (delimited(1, nested_groups(99)), nested_groups(100)):
        assert observed(wire, "tokenize", body) == expected("tokenize", body) != ERROR
    for body in (delimited(1, nested_groups(100)), nested_groups(101)):
        assert expected("tokenize", body) == ERROR
        with pytest.raises(wire.WireError):
            wire.decode_tokenize(body)


def test_the_error_is_the_pure_twins_value_error_and_quotes_no_bytes(wire, pure_wire):
    assert wire.WireError is pure_wire.WireError
    assert issubclass(wire.WireError, ValueError)
    body = card_request().SerializeToString()[:-1]
    with pytest.raises(wire.WireError) as caught:
        wire.decode_authorize(body)
    assert VISA not in str(caught.value) and VISA not in repr(caught.value)
    assert caught.value.message_name == "payswitch.v1.AuthorizeRequest"


# ---- field objects never show card data -----------------------------------------------------------

def test_repr_masks_the_card_number_and_leaves_out_the_cvv_and_wallet_token(wire, pure_wire):
    request = card_request()
    card_fields = wire.decode_authorize(request.SerializeToString())
    request.wallet.provider, request.wallet.token = "applepay", "secret-token-value"
    wallet_fields = wire.decode_authorize(request.SerializeToString())
    shown = repr(card_fields) + str(card_fields) + repr(wallet_fields)
    assert VISA not in shown and "424242******4242" in shown
    assert "123" not in shown.replace("1234", "") and "card_cvv" not in shown
    assert "secret-token-value" not in shown and "wallet_token" not in shown
    assert repr(card_fields) == repr(pure_wire.decode_authorize(card_request().SerializeToString()))
    short = wire.decode_authorize(delimited(4, text(1, "424242424242")))
    assert "424242424242" not in repr(short)


def test_repr_shows_the_card_token_but_never_its_cvv(wire, pure_wire):
    body = card_token_request(cvv="9876").SerializeToString()
    shown = repr(wire.decode_authorize(body))
    assert f"card_token={CARD_TOKEN!r}" in shown
    assert "9876" not in shown and "card_token_cvv" not in shown
    assert shown == repr(pure_wire.decode_authorize(body))


def test_a_tokenize_repr_masks_the_card_number_and_leaves_out_the_cvv(wire, pure_wire):
    body = switch_pb2.TokenizeRequest(card=types_pb2.Card(number=VISA, cvv="9876")).SerializeToString()
    shown = repr(wire.decode_tokenize(body))
    assert VISA not in shown and "424242******4242" in shown
    assert "9876" not in shown and "card_cvv" not in shown
    assert shown == repr(pure_wire.decode_tokenize(body))
    assert shown.startswith("TokenizeFields(has_card=True, ")


def test_field_objects_are_read_only_and_not_picklable(wire):
    fields = wire.decode_authorize(card_request().SerializeToString())
    with pytest.raises(AttributeError):
        fields.card_number = "0"
    with pytest.raises(TypeError, match="not picklable"):
        pickle.dumps(fields)
    with pytest.raises(TypeError):
        pickle.dumps(wire.decode_batch(delimited(1, b""))[0])
    tokenize = wire.decode_tokenize(delimited(1, CARD))
    with pytest.raises(AttributeError):
        tokenize.card_cvv = ""
    with pytest.raises(TypeError, match="not picklable"):
        pickle.dumps(tokenize)


# ---- the rules of validation.py ---------------------------------------------------------------------

AUTHORIZE_VIOLATIONS = [
    (dict(idempotency_key=""), {"idempotency_key": "is required"}),
    (dict(idempotency_key="x" * 65), {"idempotency_key": "must be 1 to 64 of A-Z a-z 0-9 _ - ."}),
    (dict(idempotency_key="é"), {"idempotency_key": "must be 1 to 64 of A-Z a-z 0-9 _ - ."}),
    (dict(merchant_reference=""), {"merchant_reference": "is required"}),
    (dict(merchant_reference="r" * 65), {"merchant_reference": "must be 1 to 64 printable ASCII characters"}),
    (dict(merchant_reference="tab\there"), {"merchant_reference": "must be 1 to 64 printable ASCII characters"}),
    (dict(amount=None), {"amount": "is required"}),
    (dict(amount__currency="XYZ"), {"amount.currency": "is not an ISO 4217 currency code"}),
    (dict(amount__currency="eur"), {"amount.currency": "is not an ISO 4217 currency code"}),
    (dict(amount__currency=""), {"amount.currency": "is required"}),
    (dict(amount__amount_minor=0), {"amount.amount_minor": "must be greater than zero"}),
    (dict(amount__amount_minor=-5), {"amount.amount_minor": "must be greater than zero"}),
    (dict(amount__amount_minor=10**15 + 1), {"amount.amount_minor": "must be at most 1000000000000000"}),
    (dict(amount__exponent=3), {"amount.exponent": "EUR has 2 decimal places, not 3"}),
    (dict(amount__currency="XYZ", amount__exponent=3), {"amount.currency": "is not an ISO 4217 currency code"}),
    (dict(card=None), {"method": "one of card, wallet or card_token is required"}),
    (dict(card__number=""), {"card.number": "is required"}),
    (dict(card__number="4242424242424241"), {"card.number": "fails the Luhn check"}),
    (dict(card__number="42424242"), {"card.number": "must be 12 to 19 digits"}),
    (dict(card__number="4242-4242-4242-4242"), {"card.number": "must be 12 to 19 digits"}),
    (dict(card__number="٤٢٤٢٤٢٤٢٤٢٤٢٤٢٤٢"), {"card.number": "must be 12 to 19 digits"}),
    (dict(card__exp_month=13), {"card.exp_month": "must be 1 to 12"}),
    (dict(card__exp_month=0, card__exp_year=1999), {"card.exp_month": "must be 1 to 12",
                                                     "card.exp_year": "must be a four-digit year"}),
    (dict(card__exp_year=99), {"card.exp_year": "must be a four-digit year"}),
    (dict(card__exp_year=2026, card__exp_month=5), {"card.exp_year": "the card has expired"}),
    (dict(card__exp_year=2026, card__exp_month=6), {}),
    (dict(card__exp_year=2025, card__exp_month=13), {"card.exp_month": "must be 1 to 12"}),
    (dict(card__cvv="12"), {"card.cvv": "must be 3 or 4 digits"}),
    (dict(card__cvv="12a"), {"card.cvv": "must be 3 or 4 digits"}),
    (dict(card__cvv=""), {}),
    (dict(card__holder_name="x" * 129), {"card.holder_name": "must be at most 128 characters"}),
    (dict(card__holder_name="bell\x07"), {"card.holder_name": "must not contain control characters"}),
    (dict(description="d" * 257), {"description": "must be at most 256 characters"}),
    (dict(description="line\nbreak"), {"description": "must not contain control characters"}),
    (dict(description="del\x7f"), {"description": "must not contain control characters"}),
    (dict(description="ünïcode\x85 is not a control character here"), {}),
    (dict(description="東京\x00"), {"description": "must not contain control characters"}),
    (dict(card_token__token=CARD_TOKEN), {}),
    (dict(card_token__token=CARD_TOKEN, card_token__cvv="123"), {}),
    (dict(card_token__token=CARD_TOKEN, card_token__cvv="0000"), {}),
    (dict(card_token__token=""), {"card_token.token": "is required"}),
    (dict(card_token__cvv="123"), {"card_token.token": "is required"}),
    (dict(card_token__token="tok_" + "a" * 25), {"card_token.token": "is not a card token (tok_ and 26 characters)"}),
    (dict(card_token__token="tok_" + "a" * 27), {"card_token.token": "is not a card token (tok_ and 26 characters)"}),
    (dict(card_token__token="tok_" + "A" * 26), {"card_token.token": "is not a card token (tok_ and 26 characters)"}),
    (dict(card_token__token="tok_" + "u" * 26), {"card_token.token": "is not a card token (tok_ and 26 characters)"}),
    (dict(card_token__token="tok_" + "é" * 26), {"card_token.token": "is not a card token (tok_ and 26 characters)"}),
    (dict(card_token__token="tkn_" + "a" * 26), {"card_token.token": "is not a card token (tok_ and 26 characters)"}),
    (dict(card_token__token=PAYMENT_ID), {"card_token.token": "is not a card token (tok_ and 26 characters)"}),
    (dict(card_token__token=VISA), {"card_token.token": "is not a card token (tok_ and 26 characters)"}),
    (dict(card_token__token=CARD_TOKEN, card_token__cvv="12"), {"card_token.cvv": "must be 3 or 4 digits"}),
    (dict(card_token__token=CARD_TOKEN, card_token__cvv="12345"), {"card_token.cvv": "must be 3 or 4 digits"}),
    (dict(card_token__token=CARD_TOKEN, card_token__cvv="12a"), {"card_token.cvv": "must be 3 or 4 digits"}),
    (dict(card_token__token=CARD_TOKEN, card_token__cvv="١٢٣"), {"card_token.cvv": "must be 3 or 4 digits"}),
    (dict(card_token__token="x", card_token__cvv="x"), {"card_token.token": "is not a card token (tok_ and 26 characters)",
                                                        "card_token.cvv": "must be 3 or 4 digits"}),
]


def _authorize_with(**changes) -> switch_pb2.AuthorizeRequest:
    request = card_request()
    for path, value in changes.items():
        target, *rest = path.split("__")
        if rest:
            if value is None:
                getattr(request, target).ClearField(rest[0])
            else:
                setattr(getattr(request, target), rest[0], value)
        elif value is None:
            request.ClearField(target)
        else:
            setattr(request, target, value)
    return request


@pytest.mark.parametrize("changes, found", AUTHORIZE_VIOLATIONS, ids=[str(c) for c, _ in AUTHORIZE_VIOLATIONS])
def test_authorize_rules(wire, changes, found):
    fields = wire.decode_authorize(_authorize_with(**changes).SerializeToString())
    assert wire.validate_authorize(fields, *TODAY) == found


def test_every_violation_is_reported_in_the_order_validation_py_finds_them(wire):
    request = switch_pb2.AuthorizeRequest(idempotency_key="bad key", description="\n",
                                          amount=types_pb2.Money(amount_minor=0, currency="usd"))
    request.wallet.provider = "Apple Pay"
    fields = wire.decode_authorize(request.SerializeToString())
    assert list(wire.validate_authorize(fields, *TODAY).items()) == [
        ("idempotency_key", "must be 1 to 64 of A-Z a-z 0-9 _ - ."),
        ("merchant_reference", "is required"),
        ("amount.currency", "is not an ISO 4217 currency code"),
        ("amount.amount_minor", "must be greater than zero"),
        ("wallet.provider", "must be 1 to 32 of a-z 0-9 _"),
        ("wallet.token", "is required"),
        ("description", "must not contain control characters"),
    ]


def test_a_card_token_takes_exactly_the_alphabet_of_payment_ids(wire):
    """The vault issues tokens in ids.py's lowercase Crockford base32: 0-9 and a-z but i, l, o and u."""
    for character in string.digits + string.ascii_lowercase + "IL-_.":
        fields = wire.decode_authorize(card_token_request("tok_" + character * 26).SerializeToString())
        found = wire.validate_authorize(fields, *TODAY)
        assert ("card_token.token" not in found) == (character in ids._CROCKFORD), character


def test_a_card_tokens_violations_come_where_the_method_is_checked(wire):
    request = card_token_request(token="nope", cvv="1")
    request.idempotency_key, request.description = "", "\x00"
    fields = wire.decode_authorize(request.SerializeToString())
    assert list(wire.validate_authorize(fields, *TODAY).items()) == [
        ("idempotency_key", "is required"),
        ("card_token.token", "is not a card token (tok_ and 26 characters)"),
        ("card_token.cvv", "must be 3 or 4 digits"),
        ("description", "must not contain control characters"),
    ]


TOKENIZE_VIOLATIONS = [
    (dict(), {}),
    (dict(card=None), {"card": "is required"}),
    (dict(card__number=""), {"card.number": "is required"}),
    (dict(card__number="4242424242424241"), {"card.number": "fails the Luhn check"}),
    (dict(card__number="4242-4242-4242-4242"), {"card.number": "must be 12 to 19 digits"}),
    (dict(card__exp_month=13), {"card.exp_month": "must be 1 to 12"}),
    (dict(card__exp_year=99), {"card.exp_year": "must be a four-digit year"}),
    (dict(card__exp_year=2026, card__exp_month=5), {"card.exp_year": "the card has expired"}),
    (dict(card__exp_year=2026, card__exp_month=6), {}),
    (dict(card__cvv="123"), {"card.cvv": "is never stored; send it with the authorization"}),
    (dict(card__cvv="1"), {"card.cvv": "is never stored; send it with the authorization"}),
    (dict(card__cvv="é"), {"card.cvv": "is never stored; send it with the authorization"}),
    (dict(card__holder_name="x" * 129), {"card.holder_name": "must be at most 128 characters"}),
    (dict(card__holder_name="tab\t"), {"card.holder_name": "must not contain control characters"}),
    (dict(card__holder_name=""), {}),
    (dict(card__number="", card__exp_month=0, card__exp_year=0, card__holder_name=""),
     {"card.number": "is required", "card.exp_month": "must be 1 to 12", "card.exp_year": "must be a four-digit year"}),
]


def _tokenize_with(**changes) -> switch_pb2.TokenizeRequest:
    request = switch_pb2.TokenizeRequest(card=types_pb2.Card(number=VISA, exp_month=12, exp_year=2030,
                                                             holder_name="Ada Lovelace"))
    for path, value in changes.items():
        if path == "card":
            request.ClearField("card")
        else:
            setattr(request.card, path.split("__")[1], value)
    return request


@pytest.mark.parametrize("changes, found", TOKENIZE_VIOLATIONS, ids=[str(c) for c, _ in TOKENIZE_VIOLATIONS])
def test_tokenize_rules_are_the_authorize_card_rules_without_a_cvv(wire, pure_wire, changes, found):
    body = _tokenize_with(**changes).SerializeToString()
    fields = wire.decode_tokenize(body)
    assert wire.validate_tokenize(fields, *TODAY) == found
    assert violations(wire, fields) == violations(pure_wire, pure_wire.decode_tokenize(body))


def test_an_empty_tokenize_card_is_checked_field_by_field(wire):
    fields = wire.decode_tokenize(delimited(1, b""))
    assert list(wire.validate_tokenize(fields, *TODAY)) == ["card.number", "card.exp_month", "card.exp_year"]


def test_wallet_rules(wire):
    request = card_request()
    request.wallet.provider, request.wallet.token = "x" * 33, "\u00e9"
    fields = wire.decode_authorize(request.SerializeToString())
    assert wire.validate_authorize(fields, *TODAY) == {
        "wallet.provider": "must be 1 to 32 of a-z 0-9 _",
        "wallet.token": "must be at most 2048 printable ASCII characters"}


@pytest.mark.parametrize("payment_id, found", [
    ("", {"payment_id": "is required"}),
    ("nope", {"payment_id": "is not a payment id (pay_ and 26 characters)"}),
    ("pay_" + "A" * 26, {"payment_id": "is not a payment id (pay_ and 26 characters)"}),
    ("pay_" + "0" * 27, {"payment_id": "is not a payment id (pay_ and 26 characters)"}),
    ("pax_" + "0" * 26, {"payment_id": "is not a payment id (pay_ and 26 characters)"}),
    (PAYMENT_ID, {}),
])
def test_payment_id_rules(wire, payment_id, found):
    for kind in ("capture", "void", "refund"):
        body = MESSAGE_TYPES[kind](idempotency_key="k", payment_id=payment_id).SerializeToString()
        assert dict(violations(wire, getattr(wire, f"decode_{kind}")(body))) == found


def test_capture_and_refund_check_an_amount_only_when_present_and_refund_its_reason(wire):
    capture = wire.decode_capture(switch_pb2.CaptureRequest(
        idempotency_key="k", payment_id=PAYMENT_ID, amount=types_pb2.Money(amount_minor=5, currency="BHD",
                                                                           exponent=2)).SerializeToString())
    assert wire.validate_capture(capture) == {"amount.exponent": "BHD has 3 decimal places, not 2"}
    refund = wire.decode_refund(switch_pb2.RefundRequest(idempotency_key="k", payment_id=PAYMENT_ID,
                                                         reason="r" * 257).SerializeToString())
    assert wire.validate_refund(refund) == {"reason": "must be at most 256 characters"}


def test_every_currency_of_the_table_and_its_exponent(wire):
    for currency, exponent in CURRENCY_EXPONENTS.items():
        body = switch_pb2.CaptureRequest(idempotency_key="k", payment_id=PAYMENT_ID, amount=types_pb2.Money(
            amount_minor=1, currency=currency, exponent=exponent)).SerializeToString()
        assert wire.validate_capture(wire.decode_capture(body)) == {}, currency


def test_rules_take_the_other_twins_field_objects(wire, pure_wire):
    body = _authorize_with(card__cvv="1").SerializeToString()
    assert wire.validate_authorize(pure_wire.decode_authorize(body), *TODAY) == {"card.cvv": "must be 3 or 4 digits"}
    assert pure_wire.validate_authorize(wire.decode_authorize(body), *TODAY) == {"card.cvv": "must be 3 or 4 digits"}
    body = card_token_request(cvv="1").SerializeToString()
    found = {"card_token.cvv": "must be 3 or 4 digits"}
    assert wire.validate_authorize(pure_wire.decode_authorize(body), *TODAY) == found
    assert pure_wire.validate_authorize(wire.decode_authorize(body), *TODAY) == found
    body = _tokenize_with(card__cvv="123").SerializeToString()
    found = {"card.cvv": "is never stored; send it with the authorization"}
    assert wire.validate_tokenize(pure_wire.decode_tokenize(body), *TODAY) == found
    assert pure_wire.validate_tokenize(wire.decode_tokenize(body), *TODAY) == found


SPECIAL_CHARACTERS = ["\x00", "\x1f", " ", "~", "\x7f", "\x80", "\x85", "\xff", "é", "東", "🎫", "-", ".", "_", "Z", "9"]


@pytest.mark.parametrize("special", SPECIAL_CHARACTERS, ids=[f"U+{ord(c):04X}" for c in SPECIAL_CHARACTERS])
def test_character_rules_hold_at_every_position_of_short_and_long_text(wire, pure_wire, special):
    """The compiled rules test eight characters at a time; a character must count wherever it sits."""
    for length in (1, 3, 7, 8, 9, 16, 17, 33, 64, 65, 129):
        for position in range(length):
            value = "a" * position + special + "7" * (length - position - 1)
            request = _authorize_with(idempotency_key=value, merchant_reference=value, description=value,
                                      card__holder_name=value, card__number=value, card__cvv=value[:4])
            wallet = _authorize_with(description=value)
            wallet.wallet.provider, wallet.wallet.token = value, value
            card_token = card_token_request(token="tok_" + (value + "0" * 26)[:26], cvv=value[:4])
            refund = switch_pb2.RefundRequest(payment_id="pay_" + value[:26], reason=value)
            tokenize = switch_pb2.TokenizeRequest(card=types_pb2.Card(number=value, holder_name=value))
            for kind, message in (("authorize", request), ("authorize", wallet), ("authorize", card_token),
                                  ("refund", refund), ("tokenize", tokenize)):
                body = message.SerializeToString()
                fields = getattr(wire, f"decode_{kind}")(body)
                assert violations(wire, fields) == violations(pure_wire, getattr(pure_wire, f"decode_{kind}")(body))


# ---- differential: random messages, pieces, bytes and mutations -------------------------------------

KEY_CHARS = "abcXYZ019_-. é\n"
interesting_text = st.one_of(
    st.text(alphabet=KEY_CHARS, max_size=70),
    st.text(max_size=12),
    st.sampled_from(["", "k", "x" * 64, "x" * 65, "pay_" + "a" * 26, "pay_" + "A" * 26, PAYMENT_ID]),
)
currencies = st.one_of(st.sampled_from(sorted(CURRENCY_EXPONENTS)), st.sampled_from(["", "usd", "XYZ", "EURO", "ÉUR"]),
                       st.text(max_size=4))
card_tokens = st.one_of(st.text(alphabet=ids._CROCKFORD, min_size=25, max_size=27).map(lambda t: "tok_" + t),
                        st.text(alphabet=ids._CROCKFORD + "ilouA_é", min_size=26, max_size=26).map(lambda t: "tok_" + t),
                        st.sampled_from(["", "tok_", CARD_TOKEN, PAYMENT_ID]), st.text(max_size=8))
cvvs = st.one_of(st.text(alphabet="0123456789a", max_size=5), st.text(max_size=3))
card_numbers = st.one_of(st.sampled_from([VISA, "4242424242424241", "5555555555554444", "378282246310005", "",
                                          "4242-4242-4242-4242", "٤٢٤٢٤٢٤٢٤٢٤٢"]),
                         st.text(alphabet="0123456789", min_size=10, max_size=21), st.text(max_size=20))
int64s = st.one_of(st.integers(-(2**63), 2**63 - 1), st.integers(-3, 3), st.sampled_from([10**15, 10**15 + 1]))
uint32s = st.one_of(st.integers(0, 2**32 - 1), st.integers(0, 14), st.integers(1998, 2101))
months = st.one_of(st.integers(0, 13), st.integers(0, 2**32 - 1))
years = st.one_of(st.integers(TODAY[0] - 2, TODAY[0] + 2), st.sampled_from([99, 1999, 2000, 2099, 2100]), uint32s)
free_text = st.one_of(st.text(max_size=30), st.text(alphabet="ab\x00\x1f\x7f\x85é", max_size=10),
                      st.integers(120, 260).map(lambda n: "t" * n))


@st.composite
def money_messages(draw):
    money = types_pb2.Money(amount_minor=draw(int64s), currency=draw(currencies))
    if draw(st.booleans()):
        money.exponent = draw(st.one_of(st.integers(0, 5), st.integers(0, 2**32 - 1)))
    return money


@st.composite
def card_messages(draw):
    card = types_pb2.Card(number=draw(card_numbers), exp_month=draw(months), exp_year=draw(years),
                          holder_name=draw(free_text))
    if draw(st.booleans()):
        card.cvv = draw(cvvs)
    return card


@st.composite
def requests(draw, kind):
    """A random request of `kind`, as protobuf builds and serializes it."""
    if kind == "authorize":
        request = switch_pb2.AuthorizeRequest(idempotency_key=draw(interesting_text),
                                              merchant_reference=draw(interesting_text), description=draw(free_text))
        if draw(st.booleans()):
            request.amount.CopyFrom(draw(money_messages()))
        method = draw(st.sampled_from(["card", "wallet", "card_token", None]))
        if method == "card":
            request.card.CopyFrom(draw(card_messages()))
        elif method == "wallet":
            request.wallet.SetInParent()
            request.wallet.provider = draw(st.one_of(st.text(alphabet="abz09_A -", max_size=34), st.text(max_size=5)))
            request.wallet.token = draw(st.one_of(st.text(max_size=20), st.integers(2040, 2050).map(lambda n: "t" * n)))
        elif method == "card_token":
            request.card_token.SetInParent()
            request.card_token.token = draw(card_tokens)
            request.card_token.cvv = draw(cvvs)
        return request
    if kind == "tokenize":
        request = switch_pb2.TokenizeRequest()
        if draw(st.booleans()):
            request.card.CopyFrom(draw(card_messages()))
        return request
    request = MESSAGE_TYPES[kind](idempotency_key=draw(interesting_text), payment_id=draw(interesting_text))
    if kind != "void" and draw(st.booleans()):
        request.amount.CopyFrom(draw(money_messages()))
    if kind == "refund":
        request.reason = draw(free_text)
    return request


@st.composite
def batches(draw):
    batch = switch_pb2.BatchRequest()
    for kind in draw(st.lists(st.sampled_from(KINDS + (None,)), max_size=4)):
        item = batch.items.add()
        if kind is not None:
            getattr(item, kind).CopyFrom(draw(requests(kind)))
    return batch


def unknown_fields(depth: int = 2):
    """Raw fields of any wire type under numbers the message may or may not know, groups included."""
    numbers = st.one_of(st.integers(1, 12), st.integers(13, 2**29 - 1))
    scalar = st.one_of(
        st.tuples(numbers, st.integers(0, 2**64 - 1)).map(lambda f: number(*f)),
        st.tuples(numbers, st.binary(min_size=8, max_size=8)).map(lambda f: tag(f[0], 1) + f[1]),
        st.tuples(numbers, st.binary(min_size=4, max_size=4)).map(lambda f: tag(f[0], 5) + f[1]),
        st.tuples(numbers, st.binary(max_size=8)).map(lambda f: delimited(*f)),
    )
    if depth == 0:
        return scalar
    return st.one_of(scalar, st.tuples(numbers, st.lists(unknown_fields(depth - 1), max_size=3)).map(
        lambda f: group(f[0], b"".join(f[1]))))


def strings(field: int):
    """A string field: valid text, or bytes that may not be UTF-8."""
    return st.one_of(interesting_text.map(lambda value: text(field, value)),
                     st.binary(max_size=6).map(lambda raw: delimited(field, raw)))


def pieces(*choices):
    return st.lists(st.one_of(*choices, unknown_fields()), max_size=6).map(b"".join)


money_pieces = pieces(st.tuples(st.just(1), int64s).map(lambda f: number(*f)), strings(2),
                      st.tuples(st.just(3), st.integers(0, 2**64 - 1)).map(lambda f: number(*f)))
card_pieces = pieces(strings(1), st.tuples(st.sampled_from([2, 3]), st.integers(0, 2**64 - 1)).map(lambda f: number(*f)),
                     strings(4), strings(5))
wallet_pieces = pieces(strings(1), strings(2))
card_token_pieces = pieces(card_tokens.map(lambda value: text(1, value)), strings(1), cvvs.map(lambda value: text(2, value)),
                           strings(2))
# Each case of AuthorizeRequest's `method` oneof, by field number, as a serialized submessage.
METHOD_CASES = {4: card_pieces, 5: wallet_pieces, 7: card_token_pieces}
method_cases = st.sampled_from(sorted(METHOD_CASES)).flatmap(lambda n: METHOD_CASES[n].map(lambda p: delimited(n, p)))
PIECES = {
    "authorize": pieces(strings(1), strings(2), money_pieces.map(lambda p: delimited(3, p)), method_cases, strings(6)),
    "capture": pieces(strings(1), strings(2), money_pieces.map(lambda p: delimited(3, p))),
    "void": pieces(strings(1), strings(2)),
    "refund": pieces(strings(1), strings(2), money_pieces.map(lambda p: delimited(3, p)), strings(4)),
    "tokenize": pieces(card_pieces.map(lambda p: delimited(1, p))),
}
item_pieces = pieces(*(PIECES[kind].map(lambda p, n=n: delimited(n, p)) for n, kind in enumerate(KINDS, 1)))
PIECES["batch"] = st.lists(st.one_of(item_pieces.map(lambda p: delimited(1, p)), unknown_fields()), max_size=4).map(
    b"".join)

ALL_KINDS = KINDS + ("tokenize", "batch")
serialized = st.sampled_from(ALL_KINDS).flatmap(
    lambda kind: (batches() if kind == "batch" else requests(kind)).map(lambda m: (kind, m.SerializeToString())))
assembled = st.sampled_from(ALL_KINDS).flatmap(lambda kind: PIECES[kind].map(lambda body: (kind, body)))


@DIFFERENTIAL
@given(case=serialized)
def test_random_messages(wire, pure_wire, case):
    assert_agrees(wire, pure_wire, *case)


@DIFFERENTIAL
@given(case=serialized, extra=st.lists(unknown_fields(), max_size=3), repeat=st.booleans())
def test_random_messages_with_unknown_and_repeated_fields(wire, pure_wire, case, extra, repeat):
    """Appending a serialized message to another merges them; unknown fields in between are skipped."""
    kind, body = case
    assert_agrees(wire, pure_wire, kind, body + b"".join(extra) + (body if repeat else b""))


@DIFFERENTIAL
@given(case=assembled)
def test_messages_assembled_piece_by_piece(wire, pure_wire, case):
    assert_agrees(wire, pure_wire, *case)


# Each field of each `method` case. A case below sets some of them: a value left over from an earlier
# occurrence of the same case (which protobuf clears when another case came between) then shows.
METHOD_FIELDS = {
    4: (strings(1), st.integers(0, 2**64 - 1).map(lambda value: number(2, value)),
        st.integers(0, 2**64 - 1).map(lambda value: number(3, value)), strings(4), strings(5)),
    5: (strings(1), strings(2)),
    7: (card_tokens.map(lambda value: text(1, value)), cvvs.map(lambda value: text(2, value))),
}
method_case_with_some_fields = st.sampled_from(sorted(METHOD_FIELDS)).flatmap(
    lambda n: st.tuples(*(st.one_of(st.just(b""), field) for field in METHOD_FIELDS[n])).map(
        lambda present: delimited(n, b"".join(present))))


@DIFFERENTIAL
@given(first=st.one_of(st.just(b""), requests("authorize").map(lambda m: m.SerializeToString())),
       cases=st.lists(st.one_of(method_case_with_some_fields, method_cases), min_size=2, max_size=6),
       between=st.lists(st.one_of(st.just(b""), strings(1), unknown_fields()), min_size=6, max_size=6))
def test_oneof_cases_in_any_order(wire, pure_wire, first, cases, between):
    """Card, wallet and card token cases one after another, after a whole request or none: the last case
    on the wire wins, a case set again after another starts afresh, the same case repeated merges."""
    body = first + b"".join(case + extra for case, extra in zip(cases, between))
    assert_agrees(wire, pure_wire, "authorize", body)
    assert_agrees(wire, pure_wire, "batch", delimited(1, delimited(1, body)))


@DIFFERENTIAL
@given(kind=st.sampled_from(ALL_KINDS), body=st.binary(max_size=48))
def test_random_bytes(wire, pure_wire, kind, body):
    assert_agrees(wire, pure_wire, kind, body)


@st.composite
def mutated(draw):
    kind, body = draw(st.one_of(serialized, assembled))
    data = bytearray(body)
    for _ in range(draw(st.integers(1, 3))):
        operation = draw(st.sampled_from(["truncate", "flip", "insert", "delete"]))
        position = draw(st.integers(0, len(data)))
        if operation == "truncate":
            del data[position:]
        elif operation == "flip" and position < len(data):
            data[position] ^= 1 << draw(st.integers(0, 7))
        elif operation == "insert":
            data[position:position] = bytes([draw(st.sampled_from([0x00, 0x03, 0x04, 0x07, 0x80, 0xFF,
                                                                   draw(st.integers(0, 255))]))])
        elif position < len(data):
            del data[position]
    return kind, bytes(data)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=mutated())
def test_mutations_of_valid_messages(wire, pure_wire, case):
    assert_agrees(wire, pure_wire, *case)

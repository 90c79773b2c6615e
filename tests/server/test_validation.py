"""Bad input at the live edge: INVALID_ARGUMENT naming the field, nothing changed, server still serving;
and the commands server/validation.py builds from good input."""

import dataclasses
import time

import grpc
import pytest
from live_switch import card, rpc_error

from payswitch.client import error_details
from payswitch.hotpath import wire
from payswitch.payments.cards import CardDetails, Sensitive
from payswitch.payments.commands import AuthorizeCommand, TokenizeCommand, TokenReference
from payswitch.payments.card_numbers import contains_card_number
from payswitch.payments.errors import InvalidRequest
from payswitch.server import validation
from payswitch.v1 import switch_pb2, types_pb2

T = types_pb2
YEAR = time.gmtime().tm_year
YEAR_MONTH = (YEAR, time.gmtime().tm_mon)
TOKEN = "tok_" + "0123456789abcdefghjkmnpqrs"
OTHER_TOKEN = "tok_" + "0123456789abcdefghjkmnpqrt"


def authorize_request(**changes) -> switch_pb2.AuthorizeRequest:
    request = switch_pb2.AuthorizeRequest(idempotency_key="key-1", merchant_reference="order-1",
                                          amount=T.Money(amount_minor=1_000, currency="USD"), card=card())
    for path, value in changes.items():
        target, *rest = path.split("__")
        if rest:
            holder = getattr(request, target)
            if value is None:
                holder.ClearField(rest[0])
            else:
                setattr(holder, rest[0], value)
        elif value is None:
            request.ClearField(target)
        else:
            setattr(request, target, value)
    return request


AUTHORIZE_CASES = [
    (dict(idempotency_key=""), "idempotency_key"),
    (dict(idempotency_key="x" * 65), "idempotency_key"),
    (dict(idempotency_key="has space"), "idempotency_key"),
    (dict(merchant_reference=""), "merchant_reference"),
    (dict(merchant_reference="r" * 65), "merchant_reference"),
    (dict(amount=None), "amount"),
    (dict(amount__currency="XYZ"), "amount.currency"),
    (dict(amount__currency="usd"), "amount.currency"),
    (dict(amount__currency=""), "amount.currency"),
    (dict(amount__amount_minor=0), "amount.amount_minor"),
    (dict(amount__amount_minor=-5), "amount.amount_minor"),
    (dict(amount__amount_minor=10**15 + 1), "amount.amount_minor"),
    (dict(amount__exponent=0), "amount.exponent"),
    (dict(card=None), "method"),
    (dict(card__number="4242424242424241"), "card.number"),
    (dict(card__number="42424242"), "card.number"),
    (dict(card__number="4242-4242-4242-4242"), "card.number"),
    (dict(card__exp_month=13), "card.exp_month"),
    (dict(card__exp_year=99), "card.exp_year"),
    (dict(card__exp_year=YEAR - 1), "card.exp_year"),
    (dict(card__cvv="12"), "card.cvv"),
    (dict(card__cvv="12a"), "card.cvv"),
    (dict(card__holder_name="x" * 129), "card.holder_name"),
    (dict(description="d" * 257), "description"),
    (dict(description="line\nbreak"), "description"),
    (dict(card_token__token=""), "card_token.token"),
    (dict(card_token__token="tok_nope"), "card_token.token"),
    (dict(card_token__token=TOKEN.upper()), "card_token.token"),
    (dict(card_token__token=TOKEN, card_token__cvv="12"), "card_token.cvv"),
]


@pytest.mark.parametrize("changes, field", AUTHORIZE_CASES, ids=[f for _, f in AUTHORIZE_CASES])
def test_each_bad_authorize_field_is_named_and_changes_nothing(live, changes, field):
    client = live.client()
    error = rpc_error(lambda: client.call("Authorize", authorize_request(**changes)))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field in error_details(error).field_violations
    assert field in error.details()
    assert live.channel_calls("Authorize") == 0
    assert len(client.list_payments().payments) == 0


def test_errors_never_echo_card_data(live):
    request = authorize_request(card__number="4242424242424241", card__cvv="98x")
    error = rpc_error(lambda: live.client().call("Authorize", request))
    text = error.details() + repr(error_details(error))
    assert "4242424242424241" not in text and "98x" not in text


def test_errors_never_echo_a_card_tokens_cvv(live):
    request = authorize_request(card_token__token="tok_x", card_token__cvv="98x")
    error = rpc_error(lambda: live.client().call("Authorize", request))
    text = error.details() + repr(error_details(error))
    assert set(error_details(error).field_violations) == {"card_token.token", "card_token.cvv"}
    assert "98x" not in text


def test_bad_wallet_fields(live):
    request = authorize_request(card=None)
    request.wallet.provider = "Apple Pay"
    error = rpc_error(lambda: live.client().call("Authorize", request))
    violations = error_details(error).field_violations
    assert set(violations) == {"wallet.provider", "wallet.token"}


@pytest.mark.parametrize("method, request_message, field", [
    ("Capture", switch_pb2.CaptureRequest(idempotency_key="k", payment_id="nope"), "payment_id"),
    ("Capture", switch_pb2.CaptureRequest(payment_id="pay_" + "0" * 26), "idempotency_key"),
    ("Capture", switch_pb2.CaptureRequest(idempotency_key="k", payment_id="pay_" + "0" * 26,
                                          amount=T.Money(amount_minor=-1, currency="USD")), "amount.amount_minor"),
    ("Void", switch_pb2.VoidRequest(idempotency_key="k"), "payment_id"),
    ("Refund", switch_pb2.RefundRequest(idempotency_key="k", payment_id="pay_" + "0" * 26, reason="r" * 300), "reason"),
    ("GetPayment", switch_pb2.GetPaymentRequest(payment_id="pay_" + "0" * 70), "payment_id"),
    ("ListPayments", switch_pb2.ListPaymentsRequest(page_size=501), "page_size"),
])
def test_bad_fields_of_other_methods(live, method, request_message, field):
    error = rpc_error(lambda: live.client().call(method, request_message))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field in error_details(error).field_violations


@pytest.mark.parametrize("body", [b"\xff\xff\xff", b"\x0a\x05ab", b"\x12\x02\xc3\x28", bytes(range(256))])
def test_bytes_that_are_not_a_message_are_invalid_argument_and_the_server_keeps_serving(live, body):
    client = live.client()
    method = "/payswitch.v1.PaymentSwitch/Authorize"
    with grpc.insecure_channel(live.address) as channel:
        with pytest.raises(grpc.RpcError) as caught:
            channel.unary_unary(method)(body, metadata=live.signer().metadata(method, body), timeout=5)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "request" in error_details(caught.value).field_violations
    assert client.authorize(100, "USD", card=card(), merchant_reference="after").payment.status == T.PAYMENT_STATUS_AUTHORIZED


def signed_call(live, method_name: str, body: bytes):
    method = f"/payswitch.v1.PaymentSwitch/{method_name}"
    with grpc.insecure_channel(live.address) as channel:
        return channel.unary_unary(method)(body, metadata=live.signer().metadata(method, body), timeout=5)


def test_a_request_with_two_payment_methods_is_refused_naming_the_oneof(live):
    """protobuf would keep the last case (a wallet here) and pay with it; the switch refuses instead."""
    body = (authorize_request().SerializeToString()
            + switch_pb2.AuthorizeRequest(wallet=T.Wallet(provider="applepay", token="t")).SerializeToString())
    assert switch_pb2.AuthorizeRequest.FromString(body).WhichOneof("method") == "wallet"
    with pytest.raises(grpc.RpcError) as caught:
        signed_call(live, "Authorize", body)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error_details(caught.value).field_violations == {
        "method": "must be exactly one of card, wallet or card_token; the request sets several"}
    assert live.channel_calls("Authorize") == 0
    assert len(live.client().list_payments().payments) == 0


def items_field(item: bytes) -> bytes:
    """One occurrence of BatchRequest.items (field 1, length-delimited) holding `item`'s bytes as they are."""
    length, size = bytearray(), len(item)
    while size > 0x7F:
        length.append(size & 0x7F | 0x80)
        size >>= 7
    return b"\x0a" + bytes(length) + bytes([size]) + item


def test_a_batch_item_with_two_operations_is_refused_and_the_others_go_through(live):
    good = switch_pb2.BatchItem(authorize=authorize_request(idempotency_key="good")).SerializeToString()
    two = (switch_pb2.BatchItem(authorize=authorize_request(idempotency_key="two")).SerializeToString()
           + switch_pb2.BatchItem(void=switch_pb2.VoidRequest(idempotency_key="v", payment_id="pay_" + "0" * 26))
           .SerializeToString())
    body = b"".join(items_field(item) for item in (good, two))
    response = switch_pb2.BatchResponse.FromString(signed_call(live, "Batch", body))
    first, second = response.results
    assert first.authorize.payment.status == T.PAYMENT_STATUS_AUTHORIZED
    assert second.error.code == grpc.StatusCode.INVALID_ARGUMENT.value[0]
    assert [(v.field, v.description) for v in second.error.field_violations] == [
        ("operation", "must be exactly one of authorize, capture, void, refund; the item sets several")]
    assert live.channel_calls("Authorize") + live.channel_calls("Batch") >= 1
    assert len(live.client().list_payments().payments) == 1


# ---- commands built from good input ----------------------------------------------------------------

def token_request(token: str = TOKEN, cvv: str = "", **changes) -> switch_pb2.AuthorizeRequest:
    request = authorize_request(**changes)
    request.card_token.token, request.card_token.cvv = token, cvv
    return request


def authorize(request: switch_pb2.AuthorizeRequest) -> AuthorizeCommand:
    return validation.authorize_command("merchant-1", request.SerializeToString(), YEAR_MONTH)


def test_a_card_token_authorization_carries_the_token_and_this_payments_cvv():
    command = authorize(token_request(cvv="321"))
    assert command.card_token == TokenReference(TOKEN, Sensitive("321"))
    assert (command.card, command.wallet) == (None, None)
    assert (command.merchant_id, command.idempotency_key, command.merchant_reference) == ("merchant-1", "key-1",
                                                                                         "order-1")
    assert "321" not in repr(command)
    assert authorize(token_request()).card_token.cvv.reveal() == ""


def test_card_and_wallet_authorizations_have_no_card_token():
    with_card = authorize(authorize_request())
    assert with_card.card is not None and with_card.card_token is None
    wallet = authorize_request(card=None)
    wallet.wallet.provider, wallet.wallet.token = "applepay", "wallet-token"
    with_wallet = authorize(wallet)
    assert with_wallet.wallet is not None and with_wallet.card_token is None


def test_a_batch_items_card_token_becomes_the_same_command():
    body = switch_pb2.BatchRequest(items=[switch_pb2.BatchItem(authorize=token_request(cvv="4321"))]).SerializeToString()
    (fields,) = wire.decode_batch(body)
    command = validation.command_from_fields("merchant-1", fields, YEAR_MONTH)
    assert command == authorize(token_request(cvv="4321"))


def test_the_fingerprint_of_a_token_payment_names_the_token_and_never_the_cvv():
    fingerprint = authorize(token_request(cvv="123")).fingerprint()
    assert fingerprint == authorize(token_request(cvv="999")).fingerprint()
    assert fingerprint == authorize(token_request()).fingerprint()
    assert fingerprint != authorize(token_request(OTHER_TOKEN, cvv="123")).fingerprint()
    assert fingerprint != authorize(token_request(cvv="123", merchant_reference="order-2")).fingerprint()
    assert fingerprint != authorize(authorize_request()).fingerprint()


def test_a_token_payments_fingerprint_survives_the_vault_filling_in_its_card():
    command = authorize(token_request(cvv="123"))
    opened = dataclasses.replace(command, card=CardDetails(Sensitive("4242424242424242"), 12, YEAR + 3,
                                                           Sensitive("123"), ""))
    assert opened.fingerprint() == command.fingerprint()


def test_a_bad_card_token_is_refused_naming_the_field():
    with pytest.raises(InvalidRequest) as caught:
        authorize(token_request("tok_", cvv="1"))
    assert caught.value.violations == {"card_token.token": "is not a card token (tok_ and 26 characters)",
                                       "card_token.cvv": "must be 3 or 4 digits"}


def tokenize_request(**fields) -> bytes:
    values = dict(number="4242424242424242", exp_month=12, exp_year=YEAR + 3, holder_name="Ada Lovelace")
    values.update(fields)
    return switch_pb2.TokenizeRequest(card=T.Card(**values)).SerializeToString()


def test_tokenize_builds_the_card_to_store():
    command = validation.tokenize_command("merchant-1", tokenize_request(), YEAR_MONTH)
    assert command == TokenizeCommand("merchant-1", CardDetails(Sensitive("4242424242424242"), 12, YEAR + 3,
                                                                Sensitive(""), "Ada Lovelace"))
    assert (command.card.bin, command.card.last4, command.card.scheme) == ("424242", "4242", "visa")
    assert "4242424242424242" not in repr(command)


def test_tokenize_refuses_a_cvv_naming_card_cvv_without_echoing_it():
    with pytest.raises(InvalidRequest) as caught:
        validation.tokenize_command("merchant-1", tokenize_request(cvv="987"), YEAR_MONTH)
    assert caught.value.violations == {"card.cvv": "is never stored; send it with the authorization"}
    assert "987" not in str(caught.value)


@pytest.mark.parametrize("body, found", [
    (switch_pb2.TokenizeRequest().SerializeToString(), {"card": "is required"}),
    (tokenize_request(number="4242424242424241"), {"card.number": "fails the Luhn check"}),
    (tokenize_request(exp_year=YEAR - 1), {"card.exp_year": "the card has expired"}),
    (tokenize_request(exp_month=13), {"card.exp_month": "must be 1 to 12"}),
    (tokenize_request(holder_name="x" * 129), {"card.holder_name": "must be at most 128 characters"}),
    (b"\x0a\x05ab", {"request": "is not a valid payswitch.v1.TokenizeRequest"}),
], ids=["no card", "luhn", "expired", "month", "holder name", "not a message"])
def test_tokenize_checks_the_card_as_authorize_does(body, found):
    with pytest.raises(InvalidRequest) as caught:
        validation.tokenize_command("merchant-1", body, YEAR_MONTH)
    assert caught.value.violations == found


@pytest.mark.parametrize("text, holds_card", [
    ("order 4242 4242 4242 4242", True), ("card 5555555555554444 thanks", True), ("amex 378282246310005", True),
    ("4242-4242-4242-4242", True), ("diners 36227206271667", True), ("uatp 135410014004955", True),
    ("order 4242424242424241", False),  # fails Luhn: masked in logs, but a caller's id
    ("o-1732406400123453", False), ("o-7732406400123450", False),  # Luhn-valid; no brand issues these
    ("o-42424242424242426", False),  # a Visa prefix at a length Visa does not issue
    ("ref 424242424242424242424242", False),  # a longer number is not a card as written
    ("invoice 2026-11-24, qty 12", False), ("", False),
])
def test_only_a_number_a_brand_could_have_issued_is_refused_in_free_text(text, holds_card):
    assert contains_card_number(text) is holds_card


def test_a_card_number_in_free_text_is_refused_naming_the_field(live):
    """Free text is stored and shown in clear: a card number there would escape the vault."""
    client = live.client()
    for fields, field in (({"merchant_reference": "order 4242 4242 4242 4242"}, "merchant_reference"),
                          ({"description": "card 5555555555554444 thanks"}, "description")):
        error = rpc_error(lambda: client.call("Authorize", authorize_request(**fields)))
        assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert field in error_details(error).field_violations
    paid = client.authorize(100, "USD", card=card(), merchant_reference="order-1732406400000",
                            description="invoice 2026-11-24, qty 12").payment
    captured = client.capture(paid.payment_id).payment
    error = rpc_error(lambda: client.refund(captured.payment_id, reason="refund to 4242424242424242"))
    assert "reason" in error_details(error).field_violations
    assert len(client.list_payments().payments) == 1

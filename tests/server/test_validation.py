"""Bad input at the live edge: INVALID_ARGUMENT naming the field, nothing changed, server still serving."""

import time

import grpc
import pytest
from live_switch import card, rpc_error

from payswitch.client import error_details
from payswitch.v1 import switch_pb2, types_pb2

T = types_pb2
YEAR = time.gmtime().tm_year


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
    assert client.authorize(100, "USD", card=card(), merchant_reference="after").payment.status == T.AUTHORIZED

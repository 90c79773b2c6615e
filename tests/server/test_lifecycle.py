"""Every lifecycle path through a live switch, a real SQLite file and a gRPC simulator channel."""

import grpc
import pytest
from live_switch import CHANNEL_ERROR, DO_NOT_HONOR, INSUFFICIENT_FUNDS, TIMEOUT, card, rpc_error

from payswitch.client import error_details
from payswitch.v1 import types_pb2

T = types_pb2


def authorized(client, amount=10_000, currency="USD", **options):
    response = client.authorize(amount, currency, card=card(), merchant_reference="order-1", **options)
    assert response.payment.status == T.PAYMENT_STATUS_AUTHORIZED
    return response.payment


def test_authorize_capture_then_refunds_until_fully_refunded(live):
    client = live.client()
    response = client.authorize(10_000, "USD", card=card(), merchant_reference="order-42", description="two books")
    payment = response.payment
    assert (payment.status, payment.amount.amount_minor, payment.amount.currency, payment.amount.exponent) == (
        T.PAYMENT_STATUS_AUTHORIZED, 10_000, "USD", 2)
    assert payment.merchant_id == "m_alpha" and payment.merchant_reference == "order-42"
    assert payment.method.card.bin == "424242" and payment.method.card.last4 == "4242"
    assert payment.method.card.scheme == "visa"
    assert response.operation.kind == T.OPERATION_KIND_AUTHORIZATION and response.operation.status == T.OPERATION_STATUS_SUCCEEDED

    captured = client.capture(payment.payment_id).payment
    assert (captured.status, captured.captured_minor) == (T.PAYMENT_STATUS_CAPTURED, 10_000)

    first = client.refund(payment.payment_id, 2_500, "USD", reason="one book returned")
    assert (first.payment.status, first.payment.refunded_minor) == (T.PAYMENT_STATUS_PARTIALLY_REFUNDED, 2_500)
    assert first.operation.kind == T.OPERATION_KIND_REFUND and first.operation.amount.amount_minor == 2_500

    rest = client.refund(payment.payment_id).payment
    assert (rest.status, rest.refunded_minor) == (T.PAYMENT_STATUS_REFUNDED, 10_000)
    kinds = [op.kind for op in rest.operations]
    assert kinds == [T.OPERATION_KIND_AUTHORIZATION, T.OPERATION_KIND_CAPTURE, T.OPERATION_KIND_REFUND, T.OPERATION_KIND_REFUND]
    assert all(op.status == T.OPERATION_STATUS_SUCCEEDED for op in rest.operations)

    stored = client.get_payment(payment.payment_id).payment
    assert stored == rest


def test_partial_capture_limits_refunds_to_the_captured_amount(live):
    client = live.client()
    payment = authorized(client, 10_000, "EUR")
    captured = client.capture(payment.payment_id, 6_000, "EUR").payment
    assert (captured.status, captured.captured_minor) == (T.PAYMENT_STATUS_CAPTURED, 6_000)
    error = rpc_error(lambda: client.refund(payment.payment_id, 6_001, "EUR"))
    assert error.code() == grpc.StatusCode.OUT_OF_RANGE
    assert error_details(error).reason == "amount_exceeds_refundable"
    assert error_details(error).metadata["available_minor"] == "6000"
    assert client.refund(payment.payment_id, 6_000, "EUR").payment.status == T.PAYMENT_STATUS_REFUNDED


def test_capture_over_the_authorized_amount_is_out_of_range_and_changes_nothing(live):
    client = live.client()
    payment = authorized(client, 1_000)
    error = rpc_error(lambda: client.capture(payment.payment_id, 1_001, "USD"))
    assert error.code() == grpc.StatusCode.OUT_OF_RANGE
    assert error_details(error).reason == "amount_exceeds_authorized"
    assert client.get_payment(payment.payment_id).payment == payment
    assert live.channel_calls("Capture") == 0


def test_void_releases_the_authorization(live):
    client = live.client()
    payment = authorized(client)
    voided = client.void(payment.payment_id)
    assert voided.payment.status == T.PAYMENT_STATUS_VOIDED and voided.operation.kind == T.OPERATION_KIND_VOID


@pytest.mark.parametrize("operation, status", [
    ("capture", "VOIDED"), ("void", "VOIDED"), ("refund", "VOIDED"),
])
def test_operations_after_void_are_failed_precondition_naming_the_status(live, operation, status):
    client = live.client()
    payment = authorized(client)
    client.void(payment.payment_id)
    error = rpc_error(lambda: getattr(client, operation)(payment.payment_id))
    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
    details = error_details(error)
    assert (details.reason, details.metadata["status"]) == ("illegal_transition", status)
    assert status in error.details()


def test_illegal_transitions_name_the_current_status(live):
    client = live.client()
    payment = authorized(client)
    for call, status in ((lambda: client.refund(payment.payment_id), "AUTHORIZED"),):
        error = rpc_error(call)
        assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert error_details(error).metadata["status"] == status
    client.capture(payment.payment_id)
    for call in (lambda: client.capture(payment.payment_id), lambda: client.void(payment.payment_id)):
        error = rpc_error(call)
        assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert error_details(error).metadata["status"] == "CAPTURED"
    assert live.channel_calls("Capture") == 1 and live.channel_calls("Void") == 0


def test_currency_other_than_the_payments_is_refused(live):
    client = live.client()
    payment = authorized(client, 1_000, "USD")
    error = rpc_error(lambda: client.capture(payment.payment_id, 500, "EUR"))
    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert error_details(error).reason == "currency_mismatch"


@pytest.mark.parametrize("number, code", [(DO_NOT_HONOR, "do_not_honor"), (INSUFFICIENT_FUNDS, "insufficient_funds")])
def test_declines_are_recorded_with_their_reason(live, number, code):
    client = live.client()
    response = client.authorize(5_000, "USD", card=card(number), merchant_reference="order-d")
    assert response.payment.status == T.PAYMENT_STATUS_DECLINED
    assert response.payment.decline_code == code and response.operation.decline_code == code
    assert response.operation.status == T.OPERATION_STATUS_DECLINED
    error = rpc_error(lambda: client.capture(response.payment.payment_id))
    assert error_details(error).metadata["status"] == "DECLINED"


def test_channel_error_before_acting_fails_the_payment(live):
    client = live.client()
    response = client.authorize(5_000, "USD", card=card(CHANNEL_ERROR), merchant_reference="order-e")
    assert response.payment.status == T.PAYMENT_STATUS_FAILED
    assert response.payment.decline_code == "channel_internal"
    assert response.operation.status == T.OPERATION_STATUS_FAILED


def test_channel_timeout_leaves_the_payment_pending_and_blocks_operations(live):
    client = live.client()
    response = client.authorize(5_000, "USD", card=card(TIMEOUT), merchant_reference="order-t")
    assert response.payment.status == T.PAYMENT_STATUS_PENDING
    assert response.operation.status == T.OPERATION_STATUS_PENDING
    for operation in ("capture", "void", "refund"):
        error = rpc_error(lambda: getattr(client, operation)(response.payment.payment_id))
        assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert error_details(error).metadata["status"] == "PENDING"
    assert client.get_payment(response.payment.payment_id).payment.status == T.PAYMENT_STATUS_PENDING


def test_wallet_payment_lifecycle(live):
    client = live.client()
    response = client.authorize(2_000, "GBP", wallet=T.Wallet(provider="googlepay", token="tok_abcdef123456"),
                                merchant_reference="order-w")
    assert response.payment.status == T.PAYMENT_STATUS_AUTHORIZED
    assert response.payment.method.wallet.provider == "googlepay"
    assert client.capture(response.payment.payment_id).payment.status == T.PAYMENT_STATUS_CAPTURED


def test_zero_exponent_currency(live):
    client = live.client()
    payment = authorized(client, 1_500, "JPY")
    assert payment.amount.exponent == 0
    assert client.capture(payment.payment_id, 1_000, "JPY").payment.captured_minor == 1_000


def test_payments_are_private_to_their_merchant(live):
    payment = authorized(live.client("m_alpha"))
    other = live.client("m_beta")
    for call in (lambda: other.get_payment(payment.payment_id), lambda: other.capture(payment.payment_id)):
        error = rpc_error(call)
        assert error.code() == grpc.StatusCode.NOT_FOUND
        assert error_details(error).reason == "payment_not_found"


def test_unknown_payment_id_is_not_found(live):
    error = rpc_error(lambda: live.client().get_payment("pay_" + "0" * 26))
    assert error.code() == grpc.StatusCode.NOT_FOUND


def test_list_payments_pages_newest_first_and_filters_by_time(live):
    client = live.client()
    ids = [authorized(client, 100 + i).payment_id for i in range(7)]
    live.client("m_beta").authorize(100, "USD", card=card(), merchant_reference="other-merchant")
    seen, token = [], ""
    while True:
        page = client.list_payments(page_size=3, page_token=token)
        assert len(page.payments) <= 3
        seen += [p.payment_id for p in page.payments]
        token = page.next_page_token
        if not token:
            break
    assert seen == list(reversed(ids))
    middle = client.get_payment(ids[3]).payment.created_at
    newer = client.list_payments(created_from=middle)
    assert [p.payment_id for p in newer.payments] == list(reversed(ids[3:]))
    older = client.list_payments(created_to=middle)
    assert [p.payment_id for p in older.payments] == list(reversed(ids[:3]))
    error = rpc_error(lambda: client.list_payments(page_size=3, page_token=token or "bm90LWEtdG9rZW4"))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "page_token" in error_details(error).field_violations

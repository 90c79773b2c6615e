"""Partial approvals and amounts a channel did not confirm, through a live switch and a real channel.

The channel is `payswitch channel-sim` in a process of its own: its card 4000000000000325 approves half
the amount asked (rounded up), and 4000000000000333 does so and then holds its reply past the switch's
timeout. What the channel did is read back from the channel itself over gRPC, so these tests see both
sides: the switch records no amount its channel did not confirm, and a partial approval the caller did
not accept is reversed at the channel.
"""

import grpc
import pytest
from broken_channel import BrokenChannel, serve_channel
from processes import channel_sim
from live_switch import LiveSwitch, card, rpc_error

from payswitch.client import error_details
from payswitch.config import ResolverConfig
from payswitch.ledger.verify import verify_ledger
from payswitch.processing.resolver import PendingResolver
from payswitch.v1 import channel_pb2, channel_pb2_grpc, switch_pb2, types_pb2

T = types_pb2
PARTIAL = "4000000000000325"
PARTIAL_THEN_TIMEOUT = "4000000000000333"


@pytest.fixture(scope="module")
def channel_process():
    with channel_sim("--timeout-delay", "1") as channel:
        yield channel.address


@pytest.fixture
def switch(tmp_path, channel_process):
    live = LiveSwitch(tmp_path, channels=(), external={"bank": channel_process}, channel_timeout_ms=300).start()
    yield live
    live.close()


def channel_says(address: str, reference: str) -> channel_pb2.ChannelResult:
    """The channel's own record of an operation, by Inquire."""
    with grpc.insecure_channel(address) as channel:
        return channel_pb2_grpc.PaymentChannelStub(channel).Inquire(
            channel_pb2.ChannelInquireRequest(reference=reference), timeout=5)


def capture_at_channel(address: str, authorization_reference: str) -> grpc.StatusCode:
    with grpc.insecure_channel(address) as channel:
        try:
            channel_pb2_grpc.PaymentChannelStub(channel).Capture(channel_pb2.ChannelCaptureRequest(
                reference=f"probe-{authorization_reference}", authorization_reference=authorization_reference,
                amount=T.Money(amount_minor=1, currency="USD")), timeout=5)
        except grpc.RpcError as error:
            return error.code()
    return grpc.StatusCode.OK


def ledger_is_balanced(live) -> bool:
    return live.call(verify_ledger(live.app.store)).ok


def test_an_accepted_partial_approval_authorizes_the_approved_amount_and_bounds_captures(switch):
    client = switch.client()
    response = client.authorize(1_001, "USD", card=card(PARTIAL), merchant_reference="partial-ok",
                                allow_partial_authorization=True)
    payment = response.payment
    assert payment.status == T.PAYMENT_STATUS_AUTHORIZED
    assert (payment.amount.amount_minor, payment.requested_minor) == (501, 1_001)
    assert (response.operation.kind, response.operation.amount.amount_minor) == (T.OPERATION_KIND_AUTHORIZATION, 501)

    error = rpc_error(lambda: client.capture(payment.payment_id, 1_001, "USD"))
    assert error.code() == grpc.StatusCode.OUT_OF_RANGE
    assert error_details(error).reason == "amount_exceeds_authorized"
    captured = client.capture(payment.payment_id).payment
    assert (captured.status, captured.captured_minor) == (T.PAYMENT_STATUS_CAPTURED, 501)
    assert ledger_is_balanced(switch)


def test_a_partial_approval_the_caller_did_not_accept_is_reversed_at_the_channel_and_declined(switch,
                                                                                            channel_process):
    client = switch.client()
    response = client.authorize(1_001, "USD", card=card(PARTIAL), merchant_reference="partial-no",
                                idempotency_key="partial-no")
    payment = response.payment
    assert payment.status == T.PAYMENT_STATUS_DECLINED
    assert payment.decline_code == "partial_approval_not_accepted"
    assert (payment.amount.amount_minor, payment.requested_minor, payment.captured_minor) == (1_001, 1_001, 0)
    authorization, reversal = payment.operations
    assert (authorization.kind, authorization.status, authorization.amount.amount_minor) == (
        T.OPERATION_KIND_AUTHORIZATION, T.OPERATION_STATUS_SUCCEEDED, 501)
    assert (reversal.kind, reversal.status, reversal.amount.amount_minor) == (
        T.OPERATION_KIND_REVERSAL, T.OPERATION_STATUS_SUCCEEDED, 501)
    assert response.operation.operation_id == reversal.operation_id

    # The channel voided the hold: it reports the reversal, and refuses to capture the authorization.
    assert channel_says(channel_process, reversal.operation_id).outcome == channel_pb2.CHANNEL_OUTCOME_APPROVED
    assert capture_at_channel(channel_process, authorization.operation_id) == grpc.StatusCode.FAILED_PRECONDITION
    assert rpc_error(lambda: client.capture(payment.payment_id)).code() == grpc.StatusCode.FAILED_PRECONDITION
    again = client.authorize(1_001, "USD", card=card(PARTIAL), merchant_reference="partial-no",
                             idempotency_key="partial-no")
    assert again == response
    assert ledger_is_balanced(switch)


def test_a_partial_approval_in_a_batch_is_reversed_and_the_other_items_are_untouched(switch):
    client = switch.client()
    requests = [switch_pb2.BatchItem(authorize=switch_pb2.AuthorizeRequest(
        idempotency_key=f"b-{position}", merchant_reference=f"b-{position}",
        amount=T.Money(amount_minor=2_000, currency="USD"), card=card(number)))
        for position, number in enumerate(("4242424242424242", PARTIAL))]
    results = client.call("Batch", switch_pb2.BatchRequest(items=requests)).results
    full, partial = (result.authorize.payment for result in results)
    assert (full.status, full.amount.amount_minor) == (T.PAYMENT_STATUS_AUTHORIZED, 2_000)
    assert (partial.status, partial.decline_code) == (T.PAYMENT_STATUS_DECLINED, "partial_approval_not_accepted")
    assert [op.kind for op in partial.operations] == [T.OPERATION_KIND_AUTHORIZATION, T.OPERATION_KIND_REVERSAL]
    assert ledger_is_balanced(switch)


def test_a_partial_approval_learnt_through_inquire_is_reversed_too(switch, channel_process):
    client = switch.client()
    pending = client.authorize(1_000, "USD", card=card(PARTIAL_THEN_TIMEOUT), merchant_reference="late",
                               idempotency_key="late").payment
    assert pending.status == T.PAYMENT_STATUS_PENDING
    app = switch.app
    resolver = PendingResolver(app.store, app.service, app.channels, ResolverConfig(min_age_seconds=0),
                               clock_us=lambda: int(switch.clock() * 1e6))
    assert switch.call(resolver.resolve_once()) == 1
    resolved = client.get_payment(pending.payment_id).payment
    assert (resolved.status, resolved.decline_code) == (T.PAYMENT_STATUS_DECLINED, "partial_approval_not_accepted")
    authorization, reversal = resolved.operations
    assert (authorization.amount.amount_minor, reversal.kind, reversal.status) == (
        500, T.OPERATION_KIND_REVERSAL, T.OPERATION_STATUS_SUCCEEDED)
    assert capture_at_channel(channel_process, authorization.operation_id) == grpc.StatusCode.FAILED_PRECONDITION
    replayed = client.authorize(1_000, "USD", card=card(PARTIAL_THEN_TIMEOUT), merchant_reference="late",
                                idempotency_key="late").payment
    assert replayed == resolved
    assert ledger_is_balanced(switch)


@pytest.fixture
def mismatching_channel(tmp_path):
    """A switch whose channel approves captures and refunds naming the authorized amount, not theirs."""
    holder = {}

    async def start():
        holder["server"], port = await serve_channel(BrokenChannel("echoes_authorized_amount", latency_s=0))
        return port

    live = LiveSwitch(tmp_path, channels=())
    port = live.call(start())
    live.external = {"bank": f"127.0.0.1:{port}"}
    live.start()
    yield live
    live.call(holder["server"].stop(0))
    live.close()


def test_a_capture_the_channel_approved_for_another_amount_stays_pending_and_nothing_is_captured(
        mismatching_channel):
    client = mismatching_channel.client()
    payment = client.authorize(1_000, "USD", card=card(), merchant_reference="mismatch").payment
    response = client.capture(payment.payment_id, 600, "USD")
    operation = response.operation
    assert (operation.status, operation.decline_code) == (T.OPERATION_STATUS_PENDING, "channel_amount_mismatch")
    assert "1000 USD" in operation.decline_message and "600 USD" in operation.decline_message
    assert (response.payment.status, response.payment.captured_minor) == (T.PAYMENT_STATUS_AUTHORIZED, 0)
    error = rpc_error(lambda: client.void(payment.payment_id))
    assert (error.code(), error_details(error).reason) == (grpc.StatusCode.FAILED_PRECONDITION, "operation_pending")
    assert ledger_is_balanced(mismatching_channel)

    # Inquire repeats the channel's word: the operation stays pending for an operator, unchanged.
    app = mismatching_channel.app
    resolver = PendingResolver(app.store, app.service, app.channels, ResolverConfig(min_age_seconds=0),
                               clock_us=lambda: int(mismatching_channel.clock() * 1e6))
    assert mismatching_channel.call(resolver.resolve_once()) == 0
    assert client.get_payment(payment.payment_id).payment == response.payment
    [view] = mismatching_channel.call(resolver.pending_report(0, 10))
    assert "channel_amount_mismatch" in view.last_answer


def test_the_amount_a_channel_approved_is_read_from_single_and_batch_results():
    """A unit view of the same rule, for every operation kind (no channel needed)."""
    from payswitch.channels.base import ChannelResponse, Outcome
    from payswitch.payments.lifecycle import OperationKind, OperationStatus
    from payswitch.processing.settlement import confirmed
    from payswitch.store.base import OperationRecord

    def operation(kind):
        return OperationRecord("op", "pay", kind, OperationStatus.PENDING, 1_000, "USD", "", "", "", "k", 0, 0)

    def approved(amount_minor, currency="USD"):
        return ChannelResponse(Outcome.APPROVED, "ref", amount_minor=amount_minor, currency=currency)

    for kind in OperationKind:
        assert confirmed(operation(kind), approved(1_000)).outcome is Outcome.APPROVED
        assert confirmed(operation(kind), ChannelResponse(Outcome.APPROVED)).outcome is Outcome.APPROVED
        assert confirmed(operation(kind), approved(1_000, "EUR")).decline_code == "channel_amount_mismatch"
        assert confirmed(operation(kind), approved(1_001)).decline_code == "channel_amount_mismatch"
        assert confirmed(operation(kind), approved(0)).decline_code == "channel_amount_mismatch"
        partial = confirmed(operation(kind), approved(999))
        expected = Outcome.APPROVED if kind is OperationKind.AUTHORIZATION else Outcome.UNKNOWN
        assert partial.outcome is expected, kind

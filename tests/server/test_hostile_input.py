"""Hostile input at every RPC: random and mutated bytes, unsigned and signed by a real merchant key.

Every answer must be a proper gRPC status the contract names (never UNKNOWN or INTERNAL), the server
must keep serving, and a refused request must change nothing: afterwards the store holds exactly the
payments whose creation was acknowledged, and the ledger balances. Bounded by hypothesis' example
counts, not by time.
"""

import grpc
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from live_switch import LiveSwitch, card

from payswitch.client import authorize_request, batch_item, batch_request, capture_request, refund_request
from payswitch.ledger.verify import verify_ledger
from payswitch.v1 import admin_pb2, switch_pb2, types_pb2

TOKEN = "operator-token-0123456789"
# Every unary method of the contract, read from it, so a new RPC is covered without editing this test.
SWITCH_METHODS = tuple(m.name for m in switch_pb2.DESCRIPTOR.services_by_name["PaymentSwitch"].methods
                       if not m.client_streaming)
ADMIN_METHODS = tuple(m.name for m in admin_pb2.DESCRIPTOR.services_by_name["SwitchAdmin"].methods)
# What a refusal may be: each is a status the contract documents for bad or unauthorized input.
REFUSALS = {grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.NOT_FOUND,
            grpc.StatusCode.FAILED_PRECONDITION, grpc.StatusCode.OUT_OF_RANGE, grpc.StatusCode.ALREADY_EXISTS,
            grpc.StatusCode.RESOURCE_EXHAUSTED}


@pytest.fixture(scope="module")
def hostile(tmp_path_factory):
    folder = tmp_path_factory.mktemp("hostile")
    live = LiveSwitch(folder, admin_token=TOKEN,
                      routing='version = "h"\n[[rules]]\nname = "all"\nchannels = ["sim"]\n').start()
    client = live.client()
    payment = client.authorize(5_000, "USD", card=card(), merchant_reference="seed").payment
    client.capture(payment.payment_id, 3_000, "USD")
    channel = grpc.insecure_channel(live.address)
    state = {"acknowledged": {payment.payment_id}}
    yield live, channel, payment.payment_id, state
    channel.close()
    live.close()


def seeds(payment_id: str) -> dict[str, bytes]:
    """A valid request per method, for the mutations to start from."""
    authorize = authorize_request(1_000, "USD", card=card(), merchant_reference="m", idempotency_key="k")
    return {
        "Authorize": authorize.SerializeToString(),
        "Capture": capture_request(payment_id, 100, "USD", idempotency_key="c").SerializeToString(),
        "Void": switch_pb2.VoidRequest(payment_id=payment_id, idempotency_key="v").SerializeToString(),
        "Refund": refund_request(payment_id, 100, "USD", idempotency_key="r").SerializeToString(),
        "Tokenize": switch_pb2.TokenizeRequest(card=types_pb2.Card(
            number=card().number, exp_month=12, exp_year=card().exp_year)).SerializeToString(),
        "GetPayment": switch_pb2.GetPaymentRequest(payment_id=payment_id).SerializeToString(),
        "ListPayments": switch_pb2.ListPaymentsRequest(page_size=5).SerializeToString(),
        "Batch": batch_request([batch_item(authorize), batch_item(capture_request(payment_id, 1, "USD",
                                                                                  idempotency_key="b"))
                                ]).SerializeToString(),
    }


@st.composite
def mutated(draw, seed: bytes) -> bytes:
    data = bytearray(seed)
    for _ in range(draw(st.integers(1, 6))):
        choice = draw(st.sampled_from(["flip", "truncate", "insert", "delete", "duplicate"]))
        if not data:
            break
        position = draw(st.integers(0, len(data) - 1))
        if choice == "flip":
            data[position] ^= 1 << draw(st.integers(0, 7))
        elif choice == "truncate":
            del data[position:]
        elif choice == "insert":
            data[position:position] = draw(st.binary(min_size=1, max_size=8))
        elif choice == "delete":
            del data[position:position + draw(st.integers(1, 8))]
        else:
            data[position:position] = data[position:position + draw(st.integers(1, 16))]
    return bytes(data)


def payload(method_strategy):
    return method_strategy.flatmap(lambda method: st.tuples(
        st.just(method), st.one_of(st.binary(max_size=600), st.just(None)), st.booleans()))


def call_switch(live, channel, method: str, body: bytes, signed: bool):
    full = f"/payswitch.v1.PaymentSwitch/{method}"
    metadata = live.signer().metadata(full, body) if signed else ()
    return channel.unary_unary(full)(body, metadata=metadata, timeout=10)


def acknowledged_payments(method: str, answer: bytes) -> set[str]:
    """The payments an acknowledged answer says exist (a replayed key names an existing one)."""
    if method == "Authorize":
        return {switch_pb2.AuthorizeResponse.FromString(answer).payment.payment_id}
    if method == "Batch":
        return {result.authorize.payment.payment_id for result in switch_pb2.BatchResponse.FromString(answer).results
                if result.WhichOneof("result") == "authorize"}
    return set()


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                   HealthCheck.too_slow])
@given(data=st.data())
def test_every_switch_rpc_answers_random_and_mutated_bytes_with_a_proper_status(hostile, data):
    live, channel, payment_id, state = hostile
    method = data.draw(st.sampled_from(SWITCH_METHODS))
    if data.draw(st.booleans()):
        body = data.draw(st.binary(max_size=600))
    else:
        body = data.draw(mutated(seeds(payment_id)[method]))
    signed = data.draw(st.booleans())
    try:
        answer = call_switch(live, channel, method, body, signed)
    except grpc.RpcError as error:
        assert error.code() in REFUSALS, (method, signed, body, error.code(), error.details())
        if not signed:
            assert error.code() == grpc.StatusCode.UNAUTHENTICATED
        return
    assert signed, "an unsigned request was served"
    state["acknowledged"] |= acknowledged_payments(method, answer)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(method=st.sampled_from(ADMIN_METHODS), body=st.binary(max_size=300), with_token=st.booleans())
def test_every_admin_rpc_answers_random_bytes_with_a_proper_status(hostile, method, body, with_token):
    live, channel, _, _ = hostile
    metadata = (("authorization", f"Bearer {TOKEN}"),) if with_token else ()
    try:
        channel.unary_unary(f"/payswitch.v1.SwitchAdmin/{method}")(body, metadata=metadata, timeout=10)
    except grpc.RpcError as error:
        # Authenticated before parsed: without the token nothing about the bytes is revealed.
        allowed = REFUSALS if with_token else {grpc.StatusCode.UNAUTHENTICATED}
        assert error.code() in allowed, (method, body, error.code(), error.details())
        return
    assert with_token, "an admin call without the token was served"


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(messages=st.lists(st.binary(max_size=400), min_size=1, max_size=5))
def test_the_stream_answers_every_hostile_message_and_stays_open(hostile, messages):
    live, channel, _, _ = hostile
    stream = channel.stream_stream("/payswitch.v1.PaymentSwitch/Stream")
    replies = list(stream(iter(messages), timeout=10))
    assert len(replies) == len(messages)
    for reply in replies:
        parsed = switch_pb2.StreamResponse.FromString(reply)
        assert parsed.HasField("error") and not parsed.HasField("response")
        assert parsed.error.code in (grpc.StatusCode.INVALID_ARGUMENT.value[0],
                                     grpc.StatusCode.UNAUTHENTICATED.value[0])


def test_afterwards_the_store_holds_exactly_what_was_acknowledged(hostile):
    live, _, _, state = hostile
    payments = live.call(live.app.store.all_payments())
    assert {p.payment_id for p in payments} == state["acknowledged"]
    report = live.call(verify_ledger(live.app.store))
    assert report.ok, report
    assert live.client().list_payments().payments  # still serving

"""What an operator reads in a live switch's log: one access line per call (unary, Batch, each Stream
message and each Stream), refused signatures naming what they claimed, and resolver lines that carry
their payment id. Lines are read as `payswitch serve` writes them (JSON, redaction filter on)."""

import asyncio
import secrets

import grpc
import pytest
from live_switch import APPROVE, TIMEOUT, LiveSwitch, card
from log_lines import captured_logs

from payswitch.client import BatchRefused, authorize_request, batch_item, error_details
from payswitch.config import ResolverConfig
from payswitch.hotpath import signing
from payswitch.processing.resolver import PendingResolver
from payswitch.v1 import switch_pb2, types_pb2

ACCESS = "payswitch.access"
SERVICE = "/payswitch.v1.PaymentSwitch/"


@pytest.fixture
def logs():
    with captured_logs("INFO") as lines:
        yield lines


def raw_call(live, name: str, request, metadata) -> bytes | grpc.RpcError:
    with grpc.insecure_channel(live.address) as channel:
        try:
            return channel.unary_unary(SERVICE + name)(request.SerializeToString(), metadata=metadata, timeout=10)
        except grpc.RpcError as error:
            return error


def signed(live, name: str, request, **headers) -> tuple:
    """The signer's metadata for `request`, with `headers` replacing (or, None, dropping) some."""
    values = dict(live.signer().metadata(SERVICE + name, request.SerializeToString()))
    values.update(headers)
    return tuple((key, value) for key, value in values.items() if value is not None)


def assert_only_bin_and_last_four(text: str) -> None:
    assert APPROVE not in text and TIMEOUT not in text


def test_an_authorization_and_its_capture_each_get_one_line_naming_the_call(live, logs):
    trace_id = secrets.token_hex(16)
    request = authorize_request(1_000, "USD", card=card(), merchant_reference="order-1")
    answer = raw_call(live, "Authorize", request,
                      signed(live, "Authorize", request) + (("traceparent", f"00-{trace_id}-00f067aa0ba902b7-01"),))
    payment = switch_pb2.AuthorizeResponse.FromString(answer).payment
    live.client().capture(payment.payment_id)

    authorized, captured = logs.wait_for(ACCESS, 2)
    assert authorized.pop("trace_id") == trace_id  # the caller's trace, joined
    own_trace_id = captured.pop("trace_id")  # a call that sent none gets its own
    assert len(own_trace_id) == 32 and own_trace_id != trace_id
    for line, method in ((authorized, "Authorize"), (captured, "Capture")):
        assert type(line.pop("latency_us")) is int and line.pop("ts")
        assert line == {"level": "INFO", "logger": ACCESS, "message": f"{method} OK", "method": method,
                        "status": "OK", "reason": None, "merchant_id": "m_alpha", "key_id": "k1",
                        "payment_id": payment.payment_id}
    assert_only_bin_and_last_four(logs.text)


def test_a_refusal_names_its_status_its_reason_and_the_payment_it_was_about(live, logs):
    client = live.client()
    unknown_payment = "pay_" + "0123456789abcdefghjkmnpqrs"
    with pytest.raises(grpc.RpcError):
        client.get_payment(unknown_payment)
    with pytest.raises(grpc.RpcError):
        client.capture("not-a-payment-id")
    with pytest.raises(grpc.RpcError):
        client.authorize(1_000, "XYZ", card=card(), merchant_reference="order-2")

    not_found, malformed_id, bad_currency = logs.wait_for(ACCESS, 3)
    assert (not_found["method"], not_found["status"], not_found["reason"], not_found["payment_id"]) == (
        "GetPayment", "NOT_FOUND", "payment_not_found", unknown_payment)
    assert not_found["message"] == "GetPayment NOT_FOUND payment_not_found"
    # A payment id that is not one is the caller's text: it is not filed as a payment.
    assert (malformed_id["method"], malformed_id["status"], malformed_id["reason"], malformed_id["payment_id"]) == (
        "Capture", "INVALID_ARGUMENT", "invalid_argument", None)
    assert (bad_currency["status"], bad_currency["reason"], bad_currency["merchant_id"]) == (
        "INVALID_ARGUMENT", "invalid_argument", "m_alpha")
    assert_only_bin_and_last_four(logs.text)


@pytest.mark.parametrize("headers, claimed", [
    ({signing.SIGNATURE_HEADER: "v1=" + "0" * 64}, ("m_alpha", "k1")),        # signature_mismatch
    ({signing.KEY_ID_HEADER: "k9"}, ("m_alpha", "k9")),                        # unknown_key
    ({signing.MERCHANT_HEADER: "m_nobody"}, ("m_nobody", "k1")),                # unknown_key
    ({signing.MERCHANT_HEADER: "m alpha with spaces"}, (None, "k1")),           # malformed: not repeated
    ({signing.KEY_ID_HEADER: None}, ("m_alpha", None)),                         # missing_metadata
], ids=["wrong-signature", "unknown-key", "unknown-merchant", "malformed-merchant", "no-key-id"])
def test_a_refused_signature_names_the_merchant_and_key_it_claimed_never_as_the_merchant(live, logs, headers, claimed):
    request = authorize_request(1_000, "USD", card=card(), merchant_reference="order-3")
    refused = raw_call(live, "Authorize", request, signed(live, "Authorize", request, **headers))
    assert refused.code() is grpc.StatusCode.UNAUTHENTICATED

    [line] = logs.wait_for(ACCESS, 1)
    assert (line["status"], line["reason"]) == ("UNAUTHENTICATED", error_details(refused).reason)
    assert (line["claimed_merchant_id"], line["claimed_key_id"]) == claimed
    assert "merchant_id" not in line and "key_id" not in line and line["payment_id"] is None
    assert line["message"] == f"Authorize UNAUTHENTICATED {line['reason']}"


def test_a_batch_call_is_one_line_with_its_item_counts(live, logs):
    items = [authorize_request(1_000 + n, "USD", card=card(), merchant_reference=f"b-{n}") for n in range(3)]
    items.append(authorize_request(1_000, "XYZ", card=card(), merchant_reference="b-bad"))
    response = live.client().batch(items)
    assert [result.WhichOneof("result") for result in response.results] == ["authorize"] * 3 + ["error"]
    with pytest.raises(grpc.RpcError):
        live.client().batch([])

    answered, refused = logs.wait_for(ACCESS, 2)
    assert (answered["method"], answered["status"], answered["items"], answered["refused_items"]) == (
        "Batch", "OK", 4, 1)
    assert answered["payment_id"] is None and answered["merchant_id"] == "m_alpha"
    assert (refused["method"], refused["status"], refused["reason"]) == ("Batch", "INVALID_ARGUMENT",
                                                                         "invalid_argument")
    assert_only_bin_and_last_four(logs.text)


def test_each_stream_message_gets_a_line_and_the_stream_one_when_it_ends(live, logs):
    async def scenario():
        async with live.async_client() as client:
            stream = client.open_stream()
            await stream.submit(switch_pb2.BatchRequest(items=[batch_item(authorize_request(
                1_000, "USD", card=card(), merchant_reference=f"s-{n}")) for n in range(2)]))
            with pytest.raises(BatchRefused):
                await stream.submit(switch_pb2.BatchRequest())
            call = client._channel.stream_stream(SERVICE + "Stream")()
            forged = switch_pb2.StreamRequest(sequence=9, batch=b"", merchant="m_beta", key_id="k1",
                                              timestamp="1", nonce="n" * 16, signature="v1=" + "0" * 64)
            await call.write(forged.SerializeToString())
            await call.read()
            await call.done_writing()
            await stream.close()

    asyncio.run(scenario())
    lines = logs.wait_for(ACCESS, 5)
    messages = sorted((line for line in lines if "sequence" in line), key=lambda line: line["sequence"])
    streams = [line for line in lines if "messages" in line]
    assert len(lines) == 5 and len(messages) == 3 and len(streams) == 2
    answered, empty, forged = messages
    assert (answered["method"], answered["status"], answered["items"], answered["refused_items"]) == (
        "Stream", "OK", 2, 0)
    assert (answered["merchant_id"], answered["key_id"], answered["message"]) == ("m_alpha", "k1", "Stream message OK")
    assert (empty["status"], empty["reason"]) == ("INVALID_ARGUMENT", "invalid_argument")
    assert (forged["sequence"], forged["status"], forged["claimed_merchant_id"], forged["claimed_key_id"]) == (
        9, "UNAUTHENTICATED", "m_beta", "k1")
    assert "merchant_id" not in forged
    assert sorted(line["messages"] for line in streams) == [1, 2]
    assert {line["status"] for line in streams} == {"OK"} and {line["message"] for line in streams} == {"Stream OK"}
    assert_only_bin_and_last_four(logs.text)


def test_a_call_its_caller_abandons_is_logged_as_cancelled(tmp_path, logs):
    live = LiveSwitch(tmp_path, channel_timeout_ms=2_000, timeout_delay_s=2.0).start()
    try:
        async def scenario():
            async with live.async_client(max_attempts=1) as client:
                call = asyncio.ensure_future(client.authorize(1_000, "USD", card=card(TIMEOUT),
                                                              merchant_reference="abandoned"))
                while live.channel_calls("Authorize") == 0:  # the switch is waiting on the channel
                    await asyncio.sleep(0.01)
                call.cancel()
                with pytest.raises(asyncio.CancelledError):
                    await call

        asyncio.run(scenario())
        [line] = logs.wait_for(ACCESS, 1)
        assert (line["method"], line["status"], line["reason"], line["merchant_id"]) == (
            "Authorize", "CANCELLED", None, "m_alpha")
    finally:
        live.close()


def test_resolver_lines_carry_the_payment_id(tmp_path, logs):
    live = LiveSwitch(tmp_path, channel_timeout_ms=150, timeout_delay_s=0.5).start()
    try:
        payment = live.client().authorize(1_500, "USD", card=card(TIMEOUT), merchant_reference="slow").payment
        assert payment.status == types_pb2.PAYMENT_STATUS_PENDING
        app = live.app
        resolver = PendingResolver(app.store, app.service, app.channels,
                                   ResolverConfig(min_age_seconds=0, report_after_seconds=0.001),
                                   clock_us=lambda: int(live.clock() * 1e6))
        assert live.call(resolver.resolve_once()) == 1
        resolver_lines = logs.of("payswitch.processing.resolver")
        assert [line["level"] for line in resolver_lines] == ["ERROR", "INFO"]  # overdue, then resolved
        assert {line["payment_id"] for line in resolver_lines} == {payment.payment_id}
        assert "resolved through Inquire" in resolver_lines[1]["message"]
    finally:
        live.close()

"""The gRPC channel client against real servers on loopback: every status, broken replies, no server."""

import asyncio
import socket

import grpc
import pytest

from payswitch.channels.base import Outcome
from payswitch.channels.grpc_client import GrpcChannelClient
from payswitch.v1 import channel_pb2, channel_pb2_grpc, types_pb2

CARD_NUMBER = "4242424242424242"


def authorize_request(reference="op_1"):
    card = types_pb2.Card(number=CARD_NUMBER, exp_month=12, exp_year=2030, cvv="123")
    return channel_pb2.ChannelAuthorizeRequest(
        reference=reference, merchant_id="m_alpha", amount=types_pb2.Money(amount_minor=1000, currency="USD"),
        card=card)


def inquire_request(reference="op_1"):
    return channel_pb2.ChannelInquireRequest(reference=reference)


class ScriptedChannel(channel_pb2_grpc.PaymentChannelServicer):
    """A PaymentChannel whose every method does what `answer(request, context)` does."""

    def __init__(self, answer):
        self.answer = answer
        self.received = 0

    async def _handle(self, request, context):
        self.received += 1
        return await self.answer(request, context)

    Authorize = Capture = Void = Refund = Inquire = _handle


async def serve(servicer):
    server = grpc.aio.server()
    channel_pb2_grpc.add_PaymentChannelServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    return server, port


def aborting(code: grpc.StatusCode, details: str = "refused"):
    async def answer(request, context):
        await context.abort(code, details)

    return answer


def replying(**fields):
    async def answer(request, context):
        return channel_pb2.ChannelResult(**{"reference": request.reference, **fields})

    return answer


async def call_both(answer, **client_options):
    """Authorize and Inquire once each against a server answering with `answer`."""
    server, port = await serve(ScriptedChannel(answer))
    client = GrpcChannelClient("scripted", f"127.0.0.1:{port}", **client_options)
    try:
        return await client.authorize(authorize_request(), 2), await client.inquire(inquire_request(), 2)
    finally:
        await client.close()
        await server.stop(0)


DID_NOT_ACT = ["INVALID_ARGUMENT", "FAILED_PRECONDITION", "OUT_OF_RANGE", "NOT_FOUND", "ALREADY_EXISTS",
               "PERMISSION_DENIED", "UNAUTHENTICATED", "UNIMPLEMENTED", "INTERNAL", "RESOURCE_EXHAUSTED"]
MAY_HAVE_ACTED = ["DEADLINE_EXCEEDED", "CANCELLED", "UNKNOWN", "DATA_LOSS", "ABORTED", "UNAVAILABLE"]


@pytest.mark.parametrize("code", DID_NOT_ACT)
def test_statuses_meaning_the_channel_did_not_act(code):
    operation, inquiry = asyncio.run(call_both(aborting(grpc.StatusCode[code])))
    assert (operation.outcome, operation.decline_code) == (Outcome.FAILED, "channel_" + code.lower())
    assert operation.message == f"channel returned {code}: refused"
    # On Inquire only NOT_FOUND speaks about the earlier operation.
    if code == "NOT_FOUND":
        assert (inquiry.outcome, inquiry.decline_code) == (Outcome.FAILED, "channel_not_found")
    else:
        assert (inquiry.outcome, inquiry.decline_code) == (Outcome.UNKNOWN, "")


@pytest.mark.parametrize("code", MAY_HAVE_ACTED)
def test_statuses_leaving_the_outcome_unknown(code):
    # A channel's own UNAVAILABLE carries no "could not connect" text, so it may hide an act too.
    operation, inquiry = asyncio.run(call_both(aborting(grpc.StatusCode[code], "bank link dropped")))
    assert (operation.outcome, operation.decline_code) == (Outcome.UNKNOWN, "")
    assert inquiry.outcome is Outcome.UNKNOWN


def test_status_text_never_carries_a_card_number():
    operation, _ = asyncio.run(call_both(aborting(grpc.StatusCode.INVALID_ARGUMENT, f"bad card {CARD_NUMBER}")))
    assert operation.outcome is Outcome.FAILED
    assert CARD_NUMBER not in operation.message and "[redacted]" in operation.message


def test_reset_stream_reported_as_internal_is_unknown():
    # grpc-core reports a stream reset by the peer as INTERNAL "Received RST_STREAM with error code 2";
    # that INTERNAL was made after the request left, unlike a channel's own INTERNAL.
    operation, _ = asyncio.run(call_both(aborting(grpc.StatusCode.INTERNAL, "Received RST_STREAM with error code 2")))
    assert operation.outcome is Outcome.UNKNOWN


@pytest.mark.parametrize("fields, outcome, decline_code", [
    ({"outcome": channel_pb2.CHANNEL_OUTCOME_APPROVED, "channel_reference": "bank_1"}, Outcome.APPROVED, ""),
    ({"outcome": channel_pb2.CHANNEL_OUTCOME_DECLINED, "decline_code": "stolen_card"}, Outcome.DECLINED, "stolen_card"),
    ({"outcome": channel_pb2.CHANNEL_OUTCOME_DECLINED}, Outcome.DECLINED, "declined"),
    ({"outcome": channel_pb2.CHANNEL_OUTCOME_IN_PROGRESS}, Outcome.UNKNOWN, ""),
    ({}, Outcome.UNKNOWN, ""),
    ({"outcome": channel_pb2.CHANNEL_OUTCOME_APPROVED, "reference": "op_other"}, Outcome.UNKNOWN, ""),
    ({"outcome": channel_pb2.CHANNEL_OUTCOME_APPROVED, "reference": ""}, Outcome.UNKNOWN, ""),
], ids=["approved", "declined", "declined-without-code", "in-progress", "no-outcome", "other-reference",
        "no-reference"])
def test_ok_replies(fields, outcome, decline_code):
    operation, inquiry = asyncio.run(call_both(replying(**fields)))
    assert (operation.outcome, operation.decline_code) == (outcome, decline_code)
    assert (inquiry.outcome, inquiry.decline_code) == (outcome, decline_code)
    if outcome is Outcome.APPROVED:
        assert operation.channel_reference == "bank_1"


def test_unreadable_reply_is_unknown():
    async def scenario():
        async def garbage(request, context):
            return b"\xff\xff\xff"

        handler = grpc.unary_unary_rpc_method_handler(
            garbage, request_deserializer=channel_pb2.ChannelAuthorizeRequest.FromString,
            response_serializer=lambda raw: raw)
        server = grpc.aio.server()
        server.add_generic_rpc_handlers(
            (grpc.method_handlers_generic_handler("payswitch.v1.PaymentChannel", {"Authorize": handler}),))
        port = server.add_insecure_port("127.0.0.1:0")
        await server.start()
        client = GrpcChannelClient("garbled", f"127.0.0.1:{port}")
        try:
            # grpc.aio hands back None when the reply does not parse; the channel may have approved.
            return await client.authorize(authorize_request(), 2)
        finally:
            await client.close()
            await server.stop(0)

    assert asyncio.run(scenario()).outcome is Outcome.UNKNOWN


def test_reply_over_the_size_limit_is_unknown():
    # grpc makes a RESOURCE_EXHAUSTED itself ("Received message larger than max") after the channel
    # answered: not the channel's "did not act".
    operation, _ = asyncio.run(call_both(
        replying(outcome=channel_pb2.CHANNEL_OUTCOME_APPROVED, message="x" * 4096),
        options=(("grpc.max_receive_message_length", 1024),)))
    assert operation.outcome is Outcome.UNKNOWN
    assert "Received message larger than max" in operation.message


def test_deadline_is_unknown():
    async def hang(request, context):
        await asyncio.sleep(5)

    async def scenario():
        server, port = await serve(ScriptedChannel(hang))
        client = GrpcChannelClient("slow", f"127.0.0.1:{port}")
        try:
            return await client.authorize(authorize_request(), 0.1)
        finally:
            await client.close()
            await server.stop(0)

    response = asyncio.run(scenario())
    assert response.outcome is Outcome.UNKNOWN and "DEADLINE_EXCEEDED" in response.message


def test_server_going_away_mid_call_is_unknown():
    async def scenario():
        arrived = asyncio.Event()

        async def hang(request, context):
            arrived.set()
            await asyncio.sleep(5)

        server, port = await serve(ScriptedChannel(hang))
        client = GrpcChannelClient("dying", f"127.0.0.1:{port}")
        try:
            call = asyncio.create_task(client.authorize(authorize_request(), 5))
            await asyncio.wait_for(arrived.wait(), 5)
            await server.stop(0)
            return await call
        finally:
            await client.close()

    response = asyncio.run(scenario())
    # grpc 1.85 reports UNAVAILABLE "Cancelling all calls": the request had arrived, so not FAILED.
    assert response.outcome is Outcome.UNKNOWN


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_connection_refused_is_failed_for_operations_and_unknown_for_inquire():
    async def scenario():
        client = GrpcChannelClient("nobody", f"127.0.0.1:{closed_port()}")
        try:
            return await client.authorize(authorize_request(), 5), await client.inquire(inquire_request(), 5)
        finally:
            await client.close()

    operation, inquiry = asyncio.run(scenario())
    assert (operation.outcome, operation.decline_code) == (Outcome.FAILED, "channel_unavailable")
    # What grpc 1.85 reports, and what the classification relies on.
    assert "failed to connect to all addresses" in operation.message
    assert "Connection refused" in operation.message
    assert inquiry.outcome is Outcome.UNKNOWN


def test_channel_is_made_lazily_and_remade_after_close():
    client = GrpcChannelClient("sim", "127.0.0.1:1")  # no event loop yet: nothing is connected here
    approving = replying(outcome=channel_pb2.CHANNEL_OUTCOME_APPROVED)

    async def once():
        server, port = await serve(ScriptedChannel(approving))
        client.target = f"127.0.0.1:{port}"
        try:
            return await client.authorize(authorize_request(), 2)
        finally:
            await client.close()
            await server.stop(0)

    assert asyncio.run(once()).outcome is Outcome.APPROVED
    assert asyncio.run(once()).outcome is Outcome.APPROVED  # a new loop after close() gets a new channel


def test_channel_belongs_to_its_event_loop():
    client = GrpcChannelClient("sim", f"127.0.0.1:{closed_port()}")

    async def call():
        return await client.authorize(authorize_request(), 1)

    asyncio.run(call())
    with pytest.raises(RuntimeError, match="another event loop"):
        asyncio.run(call())


def test_default_timeout_applies_when_none_is_given():
    async def hang(request, context):
        await asyncio.sleep(5)

    async def scenario():
        server, port = await serve(ScriptedChannel(hang))
        client = GrpcChannelClient("slow", f"127.0.0.1:{port}", default_timeout=0.1)
        try:
            return await asyncio.wait_for(client.authorize(authorize_request(), None), 3)
        finally:
            await client.close()
            await server.stop(0)

    assert asyncio.run(scenario()).outcome is Outcome.UNKNOWN

"""`payswitch channel-sim` as an operator runs it: a process that serves, answers, and stops on SIGTERM."""

import asyncio
import signal

import pytest
from processes import channel_sim

from payswitch.channels.base import Outcome
from payswitch.channels.grpc_client import GrpcChannelClient
from payswitch.v1 import channel_pb2, types_pb2



def authorize_request(reference, number):
    return channel_pb2.ChannelAuthorizeRequest(
        reference=reference, merchant_id="m_alpha", amount=types_pb2.Money(amount_minor=1000, currency="USD"),
        card=types_pb2.Card(number=number, exp_month=12, exp_year=2030))


@pytest.mark.slow
def test_serves_until_sigterm():
    with channel_sim("--timeout-delay", "1") as channel:
        async def call_once():
            client = GrpcChannelClient("sim", channel.address)
            try:
                return await client.authorize(authorize_request("cli_1", "4000000000000002"), 5)
            finally:
                await client.close()

        response = asyncio.run(call_once())
        assert (response.outcome, response.decline_code) == (Outcome.DECLINED, "do_not_honor")

        assert channel.stop(signal.SIGTERM)[0] == 0, channel.stderr


@pytest.mark.slow
def test_no_batch_answers_batch_unimplemented_so_the_client_sends_single_calls():
    with channel_sim("--no-batch") as channel:
        async def batch_once():
            client = GrpcChannelClient("sim", channel.address)
            try:
                requests = [authorize_request("cli_1", "4242424242424242"),
                            authorize_request("cli_2", "4000000000000002")]
                return await client.batch(requests, 5), client.batch_supported
            finally:
                await client.close()

        responses, batch_supported = asyncio.run(batch_once())
        assert [(response.outcome, response.decline_code) for response in responses] == [
            (Outcome.APPROVED, ""), (Outcome.DECLINED, "do_not_honor")]
        assert batch_supported is False
        assert channel.stop(signal.SIGTERM)[0] == 0, channel.stderr

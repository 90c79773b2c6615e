"""Authorizations through the channel clients: one Batch call vs the single calls it stands for.

Run: pytest benchmarks/micro/test_channel_bench.py --benchmark-group-by=group

Every round sends BATCH_SIZE fresh authorizations (new references, so the simulator decides each one
instead of answering a repeat) and a round's time divided by BATCH_SIZE is one authorization's cost.
The simulator has no latency, so the figures are the switch-side and transport cost: what batching
saves on top of the channel's round trips (which it pays once per batch instead of once per call).
Each group holds the batch, the concurrent single calls a channel without Batch gets (the fallback),
and, in process, the single calls one after the other.
"""

import asyncio
import itertools

import pytest

from payswitch.channels.base import ChannelClient
from payswitch.channels.grpc_client import GrpcChannelClient
from payswitch.channels.in_process import InProcessChannelClient
from payswitch.channels.simulator import ChannelSimulator
from payswitch.channels.simulator_service import start_simulator_server
from payswitch.v1 import channel_pb2, types_pb2

BATCH_SIZE = 100
ROUNDS = 50
WARMUP_ROUNDS = 3
TIMEOUT_S = 10


def _authorizations(references):
    """BATCH_SIZE authorizations under new references, built outside the timed part."""
    card = types_pb2.Card(number="4242424242424242", exp_month=12, exp_year=2030, cvv="123")
    amount = types_pb2.Money(amount_minor=1999, currency="EUR")
    requests = [channel_pb2.ChannelAuthorizeRequest(reference=f"bench_{next(references)}", merchant_id="m_bench",
                                                    amount=amount, card=card) for _ in range(BATCH_SIZE)]
    return (requests,), {}


@pytest.fixture
def loop():
    loop = asyncio.new_event_loop()
    yield loop
    loop.close()


@pytest.fixture(params=["in_process", "grpc"])
def client(request, loop):
    """A ChannelClient of each transport for a fresh simulator; grpc serves on loopback in `loop`."""
    simulator = ChannelSimulator()
    if request.param == "in_process":
        yield InProcessChannelClient("sim", simulator)
        return
    server, port = loop.run_until_complete(start_simulator_server(simulator, "127.0.0.1:0"))
    grpc_client = GrpcChannelClient("sim", f"127.0.0.1:{port}")
    yield grpc_client
    loop.run_until_complete(grpc_client.close())
    loop.run_until_complete(server.stop(0))


def _run(benchmark, loop, send):
    references = itertools.count()
    benchmark.extra_info["authorizations_per_round"] = BATCH_SIZE
    responses = benchmark.pedantic(lambda requests: loop.run_until_complete(send(requests)),
                                   setup=lambda: _authorizations(references), rounds=ROUNDS,
                                   warmup_rounds=WARMUP_ROUNDS)
    assert len(responses) == BATCH_SIZE and all(response.outcome.value == "approved" for response in responses)


def test_batch(benchmark, request, loop, client):
    benchmark.group = f"channel.authorize x{BATCH_SIZE} {request.node.callspec.id}"
    _run(benchmark, loop, lambda requests: client.batch(requests, TIMEOUT_S))


def test_concurrent_single_calls(benchmark, request, loop, client):
    benchmark.group = f"channel.authorize x{BATCH_SIZE} {request.node.callspec.id}"
    _run(benchmark, loop, lambda requests: ChannelClient.batch(client, requests, TIMEOUT_S))


def test_sequential_single_calls(benchmark, request, loop, client):
    benchmark.group = f"channel.authorize x{BATCH_SIZE} {request.node.callspec.id}"

    async def one_by_one(requests):
        return [await client.authorize(one, TIMEOUT_S) for one in requests]

    _run(benchmark, loop, one_by_one)

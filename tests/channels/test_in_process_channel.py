"""What only the in-process client does: its default deadline, requests crossing as bytes, surprises.

The classification of the simulator's answers is pinned for both clients in
test_channel_classification.py.
"""

import asyncio

from payswitch.channels.base import Outcome
from payswitch.channels.in_process import InProcessChannelClient
from payswitch.channels.simulator import ChannelSimulator
from payswitch.v1 import channel_pb2, types_pb2


def authorize_request(reference="auth_1", number="4242424242424242"):
    card = types_pb2.Card(number=number, exp_month=12, exp_year=2030, cvv="123")
    return channel_pb2.ChannelAuthorizeRequest(
        reference=reference, merchant_id="m_alpha", amount=types_pb2.Money(amount_minor=1000, currency="USD"),
        card=card)


def test_request_crosses_as_a_copy():
    async def scenario():
        simulator = ChannelSimulator()
        seen = []

        async def recording(request):
            seen.append(request)
            return await ChannelSimulator.authorize(simulator, request)

        simulator.authorize = recording
        request = authorize_request()
        assert (await InProcessChannelClient("sim", simulator).authorize(request, 1)).outcome is Outcome.APPROVED
        assert seen[0] == request and seen[0] is not request

    asyncio.run(scenario())


def test_unexpected_simulator_error_is_unknown():
    async def scenario():
        simulator = ChannelSimulator()

        async def broken(request):
            raise RuntimeError(f"bug while handling {request.card.number}")

        simulator.authorize = broken
        response = await InProcessChannelClient("sim", simulator).authorize(authorize_request(), 1)
        assert (response.outcome, response.decline_code) == (Outcome.UNKNOWN, "")
        assert "4242424242424242" not in response.message and "RuntimeError" in response.message

    asyncio.run(scenario())


def test_default_timeout_applies_when_none_is_given():
    async def scenario():
        client = InProcessChannelClient("sim", ChannelSimulator(latency_ms=2000), default_timeout=0.05)
        return await asyncio.wait_for(client.authorize(authorize_request(), None), 1)

    assert asyncio.run(scenario()).outcome is Outcome.UNKNOWN

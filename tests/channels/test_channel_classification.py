"""What the switch concludes from the simulator, through both channel clients: one suite, two transports.

Each test runs against the gRPC client talking to a real simulator server on loopback and against the
in-process client calling the simulator directly; both must classify every answer the same way.
"""

import asyncio
import time

import pytest

from payswitch.channels.base import Outcome
from payswitch.channels.simulator import ChannelSimulator

from channel_requests import authorize, capture, inquire, refund, void, wallet_authorize
from channel_transports import TRANSPORT_IDS, TRANSPORTS


@pytest.fixture(params=TRANSPORTS, ids=TRANSPORT_IDS)
def connect(request):
    """An async context manager: connect(simulator) yields a ChannelClient for it."""
    return request.param


CARD_TABLE = [
    ("4242424242424242", Outcome.APPROVED, ""),
    ("5555555555554444", Outcome.APPROVED, ""),
    ("378282246310005", Outcome.APPROVED, ""),
    ("4000000000000002", Outcome.DECLINED, "do_not_honor"),
    ("4000000000009995", Outcome.DECLINED, "insufficient_funds"),
    ("4000000000000069", Outcome.DECLINED, "expired_card"),
    ("4000000000000119", Outcome.FAILED, "channel_internal"),
    ("4111111111111111", Outcome.APPROVED, ""),
]


@pytest.mark.parametrize("number, outcome, decline_code", CARD_TABLE)
def test_card_table(connect, number, outcome, decline_code):
    async def scenario():
        simulator = ChannelSimulator()
        async with connect(simulator) as client:
            response = await client.authorize(authorize(number=number), 5)
        assert (response.outcome, response.decline_code) == (outcome, decline_code)
        assert bool(response.channel_reference) == (outcome is not Outcome.FAILED)
        assert number not in response.message and number[-4:] not in response.message
        assert simulator.acted_total == (0 if outcome is Outcome.FAILED else 1)

    asyncio.run(scenario())


@pytest.mark.parametrize("token, outcome, decline_code", [
    ("tok_visa_1", Outcome.APPROVED, ""),
    ("tok_decline", Outcome.DECLINED, "do_not_honor"),
    ("tok_insufficient", Outcome.DECLINED, "insufficient_funds"),
    ("tok_error", Outcome.FAILED, "channel_internal"),
])
def test_wallet_table(connect, token, outcome, decline_code):
    async def scenario():
        async with connect(ChannelSimulator()) as client:
            response = await client.authorize(wallet_authorize("w_1", token), 5)
        assert (response.outcome, response.decline_code) == (outcome, decline_code)

    asyncio.run(scenario())


@pytest.mark.parametrize("method", ["card", "wallet"])
def test_timeout_is_unknown_and_inquire_finds_the_approval(connect, method):
    async def scenario():
        simulator = ChannelSimulator(timeout_delay_s=0.5)
        if method == "card":
            request = authorize(number="4000000000000259")
        else:
            request = wallet_authorize("auth_1", "tok_timeout")
        async with connect(simulator) as client:
            response = await client.authorize(request, 0.1)
            assert response.outcome is Outcome.UNKNOWN
            assert response.decline_code == ""
            assert simulator.acted["Authorize"] == 1
            inquired = await client.inquire(inquire("auth_1"), 5)
            assert inquired.outcome is Outcome.APPROVED and inquired.channel_reference

    asyncio.run(scenario())


def test_deadline_before_the_decision_is_unknown_and_the_channel_never_acts(connect):
    async def scenario():
        simulator = ChannelSimulator(latency_ms=300)
        async with connect(simulator) as client:
            timed_out = await client.authorize(authorize(), 0.05)
            assert (timed_out.outcome, timed_out.decline_code) == (Outcome.UNKNOWN, "")
            await asyncio.sleep(0.4)  # past the point where the simulator would have decided
            simulator.latency_ms = 0
            inquired = await client.inquire(inquire("auth_1"), 5)
            assert (inquired.outcome, inquired.decline_code) == (Outcome.FAILED, "channel_not_found")
            # Having said NOT_FOUND, the channel never acts on that reference.
            late = await client.authorize(authorize(), 5)
            assert (late.outcome, late.decline_code) == (Outcome.FAILED, "channel_failed_precondition")
        assert simulator.acted_total == 0

    asyncio.run(scenario())


def test_repeated_reference_acts_once(connect):
    async def scenario():
        simulator = ChannelSimulator()
        async with connect(simulator) as client:
            first = await client.authorize(authorize(), 5)
            again = await client.authorize(authorize(), 5)
        assert first == again and first.outcome is Outcome.APPROVED
        assert simulator.calls["Authorize"] == 2 and simulator.acted["Authorize"] == 1

    asyncio.run(scenario())


def test_repeated_reference_with_other_content_fails(connect):
    async def scenario():
        simulator = ChannelSimulator()
        async with connect(simulator) as client:
            await client.authorize(authorize(amount_minor=1000), 5)
            other = await client.authorize(authorize(amount_minor=2000), 5)
            assert (other.outcome, other.decline_code) == (Outcome.FAILED, "channel_failed_precondition")
            assert (await client.inquire(inquire("auth_1"), 5)).outcome is Outcome.APPROVED
        assert simulator.acted_total == 1

    asyncio.run(scenario())


def test_capture_over_authorized_fails_and_only_one_capture(connect):
    async def scenario():
        async with connect(ChannelSimulator()) as client:
            await client.authorize(authorize(amount_minor=1000), 5)
            over = await client.capture(capture("cap_1", 1001), 5)
            assert (over.outcome, over.decline_code) == (Outcome.FAILED, "channel_out_of_range")
            assert (await client.capture(capture("cap_2", 900), 5)).outcome is Outcome.APPROVED
            second = await client.capture(capture("cap_3", 50), 5)
            assert (second.outcome, second.decline_code) == (Outcome.FAILED, "channel_failed_precondition")

    asyncio.run(scenario())


def test_refunds_over_the_capture_fail(connect):
    async def scenario():
        async with connect(ChannelSimulator()) as client:
            await client.authorize(authorize(amount_minor=1000), 5)
            await client.capture(capture("cap_1", 1000), 5)
            assert (await client.refund(refund("ref_1", 600), 5)).outcome is Outcome.APPROVED
            over = await client.refund(refund("ref_2", 401), 5)
            assert (over.outcome, over.decline_code) == (Outcome.FAILED, "channel_out_of_range")
            assert (await client.refund(refund("ref_3", 400), 5)).outcome is Outcome.APPROVED

    asyncio.run(scenario())


def test_void_after_capture_fails(connect):
    async def scenario():
        async with connect(ChannelSimulator()) as client:
            await client.authorize(authorize(), 5)
            await client.capture(capture("cap_1", 1000), 5)
            late = await client.void(void("void_1"), 5)
            assert (late.outcome, late.decline_code) == (Outcome.FAILED, "channel_failed_precondition")
            await client.authorize(authorize("auth_2"), 5)
            assert (await client.void(void("void_2", "auth_2"), 5)).outcome is Outcome.APPROVED

    asyncio.run(scenario())


def test_malformed_request_fails(connect):
    async def scenario():
        async with connect(ChannelSimulator()) as client:
            response = await client.authorize(authorize(amount_minor=0), 5)
        assert (response.outcome, response.decline_code) == (Outcome.FAILED, "channel_invalid_argument")

    asyncio.run(scenario())


def test_inquire(connect):
    async def scenario():
        simulator = ChannelSimulator()
        async with connect(simulator) as client:
            unknown = await client.inquire(inquire("never_sent"), 5)
            assert (unknown.outcome, unknown.decline_code) == (Outcome.FAILED, "channel_not_found")
            approved = await client.authorize(authorize("auth_ok"), 5)
            assert await client.inquire(inquire("auth_ok"), 5) == approved
            await client.authorize(authorize("auth_no", number="4000000000000002"), 5)
            declined = await client.inquire(inquire("auth_no"), 5)
            assert (declined.outcome, declined.decline_code) == (Outcome.DECLINED, "do_not_honor")
            await client.authorize(authorize("auth_err", number="4000000000000119"), 5)
            failed = await client.inquire(inquire("auth_err"), 5)
            assert (failed.outcome, failed.decline_code) == (Outcome.FAILED, "channel_not_found")

    asyncio.run(scenario())


def test_inquire_while_processing_is_unknown(connect):
    async def scenario():
        simulator = ChannelSimulator(latency_ms=300)
        async with connect(simulator) as client:
            pending = asyncio.create_task(client.authorize(authorize(), 5))
            await asyncio.sleep(0.1)
            simulator.latency_ms = 0
            assert (await client.inquire(inquire("auth_1"), 5)).outcome is Outcome.UNKNOWN
            assert (await pending).outcome is Outcome.APPROVED

    asyncio.run(scenario())


def test_failure_rate_one_fails_operations_and_leaves_inquire_unknown(connect):
    async def scenario():
        simulator = ChannelSimulator(failure_rate=1.0, seed=1)
        async with connect(simulator) as client:
            response = await client.authorize(authorize(), 5)
            assert (response.outcome, response.decline_code) == (Outcome.FAILED, "channel_internal")
            # An inquiry that fails says nothing about the operation: never FAILED.
            assert (await client.inquire(inquire("auth_1"), 5)).outcome is Outcome.UNKNOWN
        assert simulator.acted_total == 0

    asyncio.run(scenario())


def test_latency_is_applied(connect):
    async def scenario():
        async with connect(ChannelSimulator(latency_ms=80)) as client:
            started = time.monotonic()
            assert (await client.authorize(authorize(), 5)).outcome is Outcome.APPROVED
            assert time.monotonic() - started >= 0.08

    asyncio.run(scenario())

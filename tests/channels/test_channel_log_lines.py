"""The WARNING lines a misbehaving channel gives an operator: a call whose outcome is unknown (it timed
out) and a breaker that opens, each naming the channel and the operation's reference, over real
channels (gRPC on loopback and in process), read as `payswitch serve` writes them."""

import asyncio

import pytest
from channel_requests import authorize, inquire
from channel_transports import TRANSPORT_IDS, TRANSPORTS
from fake_clock import FakeClock
from log_lines import captured_logs

from payswitch.channels.base import Outcome
from payswitch.channels.guarded import CIRCUIT_OPEN_CODE, GuardedChannel, ResilienceSettings
from payswitch.channels.simulator import ChannelSimulator

TIMEOUT_CARD = "4000000000000259"  # approved, then the reply is held past the caller's deadline
GUARD, BREAKER = "payswitch.channels.guarded", "payswitch.channels.breaker"


@pytest.fixture(params=TRANSPORTS, ids=TRANSPORT_IDS)
def connect(request):
    return request.param


def held_forever():
    """A simulator sleep that never ends: whatever waits on it is held until its caller gives up."""
    never = asyncio.Event()
    return lambda seconds: never.wait()


def guard_of(client) -> GuardedChannel:
    return GuardedChannel(client, settings=ResilienceSettings(failure_threshold=3, min_samples=1), clock=FakeClock())


def test_a_timed_out_call_is_one_warning_naming_channel_operation_and_reference(connect):
    async def scenario():
        async with connect(ChannelSimulator(sleep=held_forever())) as client:
            return await guard_of(client).authorize(authorize("auth_slow", number=TIMEOUT_CARD), 0.05)

    with captured_logs() as logs:
        response = asyncio.run(scenario())
    assert response.outcome is Outcome.UNKNOWN and "DEADLINE_EXCEEDED" in response.message
    [line] = logs.of(GUARD)
    assert line["level"] == "WARNING"
    assert line["message"] == f"channel sim: authorize auth_slow outcome unknown after 0 ms: {response.message}"
    assert {key: line[key] for key in ("channel", "operation", "reference", "latency_ms", "timeout_ms")} == {
        "channel": "sim", "operation": "authorize", "reference": "auth_slow", "latency_ms": 0, "timeout_ms": 50}
    assert TIMEOUT_CARD not in logs.text and logs.of(BREAKER) == []


def test_a_timed_out_batch_is_one_warning_naming_its_references(connect):
    async def scenario():
        async with connect(ChannelSimulator(sleep=held_forever())) as client:
            return await guard_of(client).batch(
                [authorize(f"batch_{n}", number=TIMEOUT_CARD) for n in range(3)], 0.05)

    with captured_logs() as logs:
        responses = asyncio.run(scenario())
    assert [response.outcome for response in responses] == [Outcome.UNKNOWN] * 3
    [line] = logs.of(GUARD)
    assert (line["level"], line["operation"], line["unknown"], line["references"]) == (
        "WARNING", "batch", 3, ["batch_0", "batch_1", "batch_2"])
    assert line["message"].startswith("channel sim: batch of 3: 3 outcomes unknown after 0 ms: ")
    assert TIMEOUT_CARD not in logs.text


def test_an_inquiry_that_times_out_is_a_warning_too(connect):
    async def scenario():
        simulator = ChannelSimulator(latency_ms=1, sleep=held_forever())  # every call is held undecided
        async with connect(simulator) as client:
            return await guard_of(client).inquire(inquire("op_asked"), 0.05)

    with captured_logs() as logs:
        answer = asyncio.run(scenario())
    assert answer.outcome is Outcome.UNKNOWN
    [line] = logs.of(GUARD)
    assert (line["level"], line["operation"], line["reference"], line["timeout_ms"]) == (
        "WARNING", "inquire", "op_asked", 50)
    assert line["message"] == f"channel sim: inquire op_asked outcome unknown after 0 ms: {answer.message}"


def test_a_breaker_opening_is_one_warning_naming_the_call_that_opened_it(connect):
    async def scenario():
        async with connect(ChannelSimulator(failure_rate=1.0)) as client:
            guard = guard_of(client)
            answers = [await guard.authorize(authorize(f"err_{n}"), 5) for n in range(3)]
            return answers, await guard.authorize(authorize("refused"), 5)

    with captured_logs() as logs:
        answers, refused = asyncio.run(scenario())
    assert {answer.decline_code for answer in answers} == {"channel_internal"}
    assert refused.decline_code == CIRCUIT_OPEN_CODE
    [line] = logs.of(BREAKER)
    assert (line["level"], line["channel"], line["breaker_state"]) == ("WARNING", "sim", "open")
    assert line["message"] == ("channel sim circuit open after 3 consecutive failures "
                               "(last: authorize err_2: channel_internal); refusing calls for 10s")
    assert logs.of(GUARD) == []  # the channel said it did not act: nothing is unknown

"""GuardedChannel over real channels: a simulator served over gRPC on loopback and in process.

Breaker time and latencies come from a fake clock; the simulator's latency either advances that clock
(known latencies) or waits on a gate the test opens (calls held in flight). Nothing sleeps for timing.
"""

import asyncio
import socket

import pytest

from payswitch.channels.base import ChannelResponse, Outcome
from payswitch.channels.breaker import BreakerState
from payswitch.channels.grpc_client import GrpcChannelClient
from payswitch.channels.guarded import (
    BUSY_CODE, CIRCUIT_OPEN_CODE, FAILOVER_CODES, GuardedChannel, ResilienceSettings, may_fail_over,
)
from payswitch.channels.health import ChannelStats
from payswitch.channels.simulator import ChannelSimulator

from channel_requests import authorize, capture, inquire
from fake_clock import FakeClock
from channel_transports import TRANSPORT_IDS, TRANSPORTS

APPROVED, DECLINED, FAILED, UNKNOWN = Outcome.APPROVED, Outcome.DECLINED, Outcome.FAILED, Outcome.UNKNOWN
CLOSED, OPEN, HALF_OPEN = BreakerState.CLOSED, BreakerState.OPEN, BreakerState.HALF_OPEN
DECLINING_CARD = "4000000000000002"
ERROR_CARD = "4000000000000119"


def clock_sleep(clock):
    """A simulator sleep that moves the fake clock instead of waiting: latencies are exact."""
    async def sleep(seconds):
        clock.advance(seconds)
        await asyncio.sleep(0)
    return sleep


class Gate:
    """A simulator sleep that holds every call until the test opens the gate."""

    def __init__(self):
        self.event = asyncio.Event()

    def __call__(self, seconds):
        return self.event.wait()

    def open(self):
        self.event.set()


@pytest.fixture(params=TRANSPORTS, ids=TRANSPORT_IDS)
def connect(request):
    return request.param


def settings(**overrides):
    return ResilienceSettings(**{"failure_threshold": 3, "open_seconds": 10.0, "min_samples": 1} | overrides)


def outcome(response):
    return response.outcome, response.decline_code


async def wait_until(predicate, seconds=5.0):
    """Polls for something another task (or the gRPC server) makes true; never a timing assumption."""
    deadline = asyncio.get_running_loop().time() + seconds
    while not predicate():
        assert asyncio.get_running_loop().time() < deadline, "condition not reached"
        await asyncio.sleep(0.002)


async def open_with_errors(guard, count):
    for index in range(count):
        assert outcome(await guard.authorize(authorize(f"err_{index}", number=ERROR_CARD), 5)) == (
            FAILED, "channel_internal")
    assert guard.health().breaker_state is OPEN


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


# -- the breaker over real channels -----------------------------------------------------------------


def test_errors_open_the_breaker_and_the_channel_is_not_called_while_open(connect):
    async def scenario():
        simulator, clock = ChannelSimulator(), FakeClock()
        async with connect(simulator) as client:
            guard = GuardedChannel(client, settings=settings(), clock=clock)
            await open_with_errors(guard, 3)
            calls = simulator.calls.copy()
            refused = await guard.authorize(authorize("auth_1"), 5)
            assert outcome(refused) == (FAILED, CIRCUIT_OPEN_CODE) and may_fail_over(refused)
            assert outcome(await guard.capture(capture("cap_1"), 5)) == (FAILED, CIRCUIT_OPEN_CODE)
            assert simulator.calls == calls
            assert guard.health().circuit_open_refusals == 2

    asyncio.run(scenario())


def test_after_open_seconds_one_probe_goes_through_and_closes(connect):
    async def scenario():
        simulator, clock = ChannelSimulator(failure_rate=1.0), FakeClock()
        async with connect(simulator) as client:
            guard = GuardedChannel(client, settings=settings(), clock=clock)
            for index in range(3):
                assert outcome(await guard.authorize(authorize(f"auth_{index}"), 5)) == (FAILED, "channel_internal")
            simulator.failure_rate = 0.0
            clock.advance(9.9)
            assert outcome(await guard.authorize(authorize("early"), 5)) == (FAILED, CIRCUIT_OPEN_CODE)
            clock.advance(0.1)
            assert guard.health().breaker_state is HALF_OPEN
            assert outcome(await guard.authorize(authorize("probe"), 5)) == (APPROVED, "")
            assert guard.health().breaker_state is CLOSED
            assert simulator.calls["Authorize"] == 4

    asyncio.run(scenario())


def test_a_failed_probe_opens_again(connect):
    async def scenario():
        simulator, clock = ChannelSimulator(failure_rate=1.0), FakeClock()
        async with connect(simulator) as client:
            guard = GuardedChannel(client, settings=settings(failure_threshold=1), clock=clock)
            await guard.authorize(authorize("auth_0"), 5)
            clock.advance(10)
            assert outcome(await guard.authorize(authorize("probe"), 5)) == (FAILED, "channel_internal")
            assert guard.health().breaker_state is OPEN
            assert outcome(await guard.authorize(authorize("after"), 5)) == (FAILED, CIRCUIT_OPEN_CODE)
            assert simulator.calls["Authorize"] == 2

    asyncio.run(scenario())


def test_only_one_probe_at_a_time(connect):
    async def scenario():
        gate, clock = Gate(), FakeClock()
        simulator = ChannelSimulator(sleep=gate)
        async with connect(simulator) as client:
            guard = GuardedChannel(client, settings=settings(), clock=clock)
            await open_with_errors(guard, 3)
            clock.advance(10)
            simulator.latency_ms = 1  # from now on every call waits at the gate
            probe = asyncio.create_task(guard.authorize(authorize("probe"), 5))
            await wait_until(lambda: simulator.calls["Authorize"] == 4)
            assert outcome(await guard.authorize(authorize("second"), 5)) == (FAILED, CIRCUIT_OPEN_CODE)
            gate.open()
            assert outcome(await probe) == (APPROVED, "")
            assert guard.health().breaker_state is CLOSED and simulator.calls["Authorize"] == 4

    asyncio.run(scenario())


def test_declines_and_business_refusals_keep_the_breaker_closed(connect):
    async def scenario():
        simulator = ChannelSimulator()
        async with connect(simulator) as client:
            guard = GuardedChannel(client, settings=settings(failure_threshold=2), clock=FakeClock())
            for index in range(3):
                assert outcome(await guard.authorize(authorize(f"dnh_{index}", number=DECLINING_CARD), 5)) == (
                    DECLINED, "do_not_honor")
                assert outcome(await guard.capture(capture(f"cap_{index}", authorization_reference="none"), 5)) == (
                    FAILED, "channel_failed_precondition")
            health = guard.health()
            assert health.breaker_state is CLOSED and guard.breaker.consecutive_failures == 0
            assert (health.declined, health.refused, health.errors) == (3, 3, 0)

    asyncio.run(scenario())


def test_a_closed_port_is_unavailable_and_counts_as_a_failure():
    async def scenario():
        client = GrpcChannelClient("nobody", f"127.0.0.1:{closed_port()}")
        guard = GuardedChannel(client, settings=settings(failure_threshold=2), clock=FakeClock())
        try:
            for index in range(2):
                response = await guard.authorize(authorize(f"auth_{index}"), 5)
                assert outcome(response) == (FAILED, "channel_unavailable") and may_fail_over(response)
            assert guard.health().breaker_state is OPEN
            assert outcome(await guard.authorize(authorize("auth_3"), 5)) == (FAILED, CIRCUIT_OPEN_CODE)
        finally:
            await guard.close()

    asyncio.run(scenario())


# -- the in-flight limit and cancellation -----------------------------------------------------------


def test_a_call_over_the_limit_waits_for_a_slot_and_goes_through_when_one_frees(connect):
    async def scenario():
        gate = Gate()
        simulator = ChannelSimulator(latency_ms=50, sleep=gate)
        async with connect(simulator) as client:
            guard = GuardedChannel(client, settings=settings(max_in_flight=1, slot_wait_seconds=30), clock=FakeClock())
            first = asyncio.create_task(guard.authorize(authorize("auth_1"), 10))
            await wait_until(lambda: simulator.calls["Authorize"] == 1)
            second = asyncio.create_task(guard.authorize(authorize("auth_2"), 10))
            await asyncio.sleep(0.05)
            assert not second.done() and simulator.calls["Authorize"] == 1  # queued, not sent, not refused
            gate.open()
            assert [outcome(response) for response in await asyncio.gather(first, second)] == [(APPROVED, "")] * 2
            assert guard.health().busy_refusals == 0 and guard.health().in_flight == 0

    asyncio.run(scenario())


def test_over_the_limit_a_call_is_refused_after_its_wait_while_the_others_complete(connect):
    async def scenario():
        gate = Gate()
        simulator = ChannelSimulator(latency_ms=50, sleep=gate)
        async with connect(simulator) as client:
            guard = GuardedChannel(client, settings=settings(max_in_flight=2, slot_wait_seconds=0.01),
                                   clock=FakeClock())
            held = [asyncio.create_task(guard.authorize(authorize(f"auth_{index}"), 5)) for index in range(2)]
            await wait_until(lambda: simulator.calls["Authorize"] == 2)
            busy = await guard.authorize(authorize("auth_3"), 5)
            assert outcome(busy) == (FAILED, BUSY_CODE) and may_fail_over(busy)
            assert guard.health().in_flight == 2 and guard.health().busy_refusals == 1
            gate.open()
            assert [outcome(response) for response in await asyncio.gather(*held)] == [(APPROVED, "")] * 2
            assert simulator.calls["Authorize"] == 2 and guard.health().in_flight == 0

    asyncio.run(scenario())


def test_a_cancelled_call_frees_its_slot_and_records_nothing(connect):
    async def scenario():
        gate = Gate()
        simulator = ChannelSimulator(latency_ms=50, sleep=gate)
        async with connect(simulator) as client:
            guard = GuardedChannel(client, settings=settings(max_in_flight=1, failure_threshold=1),
                                   clock=FakeClock())
            call = asyncio.create_task(guard.authorize(authorize("auth_1"), 5))
            await wait_until(lambda: simulator.calls["Authorize"] == 1)
            call.cancel()
            with pytest.raises(asyncio.CancelledError):
                await call
            health = guard.health()
            assert (health.in_flight, health.calls, health.breaker_state) == (0, 0, CLOSED)
            gate.open()
            assert outcome(await guard.authorize(authorize("auth_2"), 5)) == (APPROVED, "")

    asyncio.run(scenario())


def test_a_cancelled_probe_frees_the_probe_slot(connect):
    async def scenario():
        gate, clock = Gate(), FakeClock()
        simulator = ChannelSimulator(sleep=gate)
        async with connect(simulator) as client:
            guard = GuardedChannel(client, settings=settings(failure_threshold=1), clock=clock)
            await open_with_errors(guard, 1)
            clock.advance(10)
            simulator.latency_ms = 1
            probe = asyncio.create_task(guard.authorize(authorize("probe_1"), 5))
            await wait_until(lambda: simulator.calls["Authorize"] == 2)
            probe.cancel()
            with pytest.raises(asyncio.CancelledError):
                await probe
            assert guard.health().breaker_state is HALF_OPEN
            gate.open()
            assert outcome(await guard.authorize(authorize("probe_2"), 5)) == (APPROVED, "")
            assert guard.health().breaker_state is CLOSED

    asyncio.run(scenario())


# -- inquire ----------------------------------------------------------------------------------------


def test_inquire_over_the_limit_is_unknown_and_not_sent(connect):
    async def scenario():
        gate = Gate()
        simulator = ChannelSimulator(latency_ms=50, sleep=gate)
        async with connect(simulator) as client:
            guard = GuardedChannel(client, settings=settings(max_in_flight=1), clock=FakeClock())
            held = asyncio.create_task(guard.authorize(authorize("auth_1"), 5))
            await wait_until(lambda: simulator.calls["Authorize"] == 1)
            refused = await guard.inquire(inquire("auth_1"), 5)
            assert outcome(refused) == (UNKNOWN, "") and not may_fail_over(refused)
            assert simulator.calls["Inquire"] == 0
            gate.open()
            await held

    asyncio.run(scenario())


def test_inquire_passes_an_open_breaker_and_does_not_close_it(connect):
    async def scenario():
        simulator = ChannelSimulator()
        async with connect(simulator) as client:
            guard = GuardedChannel(client, settings=settings(), clock=FakeClock())
            assert outcome(await guard.authorize(authorize("auth_ok"), 5)) == (APPROVED, "")
            await open_with_errors(guard, 3)
            assert outcome(await guard.inquire(inquire("auth_ok"), 5)) == (APPROVED, "")
            assert outcome(await guard.inquire(inquire("never_sent"), 5)) == (FAILED, "channel_not_found")
            health = guard.health()
            assert simulator.calls["Inquire"] == 2 and health.breaker_state is OPEN
            assert health.breaker_state == "open"  # what routing compares, without importing the enum
            assert health.calls == 4  # one approval, three errors: inquiries are not samples

    asyncio.run(scenario())


# -- batch ------------------------------------------------------------------------------------------


def test_a_batch_is_one_breaker_result_and_every_item_a_sample(connect):
    async def scenario():
        simulator = ChannelSimulator()
        async with connect(simulator) as client:
            guard = GuardedChannel(client, settings=settings(failure_threshold=2), clock=FakeClock())
            mixed = await guard.batch([authorize("b1", number=ERROR_CARD), authorize("b2")], 5)
            assert [outcome(response) for response in mixed] == [(FAILED, "channel_internal"), (APPROVED, "")]
            assert guard.breaker.consecutive_failures == 0
            await guard.batch([authorize("b3", number=ERROR_CARD), authorize("b4", number=ERROR_CARD)], 5)
            assert guard.breaker.consecutive_failures == 1 and guard.health().breaker_state is CLOSED
            await guard.batch([authorize("b5", number=ERROR_CARD)], 5)
            assert guard.health().breaker_state is OPEN
            calls = simulator.calls.copy()
            refused = await guard.batch([authorize("b6"), capture("b7")], 5)
            assert [outcome(response) for response in refused] == [(FAILED, CIRCUIT_OPEN_CODE)] * 2
            assert simulator.calls == calls
            health = guard.health()
            assert (health.calls, health.approved, health.errors) == (5, 1, 4)
            assert health.circuit_open_refusals == 1

    asyncio.run(scenario())


def test_a_batch_holds_one_slot(connect):
    async def scenario():
        gate = Gate()
        simulator = ChannelSimulator(latency_ms=50, sleep=gate)
        async with connect(simulator) as client:
            guard = GuardedChannel(client, settings=settings(max_in_flight=1), clock=FakeClock())
            assert guard.batch_supported is client.batch_supported is True
            held = asyncio.create_task(guard.batch([authorize(f"b{index}") for index in range(3)], 5))
            await wait_until(lambda: simulator.calls["Authorize"] == 3)
            assert guard.health().in_flight == 1
            refused = await guard.batch([authorize("b9"), authorize("b10")], 5)
            assert [outcome(response) for response in refused] == [(FAILED, BUSY_CODE)] * 2
            gate.open()
            assert [outcome(response) for response in await held] == [(APPROVED, "")] * 3

    asyncio.run(scenario())


def test_a_batch_of_a_wrong_type_raises_before_taking_a_slot():
    async def scenario():
        guard = GuardedChannel(GrpcChannelClient("nobody", f"127.0.0.1:{closed_port()}"), clock=FakeClock())
        with pytest.raises(TypeError):
            await guard.batch([inquire("i1")], 5)
        assert guard.health().in_flight == 0 and guard.health().calls == 0
        assert await guard.batch([], 5) == []

    asyncio.run(scenario())


# -- statistics -------------------------------------------------------------------------------------


def test_success_rate_and_latency_percentiles_from_a_known_sequence(connect):
    async def scenario():
        clock = FakeClock()
        simulator = ChannelSimulator(sleep=clock_sleep(clock))
        async with connect(simulator) as client:
            guard = GuardedChannel(client, settings=settings(failure_threshold=50, min_samples=20), clock=clock)
            # Calls 1..100 take 1..100 ms: every tenth declines, every tenth from the fifth errs.
            for index in range(1, 101):
                simulator.latency_ms = index
                number = DECLINING_CARD if index % 10 == 0 else ERROR_CARD if index % 10 == 5 else "4242424242424242"
                await guard.authorize(authorize(f"auth_{index}", number=number), 5)
                if index == 19:
                    assert guard.health().success_rate_percent is None  # 19 samples, fewer than min_samples
            simulator.latency_ms = 0
            await guard.capture(capture("cap_none", authorization_reference="none"), 5)  # a business refusal
            health = guard.health()
        assert (health.calls, health.approved, health.declined, health.refused, health.errors) == (101, 80, 10, 1, 10)
        assert (health.success_rate_percent, health.error_rate_percent) == (80, 10)
        assert (health.latency_p50_us, health.latency_p99_us) == (50_000, 99_000)
        assert health.name == "sim" and health.max_in_flight == 64 and health.breaker_state is CLOSED

    asyncio.run(scenario())


def record(stats, outcome_, latency_seconds=0.001, decline_code=""):
    stats.record(ChannelResponse(outcome_, decline_code=decline_code), latency_seconds)


def snapshot(stats):
    return stats.snapshot(name="acme", breaker_state=CLOSED, max_in_flight=1)


def test_samples_older_than_window_seconds_leave_the_window():
    clock = FakeClock()
    stats = ChannelStats(window_size=200, window_seconds=60, min_samples=2, clock=clock)
    record(stats, APPROVED, 0.010)
    record(stats, APPROVED, 0.010)
    clock.advance(30)
    record(stats, UNKNOWN, 2.0)
    record(stats, UNKNOWN, 2.0)
    assert (snapshot(stats).calls, snapshot(stats).success_rate_percent, snapshot(stats).latency_p50_us) == (
        4, 50, 10_000)
    clock.advance(30)  # the first two are now exactly window_seconds old
    health = snapshot(stats)
    assert (health.calls, health.errors, health.success_rate_percent, health.latency_p50_us) == (2, 2, 0, 2_000_000)
    clock.advance(30)
    health = snapshot(stats)
    assert (health.calls, health.success_rate_percent, health.error_rate_percent) == (0, None, None)
    assert (health.latency_p50_us, health.latency_p99_us) == (None, None)


def test_only_the_last_window_size_samples_count():
    stats = ChannelStats(window_size=20, window_seconds=300, min_samples=20, clock=FakeClock())
    for _ in range(30):
        record(stats, Outcome.FAILED, decline_code="channel_internal")
    for _ in range(20):
        record(stats, APPROVED)
    health = snapshot(stats)
    assert (health.calls, health.approved, health.errors, health.success_rate_percent) == (20, 20, 0, 100)


# -- settings and delegation ------------------------------------------------------------------------


@pytest.mark.parametrize("field, value", [
    ("failure_threshold", 0), ("failure_threshold", 2.5), ("failure_threshold", True),
    ("open_seconds", 0), ("open_seconds", float("inf")), ("open_seconds", "10"),
    ("half_open_probes", 0), ("max_in_flight", -1), ("window_size", 0),
    ("window_seconds", -5.0), ("window_seconds", float("nan")), ("min_samples", 0),
])
def test_settings_name_the_invalid_field(field, value):
    with pytest.raises(ValueError, match=field):
        ResilienceSettings(**{field: value})


def test_min_samples_above_window_size_is_refused():
    with pytest.raises(ValueError, match="min_samples"):
        ResilienceSettings(window_size=10, min_samples=20)


def test_failover_codes_are_the_refusals_of_a_request_never_sent():
    assert FAILOVER_CODES == {"channel_unavailable", CIRCUIT_OPEN_CODE, BUSY_CODE}
    assert not may_fail_over(ChannelResponse(UNKNOWN, decline_code=BUSY_CODE))
    assert not may_fail_over(ChannelResponse(FAILED, decline_code="channel_internal"))

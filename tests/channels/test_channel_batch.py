"""PaymentChannel.Batch through both channel clients: each item answered as its single call would be.

The transports are the same two as in test_channel_classification.py (a real gRPC server on loopback,
the in-process client). Latency is counted through the simulator's injected sleep, never timed.
"""

import asyncio
import socket

import pytest

from payswitch.channels.base import BATCH_OPERATIONS, Outcome
from payswitch.channels.grpc_client import GrpcChannelClient
from payswitch.channels.in_process import InProcessChannelClient
from payswitch.channels.simulator import ChannelRejected, ChannelSimulator
from payswitch.v1 import channel_pb2

from channel_requests import authorize, capture, inquire, refund, void, wallet_authorize
from channel_transports import TRANSPORT_IDS, TRANSPORTS

APPROVED, DECLINED, FAILED, UNKNOWN = Outcome.APPROVED, Outcome.DECLINED, Outcome.FAILED, Outcome.UNKNOWN
DECLINING_CARD = "4000000000000002"
ERROR_CARD = "4000000000000119"
TIMEOUT_CARD = "4000000000000259"


@pytest.fixture(params=TRANSPORTS, ids=TRANSPORT_IDS)
def connect(request):
    """An async context manager: connect(simulator) yields a ChannelClient for it."""
    return request.param


def outcomes(responses):
    return [(response.outcome, response.decline_code) for response in responses]


async def one_by_one(client, requests, timeout=5):
    """The single calls a batch stands for, one after the other."""
    return [await getattr(client, BATCH_OPERATIONS[type(request)])(request, timeout) for request in requests]


def three_authorizations():
    """Approved, declined, failed."""
    return [authorize("auth_1"), authorize("auth_2", number=DECLINING_CARD), authorize("auth_3", number=ERROR_CARD)]


class CountingSleep:
    """The simulator's sleep, recorded and skipped: latency is counted, not timed."""

    def __init__(self):
        self.seconds = []

    async def __call__(self, seconds):
        self.seconds.append(seconds)
        await asyncio.sleep(0)


async def sleep_forever(seconds):
    await asyncio.get_running_loop().create_future()


# Authorizations made before the batch, then a batch touching every rule.
BEFORE = [authorize("auth_pre", amount_minor=1000)]
MIXED = [
    authorize("auth_ok"),
    authorize("auth_dnh", number=DECLINING_CARD),
    authorize("auth_nsf", number="4000000000009995"),
    wallet_authorize("auth_wallet", "tok_decline"),
    authorize("auth_err", number=ERROR_CARD),
    authorize("auth_bad", amount_minor=0),
    capture("cap_over", 1001, "auth_pre"),
    capture("cap_unknown", 100, "auth_never"),
    capture("cap_ok", 400, "auth_ok"),  # its authorization is earlier in the same batch
    refund("ref_ok", 300, "auth_ok"),
    void("void_late", "auth_ok"),
    void("void_ok", "auth_pre"),
]
MIXED_OUTCOMES = [
    (APPROVED, ""),
    (DECLINED, "do_not_honor"),
    (DECLINED, "insufficient_funds"),
    (DECLINED, "do_not_honor"),
    (FAILED, "channel_internal"),
    (FAILED, "channel_invalid_argument"),
    (FAILED, "channel_out_of_range"),
    (FAILED, "channel_failed_precondition"),
    (APPROVED, ""),
    (APPROVED, ""),
    (FAILED, "channel_failed_precondition"),
    (APPROVED, ""),
]


def test_mixed_batch_answers_each_item_as_its_single_call(connect):
    async def scenario():
        batched, single = ChannelSimulator(), ChannelSimulator()
        async with connect(batched) as client:
            await one_by_one(client, BEFORE)
            from_batch = await client.batch(MIXED, 5)
        async with connect(single) as client:
            await one_by_one(client, BEFORE)
            from_singles = await one_by_one(client, MIXED)
        assert outcomes(from_batch) == MIXED_OUTCOMES
        assert from_batch == from_singles  # channel references and messages included
        assert batched.acted == single.acted
        assert batched.calls["Batch"] == 1
        assert batched.calls["Authorize"] == 1 + 6 and batched.calls["Capture"] == 3
        for response in from_batch:
            assert "4000000000000002" not in response.message and "0002" not in response.message

    asyncio.run(scenario())


def test_repeat_of_a_batch_gets_the_first_answers_without_acting_again(connect):
    async def scenario():
        simulator = ChannelSimulator()
        async with connect(simulator) as client:
            await one_by_one(client, BEFORE)
            first = await client.batch(MIXED, 5)
            acted = simulator.acted_total
            again = await client.batch(MIXED, 5)
            assert again == first
            assert simulator.acted_total == acted and simulator.calls["Batch"] == 2
            # One namespace with the single calls: a single repeat gets the batch's answer too.
            assert await client.authorize(MIXED[0], 5) == first[0]
            assert await client.authorize(MIXED[4], 5) == first[4]
            assert simulator.acted_total == acted

    asyncio.run(scenario())


def test_same_reference_twice_in_one_batch_acts_once(connect):
    async def scenario():
        simulator = ChannelSimulator()
        async with connect(simulator) as client:
            same = await client.batch([authorize("auth_1"), authorize("auth_1")], 5)
            other = await client.batch(
                [authorize("auth_2", amount_minor=100), authorize("auth_2", amount_minor=200)], 5)
        assert same[0] == same[1] and same[0].outcome is APPROVED
        assert outcomes(other) == [(APPROVED, ""), (FAILED, "channel_failed_precondition")]
        assert simulator.acted["Authorize"] == 2 and simulator.calls["Authorize"] == 4

    asyncio.run(scenario())


def test_latency_is_paid_once_per_batch(connect):
    async def scenario():
        sleep = CountingSleep()
        simulator = ChannelSimulator(latency_ms=250, sleep=sleep)
        requests = [authorize(f"auth_{index}") for index in range(20)]
        async with connect(simulator) as client:
            assert {response.outcome for response in await client.batch(requests, 5)} == {APPROVED}
            assert sleep.seconds == [0.25]
            sleep.seconds.clear()
            # The same operations as concurrent single calls (the fallback) pay it per call.
            singles = [authorize(f"single_{index}") for index in range(20)]
            client.batch_supported = False
            assert {response.outcome for response in await client.batch(singles, 5)} == {APPROVED}
            assert sleep.seconds == [0.25] * 20

    asyncio.run(scenario())


def test_failure_rate_is_rolled_per_item_as_for_single_calls(connect):
    async def scenario():
        requests = [authorize(f"auth_{index}") for index in range(40)]
        batched, single = ChannelSimulator(failure_rate=0.5, seed=3), ChannelSimulator(failure_rate=0.5, seed=3)
        async with connect(batched) as client:
            from_batch = await client.batch(requests, 5)
            # A repeat is never failed: the decided items keep their answers, the failed stay failed.
            assert await client.batch(requests, 5) == from_batch
        async with connect(single) as client:
            from_singles = await one_by_one(client, requests)
        assert from_batch == from_singles
        assert {outcome for outcome, _ in outcomes(from_batch)} == {APPROVED, FAILED}
        assert batched.acted_total == single.acted_total

    asyncio.run(scenario())


def test_without_batch_the_client_falls_back_to_single_calls_for_good(connect):
    async def scenario():
        simulator = ChannelSimulator(batch_enabled=False)
        async with connect(simulator) as client:
            first = await client.batch(three_authorizations(), 5)
            assert outcomes(first) == [(APPROVED, ""), (DECLINED, "do_not_honor"), (FAILED, "channel_internal")]
            assert simulator.calls["Batch"] == 1 and simulator.calls["Authorize"] == 3
            assert client.batch_supported is False
            second = await client.batch([authorize("auth_4"), capture("cap_1", 1000, "auth_1")], 5)
            assert outcomes(second) == [(APPROVED, ""), (APPROVED, "")]
        assert simulator.calls["Batch"] == 1  # not asked again
        assert simulator.calls["Authorize"] == 4 and simulator.calls["Capture"] == 1

    asyncio.run(scenario())


def test_timeout_card_holds_the_whole_reply_so_every_item_is_unknown(connect):
    async def scenario():
        simulator = ChannelSimulator(timeout_delay_s=30)
        requests = [authorize("auth_ok"), authorize("auth_dnh", number=DECLINING_CARD),
                    authorize("auth_slow", number=TIMEOUT_CARD), authorize("auth_err", number=ERROR_CARD)]
        async with connect(simulator) as client:
            held = await client.batch(requests, 0.5)
            assert outcomes(held) == [(UNKNOWN, "")] * 4
            assert simulator.acted["Authorize"] == 3  # every item was decided before the hold
            inquired = [await client.inquire(inquire(request.reference), 5) for request in requests]
            assert outcomes(inquired) == [(APPROVED, ""), (DECLINED, "do_not_honor"), (APPROVED, ""),
                                          (FAILED, "channel_not_found")]
            # The hold is for the first reply only: a repeat answers with the first decisions.
            again = await client.batch(requests, 5)
            assert outcomes(again) == [(APPROVED, ""), (DECLINED, "do_not_honor"), (APPROVED, ""),
                                       (FAILED, "channel_internal")]
        assert simulator.acted_total == 3

    asyncio.run(scenario())


def test_deadline_before_the_decision_leaves_every_item_unknown_and_nothing_done(connect):
    async def scenario():
        simulator = ChannelSimulator(latency_ms=100, sleep=sleep_forever)
        async with connect(simulator) as client:
            expired = await client.batch([authorize("auth_1"), authorize("auth_2", number=DECLINING_CARD)], 0.1)
            assert outcomes(expired) == [(UNKNOWN, "")] * 2
            simulator.latency_ms = 0
            # The server gives up on the call when it sees the deadline; until then Inquire says IN_PROGRESS.
            for _ in range(200):
                inquired = await client.inquire(inquire("auth_1"), 5)
                if inquired.outcome is not UNKNOWN:
                    break
                await asyncio.sleep(0.01)
            assert (inquired.outcome, inquired.decline_code) == (FAILED, "channel_not_found")
        assert simulator.acted_total == 0

    asyncio.run(scenario())


class TamperingSimulator(ChannelSimulator):
    """A channel whose Batch replies are changed by `tamper` after the simulator decided every item."""

    def __init__(self, tamper, **options):
        super().__init__(**options)
        self.tamper = tamper

    async def batch(self, request):
        response = await super().batch(request)
        self.tamper(response)
        return response


def drop_last(response):
    del response.results[-1]


def add_one(response):
    response.results.add().CopyFrom(response.results[0])


def swap_first_two(response):
    first, second = channel_pb2.ChannelBatchItemResult(), channel_pb2.ChannelBatchItemResult()
    first.CopyFrom(response.results[0])
    second.CopyFrom(response.results[1])
    response.results[0].CopyFrom(second)
    response.results[1].CopyFrom(first)


def clear_first(response):
    response.results[0].ClearField("answer")


def undefined_status_on_last(response):
    response.results[2].error.code = 99


def raise_after_deciding(response):
    raise RuntimeError("bug after every item was decided")


@pytest.mark.parametrize("tamper, expected", [
    (drop_last, [(UNKNOWN, "")] * 3),
    (add_one, [(UNKNOWN, "")] * 3),
    (swap_first_two, [(UNKNOWN, ""), (UNKNOWN, ""), (FAILED, "channel_internal")]),
    (clear_first, [(UNKNOWN, ""), (DECLINED, "do_not_honor"), (FAILED, "channel_internal")]),
    (undefined_status_on_last, [(APPROVED, ""), (DECLINED, "do_not_honor"), (UNKNOWN, "")]),
    (raise_after_deciding, [(UNKNOWN, "")] * 3),
], ids=["missing-result", "extra-result", "answers-for-other-references", "empty-answer", "undefined-status",
        "channel-bug"])
def test_a_reply_that_cannot_be_tied_to_its_items_leaves_them_unknown(connect, tamper, expected):
    async def scenario():
        simulator = TamperingSimulator(tamper)
        requests = three_authorizations()
        async with connect(simulator) as client:
            assert outcomes(await client.batch(requests, 5)) == expected
        assert simulator.acted_total == 2

    asyncio.run(scenario())


class RefusingSimulator(ChannelSimulator):
    """A channel answering every Batch with one status for the whole call."""

    def __init__(self, code, message):
        super().__init__()
        self.code, self.message = code, message

    async def batch(self, request):
        self.calls["Batch"] += 1
        raise ChannelRejected(self.code, self.message)


@pytest.mark.parametrize("code, message, expected", [
    ("RESOURCE_EXHAUSTED", "batch too large", (FAILED, "channel_resource_exhausted")),
    ("INVALID_ARGUMENT", "batch malformed", (FAILED, "channel_invalid_argument")),
    ("UNAVAILABLE", "bank link dropped", (UNKNOWN, "")),
])
def test_a_whole_call_status_is_classified_once_for_every_item(connect, code, message, expected):
    async def scenario():
        simulator = RefusingSimulator(code, message)
        async with connect(simulator) as client:
            responses = await client.batch([authorize("auth_1"), capture("cap_1", 100, "auth_0")], 5)
            assert outcomes(responses) == [expected] * 2
            assert client.batch_supported is True  # only UNIMPLEMENTED means "no Batch"
        assert simulator.calls["Authorize"] == 0

    asyncio.run(scenario())


def test_no_connection_fails_every_item_since_nothing_was_sent():
    async def scenario():
        with socket.socket() as unused:
            unused.bind(("127.0.0.1", 0))
            port = unused.getsockname()[1]
        client = GrpcChannelClient("sim", f"127.0.0.1:{port}")
        try:
            responses = await client.batch([authorize("auth_1"), authorize("auth_2")], 2)
        finally:
            await client.close()
        assert outcomes(responses) == [(FAILED, "channel_unavailable")] * 2
        assert client.batch_supported is True

    asyncio.run(scenario())


def test_a_batch_of_a_thousand_items(connect):
    cards = [("4242424242424242", APPROVED, ""), (DECLINING_CARD, DECLINED, "do_not_honor"),
             ("4000000000000069", DECLINED, "expired_card"), (ERROR_CARD, FAILED, "channel_internal"),
             ("5555555555554444", APPROVED, "")]

    async def scenario():
        simulator = ChannelSimulator()
        requests = [authorize(f"auth_{index:04d}", number=cards[index % len(cards)][0]) for index in range(1000)]
        async with connect(simulator) as client:
            responses = await client.batch(requests, 10)
        assert outcomes(responses) == [cards[index % len(cards)][1:] for index in range(1000)]
        assert len({response.channel_reference for response in responses if response.channel_reference}) == 800
        assert simulator.calls["Batch"] == 1 and simulator.calls["Authorize"] == 1000
        assert simulator.acted["Authorize"] == 800

    asyncio.run(scenario())


def test_empty_batch_calls_nothing(connect):
    async def scenario():
        simulator = ChannelSimulator()
        async with connect(simulator) as client:
            assert await client.batch([], 5) == []
        assert not simulator.calls

    asyncio.run(scenario())


def test_an_inquiry_cannot_be_batched_and_nothing_is_sent(connect):
    async def scenario():
        simulator = ChannelSimulator()
        async with connect(simulator) as client:
            with pytest.raises(TypeError):
                await client.batch([authorize("auth_1"), inquire("auth_1")], 5)
            client.batch_supported = False  # the fallback to single calls checks first, too
            with pytest.raises(TypeError):
                await client.batch([authorize("auth_1"), inquire("auth_1")], 5)
        assert not simulator.calls

    asyncio.run(scenario())


def test_in_process_default_timeout_applies_to_a_batch():
    async def scenario():
        simulator = ChannelSimulator(latency_ms=100, sleep=sleep_forever)
        client = InProcessChannelClient("sim", simulator, default_timeout=0.05)
        return await asyncio.wait_for(client.batch([authorize("auth_1")]), 5)

    assert outcomes(asyncio.run(scenario())) == [(UNKNOWN, "")]


# -- the simulator's Batch itself ---------------------------------------------------------------------


class Gate:
    """A sleep that waits until opened, so a test can act while a batch is between receipt and decision."""

    def __init__(self):
        self.entered = asyncio.Event()
        self.opened = asyncio.Event()

    async def __call__(self, seconds):
        self.entered.set()
        await self.opened.wait()


def test_batch_items_are_in_progress_during_the_latency_and_decided_after():
    async def scenario():
        gate = Gate()
        simulator = ChannelSimulator(latency_ms=50, sleep=gate)
        batch = asyncio.create_task(simulator.batch(channel_pb2.ChannelBatchRequest(
            items=[channel_pb2.ChannelBatchItem(authorize=authorize("auth_1"))])))
        await gate.entered.wait()
        simulator.latency_ms = 0
        assert (await simulator.inquire(inquire("auth_1"))).outcome == channel_pb2.CHANNEL_OUTCOME_IN_PROGRESS
        # A single call repeating the reference waits for the batch's decision instead of acting.
        repeat = asyncio.create_task(simulator.authorize(authorize("auth_1")))
        await asyncio.sleep(0)
        assert simulator.acted_total == 0
        gate.opened.set()
        response = await batch
        assert response.results[0].result.outcome == channel_pb2.CHANNEL_OUTCOME_APPROVED
        assert await repeat == response.results[0].result
        assert simulator.acted_total == 1

    asyncio.run(scenario())


def test_batch_cancelled_during_the_latency_acts_on_nothing_and_frees_its_references():
    async def scenario():
        gate = Gate()
        simulator = ChannelSimulator(latency_ms=50, sleep=gate)
        request = channel_pb2.ChannelBatchRequest(items=[
            channel_pb2.ChannelBatchItem(authorize=authorize("auth_1")),
            channel_pb2.ChannelBatchItem(authorize=authorize("auth_2")),
        ])
        batch = asyncio.create_task(simulator.batch(request))
        await gate.entered.wait()
        batch.cancel()
        with pytest.raises(asyncio.CancelledError):
            await batch
        assert simulator.acted_total == 0
        simulator.latency_ms = 0
        response = await simulator.batch(request)
        assert [result.result.outcome for result in response.results] == [channel_pb2.CHANNEL_OUTCOME_APPROVED] * 2
        assert simulator.acted_total == 2

    asyncio.run(scenario())


def test_batch_item_without_an_operation_is_invalid_argument():
    async def scenario():
        simulator = ChannelSimulator()
        response = await simulator.batch(channel_pb2.ChannelBatchRequest(items=[
            channel_pb2.ChannelBatchItem(), channel_pb2.ChannelBatchItem(authorize=authorize("auth_1"))]))
        assert response.results[0].WhichOneof("answer") == "error"
        assert response.results[0].error.code == 3  # INVALID_ARGUMENT
        assert response.results[1].result.outcome == channel_pb2.CHANNEL_OUTCOME_APPROVED

    asyncio.run(scenario())


def test_simulator_without_batch_refuses_it_before_counting_items():
    async def scenario():
        simulator = ChannelSimulator(batch_enabled=False)
        with pytest.raises(ChannelRejected) as refused:
            await simulator.batch(channel_pb2.ChannelBatchRequest(
                items=[channel_pb2.ChannelBatchItem(authorize=authorize("auth_1"))]))
        assert refused.value.code == "UNIMPLEMENTED"
        assert simulator.calls == {"Batch": 1} and simulator.acted_total == 0

    asyncio.run(scenario())

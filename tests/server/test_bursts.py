"""A burst of callers over a channel's in-flight limit: calls queue for a slot, and a call that gets
none is a retryable refusal that keeps its key free, never an OK answer with a FAILED payment.

Before the fix, 200 concurrent callers against the default `max_in_flight = 64` turned about a third
of their authorizations into FAILED channel_busy, answered OK and tied to their keys, so no client
retried them."""

import asyncio

import grpc
import pytest
from live_switch import LiveSwitch, card

from payswitch.client import error_details
from payswitch.v1 import types_pb2

T = types_pb2
CALLERS = 200


def narrow_switch(folder, slot_wait_ms: int, latency_ms: int) -> LiveSwitch:
    """A switch whose one channel takes 8 calls at once, each `latency_ms` long."""
    live = LiveSwitch(folder, channel_timeout_ms=3000, max_in_flight=8, slot_wait_ms=slot_wait_ms).start()
    live.simulator.latency_ms = latency_ms
    return live


@pytest.fixture
def narrow(tmp_path):
    live = narrow_switch(tmp_path, slot_wait_ms=250, latency_ms=25)  # about 0.6 s of queue for 200 callers
    yield live
    live.close()


@pytest.fixture
def saturated(tmp_path):
    live = narrow_switch(tmp_path, slot_wait_ms=1, latency_ms=100)  # 80 calls/s: most of a burst finds no slot
    yield live
    live.close()


async def _burst(live, keys: list[str], max_attempts: int) -> list:
    async with live.async_client(max_attempts=max_attempts, timeout=20) as client:
        return await asyncio.gather(*(client.authorize(1_000, "USD", card=card(), merchant_reference=key,
                                                       idempotency_key=key) for key in keys),
                                    return_exceptions=True)


def test_a_call_that_finds_no_slot_is_a_retryable_refusal_whose_key_stays_free(saturated):
    keys = [f"burst-{n}" for n in range(CALLERS)]
    answers = asyncio.run(_burst(saturated, keys, max_attempts=1))
    refused = [key for key, answer in zip(keys, answers) if isinstance(answer, grpc.aio.AioRpcError)]
    assert refused
    for answer in answers:
        if isinstance(answer, grpc.aio.AioRpcError):
            assert (answer.code(), error_details(answer).reason) == (grpc.StatusCode.RESOURCE_EXHAUSTED,
                                                                     "channel_busy")
            assert error_details(answer).metadata == {"channel": "sim"}
        else:
            assert answer.payment.status == T.PAYMENT_STATUS_AUTHORIZED

    # Each refused key is free: sent again a few at a time it pays, once, and every caller ends with
    # exactly one authorization at the channel.
    for start in range(0, len(refused), 8):
        retried = asyncio.run(_burst(saturated, refused[start:start + 8], max_attempts=1))
        assert all(answer.payment.status == T.PAYMENT_STATUS_AUTHORIZED for answer in retried), retried
    assert saturated.simulator.acted["Authorize"] == CALLERS


def test_a_burst_queues_for_slots_and_the_client_library_rides_out_the_rest(narrow):
    answers = asyncio.run(_burst(narrow, [f"ride-{n}" for n in range(CALLERS)], max_attempts=6))
    assert [type(answer).__name__ for answer in answers if not hasattr(answer, "payment")] == []
    assert {answer.payment.status for answer in answers} == {T.PAYMENT_STATUS_AUTHORIZED}
    assert narrow.simulator.acted["Authorize"] == CALLERS

"""The simulator's own rules, called directly: state, idempotency, Inquire, options."""

import asyncio
import random
import time

import pytest

from payswitch.channels.simulator import TEST_CARDS, TEST_WALLET_TOKENS, ChannelRejected, ChannelSimulator
from payswitch.v1 import channel_pb2, types_pb2

from channel_requests import authorize, capture, inquire, refund, usd, void

APPROVED = channel_pb2.CHANNEL_OUTCOME_APPROVED
DECLINED = channel_pb2.CHANNEL_OUTCOME_DECLINED
IN_PROGRESS = channel_pb2.CHANNEL_OUTCOME_IN_PROGRESS


async def rejection(coroutine) -> ChannelRejected:
    with pytest.raises(ChannelRejected) as caught:
        await coroutine
    return caught.value


def test_documented_card_table():
    assert {number: (b.kind, b.decline_code, b.partial) for number, b in TEST_CARDS.items()} == {
        "4242424242424242": ("approve", "", False),
        "5555555555554444": ("approve", "", False),
        "378282246310005": ("approve", "", False),
        "4000000000000002": ("decline", "do_not_honor", False),
        "4000000000009995": ("decline", "insufficient_funds", False),
        "4000000000000069": ("decline", "expired_card", False),
        "4000000000000119": ("error", "", False),
        "4000000000000259": ("timeout", "", False),
        "4000000000000325": ("approve", "", True),
        "4000000000000333": ("timeout", "", True),
    }
    assert {token: (b.kind, b.decline_code, b.partial) for token, b in TEST_WALLET_TOKENS.items()} == {
        "tok_decline": ("decline", "do_not_honor", False),
        "tok_insufficient": ("decline", "insufficient_funds", False),
        "tok_error": ("error", "", False),
        "tok_timeout": ("timeout", "", False),
        "tok_partial": ("approve", "", True),
    }


def test_the_partial_card_approves_half_rounded_up_and_bounds_captures_by_it():
    async def scenario():
        simulator = ChannelSimulator()
        result = await simulator.authorize(authorize(number="4000000000000325", amount_minor=1001))
        assert (result.outcome, result.amount.amount_minor, result.amount.currency) == (APPROVED, 501, "USD")
        rejected = await rejection(simulator.capture(capture("cap_1", amount_minor=502)))
        assert rejected.code == "OUT_OF_RANGE"
        assert (await simulator.capture(capture("cap_2", amount_minor=501))).outcome == APPROVED

    asyncio.run(scenario())


def test_approved_result_echoes_reference_and_amount():
    async def scenario():
        simulator = ChannelSimulator()
        result = await simulator.authorize(authorize())
        assert result.reference == "auth_1" and result.outcome == APPROVED
        assert result.channel_reference.startswith("sim_")
        assert result.amount == usd(1000)
        second = await simulator.authorize(authorize("auth_2"))
        assert second.channel_reference != result.channel_reference

    asyncio.run(scenario())


def test_repeat_returns_first_result_without_acting_again():
    async def scenario():
        simulator = ChannelSimulator()
        first = await simulator.authorize(authorize())
        first.outcome = DECLINED  # a caller changing its copy must not change what the channel answers
        again = await simulator.authorize(authorize())
        assert again.outcome == APPROVED and again.channel_reference == first.channel_reference
        assert simulator.calls["Authorize"] == 2 and simulator.acted["Authorize"] == 1
        await simulator.capture(capture("cap_1", amount_minor=400))
        await simulator.capture(capture("cap_1", amount_minor=400))
        assert simulator.calls["Capture"] == 2 and simulator.acted["Capture"] == 1
        assert simulator.acted_total == 2

    asyncio.run(scenario())


def test_repeat_with_other_content_is_refused_and_changes_nothing():
    async def scenario():
        simulator = ChannelSimulator()
        await simulator.authorize(authorize(amount_minor=1000))
        assert (await rejection(simulator.authorize(authorize(amount_minor=999)))).code == "FAILED_PRECONDITION"
        # The same reference under another method is other content too.
        assert (await rejection(simulator.capture(capture("auth_1")))).code == "FAILED_PRECONDITION"
        assert (await simulator.inquire(inquire("auth_1"))).amount == usd(1000)
        assert simulator.acted_total == 1

    asyncio.run(scenario())


def test_rejection_is_final_for_its_reference():
    async def scenario():
        simulator = ChannelSimulator()
        rejected = await rejection(simulator.authorize(authorize(number="4000000000000119")))
        assert (rejected.code, rejected.message) == ("INTERNAL", "simulated issuer error")
        assert (await rejection(simulator.authorize(authorize(number="4000000000000119")))).code == "INTERNAL"
        assert (await rejection(simulator.inquire(inquire("auth_1")))).code == "NOT_FOUND"
        assert simulator.acted_total == 0

    asyncio.run(scenario())


def test_declined_authorization_holds_nothing():
    async def scenario():
        simulator = ChannelSimulator()
        result = await simulator.authorize(authorize(number="4000000000009995"))
        assert (result.outcome, result.decline_code) == (DECLINED, "insufficient_funds")
        assert simulator.acted["Authorize"] == 1
        assert (await rejection(simulator.capture(capture("cap_1")))).code == "FAILED_PRECONDITION"
        assert (await rejection(simulator.void(void("void_1")))).code == "FAILED_PRECONDITION"

    asyncio.run(scenario())


def test_capture_is_bounded_by_the_authorization_and_happens_once():
    async def scenario():
        simulator = ChannelSimulator()
        await simulator.authorize(authorize(amount_minor=1000))
        assert (await rejection(simulator.capture(capture("cap_1", amount_minor=1001)))).code == "OUT_OF_RANGE"
        assert (await simulator.capture(capture("cap_2", amount_minor=1000))).outcome == APPROVED
        assert (await rejection(simulator.capture(capture("cap_3", amount_minor=1)))).code == "FAILED_PRECONDITION"
        assert (await rejection(simulator.capture(capture("cap_4", authorization_reference="auth_unknown")))).code == "FAILED_PRECONDITION"

    asyncio.run(scenario())


def test_refunds_in_total_are_bounded_by_the_capture():
    async def scenario():
        simulator = ChannelSimulator()
        await simulator.authorize(authorize(amount_minor=1000))
        assert (await rejection(simulator.refund(refund("ref_0", amount_minor=1)))).code == "FAILED_PRECONDITION"
        await simulator.capture(capture("cap_1", amount_minor=800))
        assert (await simulator.refund(refund("ref_1", amount_minor=500))).amount == usd(500)
        assert (await rejection(simulator.refund(refund("ref_2", amount_minor=301)))).code == "OUT_OF_RANGE"
        assert (await simulator.refund(refund("ref_3", amount_minor=300))).outcome == APPROVED
        assert (await rejection(simulator.refund(refund("ref_4", amount_minor=1)))).code == "OUT_OF_RANGE"

    asyncio.run(scenario())


def test_void_only_before_capture():
    async def scenario():
        simulator = ChannelSimulator()
        await simulator.authorize(authorize("auth_1", amount_minor=700))
        voided = await simulator.void(void("void_1", "auth_1"))
        assert voided.outcome == APPROVED and voided.amount == usd(700)
        assert (await rejection(simulator.capture(capture("cap_1", 700, authorization_reference="auth_1")))).code == "FAILED_PRECONDITION"
        assert (await rejection(simulator.void(void("void_2", "auth_1")))).code == "FAILED_PRECONDITION"
        await simulator.authorize(authorize("auth_2"))
        await simulator.capture(capture("cap_2", authorization_reference="auth_2"))
        assert (await rejection(simulator.void(void("void_3", "auth_2")))).code == "FAILED_PRECONDITION"

    asyncio.run(scenario())


@pytest.mark.parametrize("request_message", [
    authorize(reference=""),
    authorize(amount_minor=0),
    authorize(number="4242"),
    channel_pb2.ChannelAuthorizeRequest(reference="auth_1", amount=usd(100)),
    channel_pb2.ChannelAuthorizeRequest(reference="auth_1", card=types_pb2.Card(number="4242424242424242")),
    channel_pb2.ChannelAuthorizeRequest(reference="auth_1", amount=types_pb2.Money(amount_minor=5, currency="XXY"),
                                        card=types_pb2.Card(number="4242424242424242")),
], ids=["no-reference", "zero-amount", "short-number", "no-method", "no-amount", "unknown-currency"])
def test_malformed_authorization_is_invalid_argument(request_message):
    async def scenario():
        simulator = ChannelSimulator()
        rejected = await rejection(simulator.authorize(request_message))
        assert rejected.code == "INVALID_ARGUMENT"
        assert "4242424242424242" not in rejected.message
        assert simulator.acted_total == 0

    asyncio.run(scenario())


def test_capture_in_another_currency_is_invalid_argument():
    async def scenario():
        simulator = ChannelSimulator()
        await simulator.authorize(authorize())
        request = capture("cap_1")
        request.amount.currency = "EUR"
        assert (await rejection(simulator.capture(request))).code == "INVALID_ARGUMENT"

    asyncio.run(scenario())


def test_inquire_answers_stored_results_and_refuses_unknown_references_for_good():
    async def scenario():
        simulator = ChannelSimulator()
        declined = await simulator.authorize(authorize("auth_d", number="4000000000000002"))
        assert await simulator.inquire(inquire("auth_d")) == declined
        assert (await rejection(simulator.inquire(inquire("auth_late")))).code == "NOT_FOUND"
        # NOT_FOUND told the switch the operation never happened: it must never happen afterwards.
        assert (await rejection(simulator.authorize(authorize("auth_late")))).code == "FAILED_PRECONDITION"
        assert (await rejection(simulator.inquire(inquire("auth_late")))).code == "NOT_FOUND"
        assert simulator.acted_total == 1
        assert simulator.calls["Inquire"] == 3

    asyncio.run(scenario())


def test_inquire_during_processing_is_in_progress_and_duplicates_act_once():
    async def scenario():
        simulator = ChannelSimulator(latency_ms=200)
        first = asyncio.create_task(simulator.authorize(authorize()))
        duplicate = asyncio.create_task(simulator.authorize(authorize()))
        await asyncio.sleep(0.02)
        simulator.latency_ms = 0  # the inquiry must look while the authorization is still in its delay
        in_progress = await asyncio.wait_for(simulator.inquire(inquire("auth_1")), 5)
        assert in_progress.outcome == IN_PROGRESS and in_progress.reference == "auth_1"
        results = await asyncio.gather(first, duplicate)
        assert results[0] == results[1] and results[0].outcome == APPROVED
        assert simulator.acted["Authorize"] == 1 and simulator.calls["Authorize"] == 2

    asyncio.run(scenario())


def test_call_cancelled_before_deciding_acts_on_nothing():
    async def scenario():
        simulator = ChannelSimulator(latency_ms=200)
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(simulator.authorize(authorize()), 0.02)
        assert simulator.acted_total == 0
        assert (await simulator.authorize(authorize())).outcome == APPROVED
        assert simulator.acted_total == 1

    asyncio.run(scenario())


def test_timeout_card_acts_then_holds_the_reply():
    async def scenario():
        simulator = ChannelSimulator(timeout_delay_s=0.3)
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(simulator.authorize(authorize(number="4000000000000259")), 0.05)
        assert (await simulator.inquire(inquire("auth_1"))).outcome == APPROVED
        # A repeat gets the decided answer at once: the hold belongs to the first reply only.
        repeat = await asyncio.wait_for(simulator.authorize(authorize(number="4000000000000259")), 0.2)
        assert repeat.outcome == APPROVED
        assert (await simulator.capture(capture("cap_1"))).outcome == APPROVED
        assert simulator.acted["Authorize"] == 1

    asyncio.run(scenario())


def test_wallet_tokens():
    async def scenario():
        simulator = ChannelSimulator(timeout_delay_s=0.3)

        def wallet(reference, token):
            return channel_pb2.ChannelAuthorizeRequest(
                reference=reference, amount=usd(100), wallet=types_pb2.Wallet(provider="applepay", token=token))

        assert (await simulator.authorize(wallet("w1", "tok_anything"))).outcome == APPROVED
        assert (await simulator.authorize(wallet("w2", "tok_decline"))).decline_code == "do_not_honor"
        assert (await simulator.authorize(wallet("w3", "tok_insufficient"))).decline_code == "insufficient_funds"
        assert (await rejection(simulator.authorize(wallet("w4", "tok_error")))).code == "INTERNAL"
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(simulator.authorize(wallet("w5", "tok_timeout")), 0.05)
        assert (await simulator.inquire(inquire("w5"))).outcome == APPROVED
        assert (await rejection(simulator.authorize(wallet("w6", "")))).code == "INVALID_ARGUMENT"

    asyncio.run(scenario())


def test_failure_rate_fails_before_acting_and_is_reproducible_by_seed():
    async def pattern(**options):
        simulator = ChannelSimulator(failure_rate=0.5, **options)
        outcomes = []
        for n in range(40):
            try:
                await simulator.authorize(authorize(f"auth_{n}"))
                outcomes.append("ok")
            except ChannelRejected as rejected:
                assert rejected.code == "INTERNAL"
                outcomes.append("internal")
        assert simulator.acted_total == outcomes.count("ok")
        return outcomes

    first = asyncio.run(pattern(seed=7))
    assert first == asyncio.run(pattern(seed=7))
    assert first == asyncio.run(pattern(random=random.Random(7)))
    assert 0 < first.count("internal") < 40

    async def always():
        simulator = ChannelSimulator(failure_rate=1.0)
        assert (await rejection(simulator.authorize(authorize()))).code == "INTERNAL"
        assert (await rejection(simulator.inquire(inquire("auth_1")))).code == "INTERNAL"
        assert simulator.acted_total == 0

    asyncio.run(always())


def test_latency_is_added_to_every_call():
    async def scenario():
        simulator = ChannelSimulator(latency_ms=60)
        for call in (simulator.authorize(authorize()), simulator.authorize(authorize()),
                     simulator.inquire(inquire("auth_1"))):
            started = time.monotonic()
            await call
            assert time.monotonic() - started >= 0.06

    asyncio.run(scenario())


@pytest.mark.parametrize("options", [
    {"latency_ms": -1}, {"failure_rate": 1.5}, {"failure_rate": -0.1}, {"timeout_delay_s": -1},
])
def test_options_are_checked(options):
    with pytest.raises(ValueError):
        ChannelSimulator(**options)


def test_rejection_codes_are_status_names():
    assert ChannelRejected("OUT_OF_RANGE", "too much").code == "OUT_OF_RANGE"
    with pytest.raises(ValueError):
        ChannelRejected("DEADLINE_EXCEEDED", "a channel never answers that it did not act this way")

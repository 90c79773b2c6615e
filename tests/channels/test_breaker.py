"""The circuit breaker as a state machine, and the one table of what counts against a channel.

Time is a fake clock moved by the tests; nothing sleeps.
"""

import logging

import pytest

from payswitch.channels.base import ChannelResponse, Outcome
from payswitch.channels.breaker import BreakerState, CircuitBreaker, is_technical_failure
from payswitch.channels.status_mapping import REJECTION_CODES, decline_code_for

from fake_clock import FakeClock

CLOSED, OPEN, HALF_OPEN = BreakerState.CLOSED, BreakerState.OPEN, BreakerState.HALF_OPEN


@pytest.fixture
def clock():
    return FakeClock()


def breaker(clock, **settings):
    settings = {"failure_threshold": 3, "open_seconds": 10.0, "half_open_probes": 1} | settings
    return CircuitBreaker("acme", clock=clock, **settings)


def fail(breaker, times=1):
    for _ in range(times):
        breaker.record(breaker.allow(), success=False)


def open_breaker(clock, **settings):
    opened = breaker(clock, **settings)
    fail(opened, opened.failure_threshold)
    assert opened.state is OPEN
    return opened


def test_opens_after_threshold_consecutive_failures(clock):
    tested = breaker(clock)
    fail(tested, 2)
    assert tested.state is CLOSED and tested.consecutive_failures == 2
    fail(tested)
    assert tested.state is OPEN and tested.transitions[OPEN] == 1


def test_a_success_resets_the_consecutive_count(clock):
    tested = breaker(clock)
    fail(tested, 2)
    tested.record(tested.allow(), success=True)
    fail(tested, 2)
    assert tested.state is CLOSED and tested.consecutive_failures == 2


def test_open_refuses_until_open_seconds_pass(clock):
    tested = open_breaker(clock)
    clock.advance(9.999)
    assert tested.allow() is None and tested.state is OPEN
    clock.advance(0.001)
    assert tested.state is HALF_OPEN


def test_half_open_allows_one_probe_at_a_time(clock):
    tested = open_breaker(clock)
    clock.advance(10)
    probe = tested.allow()
    assert probe is not None and probe.probe
    assert tested.allow() is None


def test_half_open_allows_the_configured_number_of_probes(clock):
    tested = open_breaker(clock, half_open_probes=3)
    clock.advance(10)
    probes = [tested.allow() for _ in range(3)]
    assert all(probes) and tested.allow() is None


def test_probe_success_closes_and_resets(clock):
    tested = open_breaker(clock)
    clock.advance(10)
    tested.record(tested.allow(), success=True)
    assert tested.state is CLOSED and tested.consecutive_failures == 0
    permit = tested.allow()
    assert permit is not None and not permit.probe
    fail(tested, 2)
    assert tested.state is CLOSED  # a fresh count: two failures are below the threshold


def test_probe_failure_reopens_for_another_period(clock):
    tested = open_breaker(clock)
    clock.advance(10)
    tested.record(tested.allow(), success=False)
    assert tested.state is OPEN and tested.transitions[OPEN] == 2
    clock.advance(9)
    assert tested.allow() is None
    clock.advance(1)
    assert tested.state is HALF_OPEN


def test_a_released_probe_frees_its_slot_and_counts_for_nothing(clock):
    tested = open_breaker(clock)
    clock.advance(10)
    tested.release(tested.allow())
    assert tested.state is HALF_OPEN
    assert tested.allow() is not None


def test_a_release_in_closed_state_counts_for_nothing(clock):
    tested = breaker(clock, failure_threshold=1)
    tested.release(tested.allow())
    assert tested.state is CLOSED and tested.consecutive_failures == 0


def test_late_results_from_before_the_opening_are_ignored(clock):
    tested = breaker(clock)
    slow_calls = [tested.allow(), tested.allow()]  # admitted while closed, answer after the opening
    fail(tested, 3)
    tested.record(slow_calls[0], success=False)
    assert tested.state is OPEN
    clock.advance(10)
    probe = tested.allow()
    tested.record(slow_calls[1], success=True)  # must not close: it is not the probe
    assert tested.state is HALF_OPEN and tested.allow() is None
    tested.record(probe, success=True)
    assert tested.state is CLOSED


def test_the_first_probe_answer_decides_and_later_probes_are_ignored(clock):
    tested = open_breaker(clock, half_open_probes=2)
    clock.advance(10)
    first, second = tested.allow(), tested.allow()
    tested.record(first, success=False)
    tested.record(second, success=True)
    assert tested.state is OPEN


def test_transitions_are_logged(clock, caplog):
    caplog.set_level(logging.INFO, logger="payswitch.channels.breaker")
    tested = open_breaker(clock)
    clock.advance(10)
    tested.record(tested.allow(), success=True)
    messages = [record.getMessage() for record in caplog.records]
    assert messages[0].startswith("channel acme circuit open after 3 consecutive failures")
    assert "channel acme circuit half-open" in messages[1]
    assert messages[2] == "channel acme circuit closed after a successful probe"


TECHNICAL = [
    ChannelResponse(Outcome.UNKNOWN, message="deadline exceeded"),
    *(ChannelResponse(Outcome.FAILED, decline_code=code) for code in (
        "channel_unavailable", "channel_internal", "channel_resource_exhausted", "channel_unimplemented",
        "channel_unauthenticated", "channel_permission_denied", "channel_something_new")),
]
ANSWERED = [
    ChannelResponse(Outcome.APPROVED),
    ChannelResponse(Outcome.DECLINED, decline_code="do_not_honor"),
    *(ChannelResponse(Outcome.FAILED, decline_code=code) for code in (
        "channel_out_of_range", "channel_failed_precondition", "channel_invalid_argument", "channel_not_found",
        "channel_already_exists")),
]


@pytest.mark.parametrize("response", TECHNICAL, ids=lambda response: response.decline_code or "unknown")
def test_technical_failures_count_against_the_channel(response):
    assert is_technical_failure(response)


@pytest.mark.parametrize("response", ANSWERED, ids=lambda response: response.decline_code or "approved")
def test_the_channel_deciding_is_not_a_failure(response):
    assert not is_technical_failure(response)


def test_every_code_a_client_can_return_is_in_the_table():
    listed = {response.decline_code for response in TECHNICAL + ANSWERED}
    assert {decline_code_for(code) for code in REJECTION_CODES} <= listed

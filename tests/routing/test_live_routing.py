"""Routing and resilience against several simulator channels on loopback, through the public API."""

import asyncio
import itertools
import math
import time

import grpc
import pytest
from live_switch import APPROVE, DO_NOT_HONOR, TIMEOUT, LiveSwitch, card, rpc_error

from payswitch.client import authorize_request
from payswitch.client.errors import error_details
from payswitch.config import ResolverConfig
from payswitch.v1 import types_pb2

ROUTES = """
version = "v1"

[[bins]]
low = "555555"
high = "555555"
scheme = "mastercard"
country = "GB"
card_type = "debit"

[[rules]]
name = "beta-only-b"
merchants = ["m_beta"]
channels = ["b"]

[[rules]]
name = "gb-debit-to-c"
countries = ["GB"]
card_types = ["debit"]
channels = ["c", "a"]

[[rules]]
name = "big-eur"
currencies = ["EUR"]
min_amount_minor = 100000
channels = ["b", "a"]

[[rules]]
name = "everything-else"
channels = ["a", "b"]
"""

MASTERCARD_GB_DEBIT = "5555555555554444"
_orders = itertools.count()


def ref() -> str:
    return f"order-{next(_orders)}"


@pytest.fixture
def switches(tmp_path):
    started = []

    def start(**options) -> LiveSwitch:
        folder = tmp_path / f"switch{len(started)}"
        folder.mkdir()
        switch = LiveSwitch(folder, **options)
        started.append(switch)
        return switch.start()

    yield start
    for switch in started:
        switch.close()


def test_the_first_matching_rule_chooses_and_each_payment_records_it(switches):
    live = switches(channels=("a", "b", "c"), routing=ROUTES)
    alpha, beta = live.client("m_alpha"), live.client("m_beta")

    cases = [
        (alpha.authorize(1_000, "USD", card=card(), merchant_reference=ref()), "a", "everything-else"),
        (beta.authorize(1_000, "USD", card=card(), merchant_reference=ref()), "b", "beta-only-b"),
        (alpha.authorize(1_000, "USD", card=card(MASTERCARD_GB_DEBIT), merchant_reference=ref()), "c",
         "gb-debit-to-c"),
        (alpha.authorize(100_000, "EUR", card=card(), merchant_reference=ref()), "b", "big-eur"),
        (alpha.authorize(99_999, "EUR", card=card(), merchant_reference=ref()), "a", "everything-else"),
    ]
    for response, channel, rule in cases:
        payment = alpha.get_payment(response.payment.payment_id).payment if response.payment.merchant_id == "m_alpha" \
            else beta.get_payment(response.payment.payment_id).payment
        assert (payment.status, payment.channel, payment.routing_version, payment.routing_rule) == (
            types_pb2.PAYMENT_STATUS_AUTHORIZED, channel, "v1", rule)
    assert {name: live.channel_calls("Authorize", name) for name in "abc"} == {"a": 2, "b": 2, "c": 1}


def test_a_weighted_split_holds_over_ten_thousand_payments(switches):
    routes = 'version = "split-1"\n[[rules]]\nname = "split"\nsplit = { a = 70, b = 20, c = 10 }\n'
    live = switches(channels=("a", "b", "c"), routing=routes)
    client = live.client()
    chosen = []
    for batch in range(10):
        response = client.batch([authorize_request(500 + n, "USD", card=card(), merchant_reference=f"o{batch}-{n}")
                                 for n in range(1000)], timeout=60)
        chosen += [result.authorize.payment.channel for result in response.results]
    assert len(chosen) == 10_000
    for channel, weight in (("a", 0.7), ("b", 0.2), ("c", 0.1)):
        count = chosen.count(channel)
        sigma = math.sqrt(10_000 * weight * (1 - weight))
        assert abs(count - 10_000 * weight) < 4.5 * sigma, (channel, count)
        # The channel acted on exactly the payments that name it.
        assert live.simulators[channel].acted["Authorize"] == count


def test_a_refused_connection_fails_over_to_the_next_channel(switches):
    routes = 'version = "f"\n[[rules]]\nname = "down-first"\nchannels = ["down", "a"]\n'
    live = switches(channels=("a",), unreachable=("down",), routing=routes, breaker_failures=1000)
    client = live.client()

    payment = client.authorize(1_000, "USD", card=card(), merchant_reference=ref()).payment
    batch = client.batch([authorize_request(700, "USD", card=card(), merchant_reference=f"b{n}") for n in range(5)])

    assert (payment.status, payment.channel) == (types_pb2.PAYMENT_STATUS_AUTHORIZED, "a")
    assert [r.authorize.payment.channel for r in batch.results] == ["a"] * 5
    assert live.simulators["a"].acted["Authorize"] == 6
    # Captured on the channel that authorized, never on the one that refused the connection.
    assert client.capture(payment.payment_id).payment.status == types_pb2.PAYMENT_STATUS_CAPTURED
    assert live.channel_calls("Capture", "a") == 1


def test_no_failover_after_a_timeout_and_inquire_finds_the_real_outcome(switches):
    routes = 'version = "t"\n[[rules]]\nname = "a-then-b"\nchannels = ["a", "b"]\n'
    resolver = ResolverConfig(interval_seconds=0.05, min_age_seconds=0.0)
    live = switches(channels=("a", "b"), routing=routes, resolver=resolver, channel_timeout_ms=200,
                    timeout_delay_s=2.0)
    client = live.client()

    first = client.authorize(2_500, "USD", card=card(TIMEOUT), idempotency_key="slow-1",
                             merchant_reference="slow-order").payment
    assert (first.status, first.channel) == (types_pb2.PAYMENT_STATUS_PENDING, "a")
    assert live.channel_calls("Authorize", "b") == 0

    resolved = wait_for(lambda: client.get_payment(first.payment_id).payment,
                        lambda payment: payment.status != types_pb2.PAYMENT_STATUS_PENDING)
    assert resolved.status == types_pb2.PAYMENT_STATUS_AUTHORIZED
    assert live.simulators["a"].acted["Authorize"] == 1 and live.channel_calls("Inquire", "a") >= 1
    assert live.channel_calls("Authorize", "b") == 0 and live.channel_calls("Inquire", "b") == 0
    # A retry with the same key replays the resolved answer and charges nothing more.
    retried = client.authorize(2_500, "USD", card=card(TIMEOUT), idempotency_key="slow-1",
                               merchant_reference="slow-order").payment
    assert (retried.payment_id, retried.status) == (first.payment_id, types_pb2.PAYMENT_STATUS_AUTHORIZED)
    assert live.simulators["a"].acted["Authorize"] == 1
    assert client.capture(first.payment_id).payment.status == types_pb2.PAYMENT_STATUS_CAPTURED


def test_a_late_approval_is_voided_when_the_policy_says_so(switches):
    resolver = ResolverConfig(interval_seconds=0.05, min_age_seconds=0.0, late_authorization="void")
    live = switches(resolver=resolver, channel_timeout_ms=200, timeout_delay_s=2.0)
    client = live.client()
    pending = client.authorize(900, "USD", card=card(TIMEOUT), merchant_reference=ref()).payment
    assert pending.status == types_pb2.PAYMENT_STATUS_PENDING
    final = wait_for(lambda: client.get_payment(pending.payment_id).payment,
                     lambda payment: payment.status not in (types_pb2.PAYMENT_STATUS_PENDING, types_pb2.PAYMENT_STATUS_AUTHORIZED))
    assert final.status == types_pb2.PAYMENT_STATUS_VOIDED
    assert [op.kind for op in final.operations] == [types_pb2.OPERATION_KIND_AUTHORIZATION, types_pb2.OPERATION_KIND_VOID]
    assert live.simulators["sim"].acted["Void"] == 1


def test_the_breaker_opens_routes_around_and_closes_when_the_channel_returns(switches):
    routes = 'version = "br"\n[[rules]]\nname = "flaky-first"\nchannels = ["flaky", "a"]\n'
    live = switches(channels=("a",), unreachable=("flaky",), routing=routes, breaker_failures=3,
                    breaker_open_seconds=0.5)
    client = live.client()
    health = live.app.channels.health

    for n in range(3):
        assert client.authorize(100 + n, "USD", card=card(), merchant_reference=ref()).payment.channel == "a"
    assert health("flaky").breaker_state == "open"
    refusals_before = health("flaky").circuit_open_refusals
    # While open the router puts the channel last: payments go straight to "a", nothing is refused.
    for n in range(5):
        assert client.authorize(200 + n, "USD", card=card(), merchant_reference=ref()).payment.channel == "a"
    assert health("flaky").circuit_open_refusals == refusals_before

    revived = live.revive("flaky")
    seen, deadline = [], time.monotonic() + 10
    while health("flaky").breaker_state != "closed" and time.monotonic() < deadline:
        wait_for(lambda: health("flaky").breaker_state, lambda state: state == "half_open")
        seen.append("half_open")
        # The half-open probe: a payment goes to the channel again (gRPC may still be waiting to
        # reconnect, in which case the probe fails over and the breaker opens for another round).
        probe = client.authorize(300, "USD", card=card(), merchant_reference=ref()).payment
        assert probe.status == types_pb2.PAYMENT_STATUS_AUTHORIZED
    assert "half_open" in seen and health("flaky").breaker_state == "closed"
    assert probe.channel == "flaky" and revived.acted["Authorize"] == 1


def test_the_caller_deadline_bounds_the_channel_call(switches):
    live = switches(channel_timeout_ms=3_000, timeout_delay_s=5.0)
    client = live.client(max_attempts=1)
    started = time.monotonic()
    request = authorize_request(800, "USD", card=card(TIMEOUT), merchant_reference=ref())
    pending = client.call("Authorize", request, timeout=0.6).payment
    assert pending.status == types_pb2.PAYMENT_STATUS_PENDING  # answered within the caller's 0.6 s, not after 3 s
    assert time.monotonic() - started < 0.6

    request = authorize_request(800, "USD", card=card(), merchant_reference=ref())
    error = rpc_error(lambda: client.call("Authorize", request, timeout=0.03))
    assert error.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    assert len(client.list_payments().payments) == 1  # the refused call started nothing


def test_reload_under_load_fails_nothing_and_each_payment_names_one_version(switches):
    template = 'version = "{version}"\n[[rules]]\nname = "all"\nchannels = ["{channel}"]\n'
    live = switches(channels=("a", "b"), routing=template.format(version="v1", channel="a"))

    payments = []

    async def load(stop: asyncio.Event) -> None:
        async with live.async_client() as client:
            while not stop.is_set():
                responses = await asyncio.gather(*(client.authorize(100, "USD", card=card(), merchant_reference=ref())
                                                   for _ in range(20)))
                payments.extend(response.payment for response in responses)

    async def reload_while_loaded():
        stop = asyncio.Event()
        running = asyncio.ensure_future(load(stop))
        while len(payments) < 20:
            await asyncio.sleep(0.01)
        for version, channel in [("v2", "b"), ("v3", "a"), ("v4", "b")] * 3:
            live.routing_path.write_text(template.format(version=version, channel=channel))
            await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(live.app.reload_rules(), live.loop))
            await asyncio.sleep(0.1)
        stop.set()
        await running

    asyncio.run(reload_while_loaded())
    channel_of = {"v1": "a", "v2": "b", "v3": "a", "v4": "b"}
    assert len(payments) >= 100 and all(p.status == types_pb2.PAYMENT_STATUS_AUTHORIZED for p in payments)
    assert all(channel_of[p.routing_version] == p.channel for p in payments)
    assert {p.routing_version for p in payments} >= {"v1", "v4"}
    assert live.simulators["a"].acted["Authorize"] + live.simulators["b"].acted["Authorize"] == len(payments)


def test_a_bad_routing_file_changes_nothing(switches):
    live = switches(channels=("a", "b"), routing='version = "good"\n[[rules]]\nname = "r"\nchannels = ["a"]\n')
    live.routing_path.write_text('version = "bad"\n[[rules]]\nname = "r"\nchannels = ["nowhere"]\n')
    from payswitch.routing.config import RoutingConfigError

    with pytest.raises(RoutingConfigError, match=r"routes.toml:4: .*nowhere"):
        live.call(live.app.reload_rules())
    payment = live.client().authorize(100, "USD", card=card(APPROVE), merchant_reference=ref()).payment
    assert (payment.routing_version, payment.channel) == ("good", "a")


def test_no_matching_rule_and_no_default_channel_is_refused_naming_the_reason(switches):
    routes = 'version = "narrow"\n[[rules]]\nname = "eur-only"\ncurrencies = ["EUR"]\nchannels = ["a"]\n'
    live = switches(channels=("a",), routing=routes)
    live.app.router._defaults.clear()  # as a configuration whose merchants name no default channel
    client = live.client()
    error = rpc_error(lambda: client.authorize(100, "USD", card=card(), merchant_reference=ref()))
    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert error_details(error).reason == "no_route"
    assert client.list_payments().payments == []


def wait_for(read, done, timeout: float = 10.0):
    deadline = time.monotonic() + timeout
    while True:
        value = read()
        if done(value) or time.monotonic() > deadline:
            return value
        time.sleep(0.05)


def test_a_channel_under_the_success_rate_bound_is_tried_after_the_others(switches):
    routes = ('version = "sr"\n[[rules]]\nname = "a-unless-failing"\nchannels = ["a", "b"]\n'
              'min_success_rate_percent = 50\n')
    live = switches(channels=("a", "b"), routing=routes)
    client = live.client()
    for n in range(20):  # min_samples: 20 answered calls before a rate is judged
        declined = client.authorize(100 + n, "USD", card=card(DO_NOT_HONOR), merchant_reference=ref()).payment
        assert (declined.status, declined.channel) == (types_pb2.PAYMENT_STATUS_DECLINED, "a")
    assert live.app.channels.health("a").success_rate_percent == 0
    time.sleep(0.3)  # the router re-reads a success rate at most every 0.25 s

    payment = client.authorize(500, "USD", card=card(), merchant_reference=ref()).payment
    assert (payment.status, payment.channel, payment.routing_rule) == (types_pb2.PAYMENT_STATUS_AUTHORIZED, "b", "a-unless-failing")
    assert live.channel_calls("Authorize", "a") == 20

"""The resolver against a live switch: it keeps asking with growing pauses while the channel cannot
say, then records the answer once; an operation still being sent is left alone."""

import pytest
from live_switch import TIMEOUT, LiveSwitch, card

from payswitch.channels.base import ChannelResponse, Outcome
from payswitch.config import ResolverConfig
from payswitch.processing.resolver import PendingResolver
from payswitch.v1 import types_pb2


class FakeMonotonic:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


@pytest.fixture
def pending_payment(tmp_path):
    live = LiveSwitch(tmp_path, channel_timeout_ms=150, timeout_delay_s=1.0).start()
    payment = live.client().authorize(1_500, "USD", card=card(TIMEOUT), merchant_reference="slow",
                                      idempotency_key="slow-key").payment
    assert payment.status == types_pb2.PAYMENT_STATUS_PENDING
    yield live, payment
    live.close()


def test_inquiries_back_off_while_the_channel_cannot_say_then_the_answer_is_recorded_once(pending_payment):
    live, payment = pending_payment
    app, clock = live.app, FakeMonotonic()
    resolver = PendingResolver(app.store, app.service, app.channels,
                               ResolverConfig(interval_seconds=1, min_age_seconds=0, max_backoff_seconds=8),
                               clock_us=lambda: int(live.clock() * 1e6), monotonic=clock)
    live.simulator.failure_rate = 1.0  # every Inquire fails with INTERNAL: the outcome stays unknown

    asked_at = []
    for _ in range(60):  # one simulated minute, a round every second
        before = live.channel_calls("Inquire")
        assert live.call(resolver.resolve_once()) == 0
        if live.channel_calls("Inquire") > before:
            asked_at.append(clock.now)
        clock.now += 1
    pauses = [later - earlier for earlier, later in zip(asked_at, asked_at[1:])]
    assert pauses[:3] == sorted(pauses[:3]) and pauses[0] >= 2 and max(pauses) <= 10  # 2, 4, 8 (+-20 %), capped
    assert 6 <= len(asked_at) <= 12
    assert live.client().get_payment(payment.payment_id).payment.status == types_pb2.PAYMENT_STATUS_PENDING

    live.simulator.failure_rate = 0.0
    clock.now += 10
    assert live.call(resolver.resolve_once()) == 1
    assert live.call(resolver.resolve_once()) == 0  # settled: nothing left to ask about
    resolved = live.client().get_payment(payment.payment_id).payment
    assert resolved.status == types_pb2.PAYMENT_STATUS_AUTHORIZED
    assert live.simulator.acted["Authorize"] == 1


def test_an_outcome_is_not_recorded_twice_nor_for_an_operation_still_being_sent(pending_payment):
    live, payment = pending_payment
    service = live.app.service
    stored = live.call(live.app.store.get_payment("m_alpha", payment.payment_id))
    approved = ChannelResponse(Outcome.APPROVED, channel_reference="late-1")

    assert live.call(service.settle_late(stored, stored.pending_operation_id, ChannelResponse(Outcome.UNKNOWN))) \
        is False
    assert live.call(service.settle_late(stored, stored.pending_operation_id, approved)) is True
    assert live.call(service.settle_late(stored, stored.pending_operation_id, approved)) is False
    operations = live.client().get_payment(payment.payment_id).payment.operations
    assert [(op.status, op.channel_reference) for op in operations] == [(types_pb2.OPERATION_STATUS_SUCCEEDED, "late-1")]
    # The idempotency key now replays the resolved payment.
    replay = live.client().authorize(1_500, "USD", card=card(TIMEOUT), merchant_reference="slow",
                                     idempotency_key="slow-key").payment
    assert (replay.payment_id, replay.status) == (payment.payment_id, types_pb2.PAYMENT_STATUS_AUTHORIZED)

    service._sending.add("op_in_flight")
    assert live.call(service.settle_late(stored, "op_in_flight", approved)) is False

"""Operations the switch stopped in the middle of: `kill -9` of a real `payswitch serve` between an
operation's first commit (the intent) and its second (the outcome), then a restart on the same file.

The channel is a `payswitch channel-sim` process that outlives the switch, slowed down so the kill
lands while the channel call is open. Before the fix a retry of the key answered ABORTED until the
resolver asked Inquire, which found nothing (the dropped call was never decided) and recorded the
payment FAILED channel_not_found, spending the caller's key.
"""

import secrets
import sqlite3
import threading
import time

import grpc
import pytest
from live_switch import TIMEOUT, LiveSwitch, card
from processes import CommandProcess, channel_sim, write_config

from payswitch.client import SyncSwitchClient
from payswitch.config import ResolverConfig
from payswitch.processing.resolver import PendingResolver
from payswitch.v1 import channel_pb2, channel_pb2_grpc, types_pb2

pytestmark = pytest.mark.slow
T = types_pb2
SETTLE_WITHIN_S = 20


def wait_for_pending_operation(database, kind: str) -> str:
    """The id of the first operation of `kind` committed as PENDING: the switch is about to call, or
    calling, the channel."""
    deadline = time.monotonic() + SETTLE_WITHIN_S
    while time.monotonic() < deadline:
        try:
            with sqlite3.connect(f"file:{database}?mode=ro", uri=True) as connection:
                row = connection.execute("SELECT operation_id FROM operations WHERE kind = ? AND status = 'PENDING'",
                                         (kind,)).fetchone()
        except sqlite3.OperationalError:
            row = None  # not created yet
        if row is not None:
            return row[0]
        time.sleep(0.02)
    raise AssertionError(f"no pending {kind} appeared")


def channel_says(address: str, reference: str):
    with grpc.insecure_channel(address) as channel:
        try:
            return channel_pb2_grpc.PaymentChannelStub(channel).Inquire(
                channel_pb2.ChannelInquireRequest(reference=reference), timeout=5).outcome
        except grpc.RpcError as error:
            return error.code()


def kill_during(switch, database, kind: str, call) -> str:
    """Starts `call` (a client's call to `switch`), waits until its `kind` operation is committed as
    pending and the request has had time to reach the channel, then kills the switch with SIGKILL.
    Returns the operation's id. The call's own error is the point of the kill, so it is dropped."""
    def run():
        try:
            call()
        except grpc.RpcError:
            pass
    caller = threading.Thread(target=run, daemon=True)
    caller.start()
    reference = wait_for_pending_operation(database, kind)
    time.sleep(0.3)  # the call reaches the channel
    switch.kill()
    caller.join(10)
    return reference


@pytest.mark.parametrize("number, latency_ms", [
    ("4242424242424242", "1500"),  # killed during the channel's latency: the call is dropped undecided
    (TIMEOUT, "0"),                # killed while the channel holds its reply: it approved
], ids=["never-decided", "decided-unrecorded"])
def test_a_retry_after_a_crash_finishes_the_authorization_at_once(tmp_path, number, latency_ms):
    secret, database = secrets.token_bytes(32), tmp_path / "switch.db"
    with channel_sim("--latency-ms", latency_ms, "--timeout-delay", "3") as channel:
        config = write_config(tmp_path, secret, channel.address, timeout_ms=8000)
        serve = ("serve", "--config", str(config), "--db", str(database), "--log-level", "WARNING")
        request = dict(card=card(number), merchant_reference="order-k9", idempotency_key="k9-retry")
        with CommandProcess(*serve) as switch:
            with SyncSwitchClient(switch.address, "m_shop", "k1", secret, max_attempts=1, timeout=10) as client:
                reference = kill_during(switch, database, "AUTHORIZATION",
                                        lambda: client.authorize(4_200, "USD", **request))
        with CommandProcess(*serve) as switch:
            with SyncSwitchClient(switch.address, "m_shop", "k1", secret, timeout=10) as client:
                payment = client.authorize(4_200, "USD", **request).payment
                assert payment.status == T.PAYMENT_STATUS_AUTHORIZED
                assert [op.operation_id for op in payment.operations] == [reference]
                assert client.authorize(4_200, "USD", **request).payment == payment
        assert channel_says(channel.address, reference) == channel_pb2.CHANNEL_OUTCOME_APPROVED


def test_the_resolver_sends_an_interrupted_capture_again_instead_of_failing_it(tmp_path):
    secret, database = secrets.token_bytes(32), tmp_path / "switch.db"
    resolver = "[resolver]\ninterval_seconds = 0.1\nmin_age_seconds = 0.2\n"
    with channel_sim("--latency-ms", "1500") as channel:
        config = write_config(tmp_path, secret, channel.address, timeout_ms=8000, extra=resolver)
        serve = ("serve", "--config", str(config), "--db", str(database), "--log-level", "WARNING")
        with CommandProcess(*serve) as switch:
            with SyncSwitchClient(switch.address, "m_shop", "k1", secret, max_attempts=1, timeout=10) as client:
                payment = client.authorize(5_000, "USD", card=card(), merchant_reference="order-cap").payment
                reference = kill_during(switch, database, "CAPTURE",
                                        lambda: client.capture(payment.payment_id, 3_000, "USD"))
        with CommandProcess(*serve) as switch:
            with SyncSwitchClient(switch.address, "m_shop", "k1", secret, timeout=10) as client:
                deadline = time.monotonic() + SETTLE_WITHIN_S
                while (current := client.get_payment(payment.payment_id).payment).status != \
                        T.PAYMENT_STATUS_CAPTURED and time.monotonic() < deadline:
                    time.sleep(0.1)
        assert (current.status, current.captured_minor) == (T.PAYMENT_STATUS_CAPTURED, 3_000)
        assert [op.operation_id for op in current.operations][1:] == [reference]
        assert channel_says(channel.address, reference) == channel_pb2.CHANNEL_OUTCOME_APPROVED


class FakeClock:
    """Starts at the real time (callers sign with it) and moves only when told."""

    def __init__(self):
        self.now = time.time()

    def __call__(self):
        return self.now


def test_an_interrupted_authorization_waits_for_its_callers_retry_before_the_resolver_asks(tmp_path):
    """The switch keeps no CVV, so only the caller's retry can send an authorization again; an Inquire
    answered NOT_FOUND would bind the channel never to act on it. So the resolver leaves it alone for
    resend_window_seconds, then asks, and the channel's NOT_FOUND makes it FAILED."""
    clock = FakeClock()
    live = LiveSwitch(tmp_path, clock=clock).start()
    try:
        _interrupted_authorization(live)
        app = live.app
        resolver = PendingResolver(app.store, app.service, app.channels,
                                   ResolverConfig(min_age_seconds=0, resend_window_seconds=60),
                                   clock_us=lambda: int(clock() * 1e6), monotonic=clock)
        clock.now += 59
        assert live.call(resolver.resolve_once()) == 0
        assert live.channel_calls("Inquire") == 0
        clock.now += 2
        assert live.call(resolver.resolve_once()) == 1
        assert live.channel_calls("Inquire") == 1
        [payment] = live.client().list_payments().payments
        assert (payment.status, payment.decline_code) == (T.PAYMENT_STATUS_FAILED, "channel_not_found")
    finally:
        live.close()


def _interrupted_authorization(live) -> None:
    """Commits an authorization's intent and nothing more, as a switch killed right after it would."""
    from payswitch.payments.cards import CardDetails, Sensitive
    from payswitch.payments.commands import AuthorizeCommand
    from payswitch.payments.money import Money

    command = AuthorizeCommand("m_alpha", "cut-off", "order-cut", Money(700, "USD"),
                               CardDetails(Sensitive("4242424242424242"), 12, 2031, Sensitive("123"), "A"), None, "")
    service = live.app.service
    intent = service._authorization_intent(command, command.fingerprint(), service._route(command))
    live.call(service._commit(intent.change))

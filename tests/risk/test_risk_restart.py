"""Risk state outlives the process: a switch killed and restarted on its database, or reloaded with new
rules, declines what the payments already in its windows and day say it must, and no more."""

import itertools
import secrets
import signal
import time

import grpc
import pytest
from live_switch import APPROVE, DO_NOT_HONOR, LiveSwitch, card
from processes import CommandProcess, write_config

from payswitch.client import SyncSwitchClient
from payswitch.v1 import admin_pb2, admin_pb2_grpc, types_pb2

pytestmark = pytest.mark.slow

TOKEN = "operator-token-0123456789"
AUTHORIZED, DECLINED = types_pb2.PAYMENT_STATUS_AUTHORIZED, types_pb2.PAYMENT_STATUS_DECLINED
BURST_CARD, TWICE_CARD, BIG_CARD, REFUSED_CARD, LATE_CARD = (
    APPROVE, "4111111111111111", "4012888888881881", "4222222222222", "4917610000000000")
RISK = """
version = "risk-restart"

[[limits]]
name = "shop-usd-day"
merchant = "{merchant}"
currency = "USD"
max_daily_minor = 10000

[[velocity]]
name = "card-burst"
per = "card"
window_seconds = {window}
max_count = 3

[duplicates]
window_seconds = {window}
"""
_REFERENCES = itertools.count()


def pay(client, amount: int, currency: str, number: str | None = None, wallet: str | None = None) -> types_pb2.Payment:
    method = {"card": card(number)} if number else {"wallet": types_pb2.Wallet(provider="googlepay", token=wallet)}
    return client.authorize(amount, currency, merchant_reference=f"r-{next(_REFERENCES)}", **method).payment


def outcome(payment: types_pb2.Payment) -> tuple[int, str]:
    return payment.status, payment.decline_code


def write_switch(folder, secret: bytes) -> str:
    """The restart test's switch configuration, with a risk file and the built-in simulator."""
    (folder / "risk.toml").write_text(RISK.format(merchant="m_shop", window=3600))
    path = write_config(folder, secret, "in-process")
    path.write_text(path.read_text().replace("[switch]\n", '[switch]\nrisk = "risk.toml"\n', 1))
    return str(path)


def test_a_killed_switch_restarted_on_its_database_declines_what_its_windows_and_day_hold(tmp_path, monkeypatch):
    # A vault, as in production: card keys are its fingerprints, which outlive the process.
    monkeypatch.setenv("PAYSWITCH_MASTER_KEY", secrets.token_hex(32))
    secret = secrets.token_bytes(32)
    serve = ("serve", "--config", write_switch(tmp_path, secret), "--db", str(tmp_path / "switch.db"),
             "--log-level", "WARNING")

    server = CommandProcess(*serve)
    with SyncSwitchClient(server.address, "m_shop", "k1", secret) as client:
        assert [outcome(pay(client, 100 + n, "EUR", BURST_CARD)) for n in range(4)] == [
            (AUTHORIZED, "")] * 3 + [(DECLINED, "risk_velocity")]
        assert [outcome(pay(client, 500, "EUR", TWICE_CARD)) for _ in range(2)] == [
            (AUTHORIZED, ""), (DECLINED, "risk_duplicate")]
        assert outcome(pay(client, 700, "EUR", wallet="tok_wallet_0001")) == (AUTHORIZED, "")
        # The day: 6,000 approved plus 3,000 the channel declined (it passed risk, so it counts); the
        # 1,001 risk declines does not count.
        assert outcome(pay(client, 6_000, "USD", BIG_CARD)) == (AUTHORIZED, "")
        assert outcome(pay(client, 3_000, "USD", DO_NOT_HONOR)) == (DECLINED, "do_not_honor")
        assert outcome(pay(client, 1_001, "USD", REFUSED_CARD)) == (DECLINED, "risk_daily_limit")
    server.process.kill()
    assert server.process.wait(10) == -signal.SIGKILL

    server = CommandProcess(*serve)
    with SyncSwitchClient(server.address, "m_shop", "k1", secret) as client:
        assert outcome(pay(client, 104, "EUR", BURST_CARD)) == (DECLINED, "risk_velocity")
        assert outcome(pay(client, 500, "EUR", TWICE_CARD)) == (DECLINED, "risk_duplicate")
        assert outcome(pay(client, 700, "EUR", wallet="tok_wallet_0001")) == (DECLINED, "risk_duplicate")
        assert outcome(pay(client, 1_001, "USD", REFUSED_CARD)) == (DECLINED, "risk_daily_limit")
        assert outcome(pay(client, 1_000, "USD", LATE_CARD)) == (AUTHORIZED, "")  # exactly the day's bound
    assert server.stop()[0] == 0


class SteppedClock:
    """The wall clock plus an offset the test moves, shared by the switch and its clients."""

    def __init__(self, start: float):
        self.offset = start - time.time()

    def __call__(self) -> float:
        return time.time() + self.offset

    def step(self, seconds: float) -> None:
        self.offset += seconds


@pytest.fixture
def stepped(tmp_path):
    """A live switch whose clock stands 100 s before a UTC midnight, with 30 s windows."""
    midnight = (int(time.time()) // 86_400 + 2) * 86_400
    clock = SteppedClock(midnight - 100)
    switch = LiveSwitch(tmp_path, clock=clock, risk=RISK.format(merchant="m_alpha", window=30), admin_token=TOKEN)
    yield switch.start(), clock
    switch.close()


def test_after_a_restart_windows_and_the_day_end_when_they_would_have(stepped):
    live, clock = stepped
    client = live.client(clock=clock)
    assert [outcome(pay(client, 100 + n, "EUR", BURST_CARD)) for n in range(3)] == [(AUTHORIZED, "")] * 3
    assert outcome(pay(client, 500, "EUR", TWICE_CARD)) == (AUTHORIZED, "")
    assert outcome(pay(client, 10_000, "USD", BIG_CARD)) == (AUTHORIZED, "")
    live.stop()
    clock.step(20)  # the restart's own seconds count too: 10 s to spare
    live.start()
    client = live.client(clock=clock)
    assert outcome(pay(client, 103, "EUR", BURST_CARD)) == (DECLINED, "risk_velocity")
    assert outcome(pay(client, 500, "EUR", TWICE_CARD)) == (DECLINED, "risk_duplicate")
    clock.step(11)  # the window's payments have all left it
    assert outcome(pay(client, 103, "EUR", BURST_CARD)) == (AUTHORIZED, "")
    assert outcome(pay(client, 500, "EUR", TWICE_CARD)) == (AUTHORIZED, "")
    assert outcome(pay(client, 1, "USD", LATE_CARD)) == (DECLINED, "risk_daily_limit")
    clock.step(70)  # past 00:00 UTC: a new day
    assert outcome(pay(client, 10_000, "USD", LATE_CARD)) == (AUTHORIZED, "")


def test_a_reload_restores_what_its_new_rules_need_from_the_store(stepped):
    live, clock = stepped
    client = live.client(clock=clock)
    for n in range(3):
        assert outcome(pay(client, 100 + n, "GBP", BURST_CARD)) == (AUTHORIZED, "")
    # A new per-card rule and a GBP daily limit: the old engine kept nothing for either.
    live.risk_path.write_text(live.risk_path.read_text().replace('version = "risk-restart"', 'version = "risk-2"') + """
[[velocity]]
name = "card-gbp"
per = "card"
window_seconds = 60
max_count = 3
currency = "GBP"

[[limits]]
name = "alpha-gbp-day"
merchant = "m_alpha"
currency = "GBP"
max_daily_minor = 400
""")
    with grpc.insecure_channel(live.address) as channel:
        status = admin_pb2_grpc.SwitchAdminStub(channel).ReloadRouting(
            admin_pb2.ReloadRoutingRequest(), metadata=(("authorization", f"Bearer {TOKEN}"),), timeout=5)
    assert status.risk_version == "risk-2"
    clock.step(31)  # "card-burst" (30 s) has let them go; "card-gbp" (60 s) still holds all three
    payment = pay(client, 1, "GBP", BURST_CARD)
    assert (outcome(payment), payment.risk_rule) == ((DECLINED, "risk_velocity"), "card-gbp")
    assert outcome(pay(client, 98, "GBP", TWICE_CARD)) == (DECLINED, "risk_daily_limit")  # 303 + 98 > 400
    assert outcome(pay(client, 97, "GBP", TWICE_CARD)) == (AUTHORIZED, "")

"""Risk rules in a live switch: each rule declines with its reason code and passes below its bound, the
decline never reaches a channel, every payment records the decision, batches are judged item by item,
and a reload keeps the windows."""

import grpc
import pytest
from live_switch import APPROVE, LiveSwitch, card

from payswitch.client import authorize_request
from payswitch.v1 import admin_pb2, admin_pb2_grpc, types_pb2

TOKEN = "operator-token-0123456789"
ROUTES = """
version = "r1"
[[bins]]
low = "400001"
high = "400001"
scheme = "visa"
country = "KP"
[[rules]]
name = "all"
channels = ["sim"]
"""
RISK = """
version = "{version}"

[[limits]]
name = "alpha-usd"
merchant = "m_alpha"
currency = "USD"
max_amount_minor = 5000
max_daily_minor = 20000

[[velocity]]
name = "card-burst"
per = "card"
window_seconds = 600
max_count = 3

[blocklist]
bins = ["555555"]
countries = ["KP"]

[duplicates]
window_seconds = 300
"""
KP_CARD = "4000010000000001"
OTHER_CARDS = ["4111111111111111", "4012888888881881", "4222222222222", "4917610000000000"]


@pytest.fixture
def live(tmp_path):
    switch = LiveSwitch(tmp_path, routing=ROUTES, risk=RISK.format(version="risk-1"), admin_token=TOKEN).start()
    yield switch
    switch.close()


def pay(client, amount: int, number: str, reference: str) -> types_pb2.Payment:
    return client.authorize(amount, "USD", card=card(number), merchant_reference=reference).payment


def assert_declined(live, payment, reason: str, rule: str):
    assert (payment.status, payment.decline_code, payment.risk_rule) == (types_pb2.PAYMENT_STATUS_DECLINED, reason, rule)
    assert payment.risk_version == "risk-1" and rule in payment.decline_message
    assert payment.channel == "sim"  # routed, recorded, but never sent


def test_each_rule_declines_at_its_bound_with_its_code_and_no_channel_call(live):
    client = live.client()
    # Per-transaction limit: the bound passes, one more is declined.
    assert pay(client, 5_000, APPROVE, "limit-ok").status == types_pb2.PAYMENT_STATUS_AUTHORIZED
    calls = live.channel_calls("Authorize")
    assert_declined(live, pay(client, 5_001, OTHER_CARDS[0], "limit-over"), "risk_amount_limit", "alpha-usd")
    assert live.channel_calls("Authorize") == calls

    # Blocklists by BIN and by issuing country (from the routing file's BIN table).
    assert_declined(live, pay(client, 100, "5555555555554444", "bin"), "risk_blocked_bin", "blocklist.bins")
    assert_declined(live, pay(client, 100, KP_CARD, "country"), "risk_blocked_country", "blocklist.countries")

    # Duplicates: the same card and amount again within the window.
    assert pay(client, 777, OTHER_CARDS[1], "dup-1").status == types_pb2.PAYMENT_STATUS_AUTHORIZED
    assert_declined(live, pay(client, 777, OTHER_CARDS[1], "dup-2"), "risk_duplicate", "duplicates")
    assert pay(client, 778, OTHER_CARDS[1], "dup-3").status == types_pb2.PAYMENT_STATUS_AUTHORIZED  # another amount

    # Velocity per card: three in the window pass (dup-1 and dup-3 were two), the fourth is declined.
    assert pay(client, 779, OTHER_CARDS[1], "burst-3").status == types_pb2.PAYMENT_STATUS_AUTHORIZED
    assert_declined(live, pay(client, 780, OTHER_CARDS[1], "burst-4"), "risk_velocity", "card-burst")

    # Daily limit: 20,000 a day for m_alpha in USD; 5,000 + 777 + 778 + 779 passed so far (7,334).
    assert pay(client, 4_999, OTHER_CARDS[2], "day-1").status == types_pb2.PAYMENT_STATUS_AUTHORIZED
    assert pay(client, 4_999, OTHER_CARDS[3], "day-2").status == types_pb2.PAYMENT_STATUS_AUTHORIZED  # 17,332
    assert_declined(live, pay(client, 2_669, "4000056655665556", "day-3"), "risk_daily_limit", "alpha-usd")
    assert pay(client, 2_668, "4000056655665556", "day-4").status == types_pb2.PAYMENT_STATUS_AUTHORIZED  # exactly 20,000

    # Another merchant has no limit entry: only the shared rules apply.
    assert pay(live.client("m_beta"), 50_000, APPROVE, "beta-big").status == types_pb2.PAYMENT_STATUS_AUTHORIZED
    allowed = [p for p in client.list_payments(page_size=100).payments if p.status == types_pb2.PAYMENT_STATUS_AUTHORIZED]
    assert {(p.risk_version, p.risk_rule) for p in allowed} == {("risk-1", "")}


def test_a_batch_is_judged_item_by_item_in_order(live):
    client = live.client()
    items = [authorize_request(100, "USD", card=card(number), merchant_reference=f"b-{n}")
             for n, number in enumerate([APPROVE, "5555555555554444", APPROVE, OTHER_CARDS[0]])]
    results = [r.authorize.payment for r in client.batch(items).results]
    assert [(p.status, p.decline_code) for p in results] == [
        (types_pb2.PAYMENT_STATUS_AUTHORIZED, ""), (types_pb2.PAYMENT_STATUS_DECLINED, "risk_blocked_bin"),
        (types_pb2.PAYMENT_STATUS_DECLINED, "risk_duplicate"), (types_pb2.PAYMENT_STATUS_AUTHORIZED, "")]
    assert live.channel_calls("Authorize") == 2


def test_a_reload_changes_the_rules_and_keeps_the_windows(live):
    client = live.client()
    for n in range(3):
        assert pay(client, 100 + n, APPROVE, f"before-{n}").status == types_pb2.PAYMENT_STATUS_AUTHORIZED
    live.risk_path.write_text(RISK.format(version="risk-2").replace('bins = ["555555"]', "bins = []"))
    admin = admin_pb2_grpc.SwitchAdminStub(grpc.insecure_channel(live.address))
    status = admin.ReloadRouting(admin_pb2.ReloadRoutingRequest(),
                                 metadata=(("authorization", f"Bearer {TOKEN}"),), timeout=5)
    assert (status.version, status.risk_version) == ("r1", "risk-2")

    fourth = pay(client, 200, APPROVE, "after-reload")
    assert (fourth.decline_code, fourth.risk_version) == ("risk_velocity", "risk-2")  # the window carried over
    assert pay(client, 100, "5555555555554444", "unblocked").status == types_pb2.PAYMENT_STATUS_AUTHORIZED

    live.risk_path.write_text(RISK.format(version="risk-3").replace("max_count = 3", "max_count = 1.5"))
    with pytest.raises(grpc.RpcError) as caught:
        admin.ReloadRouting(admin_pb2.ReloadRoutingRequest(), metadata=(("authorization", f"Bearer {TOKEN}"),),
                            timeout=5)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "risk.toml:15: velocity[0].max_count" in caught.value.details()
    assert pay(client, 300, OTHER_CARDS[0], "still-risk-2").risk_version == "risk-2"

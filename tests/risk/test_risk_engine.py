"""RiskEngine over both hot-path backends: each rule declines with its reason code, and passes just below its bound."""

import os

import pytest

from payswitch import hotpath
from payswitch.risk.config import parse_risk
from payswitch.risk.engine import RiskDecision, RiskEngine

NO_EXTENSIONS = os.environ.get("PAYSWITCH_NO_EXTENSIONS") == "1"
MIDNIGHT = 1_764_547_200.0  # 2025-12-01T00:00:00Z
NOON = MIDNIGHT + 12 * 3600
CARD = bytes.fromhex("11" * 32)
BLOCKED_CARD = bytes.fromhex("ab" * 32)
VERSION = "risk-test-1"

RISK_FILE = f"""\
version = "{VERSION}"

[[limits]]
merchant = "m_acme"
currency = "USD"
max_amount_minor = 500000
max_daily_minor = 1000000

[[limits]]
name = "everyone-eur"
merchant = "*"
currency = "EUR"
max_amount_minor = 10000

[[velocity]]
name = "card-burst"
per = "card"
window_seconds = 600
max_count = 5

[[velocity]]
name = "merchant-hour"
per = "merchant"
window_seconds = 3600
max_count = 1000
max_amount_minor = 2000000
currency = "USD"

[blocklist]
bins = ["400000", "41111111"]
cards = ["{BLOCKED_CARD.hex()}"]
countries = ["KP"]

[duplicates]
window_seconds = 300
"""


class FakeClock:
    """Seconds since the epoch, stepped by tests; counts its reads."""

    def __init__(self, now: float = NOON):
        self.now = now
        self.reads = 0

    def __call__(self) -> float:
        self.reads += 1
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture(scope="module", params=["compiled", "pure"])
def backend(request):
    """The risk_rules module of one backend; the compiled one is skipped only when PAYSWITCH_NO_EXTENSIONS=1."""
    if request.param == "pure":
        return hotpath.pure_module("risk_rules")
    if NO_EXTENSIONS:
        pytest.skip("PAYSWITCH_NO_EXTENSIONS=1: the compiled backend is not wanted")
    module = hotpath.compiled_module("risk_rules")
    if module is None:
        pytest.fail("payswitch._speedups.risk_rules is not built (pip install -e .)")
    return module


@pytest.fixture
def clock():
    return FakeClock()


@pytest.fixture
def engine(backend, clock):
    return RiskEngine(parse_risk(RISK_FILE, "risk.toml"), clock=clock, backend=backend)


def declined(rule, reason):
    return RiskDecision(False, rule, reason, VERSION)


ALLOWED = RiskDecision(True, "", "", VERSION)


def acme(engine, amount, card=CARD, *, currency="USD", merchant="m_acme", bin="52000000", country="US"):
    return engine.evaluate(merchant, currency, amount, card, bin, country)


# ---- each rule -----------------------------------------------------------------------------------


def test_an_allowed_payment_records_the_version_and_no_rule(engine):
    decision = acme(engine, 100)
    assert decision == ALLOWED and decision.allowed and engine.version == VERSION
    assert acme(engine, 101) is decision  # decisions are built once, not per payment


def test_the_per_transaction_limit_passes_at_its_bound_and_declines_above(engine):
    assert acme(engine, 500000) == ALLOWED
    assert acme(engine, 500001) == declined("limits[0]", "risk_amount_limit")
    assert engine.evaluate("m_other", "EUR", 10000, CARD, None, None) == ALLOWED
    assert engine.evaluate("m_other", "EUR", 10001, CARD, None, None) == declined("everyone-eur", "risk_amount_limit")


def test_the_daily_limit_declines_past_its_sum_and_resets_at_utc_midnight(engine, clock):
    clock.now = MIDNIGHT + 86_400 - 10
    for number in range(2):
        assert acme(engine, 500000, card=bytes([number]) * 32) == ALLOWED
    assert acme(engine, 1, card=b"\x09" * 32) == declined("limits[0]", "risk_daily_limit")
    clock.advance(10)  # midnight
    assert acme(engine, 1, card=b"\x09" * 32) == ALLOWED


def test_card_velocity_declines_the_sixth_and_allows_again_once_the_window_slides(engine, clock):
    for number in range(5):
        assert acme(engine, 100 + number) == ALLOWED
        clock.advance(1)
    assert acme(engine, 200) == declined("card-burst", "risk_velocity")
    clock.now = NOON + 599.999999
    assert acme(engine, 200) == declined("card-burst", "risk_velocity")
    clock.now = NOON + 600
    assert acme(engine, 200) == ALLOWED


def test_merchant_velocity_sums_usd_amounts_in_its_window(engine, clock):
    # m_big has no USD limit of its own and "*" bounds only EUR, so only "merchant-hour" bounds it.
    for number in range(4):
        assert acme(engine, 500000, card=bytes([number]) * 32, merchant="m_big") == ALLOWED
    assert acme(engine, 1, card=b"\x09" * 32, merchant="m_big") == declined("merchant-hour", "risk_velocity")
    assert acme(engine, 10000, card=b"\x09" * 32, merchant="m_big", currency="EUR") == ALLOWED  # not counted
    assert acme(engine, 1, card=b"\x09" * 32, merchant="m_small") == ALLOWED
    clock.advance(3600)
    assert acme(engine, 1, card=b"\x0a" * 32, merchant="m_big") == ALLOWED


def test_duplicates_inside_the_window_are_declined_and_allowed_after_it(engine, clock):
    assert acme(engine, 4200) == ALLOWED
    clock.advance(299)
    assert acme(engine, 4200) == declined("duplicates", "risk_duplicate")
    assert acme(engine, 4201) == ALLOWED
    clock.advance(1)
    assert acme(engine, 4200) == ALLOWED


def test_blocklists_name_their_list(engine):
    assert acme(engine, 1, bin="4000001234") == declined("blocklist.bins", "risk_blocked_bin")
    assert acme(engine, 1, bin="41111111") == declined("blocklist.bins", "risk_blocked_bin")
    assert acme(engine, 1, bin="411111") == ALLOWED
    assert acme(engine, 2, card=BLOCKED_CARD) == declined("blocklist.cards", "risk_blocked_card")
    assert acme(engine, 3, country="KP") == declined("blocklist.countries", "risk_blocked_country")
    assert acme(engine, 4, bin=None, country=None) == ALLOWED


def test_the_first_failing_check_in_order_is_the_one_named(engine):
    assert acme(engine, 10**9, bin="400000", country="KP") == declined("blocklist.bins", "risk_blocked_bin")
    assert acme(engine, 10**9, country="KP") == declined("blocklist.countries", "risk_blocked_country")
    assert acme(engine, 10**9) == declined("limits[0]", "risk_amount_limit")


def test_a_wall_clock_with_fractions_of_a_microsecond(backend):
    clock = FakeClock(1_700_000_000.1234567)
    engine = RiskEngine(parse_risk(RISK_FILE), clock=clock, backend=backend)
    assert acme(engine, 1) == ALLOWED
    clock.advance(299.9999994)
    assert acme(engine, 1) == declined("duplicates", "risk_duplicate")
    clock.advance(0.000001)
    assert acme(engine, 1) == ALLOWED


def test_a_negative_amount_is_refused_loudly(engine):
    with pytest.raises(ValueError):
        acme(engine, -1)


# ---- batches -------------------------------------------------------------------------------------


def test_evaluate_many_decides_in_order_at_one_instant(engine, clock):
    items = [("m_acme", "USD", 100, CARD, None, None),
             ("m_acme", "USD", 100, CARD, None, None),        # a duplicate of the first
             ("m_acme", "USD", 600000, CARD, None, None),
             ("m_other", "EUR", 50, CARD, None, "KP")]
    items += [("m_acme", "USD", 1000 + number, CARD, None, None) for number in range(5)]
    decisions = engine.evaluate_many(items)
    assert clock.reads == 1
    assert decisions == [ALLOWED, declined("duplicates", "risk_duplicate"), declined("limits[0]", "risk_amount_limit"),
                         declined("blocklist.countries", "risk_blocked_country"), ALLOWED, ALLOWED, ALLOWED, ALLOWED,
                         declined("card-burst", "risk_velocity")]
    assert engine.evaluate_many([]) == []


def test_evaluate_many_sees_what_evaluate_recorded_and_the_other_way_round(engine):
    assert acme(engine, 7) == ALLOWED
    assert engine.evaluate_many([("m_acme", "USD", 7, CARD, None, None)]) == [declined("duplicates", "risk_duplicate")]
    assert engine.evaluate_many([("m_acme", "USD", 8, CARD, None, None)]) == [ALLOWED]
    assert acme(engine, 8) == declined("duplicates", "risk_duplicate")


def test_evaluate_many_judges_each_item_at_its_own_instant_when_given(engine, clock):
    second = 1_000_000
    at = round(NOON * second)
    items = [("m_acme", "USD", 100 + n, CARD, None, None) for n in range(6)]
    instants = [at - 700 * second] + [at + n for n in range(5)]  # the first one has left the 600 s window by the 6th
    assert engine.evaluate_many(items, instants) == [ALLOWED] * 6
    assert clock.reads == 0
    with pytest.raises(ValueError):
        engine.evaluate_many(items[:2], instants[:1])


# ---- restart -------------------------------------------------------------------------------------


def test_restore_rebuilds_what_the_engine_before_a_restart_counted(engine, backend, clock):
    at = round(NOON * 1_000_000)
    passed = [("m_acme", "USD", 400_000, CARD, at - 2_000_000), ("m_acme", "USD", 500_000, b"\x05" * 32, at - 1)]
    restarted = RiskEngine(parse_risk(RISK_FILE), clock=clock, backend=backend)
    assert restarted.restore_since_us(at) == round(MIDNIGHT * 1_000_000) - 1  # the day reaches back furthest
    restarted.restore(passed)
    assert acme(restarted, 400_000) == declined("duplicates", "risk_duplicate")
    assert acme(restarted, 100_001, card=b"\x06" * 32) == declined("limits[0]", "risk_daily_limit")
    assert acme(restarted, 100_000, card=b"\x06" * 32) == ALLOWED
    assert restarted.restore_since_us(at, replacing=engine) is None  # the same rules carry everything


# ---- hot reload ----------------------------------------------------------------------------------


def test_carry_state_from_keeps_windows_duplicates_and_daily_sums(engine, backend, clock):
    for amount in range(1, 6):
        assert acme(engine, amount, merchant="m_shop", currency="GBP") == ALLOWED
    assert acme(engine, 500000, card=b"\x07" * 32) == ALLOWED
    assert acme(engine, 500000, card=b"\x08" * 32) == ALLOWED
    reloaded_text = RISK_FILE.replace(VERSION, "risk-test-2").replace("max_count = 5", "max_count = 6")
    reloaded = RiskEngine(parse_risk(reloaded_text), clock=clock, backend=backend)
    reloaded.carry_state_from(engine)
    assert reloaded.version == "risk-test-2"
    assert reloaded.stats() == engine.stats()
    assert acme(reloaded, 1, merchant="m_shop", currency="GBP") == RiskDecision(False, "duplicates", "risk_duplicate",
                                                                                "risk-test-2")
    assert acme(reloaded, 6, merchant="m_shop", currency="GBP") == RiskDecision(True, "", "", "risk-test-2")
    assert acme(reloaded, 7, merchant="m_shop", currency="GBP") == RiskDecision(False, "card-burst", "risk_velocity",
                                                                                "risk-test-2")
    assert acme(reloaded, 1, card=b"\x09" * 32) == RiskDecision(False, "limits[0]", "risk_daily_limit", "risk-test-2")


def test_a_fresh_engine_without_carried_state_starts_from_nothing(engine, backend, clock):
    for number in range(5):
        acme(engine, 100 + number)
    fresh = RiskEngine(parse_risk(RISK_FILE), clock=clock, backend=backend)
    assert acme(fresh, 100) == ALLOWED


def test_carrying_state_between_backends_is_refused(clock):
    if NO_EXTENSIONS or hotpath.compiled_module("risk_rules") is None:
        pytest.skip("needs both backends")
    config = parse_risk(RISK_FILE)
    pure = RiskEngine(config, clock=clock, backend=hotpath.pure_module("risk_rules"))
    compiled = RiskEngine(config, clock=clock, backend=hotpath.compiled_module("risk_rules"))
    with pytest.raises(TypeError):
        pure.carry_state_from(compiled)


# ---- memory --------------------------------------------------------------------------------------


def test_the_memory_caps_of_the_file_bound_the_tracked_keys(backend, clock):
    text = RISK_FILE + "\n[memory]\nmax_tracked_cards = 100\nmax_tracked_merchants = 3\n"
    engine = RiskEngine(parse_risk(text), clock=clock, backend=backend)
    for number in range(1000):
        assert engine.evaluate(f"m_{number % 10}", "USD", 100, number.to_bytes(32, "big"), None, None) == ALLOWED
    stats = engine.stats()
    assert stats["cards"] == 100 and stats["cards_forgotten"] == 900
    assert stats["merchants"] == 3 and stats["merchants_forgotten"] > 0


def test_the_default_backend_is_the_one_hotpath_chose(clock):
    engine = RiskEngine(parse_risk(RISK_FILE), clock=clock)
    assert type(engine._table).__module__ == hotpath.risk_rules.__name__


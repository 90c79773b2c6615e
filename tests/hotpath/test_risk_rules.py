"""Risk tables, pinned for both backends, held to a brute-force model and to each other (hypothesis)."""

import gc
import sys

import pytest
from conftest import BACKEND_NAMES, load_backend
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

S = 1_000_000  # microseconds per second
DAY = 86_400 * S
NOON = 20_000 * DAY + 12 * 3600 * S  # a UTC noon, far from the epoch
CARD = b"\x01" * 32
OTHER_CARD = b"\x02" * 32


@pytest.fixture(scope="module", params=BACKEND_NAMES)
def risk(request):
    """The risk_rules module of one backend: tests get it only from here."""
    return load_backend(request.param, "risk_rules")


@pytest.fixture(scope="module")
def pure_risk():
    return load_backend("pure", "risk_rules")


@pytest.fixture(scope="module")
def compiled_risk():
    return load_backend("compiled", "risk_rules")


def pay(table, merchant="m", currency="USD", amount=100, card=CARD, bin=None, country=None, at=NOON):
    return table.admit(merchant, currency, amount, card, bin, country, at)


def velocity_index(risk, limits, position):
    return risk.FIRST_LIMIT + 2 * limits + position


# ---- blocklists ----------------------------------------------------------------------------------


def test_blocked_bins_match_as_prefixes_of_the_digits_given(risk):
    table = risk.RiskTable(blocked_bins=["400000", "41111111", "52000000001"])
    assert pay(table, bin="4000001234567890") == risk.BLOCKED_BIN
    assert pay(table, bin="400000") == risk.BLOCKED_BIN
    assert pay(table, bin="4111111100") == risk.BLOCKED_BIN
    assert pay(table, bin="52000000001999") == risk.BLOCKED_BIN
    assert pay(table, bin="4000010000") == -1
    # Fewer digits than a blocked prefix cannot be said to start with it.
    assert pay(table, bin="411111", amount=1) == -1
    assert pay(table, bin="5200000000", amount=2) == -1


@pytest.mark.parametrize("bin", [None, "", "40000", "40000x", "４００００0", 400000, b"400000", "400000\n"])
def test_a_bin_that_is_not_ascii_digits_is_not_checked_and_never_raises(risk, bin):
    table = risk.RiskTable(blocked_bins=["400000"])
    assert pay(table, bin=bin) == -1


def test_blocked_card_keys_and_countries(risk):
    table = risk.RiskTable(blocked_cards=[OTHER_CARD], blocked_countries=["KP", "IR"])
    assert pay(table, card=OTHER_CARD) == risk.BLOCKED_CARD
    assert pay(table, country="KP") == risk.BLOCKED_COUNTRY
    assert pay(table, country="IR", amount=1) == risk.BLOCKED_COUNTRY
    for country in (None, "kp", "KPX", "K", "", 7, "ÄP"):
        assert pay(table, country=country) == -1


def test_checks_run_in_their_order_and_the_first_decline_is_named(risk):
    limits = [risk.LimitSpec("m", "USD", max_amount_minor=10)]
    table = risk.RiskTable(limits=limits, blocked_bins=["400000"], blocked_cards=[CARD], blocked_countries=["KP"])
    assert pay(table, amount=11, bin="400000", country="KP") == risk.BLOCKED_BIN
    assert pay(table, amount=11, bin="500000", country="KP") == risk.BLOCKED_CARD
    assert pay(table, amount=11, card=OTHER_CARD, country="KP") == risk.BLOCKED_COUNTRY
    assert pay(table, amount=11, card=OTHER_CARD) == risk.FIRST_LIMIT


# ---- limits --------------------------------------------------------------------------------------


def test_the_per_transaction_limit_is_inclusive(risk):
    table = risk.RiskTable(limits=[risk.LimitSpec("m", "USD", max_amount_minor=500)])
    assert pay(table, amount=500) == -1
    assert pay(table, amount=501) == risk.FIRST_LIMIT
    assert pay(table, amount=0, card=OTHER_CARD) == -1


def test_a_merchants_own_limit_wins_per_currency_and_any_merchant_covers_the_rest(risk):
    limits = [risk.LimitSpec("*", "USD", max_amount_minor=100), risk.LimitSpec("big", "USD", max_amount_minor=1000),
              risk.LimitSpec("*", "EUR", max_amount_minor=50)]
    table = risk.RiskTable(limits=limits)
    assert pay(table, merchant="small", amount=101) == risk.FIRST_LIMIT
    assert pay(table, merchant="big", amount=1000) == -1
    assert pay(table, merchant="big", amount=1001) == risk.FIRST_LIMIT + 2
    # "big" has no EUR entry of its own, so the "*" EUR limit applies to it.
    assert pay(table, merchant="big", currency="EUR", amount=51) == risk.FIRST_LIMIT + 4
    # No entry for GBP at all: no limit.
    assert pay(table, merchant="small", currency="GBP", amount=10**15) == -1


def test_the_daily_limit_sums_payments_that_passed_and_is_inclusive(risk):
    table = risk.RiskTable(limits=[risk.LimitSpec("m", "USD", max_amount_minor=600, max_daily_minor=1000)])
    assert pay(table, amount=600, at=NOON) == -1
    assert pay(table, amount=601, at=NOON + 1) == risk.FIRST_LIMIT       # declined: not counted
    assert pay(table, amount=401, at=NOON + 2) == risk.FIRST_LIMIT + 1
    assert pay(table, amount=400, at=NOON + 3) == -1                     # exactly the daily bound
    assert pay(table, amount=1, at=NOON + 4) == risk.FIRST_LIMIT + 1
    assert pay(table, amount=1, currency="EUR") == -1                    # another currency, no limit


def test_daily_sums_reset_at_utc_midnight(risk):
    table = risk.RiskTable(limits=[risk.LimitSpec("m", "USD", max_daily_minor=1000)])
    midnight = 20_001 * DAY
    assert pay(table, amount=1000, at=midnight - 1) == -1
    assert pay(table, amount=1, at=midnight - 1) == risk.FIRST_LIMIT + 1
    assert pay(table, amount=1000, at=midnight) == -1
    assert pay(table, amount=1, at=midnight + 1) == risk.FIRST_LIMIT + 1


def test_any_merchant_daily_limits_are_summed_per_merchant(risk):
    table = risk.RiskTable(limits=[risk.LimitSpec("*", "USD", max_daily_minor=100)])
    assert pay(table, merchant="a", amount=100) == -1
    assert pay(table, merchant="b", amount=100) == -1
    assert pay(table, merchant="a", amount=1) == risk.FIRST_LIMIT + 1


# ---- velocity ------------------------------------------------------------------------------------


def test_card_velocity_allows_max_count_then_declines_until_the_window_slides(risk):
    table = risk.RiskTable(velocity=[risk.VelocitySpec("card-burst", "card", 600, 5)])
    for second in range(5):
        assert pay(table, amount=100 + second, at=NOON + second * S) == -1
    assert pay(table, amount=200, at=NOON + 5 * S) == velocity_index(risk, 0, 0)
    assert pay(table, amount=200, card=OTHER_CARD, at=NOON + 5 * S) == -1   # another card is its own key
    # A payment at t is inside the window while t > now - 600 s.
    assert pay(table, amount=200, at=NOON + 600 * S - 1) == velocity_index(risk, 0, 0)
    assert pay(table, amount=200, at=NOON + 600 * S) == -1
    assert pay(table, amount=201, at=NOON + 600 * S) == velocity_index(risk, 0, 0)
    assert pay(table, amount=201, at=NOON + 601 * S) == -1


def test_declined_payments_are_not_counted(risk):
    limits = [risk.LimitSpec("m", "USD", max_amount_minor=1000)]
    table = risk.RiskTable(limits=limits, velocity=[risk.VelocitySpec("two", "card", 60, 2)])
    for attempt in range(10):
        assert pay(table, amount=5000 + attempt) == risk.FIRST_LIMIT
    assert pay(table, amount=1) == -1
    assert pay(table, amount=2) == -1
    assert pay(table, amount=3) == velocity_index(risk, 1, 0)


def test_merchant_velocity_with_a_sum_in_one_currency(risk):
    rule = risk.VelocitySpec("usd-hour", "merchant", 3600, 100, max_amount_minor=1000, currency="USD")
    table = risk.RiskTable(velocity=[rule])
    assert pay(table, amount=600, card=b"a") == -1
    assert pay(table, amount=401, card=b"b") == velocity_index(risk, 0, 0)
    assert pay(table, amount=400, card=b"c") == -1
    assert pay(table, amount=1, card=b"d") == velocity_index(risk, 0, 0)
    assert pay(table, amount=10**6, currency="EUR", card=b"e") == -1      # not this rule's currency
    assert pay(table, merchant="other", amount=1000, card=b"f") == -1     # per merchant
    assert pay(table, amount=1, card=b"g", at=NOON + 3600 * S) == -1


def test_a_single_payment_above_a_velocity_sum_is_declined_at_once(risk):
    table = risk.RiskTable(velocity=[risk.VelocitySpec("sum", "card", 60, 10, max_amount_minor=100, currency="USD")])
    assert pay(table, amount=101) == velocity_index(risk, 0, 0)
    assert pay(table, amount=100) == -1


def test_velocity_rules_are_checked_in_order(risk):
    rules = [risk.VelocitySpec("merchant-one", "merchant", 60, 1), risk.VelocitySpec("card-one", "card", 60, 1)]
    table = risk.RiskTable(velocity=rules)
    assert pay(table, amount=1) == -1
    assert pay(table, amount=2) == velocity_index(risk, 0, 0)
    assert pay(table, amount=3, merchant="n") == velocity_index(risk, 0, 1)


def test_a_clock_that_steps_back_only_keeps_payments_longer(risk):
    table = risk.RiskTable(velocity=[risk.VelocitySpec("two", "card", 60, 2)])
    assert pay(table, amount=1, at=NOON + 100 * S) == -1
    assert pay(table, amount=2, at=NOON) == -1          # recorded as at NOON + 100 s, the window's last time
    assert pay(table, amount=3, at=NOON + 159 * S) == velocity_index(risk, 0, 0)
    assert pay(table, amount=3, at=NOON + 160 * S) == -1


# ---- duplicates ----------------------------------------------------------------------------------


def test_duplicates_within_the_window_are_declined(risk):
    table = risk.RiskTable(duplicate_window_seconds=300)
    assert pay(table, amount=100, at=NOON) == -1
    assert pay(table, amount=100, at=NOON + 299 * S) == risk.DUPLICATE
    assert pay(table, amount=101, at=NOON + 1) == -1
    assert pay(table, amount=100, merchant="n", at=NOON + 2) == -1
    assert pay(table, amount=100, currency="EUR", at=NOON + 3) == -1
    assert pay(table, amount=100, card=OTHER_CARD, at=NOON + 4) == -1
    assert pay(table, amount=100, at=NOON + 300 * S) == -1              # the first one has left the window
    assert pay(table, amount=100, at=NOON + 301 * S) == risk.DUPLICATE  # the new one is in it


def test_duplicates_come_before_velocity(risk):
    table = risk.RiskTable(velocity=[risk.VelocitySpec("one", "card", 60, 1)], duplicate_window_seconds=60)
    assert pay(table) == -1
    assert pay(table) == risk.DUPLICATE
    assert pay(table, amount=7) == velocity_index(risk, 0, 0)


def test_only_the_latest_fingerprints_per_card_are_remembered(risk):
    table = risk.RiskTable(duplicate_window_seconds=3600)
    for amount in range(risk.RECENT_PER_CARD + 1):
        assert pay(table, amount=amount, at=NOON + amount) == -1
    assert pay(table, amount=0, at=NOON + 100) == -1    # forgotten: an under-count, as documented
    assert pay(table, amount=2, at=NOON + 101) == risk.DUPLICATE


# ---- check, errors, build ------------------------------------------------------------------------


def test_check_answers_like_admit_but_records_nothing(risk):
    table = risk.RiskTable(velocity=[risk.VelocitySpec("one", "card", 60, 1)], duplicate_window_seconds=60,
                           limits=[risk.LimitSpec("*", "USD", max_daily_minor=100)])
    for _ in range(3):
        assert table.check("m", "USD", 100, CARD, None, None, NOON) == -1
    assert table.stats()["cards"] == 0 and table.stats()["merchants"] == 0
    assert pay(table) == -1
    assert table.check("m", "USD", 100, CARD, None, None, NOON) == risk.DUPLICATE


@pytest.mark.parametrize("arguments, error", [
    ({"amount": -1}, ValueError), ({"amount": 1.0}, TypeError), ({"amount": "1"}, TypeError),
    ({"amount": 1 << 63}, OverflowError), ({"amount": -(1 << 64)}, ValueError), ({"at": -1}, ValueError),
    ({"at": 1.5}, TypeError), ({"card": "key"}, TypeError), ({"card": None}, TypeError),
    ({"card": bytearray(b"key")}, TypeError), ({"merchant": ["unhashable"]}, TypeError)])
def test_bad_arguments_raise_the_same_errors_in_both_backends(risk, arguments, error):
    table = risk.RiskTable(limits=[risk.LimitSpec("m", "USD", 10)], duplicate_window_seconds=60)
    with pytest.raises(error):
        pay(table, **arguments)


def test_an_int_subclass_amount_and_the_largest_amount_are_accepted(risk):
    table = risk.RiskTable(velocity=[risk.VelocitySpec("sum", "card", 60, 10, max_amount_minor=(1 << 63) - 1,
                                                       currency="USD")])
    assert pay(table, amount=True) == -1
    assert pay(table, amount=(1 << 63) - 2) == -1
    assert pay(table, amount=1) == velocity_index(risk, 0, 0)


@pytest.mark.parametrize("arguments, message", [
    ({"limits": [("m", "USD", 1, None)]}, "limits[0]: expected a LimitSpec"),
    ({"velocity": ["v"]}, "velocity[0]: expected a VelocitySpec"),
    ({"blocked_bins": ["40000"]}, "blocked_bins: '40000' is not 6 to 11 ASCII digits"),
    ({"blocked_bins": ["4000000000000"]}, "is not 6 to 11 ASCII digits"),
    ({"blocked_cards": ["ab"]}, "blocked_cards: expected bytes"),
    ({"blocked_countries": ["kp"]}, "blocked_countries: 'kp' is not two uppercase ASCII letters"),
    ({"duplicate_window_seconds": 0}, "duplicate_window_seconds: 0 is outside"),
    ({"max_tracked_cards": 0}, "max_tracked_cards: 0 is outside"),
])
def test_build_refuses_bad_input_alike_in_both_backends(risk, arguments, message):
    with pytest.raises(ValueError) as caught:
        risk.RiskTable(**arguments)
    assert message in str(caught.value)


def test_build_refuses_two_limits_for_one_merchant_and_currency_and_two_rules_of_one_name(risk):
    with pytest.raises(ValueError, match=r"limits\[1\]: limits\[0\] already bounds \* in USD"):
        risk.RiskTable(limits=[risk.LimitSpec("*", "USD", 1), risk.LimitSpec("*", "USD", None, 2)])
    with pytest.raises(ValueError, match=r"velocity\[1\]: the name 'v' is taken"):
        risk.RiskTable(velocity=[risk.VelocitySpec("v", "card", 1, 1), risk.VelocitySpec("v", "merchant", 1, 1)])


@pytest.mark.parametrize("arguments", [
    {"per": "cards"}, {"window_seconds": 0}, {"window_seconds": 7 * 86_400 + 1}, {"max_count": 0},
    {"max_count": 1.5}, {"max_amount_minor": 5}, {"max_amount_minor": 0, "currency": "USD"}, {"name": 3}])
def test_velocity_specs_refuse_bad_bounds(risk, arguments):
    fields = {"name": "v", "per": "card", "window_seconds": 60, "max_count": 5, **arguments}
    with pytest.raises(ValueError):
        risk.VelocitySpec(**fields)


@pytest.mark.parametrize("arguments", [{}, {"max_amount_minor": 0}, {"max_daily_minor": -1},
                                       {"max_amount_minor": 1.0}, {"max_daily_minor": 1 << 63}])
def test_limit_specs_refuse_bad_bounds(risk, arguments):
    with pytest.raises(ValueError):
        risk.LimitSpec("m", "USD", **arguments)


def test_a_compiled_table_whose_init_never_ran_has_no_rules_and_a_refused_one_is_unchanged(compiled_risk):
    never = compiled_risk.RiskTable.__new__(compiled_risk.RiskTable)
    assert pay(never) == -1 and never.stats()["cards"] == 0
    table = compiled_risk.RiskTable(blocked_countries=["KP"])
    with pytest.raises(ValueError):
        table.__init__(blocked_countries=["kp"])  # refused before anything changed
    assert pay(table, country="KP") == compiled_risk.BLOCKED_COUNTRY


def test_both_backends_share_the_spec_classes_and_the_numbering(pure_risk, risk):
    assert risk.LimitSpec is pure_risk.LimitSpec and risk.VelocitySpec is pure_risk.VelocitySpec
    for name in pure_risk.__all__:
        assert hasattr(risk, name), name
        if name.isupper():
            assert getattr(risk, name) == getattr(pure_risk, name), name


# ---- bounded memory ------------------------------------------------------------------------------


def test_tracked_cards_are_capped_and_the_oldest_is_forgotten(risk):
    table = risk.RiskTable(velocity=[risk.VelocitySpec("one", "card", 600, 1)], max_tracked_cards=3)
    cards = [bytes([number]) * 32 for number in range(5)]
    for position, card in enumerate(cards):
        assert pay(table, card=card, at=NOON + position) == -1
    assert table.stats() == {"cards": 3, "merchants": 0, "cards_forgotten": 2, "merchants_forgotten": 0}
    # The evicted cards' payments no longer count (an under-count); the tracked ones still do.
    assert pay(table, card=cards[0], amount=2, at=NOON + 10) == -1
    assert pay(table, card=cards[4], amount=2, at=NOON + 11) == velocity_index(risk, 0, 0)


def test_keys_whose_windows_have_passed_are_swept_and_not_counted_as_forgotten(risk):
    table = risk.RiskTable(velocity=[risk.VelocitySpec("one", "card", 60, 1)], duplicate_window_seconds=30,
                           max_tracked_cards=1000)
    for number in range(100):
        assert pay(table, card=number.to_bytes(32, "big"), at=NOON) == -1
    assert table.stats()["cards"] == 100
    for step in range(20):  # each admission drops up to SWEEP_PER_NEW_KEY expired keys
        assert pay(table, card=(1000 + step).to_bytes(32, "big"), at=NOON + 60 * S + step) == -1
    assert table.stats() == {"cards": 20, "merchants": 0, "cards_forgotten": 0, "merchants_forgotten": 0}


def test_at_the_cap_an_expired_key_is_dropped_before_a_live_one(risk):
    table = risk.RiskTable(velocity=[risk.VelocitySpec("one", "card", 60, 1)], max_tracked_cards=2)
    pay(table, card=b"old", at=NOON)
    pay(table, card=b"live", at=NOON + 50 * S)
    assert pay(table, card=b"new", at=NOON + 61 * S) == -1
    assert table.stats()["cards_forgotten"] == 0
    assert pay(table, card=b"live", amount=2, at=NOON + 62 * S) == velocity_index(risk, 0, 0)


def test_merchants_are_kept_until_their_day_is_over(risk):
    table = risk.RiskTable(limits=[risk.LimitSpec("*", "USD", max_daily_minor=100)], max_tracked_merchants=10)
    for number in range(10):
        assert pay(table, merchant=f"m{number}", at=NOON) == -1
    assert pay(table, merchant="late", at=NOON + 3600 * S) == -1
    assert table.stats()["merchants"] == 10 and table.stats()["merchants_forgotten"] == 1
    assert pay(table, merchant="next-day", at=NOON + DAY) == -1
    # A new key sweeps up to 8 expired ones first: m1 to m8 go, m9 and "late" wait for the next new key.
    assert table.stats()["merchants"] == 3 and table.stats()["merchants_forgotten"] == 1
    assert pay(table, merchant="next-day-2", at=NOON + DAY) == -1
    assert table.stats()["merchants"] == 2


def test_a_steady_stream_gets_max_count_per_window(risk):
    table = risk.RiskTable(velocity=[risk.VelocitySpec("three", "card", 10, 3)])
    decisions = [pay(table, amount=second, at=NOON + second * S) for second in range(1000)]
    assert decisions.count(-1) == 300
    assert decisions[:11] == [-1, -1, -1] + [velocity_index(risk, 0, 0)] * 7 + [-1]


def test_the_compiled_backend_releases_every_reference_it_holds(compiled_risk):
    merchant, currency = "".join(["merch", "ant-x"]), "".join(["EU", "R"])
    before = sys.getrefcount(merchant), sys.getrefcount(currency)
    table = compiled_risk.RiskTable(limits=[compiled_risk.LimitSpec("*", "EUR", max_daily_minor=10**12)],
                                    duplicate_window_seconds=10, max_tracked_cards=5)
    for step in range(200):
        pay(table, merchant=merchant, currency=currency, card=bytes([step % 9]) * 4, amount=step, at=NOON + step * S)
    replacement = compiled_risk.RiskTable(limits=[compiled_risk.LimitSpec("*", "EUR", max_daily_minor=10**12)],
                                          duplicate_window_seconds=10, max_tracked_cards=5)
    replacement.adopt_state(table)
    del table, replacement
    gc.collect()
    assert (sys.getrefcount(merchant), sys.getrefcount(currency)) == before


# ---- hot reload ----------------------------------------------------------------------------------


def test_adopt_state_carries_windows_by_rule_name_and_leaves_the_old_table_alone(risk):
    rules = [risk.VelocitySpec("burst", "card", 600, 3), risk.VelocitySpec("merchant", "merchant", 600, 5)]
    old = risk.RiskTable(velocity=rules, duplicate_window_seconds=60)
    for amount in range(3):
        assert pay(old, amount=amount) == -1
    renamed = [risk.VelocitySpec("merchant", "merchant", 600, 5), risk.VelocitySpec("burst-2", "card", 600, 3),
               risk.VelocitySpec("burst", "card", 600, 3)]
    new = risk.RiskTable(velocity=renamed, duplicate_window_seconds=60)
    new.adopt_state(old)
    assert new.stats() == old.stats()
    assert pay(new, amount=0, at=NOON + 1) == risk.DUPLICATE
    assert pay(new, amount=10, at=NOON + 1) == velocity_index(risk, 0, 2)   # "burst" carried; "burst-2" is new
    assert pay(new, amount=10, merchant="n", at=NOON + 1) == velocity_index(risk, 0, 2)
    assert pay(new, amount=10, card=OTHER_CARD, at=NOON + 1) == -1
    assert pay(new, amount=11, card=OTHER_CARD, at=NOON + 1) == -1
    assert pay(new, amount=12, card=b"third", at=NOON + 1) == velocity_index(risk, 0, 0)  # the merchant's 6th
    # The old table still answers from its own state.
    assert pay(old, amount=5, card=OTHER_CARD, at=NOON + 2) == -1


def test_adopt_state_cuts_a_window_to_a_lower_max_count(risk):
    old = risk.RiskTable(velocity=[risk.VelocitySpec("burst", "card", 600, 10)])
    for second in range(6):
        pay(old, amount=second, at=NOON + second * S)
    new = risk.RiskTable(velocity=[risk.VelocitySpec("burst", "card", 600, 4)])
    new.adopt_state(old)
    assert pay(new, amount=99, at=NOON + 10 * S) == velocity_index(risk, 0, 0)
    # The newest 4 were kept: the window frees up as the 3rd payment (t = 2 s) leaves it.
    assert pay(new, amount=99, at=NOON + 602 * S - 1) == velocity_index(risk, 0, 0)
    assert pay(new, amount=99, at=NOON + 602 * S) == -1


def test_adopt_state_keeps_daily_sums_where_a_daily_limit_remains(risk):
    old = risk.RiskTable(limits=[risk.LimitSpec("*", "USD", max_daily_minor=100),
                                 risk.LimitSpec("*", "EUR", max_daily_minor=100)])
    pay(old, amount=90)
    pay(old, amount=90, currency="EUR")
    new = risk.RiskTable(limits=[risk.LimitSpec("*", "USD", max_daily_minor=100, max_amount_minor=1000),
                                 risk.LimitSpec("m", "EUR", max_amount_minor=1000)])
    new.adopt_state(old)
    assert pay(new, amount=11, at=NOON + 1) == risk.FIRST_LIMIT + 1
    assert pay(new, amount=10, at=NOON + 1) == -1
    assert pay(new, amount=500, currency="EUR", at=NOON + 1) == -1


def test_adopt_state_respects_the_new_caps(risk):
    old = risk.RiskTable(velocity=[risk.VelocitySpec("one", "card", 600, 1)])
    for number in range(10):
        pay(old, card=bytes([number]), at=NOON + number)
    new = risk.RiskTable(velocity=[risk.VelocitySpec("one", "card", 600, 1)], max_tracked_cards=4)
    new.adopt_state(old)
    assert new.stats()["cards"] == 4 and new.stats()["cards_forgotten"] == 6
    assert pay(new, card=bytes([9]), amount=2, at=NOON + 20) == velocity_index(risk, 0, 0)
    assert pay(new, card=bytes([5]), amount=2, at=NOON + 20) == -1


def test_adopt_state_needs_the_same_backend(pure_risk, compiled_risk):
    with pytest.raises(TypeError):
        pure_risk.RiskTable().adopt_state(compiled_risk.RiskTable())
    with pytest.raises(TypeError):
        compiled_risk.RiskTable().adopt_state(pure_risk.RiskTable())


# ---- restoring from the store: a restart or a reload must not widen a bound ------------------------


def restore_all(table, passed, now, previous=None):
    """Restores what `restore_since_us` asks for of `passed` ((time, merchant, currency, amount, card)), as the
    risk gate does with the store's rows; returns how many it asked for."""
    since = table.restore_since_us(now, previous)
    if previous is not None:
        table.adopt_state(previous)
    wanted = [] if since is None else [payment for payment in passed if payment[0] > since]
    for at, merchant, currency, amount, card in wanted:
        table.restore(merchant, currency, amount, card, at)
    return len(wanted)


def test_restore_counts_without_checking_and_only_what_the_windows_still_hold(risk):
    rules = dict(limits=[risk.LimitSpec("m", "USD", max_amount_minor=10, max_daily_minor=815)],
                 velocity=[risk.VelocitySpec("burst", "card", 600, 3)], duplicate_window_seconds=60)
    table = risk.RiskTable(**rules)
    passed = [(NOON - 601 * S, "m", "USD", 500, CARD),   # outside the window, inside the day
              (NOON - 2 * S, "m", "USD", 300, CARD), (NOON - S, "m", "USD", 5, CARD)]  # 300: above today's bound
    assert table.restore_since_us(NOON) == NOON - NOON % DAY - 1  # the day reaches further than the window
    assert restore_all(table, passed, NOON) == 3
    assert pay(table, amount=5) == risk.DUPLICATE                      # restored fingerprints
    assert pay(table, amount=6) == -1                                  # the window's 3rd
    assert pay(table, amount=7) == velocity_index(risk, 1, 0)
    assert pay(table, amount=5, card=OTHER_CARD) == risk.FIRST_LIMIT + 1  # 811 today: 5 more would pass 815
    assert pay(table, amount=4, card=OTHER_CARD) == -1
    assert risk.RiskTable(blocked_bins=["400000"]).restore_since_us(NOON) is None  # keeps nothing to restore


def test_a_payment_restored_without_its_card_key_counts_per_merchant_only(risk):
    table = risk.RiskTable(velocity=[risk.VelocitySpec("card", "card", 600, 1),
                                     risk.VelocitySpec("merchant", "merchant", 600, 2)])
    table.restore("m", "USD", 100, b"", NOON - S)
    assert table.stats()["cards"] == 0
    assert pay(table, amount=1) == -1
    assert pay(table, amount=2, card=OTHER_CARD) == velocity_index(risk, 0, 1)
    with pytest.raises(TypeError):
        table.restore("m", "USD", 100, "not bytes", NOON)


def test_a_reload_restores_what_did_not_carry_and_nothing_twice(risk):
    old = risk.RiskTable(velocity=[risk.VelocitySpec("burst", "card", 60, 3)],
                         limits=[risk.LimitSpec("*", "EUR", max_daily_minor=100)])
    passed = []
    for seconds_before, currency, amount in [(300, "USD", 1), (200, "EUR", 60), (20, "USD", 2)]:
        assert pay(old, currency=currency, amount=amount, at=NOON - seconds_before * S) == -1
        passed.append((NOON - seconds_before * S, "m", currency, amount, CARD))
    # "burst" gets a longer window (the old one let two of the three go, so it is restored, not carried),
    # a new rule and a USD daily limit.
    new = risk.RiskTable(velocity=[risk.VelocitySpec("burst", "card", 600, 3), risk.VelocitySpec("new", "card", 600, 4)],
                         limits=[risk.LimitSpec("*", "EUR", max_daily_minor=100),
                                 risk.LimitSpec("*", "USD", max_daily_minor=5)])
    assert restore_all(new, passed, NOON, previous=old) == 3
    assert pay(new, currency="USD", amount=1, card=OTHER_CARD) == -1           # USD today: 1 + 2 + 1
    assert pay(new, currency="USD", amount=2, card=OTHER_CARD) == risk.FIRST_LIMIT + 3
    assert pay(new, currency="EUR", amount=40, card=OTHER_CARD) == -1          # carried, not counted twice
    assert pay(new, currency="EUR", amount=1, card=b"c") == risk.FIRST_LIMIT + 1
    assert pay(new, currency="GBP", amount=1) == velocity_index(risk, 2, 0)    # the 600 s window holds 3
    unchanged = risk.RiskTable(velocity=[risk.VelocitySpec("burst", "card", 60, 3)],
                               limits=[risk.LimitSpec("*", "EUR", max_daily_minor=100)])
    assert unchanged.restore_since_us(NOON, old) is None                      # everything carries


def test_restore_since_needs_the_same_backend(pure_risk, compiled_risk):
    with pytest.raises(TypeError):
        pure_risk.RiskTable().restore_since_us(NOON, compiled_risk.RiskTable())
    with pytest.raises(TypeError):
        compiled_risk.RiskTable().restore_since_us(NOON, pure_risk.RiskTable())


# ---- a brute-force model: the semantics, scanning every payment that passed ----------------------


class BruteForce:
    """Keeps every admitted payment and answers each rule by scanning them; no caps, clock never steps back."""

    def __init__(self, risk, limits, velocity, bins, cards, countries, duplicate_seconds):
        self.risk, self.limits, self.velocity = risk, limits, velocity
        self.bins, self.cards, self.countries = bins, cards, countries
        self.duplicate_us = (duplicate_seconds or 0) * S
        self.passed = []  # (time, merchant, currency, amount, card)

    def limit(self, merchant, currency):
        for wanted in (merchant, "*"):
            for index, limit in enumerate(self.limits):
                if limit.merchant == wanted and limit.currency == currency:
                    return index
        return -1

    def admit(self, merchant, currency, amount, card, bin, country, now):
        risk = self.risk
        if bin is not None and any(bin.startswith(prefix) for prefix in self.bins):
            return risk.BLOCKED_BIN
        if card in self.cards:
            return risk.BLOCKED_CARD
        if country in self.countries:
            return risk.BLOCKED_COUNTRY
        index = self.limit(merchant, currency)
        if index >= 0 and self.limits[index].max_amount_minor is not None:
            if amount > self.limits[index].max_amount_minor:
                return risk.FIRST_LIMIT + 2 * index
        if self.duplicate_us:
            same_card = [p for p in self.passed if p[4] == card][-risk.RECENT_PER_CARD:]
            if any(t > now - self.duplicate_us and (m, c, a) == (merchant, currency, amount)
                   for t, m, c, a, _card in same_card):
                return risk.DUPLICATE
        for position, rule in enumerate(self.velocity):
            if rule.currency is not None and rule.currency != currency:
                continue
            key = 4 if rule.per == "card" else 1
            inside = [p for p in self.passed if p[key] == (card if key == 4 else merchant)
                      and p[0] > now - rule.window_seconds * S
                      and (rule.currency is None or p[2] == rule.currency)]
            if len(inside) >= rule.max_count or (rule.max_amount_minor is not None and
                                                 amount + sum(p[3] for p in inside) > rule.max_amount_minor):
                return risk.FIRST_LIMIT + 2 * len(self.limits) + position
        if index >= 0 and self.limits[index].max_daily_minor is not None:
            today = sum(p[3] for p in self.passed if p[1] == merchant and p[2] == currency
                        and p[0] // DAY == now // DAY)
            if amount + today > self.limits[index].max_daily_minor:
                return risk.FIRST_LIMIT + 2 * index + 1
        self.passed.append((now, merchant, currency, amount, card))
        return -1


MERCHANTS = ("m1", "m2", "m3")
CURRENCIES = ("USD", "EUR")
CARDS = tuple(bytes([number]) * 8 for number in range(6))
BINS = ("400000", "4000001", "41111111", "52000000001", "510000")
COUNTRIES = ("KP", "IR", "US", "DE")
DIGITS = ("4000001234", "4111111122", "5200000000123", "5100009999", "411111", "371449635398431")


@st.composite
def configurations(draw, risk):
    limits, seen = [], set()
    for _ in range(draw(st.integers(0, 4))):
        merchant, currency = draw(st.sampled_from(MERCHANTS + ("*",))), draw(st.sampled_from(CURRENCIES))
        if (merchant, currency) in seen:
            continue
        seen.add((merchant, currency))
        bounds = draw(st.sampled_from([(None, 400), (300, None), (200, 600)]))
        limits.append(risk.LimitSpec(merchant, currency, *bounds))
    velocity = []
    for position in range(draw(st.sampled_from((0, 1, 2, 2, 3, 3)))):
        currency = draw(st.sampled_from((None, "USD")))
        velocity.append(risk.VelocitySpec(
            f"v{position}", draw(st.sampled_from(("card", "merchant"))), draw(st.sampled_from((5, 30, 120))),
            draw(st.integers(1, 6)), draw(st.sampled_from((None, 400))) if currency else None, currency))
    return {"limits": limits, "velocity": velocity,
            "blocked_bins": draw(st.lists(st.sampled_from(BINS), max_size=1, unique=True)),
            "blocked_cards": draw(st.lists(st.sampled_from(CARDS), max_size=1, unique=True)),
            "blocked_countries": draw(st.lists(st.sampled_from(COUNTRIES[:2]), max_size=1, unique=True)),
            "duplicate_window_seconds": draw(st.sampled_from((None, 10, 60)))}


def payments(forward_only):
    """(clock step in µs, merchant, currency, amount, card, bin, country): steps cross windows and midnights."""
    steps = st.sampled_from((0, 0, 1, 1, S, S, 4 * S, 4 * S, 29 * S, 61 * S, 3 * 3600 * S, DAY))
    if not forward_only:
        steps = st.one_of(steps, st.sampled_from((-S, -30 * S)))
    return st.lists(st.tuples(steps, st.sampled_from(MERCHANTS), st.sampled_from(CURRENCIES),
                              st.sampled_from((0, 100, 100, 199, 200, 201, 300, 450)), st.sampled_from(CARDS),
                              st.sampled_from(DIGITS + (None,) * 4), st.sampled_from(COUNTRIES + (None,) * 4)),
                    min_size=5, max_size=80)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_both_backends_agree_with_the_brute_force_model(data, risk):
    config = data.draw(configurations(risk))
    table = risk.RiskTable(**config)
    model = BruteForce(risk, config["limits"], config["velocity"], config["blocked_bins"], config["blocked_cards"],
                       config["blocked_countries"], config["duplicate_window_seconds"])
    now = NOON - 6 * 3600 * S
    for step, merchant, currency, amount, card, bin, country in data.draw(payments(forward_only=True)):
        now += step
        expected = model.admit(merchant, currency, amount, card, bin, country, now)
        assert table.admit(merchant, currency, amount, card, bin, country, now) == expected


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_compiled_and_pure_decide_alike_on_random_sequences(data, pure_risk, compiled_risk):
    config = data.draw(configurations(pure_risk))
    caps = {"max_tracked_cards": data.draw(st.integers(1, 7)), "max_tracked_merchants": data.draw(st.integers(1, 4))}
    tables = [module.RiskTable(**config, **caps) for module in (pure_risk, compiled_risk)]
    reload_at = data.draw(st.integers(0, 60))
    passed = []
    now = NOON - 6 * 3600 * S
    for position, (step, merchant, currency, amount, card, bin, country) in enumerate(
            data.draw(payments(forward_only=False))):
        if position == reload_at:
            new_config = data.draw(configurations(pure_risk))
            new_caps = {"max_tracked_cards": data.draw(st.integers(1, 7)),
                        "max_tracked_merchants": data.draw(st.integers(1, 4))}
            replacements = [module.RiskTable(**new_config, **new_caps) for module in (pure_risk, compiled_risk)]
            restored = {restore_all(replacement, passed, now, previous=table)
                        for replacement, table in zip(replacements, tables)}
            assert len(restored) == 1
            tables = replacements
        now = max(0, now + step)
        arguments = (merchant, currency, amount, card, bin, country, now)
        check = data.draw(st.booleans())
        answers = [(table.check if check else table.admit)(*arguments) for table in tables]
        assert answers[0] == answers[1], (position, arguments)
        if answers[0] == -1 and not check:
            passed.append((now, merchant, currency, amount, card))
        assert tables[0].stats() == tables[1].stats()


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
@pytest.mark.parametrize("new_rules", [False, True], ids=["same rules", "new rules"])
def test_a_reload_ends_where_a_restart_with_the_new_rules_would(data, risk, new_rules):
    """A table restored from nothing (a restart) answers like one that adopted the old table's state and
    restored the rest (a reload), which with the same rules is the table that lived on: what
    `restore_since_us` asks for is enough, and nothing counts twice."""
    old_config = data.draw(configurations(risk))
    new_config = data.draw(configurations(risk)) if new_rules else old_config
    table, restarted, passed = risk.RiskTable(**old_config), None, []
    sequence = data.draw(payments(forward_only=True))
    reload_at = data.draw(st.integers(0, len(sequence) - 1))
    now = NOON - 6 * 3600 * S
    for position, (step, merchant, currency, amount, card, bin, country) in enumerate(sequence):
        now += step
        if position == reload_at:
            reloaded, restarted = risk.RiskTable(**new_config), risk.RiskTable(**new_config)
            restore_all(reloaded, passed, now, previous=table)
            restore_all(restarted, passed, now)
            table = reloaded
        answer = table.admit(merchant, currency, amount, card, bin, country, now)
        if answer == -1:
            passed.append((now, merchant, currency, amount, card))
        if restarted is not None:
            assert restarted.admit(merchant, currency, amount, card, bin, country, now) == answer, position

"""BIN and rule tables, pinned for both backends and checked against brute force that scans every entry."""

import random
import re
import tracemalloc

import pytest
from conftest import BACKEND_NAMES, load_backend
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

INT64_MIN = -(1 << 63)
INT64_MAX = (1 << 63) - 1


@pytest.fixture(scope="module", params=BACKEND_NAMES)
def routing(request):
    """The routing_table module of one backend: tests get it only from here."""
    return load_backend(request.param, "routing_table")


@pytest.fixture(scope="module")
def pure_routing():
    return load_backend("pure", "routing_table")


@pytest.fixture(scope="module")
def compiled_routing():
    return load_backend("compiled", "routing_table")


# ---- brute force: the semantics, scanning every range or rule -----------------------------------


def key_interval(low, high):
    """The 11-digit keys a (low, high) range covers."""
    scale = 10 ** (11 - len(low))
    return int(low) * scale, (int(high) + 1) * scale - 1


def ambiguous_pairs(ranges):
    """Index pairs of overlapping ranges of equal length and width: neither is more specific."""
    pairs = set()
    for i, (low_i, high_i, _) in enumerate(ranges):
        for j in range(i + 1, len(ranges)):
            low_j, high_j, _ = ranges[j]
            if (len(low_i) == len(low_j) and int(high_i) - int(low_i) == int(high_j) - int(low_j)
                    and int(low_i) <= int(high_j) and int(low_j) <= int(high_i)):
                pairs.add((i, j))
    return pairs


def winner_at(ranges, key):
    """The value of the most specific range covering one 11-digit key, or None."""
    best = None
    for low, high, value in ranges:
        first, last = key_interval(low, high)
        if first <= key <= last:
            specificity = (len(low), -(int(high) - int(low)))
            if best is None or specificity > best[0]:
                best = (specificity, value)
    return None if best is None else best[1]


def brute_force_lookup(ranges, card_number):
    """A short number gets a value only if every key it stands for gets that same object."""
    if not (isinstance(card_number, str) and card_number.isascii() and card_number.isdigit()):
        return None
    if len(card_number) < 6:
        return None
    if len(card_number) >= 11:
        return winner_at(ranges, int(card_number[:11]))
    scale = 10 ** (11 - len(card_number))
    first, last = int(card_number) * scale, (int(card_number) + 1) * scale - 1
    # The winner changes only where some range starts or ends, so these keys stand for all of them.
    keys = {first}
    for low, high, _ in ranges:
        range_first, range_last = key_interval(low, high)
        keys.update(key for key in (range_first, range_last + 1) if first < key <= last)
    winners = [winner_at(ranges, key) for key in keys]
    if winners[0] is None or any(winner is not winners[0] for winner in winners):
        return None
    return winners[0]


def brute_force_match(rules, merchant, currency, amount_minor, scheme, country, card_type, method):
    for index, rule in enumerate(rules):
        if rule.accepts(merchant, currency, amount_minor, scheme, country, card_type, method):
            return index
    return -1


def outcome(call):
    """What a call came to: its result, or the exception's type and message."""
    try:
        return ("ok", call())
    except Exception as error:  # noqa: BLE001 - the twins must fail alike, whatever the failure
        return ("raised", type(error), str(error))


# ---- BinTable: examples --------------------------------------------------------------------------

VISA = ("visa", "US", "credit")
VISA_DEBIT = ("visa", "US", "debit")
VISA_PREPAID = ("visa", "GB", "prepaid")
MASTERCARD = ("mastercard", "DE", "credit")


def test_the_most_specific_range_wins(routing):
    table = routing.BinTable([
        ("400000", "499999", VISA),               # a whole 6-digit block
        ("41111100", "41111199", VISA_DEBIT),     # 8 digits inside it
        ("41111150000", "41111150999", VISA_PREPAID),  # 11 digits inside that
    ])
    assert table.lookup("4000000000000002") is VISA
    assert table.lookup("4111109999999999") is VISA
    assert table.lookup("4111110012345678") is VISA_DEBIT
    assert table.lookup("4111115100000000") is VISA_DEBIT   # past the 11-digit range
    assert table.lookup("4111115000912345") is VISA_PREPAID
    assert table.lookup("5500000000000004") is None
    assert len(table) == 3


def test_at_equal_length_the_narrower_range_wins(routing):
    table = routing.BinTable([
        ("411000", "411999", VISA),
        ("411100", "411199", VISA_DEBIT),
        ("411150", "411150", VISA_PREPAID),
        ("411190", "411210", MASTERCARD),  # overlaps the two wider ones partly, narrower than the first
    ])
    assert table.lookup("4110001234567890") is VISA
    assert table.lookup("4111001234567890") is VISA_DEBIT
    assert table.lookup("4111501234567890") is VISA_PREPAID
    assert table.lookup("4111891234567890") is VISA_DEBIT
    assert table.lookup("4111901234567890") is MASTERCARD   # width 20 is narrower than 99
    assert table.lookup("4112001234567890") is MASTERCARD
    assert table.lookup("4112111234567890") is VISA


def test_adjacent_ranges_keep_their_own_values(routing):
    table = routing.BinTable([("411110", "411114", VISA), ("411115", "411119", MASTERCARD)])
    assert table.lookup("4111149999999999") is VISA
    assert table.lookup("4111150000000000") is MASTERCARD
    assert table.lookup("4111199999999999") is MASTERCARD
    assert table.lookup("4111200000000000") is None
    assert table.lookup("4111099999999999") is None


def test_six_and_eleven_digit_ranges(routing):
    table = routing.BinTable([("411111", "411111", VISA), ("41111111111", "41111111111", VISA_DEBIT)])
    assert table.lookup("41111111111") is VISA_DEBIT        # exactly 11 digits
    assert table.lookup("4111111111111111") is VISA_DEBIT
    assert table.lookup("4111111111211111") is VISA
    assert table.lookup("4111111111111111111") is VISA_DEBIT  # 19 digits: only the first 11 count
    assert table.lookup("41111111110") is VISA
    assert table.lookup("11111111111") is None


def test_a_short_number_gets_a_value_only_when_all_its_completions_agree(routing):
    table = routing.BinTable([("411111", "411111", VISA), ("41111150", "41111159", VISA_DEBIT),
                              ("422222", "422222", VISA)])
    assert table.lookup("422222") is VISA                   # nothing splits this BIN
    assert table.lookup("42222212") is VISA
    assert table.lookup("411111") is None                   # 41111150 to 59 are debit: no single answer
    assert table.lookup("4111114") is VISA                  # none of 4111114... is debit
    assert table.lookup("4111115") is VISA_DEBIT
    assert table.lookup("41111150") is VISA_DEBIT
    assert table.lookup("41111160") is VISA
    assert table.lookup("4111116") is VISA
    assert table.lookup("43333") is None                    # fewer than 6 digits
    assert table.lookup("41111") is None


def test_adjacent_ranges_sharing_one_value_object_answer_a_short_number_together(routing):
    shared = {"scheme": "visa"}
    equal_but_distinct = {"scheme": "visa"}
    table = routing.BinTable([("41111100", "41111149", shared), ("41111150", "41111199", shared),
                              ("42222200", "42222249", shared), ("42222250", "42222299", equal_but_distinct)])
    assert table.lookup("411111") is shared
    assert table.lookup("422222") is None  # equal values, but not the same object: not merged
    assert table.lookup("4222225") is equal_but_distinct


def test_a_gap_inside_a_short_number_means_no_answer(routing):
    table = routing.BinTable([("41111100", "41111149", VISA), ("41111151", "41111199", VISA)])
    assert table.lookup("411111") is None
    assert table.lookup("4111114") is VISA


@pytest.mark.parametrize("card_number", [
    "", "4", "4111-1111-1111-1111", " 4111111111111111", "4111111111111111 ", "411111111111111x",
    "４１１１１１１１１１１１",           # fullwidth digits
    "٤١١١١١١١١١١١١١١١",                 # Arabic-Indic digits: str.isdigit says yes
    "4111111111111111\x00", "+4111111111", "4111111111111111\u0301",
    None, 4111111111111111, 4.1e15, b"4111111111111111", ["4111111111111111"],
])
def test_anything_but_ascii_digits_gives_none(routing, card_number):
    table = routing.BinTable([("000000", "999999", VISA)])
    assert table.lookup(card_number) is None


def test_the_stored_object_itself_is_returned(routing):
    record = {"scheme": "visa"}  # even a mutable one: the table holds it, never copies it
    table = routing.BinTable(iter([("411111", "411111", record)]))
    assert table.lookup("4111111111111111") is record


def test_an_empty_table(routing):
    table = routing.BinTable([])
    assert len(table) == 0
    assert table.lookup("4111111111111111") is None
    assert table.lookup("411111") is None


def test_overlapping_ranges_of_equal_length_and_width_are_rejected(routing):
    with pytest.raises(ValueError, match=re.escape(
            "ranges[1] (411110-411115) and ranges[2] (411112-411117) overlap with the same length and width")):
        routing.BinTable([("400000", "499999", VISA), ("411110", "411115", VISA), ("411112", "411117", VISA)])
    with pytest.raises(ValueError, match=r"ranges\[0\] \(41111100-41111100\) and ranges\[1\] "):
        routing.BinTable([("41111100", "41111100", VISA), ("41111100", "41111100", VISA)])  # even duplicates


def test_equal_length_and_width_without_overlap_is_fine(routing):
    table = routing.BinTable([("411110", "411114", VISA), ("411115", "411119", MASTERCARD),  # adjacent
                              ("4111100", "4111119", VISA_DEBIT)])  # the same width, one digit longer
    assert table.lookup("4111100000000000") is VISA_DEBIT
    assert table.lookup("4111119999999999") is VISA_DEBIT
    assert table.lookup("4111120000000000") is VISA
    assert table.lookup("4111150000000000") is MASTERCARD
    assert len(table) == 3


@pytest.mark.parametrize(("entry", "message"), [
    (("41111a", "411111", VISA), "ranges[1]: low '41111a' is not a string of digits"),
    (("411111", "4111 1", VISA), "ranges[1]: high '4111 1' is not a string of digits"),
    ((411111, "411111", VISA), "ranges[1]: low 411111 is not a string of digits"),
    (("٤١١١١١", "٤١١١١١", VISA), "ranges[1]: low '٤١١١١١' is not a string of digits"),
    (("", "", VISA), "ranges[1]: low '' is not a string of digits"),
    (("41111", "41111", VISA), "ranges[1]: low '41111' has 5 digits; 6 to 11 are allowed"),
    (("411111111111", "411111111111", VISA), "ranges[1]: low '411111111111' has 12 digits; 6 to 11 are allowed"),
    (("411111", "4111111", VISA), "ranges[1]: low '411111' and high '4111111' differ in length"),
    (("411112", "411111", VISA), "ranges[1]: low '411112' is above high '411111'"),
    (("411111", "411111"), "ranges[1]: expected (low, high, value), got ('411111', '411111')"),
    (None, "ranges[1]: expected (low, high, value), got None"),
])
def test_invalid_ranges_are_refused_naming_the_entry(routing, entry, message):
    with pytest.raises(ValueError) as raised:
        routing.BinTable([("400000", "499999", VISA), entry])
    assert str(raised.value) == message


# ---- BinTable: brute force and the twins ---------------------------------------------------------

VALUES = ("A", "B", "C", "D")  # shared objects, so equal values are also the same object


def crowded_range(low, width, value):
    return low, str(int(low) + min(width, 10 ** (len(low) - 3))), value


#: Few ranges squeezed into few keys, so that they nest, touch and overlap in every way.
CROWDED_RANGES = st.lists(st.builds(crowded_range, st.from_regex(r"4[059]{5,10}", fullmatch=True),
                                    st.sampled_from([0, 0, 0, 1, 4, 5, 9, 40, 500, 10 ** 8]), st.sampled_from(VALUES)),
                          max_size=12)


def card_numbers(ranges):
    """Numbers of 5 to 19 digits around the ranges' edges, and some anywhere."""
    edges = []
    for low, high, _ in ranges:
        first, last = key_interval(low, high)
        edges += [first - 1, first, last, last + 1]
    around_an_edge = st.builds(lambda key, length, tail: (str(key).zfill(11) + tail)[:length],
                               st.sampled_from(edges) if edges else st.just(40000000000),
                               st.integers(min_value=5, max_value=19), st.text("0123456789", min_size=8, max_size=8))
    anywhere = st.builds(lambda digits: "4" + digits, st.text("0159", min_size=5, max_size=18))
    return st.lists(st.one_of(around_an_edge, anywhere), min_size=1, max_size=12)


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_lookups_agree_with_brute_force(routing, data):
    ranges = data.draw(CROWDED_RANGES)
    ambiguous = ambiguous_pairs(ranges)
    if ambiguous:
        with pytest.raises(ValueError) as raised:
            routing.BinTable(ranges)
        named = tuple(sorted(int(index) for index in re.findall(r"ranges\[(\d+)\]", str(raised.value))))
        assert named in ambiguous
        return
    table = routing.BinTable(ranges)
    assert len(table) == len(ranges)
    for card_number in data.draw(card_numbers(ranges)):
        expected = brute_force_lookup(ranges, card_number)
        assert table.lookup(card_number) is expected, card_number
        if expected is not None:  # what the first digits say, more digits never contradict
            assert table.lookup(card_number + "0") is expected
            assert table.lookup(card_number + "9") is expected


JUNK = st.one_of(st.text(max_size=12), st.from_regex(r"[0-9]{4,13}", fullmatch=True), st.integers(),
                 st.none(), st.binary(max_size=8))


@settings(max_examples=300, deadline=None)
@given(entries=st.lists(st.one_of(st.tuples(JUNK, JUNK, st.just("V")), st.tuples(JUNK, JUNK), JUNK,
                                  CROWDED_RANGES.map(lambda ranges: ranges[0] if ranges else ("4", "4", "V"))),
                        max_size=4),
       card_number=st.one_of(JUNK, st.from_regex(r"4[0-9]{5,18}", fullmatch=True)))
def test_both_twins_refuse_and_answer_alike(pure_routing, compiled_routing, entries, card_number):
    built = [outcome(lambda: module.BinTable(entries)) for module in (pure_routing, compiled_routing)]
    if built[0][0] == "raised" or built[1][0] == "raised":
        assert built[0] == built[1]
    else:
        assert built[0][1].lookup(card_number) is built[1][1].lookup(card_number)


def test_both_twins_agree_on_a_large_random_table(pure_routing, compiled_routing):
    rng = random.Random(7)
    ranges = []
    placed = {}  # (length, width) -> lows: ranges of equal length and width must not overlap
    while len(ranges) < 3000:
        length = rng.randint(6, 11)
        low = rng.randint(4 * 10 ** (length - 1), 5 * 10 ** (length - 1) - 1)
        width = rng.choice([0, 0, 1, 9, 99, 10 ** (length - 5)])
        lows = placed.setdefault((length, width), [])
        if any(abs(low - other) <= width for other in lows):
            continue
        lows.append(low)
        ranges.append((str(low), str(low + width), rng.choice(VALUES)))
    tables = [module.BinTable(ranges) for module in (pure_routing, compiled_routing)]
    for _ in range(20_000):
        digits = rng.choice([6, 7, 8, 9, 10, 11, 16, 19])
        card_number = str(rng.randint(4 * 10 ** (digits - 1), 5 * 10 ** (digits - 1) - 1))
        assert tables[0].lookup(card_number) is tables[1].lookup(card_number), card_number


# ---- RuleTable: examples -------------------------------------------------------------------------

ANY_PAYMENT = ("m_acme", "EUR", 1000, "visa", "DE", "credit", "card")


def test_the_first_rule_in_order_wins(routing):
    criteria = routing.RuleCriteria
    table = routing.RuleTable([
        criteria(merchants=frozenset({"m_other"})),
        criteria(currencies=frozenset({"USD"})),
        criteria(merchants=frozenset({"m_acme"}), schemes=frozenset({"visa"})),
        criteria(),  # global, after the merchant's own rule
        criteria(merchants=frozenset({"m_acme"})),
    ])
    assert table.match(*ANY_PAYMENT) == 2
    assert table.match("m_acme", "EUR", 1000, "mastercard", "DE", "credit", "card") == 3
    assert table.match("m_other", "USD", 1000, "visa", "DE", "credit", "card") == 0
    assert table.match("m_new", "USD", 1000, "visa", "DE", "credit", "card") == 1
    assert len(table) == 5


@pytest.mark.parametrize(("field", "position", "accepted", "other"), [
    ("merchants", 0, "m_acme", "m_other"),
    ("currencies", 1, "EUR", "USD"),
    ("schemes", 3, "visa", "amex"),
    ("countries", 4, "DE", "FR"),
    ("card_types", 5, "credit", "debit"),
    ("methods", 6, "card", "wallet"),
])
def test_each_criterion_is_checked(routing, field, position, accepted, other):
    table = routing.RuleTable([routing.RuleCriteria(**{field: frozenset({accepted, "also"})})])
    payment = list(ANY_PAYMENT)
    assert table.match(*payment) == 0
    payment[position] = other
    assert table.match(*payment) == -1
    payment[position] = None  # e.g. a wallet payment has no card type
    assert table.match(*payment) == -1


def test_amount_bounds_are_inclusive(routing):
    criteria = routing.RuleCriteria
    table = routing.RuleTable([criteria(min_amount_minor=100, max_amount_minor=200),
                               criteria(max_amount_minor=99), criteria(min_amount_minor=201)])
    matches = {amount: table.match("m", "EUR", amount, None, None, None, None) for amount in (99, 100, 200, 201)}
    assert matches == {99: 1, 100: 0, 200: 0, 201: 2}
    extremes = routing.RuleTable([criteria(min_amount_minor=INT64_MAX), criteria(max_amount_minor=INT64_MIN)])
    assert extremes.match("m", "EUR", INT64_MAX, None, None, None, None) == 0
    assert extremes.match("m", "EUR", INT64_MIN, None, None, None, None) == 1
    assert extremes.match("m", "EUR", 0, None, None, None, None) == -1


def test_unknown_values_fail_specific_criteria_and_pass_open_ones(routing):
    criteria = routing.RuleCriteria
    table = routing.RuleTable([criteria(merchants=frozenset({"m_acme"})), criteria(currencies=frozenset({"EUR"})),
                               criteria(schemes=frozenset({"visa"}), countries=frozenset({"DE"}))])
    assert table.match("m_unknown", "EUR", 1, None, None, None, None) == 1
    assert table.match("m_unknown", "XXX", 1, "visa", "DE", None, None) == 2
    assert table.match("m_unknown", "XXX", 1, "visa", "ZZ", None, None) == -1
    assert table.match(None, None, 1, None, None, None, None) == -1
    assert table.match(b"m_acme", "EUR", 1, None, None, None, None) == 1  # bytes never equal a str


def test_rules_beyond_one_word_of_bits(routing):
    criteria = routing.RuleCriteria
    rules = [criteria(merchants=frozenset({f"m_{index}"}), currencies=frozenset({"EUR"})) for index in range(200)]
    rules.insert(130, criteria(currencies=frozenset({"CHF"})))
    table = routing.RuleTable(rules)
    assert table.match("m_64", "EUR", 1, None, None, None, None) == 64
    assert table.match("m_199", "EUR", 1, None, None, None, None) == 200
    assert table.match("m_199", "CHF", 1, None, None, None, None) == 130
    assert table.match("m_5", "CHF", 1, None, None, None, None) == 130
    assert table.match("m_5", "USD", 1, None, None, None, None) == -1


def test_an_empty_rule_table_matches_nothing(routing):
    table = routing.RuleTable([])
    assert len(table) == 0
    assert table.match(*ANY_PAYMENT) == -1


def test_the_compiled_twin_takes_the_pure_twins_criteria(pure_routing, routing):
    assert routing.RuleCriteria is pure_routing.RuleCriteria


def test_criteria_are_normalized_and_validated(routing):
    criteria = routing.RuleCriteria
    rule = criteria(currencies={"EUR"}, schemes=["visa", "visa"])
    assert rule.currencies == frozenset({"EUR"}) and isinstance(rule.currencies, frozenset)
    assert rule.schemes == frozenset({"visa"})
    for arguments, message in [
        ({"currencies": "EUR"}, "currencies: expected a set of strings or None, got 'EUR'"),
        ({"countries": frozenset()}, "countries: an empty set never matches; use None for any value"),
        ({"methods": frozenset({1})}, "methods: expected strings, got 1"),
        ({"min_amount_minor": True}, "min_amount_minor: expected an int or None, got True"),
        ({"max_amount_minor": 1.5}, "max_amount_minor: expected an int or None, got 1.5"),
        ({"max_amount_minor": 1 << 63}, "max_amount_minor: 9223372036854775808 does not fit a signed 64-bit"),
        ({"min_amount_minor": 5, "max_amount_minor": 4}, "min_amount_minor 5 is above max_amount_minor 4"),
    ]:
        with pytest.raises(ValueError, match=re.escape(message)):
            criteria(**arguments)


def test_rules_must_be_criteria(routing):
    with pytest.raises(ValueError, match=re.escape("rules[1]: expected a RuleCriteria, got dict")):
        routing.RuleTable([routing.RuleCriteria(), {"currencies": {"EUR"}}])


@pytest.mark.parametrize(("amount", "error"), [(1.0, TypeError), (None, TypeError), ("100", TypeError),
                                               (1 << 63, OverflowError), (-(1 << 63) - 1, OverflowError)])
def test_amounts_must_be_64_bit_integers(routing, amount, error):
    table = routing.RuleTable([routing.RuleCriteria()])
    with pytest.raises(error):
        table.match("m", "EUR", amount, None, None, None, None)


def test_amounts_may_be_any_integer_type(routing):
    class Cents:
        def __index__(self):
            return 150

    table = routing.RuleTable([routing.RuleCriteria(min_amount_minor=200), routing.RuleCriteria(max_amount_minor=150)])
    assert table.match("m", "EUR", Cents(), None, None, None, None) == 1
    assert table.match("m", "EUR", True, None, None, None, None) == 1


def test_unhashable_values_raise_type_error(routing):
    table = routing.RuleTable([routing.RuleCriteria()])
    with pytest.raises(TypeError):
        table.match(["m"], "EUR", 1, None, None, None, None)


# ---- RuleTable: brute force ----------------------------------------------------------------------

ALPHABETS = {"merchants": ("m1", "m2", "m3"), "currencies": ("EUR", "USD", "GBP"), "schemes": ("visa", "mc"),
             "countries": ("DE", "FR", "US"), "card_types": ("credit", "debit"), "methods": ("card", "wallet")}
AMOUNTS = st.one_of(st.integers(min_value=-5, max_value=300), st.sampled_from([INT64_MIN, INT64_MAX]))


def ordered_bounds(arguments):
    low, high = arguments["min_amount_minor"], arguments["max_amount_minor"]
    if low is not None and high is not None and low > high:
        arguments["min_amount_minor"], arguments["max_amount_minor"] = high, low
    return arguments


#: Keyword arguments of up to 80 RuleCriteria: enough for two words of bits.
RULE_ARGUMENTS = st.lists(st.fixed_dictionaries({
    **{name: st.one_of(st.none(), st.none(), st.frozensets(st.sampled_from(values), min_size=1, max_size=len(values)))
       for name, values in ALPHABETS.items()},
    "min_amount_minor": st.one_of(st.none(), st.none(), AMOUNTS),
    "max_amount_minor": st.one_of(st.none(), st.none(), AMOUNTS),
}).map(ordered_bounds), max_size=80)


def payment_value(name):
    return st.one_of(st.sampled_from(ALPHABETS[name]), st.sampled_from(["other", None]))


PAYMENTS = st.lists(st.tuples(payment_value("merchants"), payment_value("currencies"), AMOUNTS,
                              payment_value("schemes"), payment_value("countries"), payment_value("card_types"),
                              payment_value("methods")),
                    min_size=1, max_size=15)
ODD_AMOUNTS = st.one_of(AMOUNTS, st.sampled_from([1 << 63, -(1 << 63) - 1, 1.0, None, "1", True]))


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_matches_agree_with_brute_force(routing, data):
    rules = [routing.RuleCriteria(**arguments) for arguments in data.draw(RULE_ARGUMENTS)]
    table = routing.RuleTable(rules)
    assert len(table) == len(rules)
    for payment in data.draw(PAYMENTS):
        assert table.match(*payment) == brute_force_match(rules, *payment), payment


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_both_twins_match_alike(pure_routing, compiled_routing, data):
    rules = [pure_routing.RuleCriteria(**arguments) for arguments in data.draw(RULE_ARGUMENTS)]
    assume(rules)
    tables = [module.RuleTable(rules) for module in (pure_routing, compiled_routing)]
    for payment in data.draw(PAYMENTS):
        payment = (*payment[:2], data.draw(ODD_AMOUNTS), *payment[3:])
        assert outcome(lambda: tables[0].match(*payment)) == outcome(lambda: tables[1].match(*payment))


# ---- the compiled twin allocates nothing per call ------------------------------------------------


def peak_allocation(loop, function):
    """Bytes Python's allocator held at the peak of loop(function), beyond what was live before."""
    tracemalloc.start()
    try:
        loop(function)  # warm-up: caches, lazily built method wrappers
        tracemalloc.reset_peak()
        before, _ = tracemalloc.get_traced_memory()
        loop(function)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return peak - before


def test_compiled_lookups_and_matches_allocate_nothing(pure_routing, compiled_routing):
    """The loop's own iterator is the baseline; the pure twin shows that an allocation would be seen."""
    ranges = [("400000", "499999", VISA), ("41111100", "41111199", VISA_DEBIT)]
    card_numbers = ["4111110012345678", "4999999999999999", "411111", "5500000000000004", "4111x"] * 200
    rules = [pure_routing.RuleCriteria(merchants=frozenset({f"m_{index}"}), currencies=frozenset({"EUR"}))
             for index in range(300)] + [pure_routing.RuleCriteria()]
    payments = [(f"m_{index}", "EUR", 1000, "visa", "DE", "credit", "card") for index in range(0, 300, 3)] * 10

    def lookups(lookup):
        for card_number in card_numbers:
            lookup(card_number)

    def matches(match):
        for merchant, currency, amount, scheme, country, card_type, method in payments:
            match(merchant, currency, amount, scheme, country, card_type, method)

    baseline = peak_allocation(lookups, len)  # the list iterator
    assert peak_allocation(lookups, compiled_routing.BinTable(ranges).lookup) == baseline
    assert peak_allocation(lookups, pure_routing.BinTable(ranges).lookup) > baseline
    assert peak_allocation(matches, compiled_routing.RuleTable(rules).match) == baseline
    assert peak_allocation(matches, pure_routing.RuleTable(rules).match) > baseline

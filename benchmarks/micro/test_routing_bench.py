"""Routing tables, compiled vs pure vs the obvious library approach, one table per operation.

Run: pytest benchmarks/micro/test_routing_bench.py --benchmark-group-by=group

Every timed call does 1,000 lookups (or matches) over the next batch of a rotating pool, so the figures
are per 1,000 operations: read microseconds as nanoseconds per operation. The pool is far larger than
one batch, so caches see a realistic spread of keys rather than the same few.

The data is seeded and realistic in shape: 100,000 BIN ranges (20,000 six-digit BINs, 30,000 eight-digit
ranges nested in them, 50,000 nine- to eleven-digit account ranges nested in those) with values shared
from a pool of records; 1,000 merchants with ~2,500 merchant rules interleaved with ~300 global ones.
Ranges of one length never overlap, so the library baselines (which cannot resolve such overlaps)
answer exactly as the tables do; each test checks that on its first batch.
"""

import random
from bisect import bisect_right
from collections import Counter, deque
from dataclasses import dataclass
from functools import partial
from itertools import cycle, islice, starmap

import pytest
from backends import backend_module

from payswitch import hotpath
from payswitch.routing.config import parse_routing
from payswitch.routing.table import RoutingTable

SEED = 20_240_611
BATCH = 1_000
BIN_POOL_BATCHES = 64
RULE_POOL_BATCHES = 16
MERCHANTS = tuple(f"m_{number:04d}" for number in range(1_000))
CURRENCIES = ("EUR", "USD", "GBP", "CHF", "SEK", "NOK", "DKK", "PLN", "CZK", "JPY", "CAD", "AUD")
SCHEMES = ("visa", "mastercard", "amex", "discover", "unionpay")
COUNTRIES = ("DE", "FR", "NL", "BE", "IT", "ES", "PT", "AT", "CH", "GB", "IE", "SE", "NO", "DK", "FI", "PL",
             "CZ", "US", "CA", "AU", "JP", "BR", "MX", "IN")
CARD_TYPES = ("credit", "debit", "prepaid")
METHODS = ("card", "apple_pay", "google_pay", "network_token")


@dataclass(frozen=True, slots=True)
class BinRecord:
    """What a BIN table says about an issuer range, as the routing layer will store it."""

    scheme: str
    issuer_country: str
    card_type: str


def _backend_module(name):
    return backend_module("routing_table", name)


# ---- BIN ranges ----------------------------------------------------------------------------------


def _disjoint_ranges(rng, low, high, count, widths):
    """`count` disjoint (start, end) integer ranges inside [low, high], in order."""
    starts = sorted(rng.sample(range(low, high + 1), count))
    limits = [start - 1 for start in starts[1:]] + [high]
    return [(start, min(start + rng.choice(widths), limit)) for start, limit in zip(starts, limits)]


def _digits(number, length):
    return str(number).zfill(length)


@pytest.fixture(scope="module")
def bin_ranges():
    """100,000 nested (low, high, value) ranges of 6, 8 and 9 to 11 digits."""
    rng = random.Random(SEED)
    records = [BinRecord(scheme, country, card_type)
               for scheme in SCHEMES for country in COUNTRIES for card_type in CARD_TYPES]
    ranges = []
    bins = _disjoint_ranges(rng, 400_000, 699_999, 20_000, widths=(0, 0, 0, 0, 1, 2))
    ranges += [(_digits(low, 6), _digits(high, 6), rng.choice(records)) for low, high in bins]
    eight_digit = []
    for low, high in rng.sample(bins, 10_000):
        eight_digit += _disjoint_ranges(rng, low * 100, high * 100 + 99, 3, widths=(0, 0, 1, 4))
    ranges += [(_digits(low, 8), _digits(high, 8), rng.choice(records)) for low, high in eight_digit]
    for low, high in rng.sample(eight_digit, 25_000):
        length = rng.choice((9, 10, 11))
        scale = 10 ** (length - 8)
        for child_low, child_high in _disjoint_ranges(rng, low * scale, (high + 1) * scale - 1, 2,
                                                      widths=(0, 0, 1, 4)):
            ranges.append((_digits(child_low, length), _digits(child_high, length), rng.choice(records)))
    assert len(ranges) == 100_000
    return ranges


@pytest.fixture(scope="module")
def card_batches(bin_ranges):
    """64 batches of 16-digit numbers: most inside a random range (often a nested one), some anywhere."""
    rng = random.Random(SEED + 1)
    numbers = []
    for _ in range(BIN_POOL_BATCHES * BATCH):
        if rng.random() < 0.8:
            low, high, _value = rng.choice(bin_ranges)
            prefix = _digits(rng.randint(int(low), int(high)), len(low))
        else:
            prefix = str(rng.randint(3, 6))
        numbers.append(prefix + "".join(rng.choice("0123456789") for _ in range(16 - len(prefix))))
    return [numbers[start:start + BATCH] for start in range(0, len(numbers), BATCH)]


def _built(module_name, build):
    """Each available backend's table, built once per module: the pure build takes seconds."""
    modules = {"pure": hotpath.pure_module(module_name), "compiled": hotpath.compiled_module(module_name)}
    return {name: build(module) for name, module in modules.items() if module is not None}


@pytest.fixture(scope="module")
def bin_tables(bin_ranges):
    return _built("routing_table", lambda module: module.BinTable(bin_ranges))


def _prefix_dict(bin_ranges):
    """The obvious dict: every prefix each range covers -> its value."""
    prefixes = {}
    for low, high, value in bin_ranges:
        for number in range(int(low), int(high) + 1):
            prefixes[_digits(number, len(low))] = value
    return prefixes


def lookup_by_prefixes(prefixes, card_number):
    for length in (11, 10, 9, 8, 7, 6):
        value = prefixes.get(card_number[:length])
        if value is not None:
            return value
    return None


def _per_length_lists(bin_ranges):
    """For each length, longest first: sorted lows, their highs and values (one length never overlaps)."""
    by_length = {}
    for low, high, value in sorted(bin_ranges, key=lambda entry: int(entry[0])):
        lows, highs, values = by_length.setdefault(len(low), ([], [], []))
        lows.append(int(low))
        highs.append(int(high))
        values.append(value)
    return tuple((length, *by_length[length]) for length in sorted(by_length, reverse=True))


def lookup_by_bisect(per_length, card_number):
    for length, lows, highs, values in per_length:
        key = int(card_number[:length])
        position = bisect_right(lows, key) - 1
        if position >= 0 and highs[position] >= key:
            return values[position]
    return None


def _benchmark_lookups(benchmark, lookup, card_batches, reference):
    assert list(map(lookup, card_batches[0])) == list(map(reference, card_batches[0]))
    batches = cycle(card_batches)
    benchmark(lambda: deque(map(lookup, next(batches)), maxlen=0))


@pytest.mark.benchmark(group="routing_table.bin_lookup (per 1,000)")
@pytest.mark.parametrize("name", ["compiled", "pure"])
def test_bin_lookup(benchmark, name, bin_tables, card_batches):
    _backend_module(name)  # skipped or failed as the policy says
    _benchmark_lookups(benchmark, bin_tables[name].lookup, card_batches, bin_tables["pure"].lookup)


@pytest.mark.benchmark(group="routing_table.bin_lookup (per 1,000)")
def test_bin_lookup_library_prefix_dict(benchmark, bin_ranges, bin_tables, card_batches):
    lookup = partial(lookup_by_prefixes, _prefix_dict(bin_ranges))
    _benchmark_lookups(benchmark, lookup, card_batches, bin_tables["pure"].lookup)


@pytest.mark.benchmark(group="routing_table.bin_lookup (per 1,000)")
def test_bin_lookup_library_bisect(benchmark, bin_ranges, bin_tables, card_batches):
    lookup = partial(lookup_by_bisect, _per_length_lists(bin_ranges))
    _benchmark_lookups(benchmark, lookup, card_batches, bin_tables["pure"].lookup)


# ---- ordered rules -------------------------------------------------------------------------------


def _criteria(rng, module, merchants):
    """One rule: a merchant's own (merchants set) with up to two more criteria, or a global one with two or three."""
    criteria = {"merchants": merchants}
    choices = {"currencies": (CURRENCIES, 3), "schemes": (SCHEMES, 2), "countries": (COUNTRIES, 6),
               "card_types": (CARD_TYPES, 2), "methods": (METHODS, 2)}
    count = rng.randint(0, 2) if merchants is not None else rng.randint(2, 3)
    for name in rng.sample(sorted(choices), count):
        values, most = choices[name]
        criteria[name] = frozenset(rng.sample(values, rng.randint(1, most)))
    if rng.random() < 0.3:
        low = rng.choice((0, 100, 1_000, 10_000))
        criteria["min_amount_minor"] = low
        if rng.random() < 0.5:
            criteria["max_amount_minor"] = low * 10 + 999
    return module.RuleCriteria(**criteria)


@pytest.fixture(scope="module")
def rules():
    """~2,500 merchant rules (0 to 5 per merchant) interleaved with 300 global ones, then a catch-all."""
    rng = random.Random(SEED + 2)
    module = hotpath.pure_module("routing_table")
    ordered = [_criteria(rng, module, frozenset({merchant}))
               for merchant in MERCHANTS for _ in range(rng.randint(0, 5))]
    ordered += [_criteria(rng, module, None) for _ in range(300)]
    rng.shuffle(ordered)
    ordered.append(module.RuleCriteria())
    return ordered


@pytest.fixture(scope="module")
def payment_batches():
    """16 batches of (merchant, currency, amount, scheme, country, card type, method); 2% unknown merchants."""
    rng = random.Random(SEED + 3)
    payments = []
    for _ in range(RULE_POOL_BATCHES * BATCH):
        merchant = rng.choice(MERCHANTS) if rng.random() < 0.98 else f"m_new_{rng.randint(0, 99)}"
        payments.append((merchant, rng.choice(CURRENCIES), int(10 ** rng.uniform(1, 6)), rng.choice(SCHEMES),
                         rng.choice(COUNTRIES), rng.choice(CARD_TYPES), rng.choice(METHODS)))
    return [payments[start:start + BATCH] for start in range(0, len(payments), BATCH)]


@pytest.fixture(scope="module")
def rule_tables(rules):
    return _built("routing_table", lambda module: module.RuleTable(rules))


def match_by_loop(rules, merchant, currency, amount_minor, scheme, country, card_type, method):
    """The straightforward way: test each rule object in order. Inlined rather than calling
    RuleCriteria.accepts, whose call per rule would double the baseline's time and flatter the tables."""
    for index, rule in enumerate(rules):
        if ((rule.merchants is None or merchant in rule.merchants)
                and (rule.currencies is None or currency in rule.currencies)
                and (rule.schemes is None or scheme in rule.schemes)
                and (rule.countries is None or country in rule.countries)
                and (rule.card_types is None or card_type in rule.card_types)
                and (rule.methods is None or method in rule.methods)
                and (rule.min_amount_minor is None or amount_minor >= rule.min_amount_minor)
                and (rule.max_amount_minor is None or amount_minor <= rule.max_amount_minor)):
            return index
    return -1


def _benchmark_matches(benchmark, match, payment_batches, reference):
    assert list(starmap(match, payment_batches[0])) == list(starmap(reference, payment_batches[0]))
    batches = cycle(payment_batches)
    benchmark(lambda: deque(starmap(match, next(batches)), maxlen=0))


@pytest.mark.benchmark(group="routing_table.rule_match (per 1,000)")
@pytest.mark.parametrize("name", ["compiled", "pure"])
def test_rule_match(benchmark, name, rule_tables, rules, payment_batches):
    _backend_module(name)
    _benchmark_matches(benchmark, rule_tables[name].match, payment_batches, partial(match_by_loop, rules))


@pytest.mark.benchmark(group="routing_table.rule_match (per 1,000)")
def test_rule_match_library_loop(benchmark, rules, payment_batches):
    match = partial(match_by_loop, rules)
    _benchmark_matches(benchmark, match, payment_batches, match)


def test_first_matches_are_spread_over_the_rules(rules, payment_batches):
    """The data is only realistic if payments stop at many different rules, not all at the catch-all."""
    pure = hotpath.pure_module("routing_table").RuleTable(rules)
    first_matches = [pure.match(*payment) for payment in islice(payment_batches[0], 500)]
    assert len(set(first_matches)) > 50
    assert first_matches.count(len(rules) - 1) < 250


# ---- routing: decide (RoutingTable over both tables) ---------------------------------------------

DECIDE_MERCHANTS = MERCHANTS[:200]
WALLETS = ("applepay", "googlepay", "paypal")
CHANNELS = ("acquirer_a", "acquirer_b", "acquirer_c", "acquirer_d")


def _routing_text(rng):
    """A routing file of 10,000 BIN ranges (6,000 six-digit BINs, 4,000 eight-digit ranges nested in them)
    and 50 rules: 30 for 3 to 15 merchants each, 19 global ones, a catch-all; a third are splits."""
    records = [(scheme, country, card_type) for scheme in SCHEMES for country in COUNTRIES for card_type in CARD_TYPES]
    bins = _disjoint_ranges(rng, 400_000, 699_999, 6_000, widths=(0, 0, 0, 1, 2))
    ranges = [(_digits(low, 6), _digits(high, 6)) for low, high in bins]
    for low, high in rng.sample(bins, 2_000):
        ranges += [(_digits(a, 8), _digits(b, 8))
                   for a, b in _disjoint_ranges(rng, low * 100, high * 100 + 99, 2, widths=(0, 1, 4))]
    assert len(ranges) == 10_000
    lines = ['version = "bench:1"']
    for low, high in ranges:
        scheme, country, card_type = rng.choice(records)
        lines += ["[[bins]]", f'low = "{low}"', f'high = "{high}"', f'scheme = "{scheme}"', f'country = "{country}"',
                  f'card_type = "{card_type}"']
    criteria = {"currencies": (CURRENCIES, 3), "schemes": (SCHEMES + WALLETS, 3), "countries": (COUNTRIES, 6),
                "card_types": (CARD_TYPES, 2), "methods": (("card", "wallet"), 1)}
    for number in range(49):
        lines += ["[[rules]]", f'name = "rule-{number}"']
        if number < 30:
            lines.append(f"merchants = {list(rng.sample(DECIDE_MERCHANTS, rng.randint(3, 15)))}".replace("'", '"'))
        for name in rng.sample(sorted(criteria), rng.randint(0, 1) if number < 30 else rng.randint(1, 2)):
            values, most = criteria[name]
            lines.append(f"{name} = {rng.sample(values, rng.randint(1, most))}".replace("'", '"'))
        if rng.random() < 0.3:
            lines.append(f"min_amount_minor = {rng.choice((100, 1_000, 10_000))}")
        channels = rng.sample(CHANNELS, rng.randint(1, 3))
        if number % 3 == 0:
            lines.append("split = { " + ", ".join(f"{c} = {rng.randint(1, 10)}" for c in channels) + " }")
        else:
            lines.append(f"channels = {channels}".replace("'", '"'))
    lines += ["[[rules]]", 'name = "catch-all"', 'channels = ["acquirer_a"]']
    return "\n".join(lines) + "\n"


@pytest.fixture(scope="module")
def routing_config():
    return parse_routing(_routing_text(random.Random(SEED + 4)), "bench.toml")


@pytest.fixture(scope="module")
def decide_batches(routing_config):
    """16 batches of (merchant, currency, amount, method, card number, wallet provider): 90% cards."""
    rng = random.Random(SEED + 5)
    payments = []
    for _ in range(RULE_POOL_BATCHES * BATCH):
        merchant, currency = rng.choice(DECIDE_MERCHANTS), rng.choice(CURRENCIES)
        amount = int(10 ** rng.uniform(1, 6))
        if rng.random() < 0.1:
            payments.append((merchant, currency, amount, "wallet", None, rng.choice(WALLETS)))
            continue
        entry = rng.choice(routing_config.bins)
        prefix = _digits(rng.randint(int(entry.low), int(entry.high)), len(entry.low))
        number = prefix + "".join(rng.choice("0123456789") for _ in range(16 - len(prefix)))
        payments.append((merchant, currency, amount, "card", number, None))
    return [payments[start:start + BATCH] for start in range(0, len(payments), BATCH)]


class LoopRouter:
    """The obvious router: BIN lookup by bisect per prefix length, then a loop over the rules in order."""

    def __init__(self, config, rng):
        self.per_length = _per_length_lists([(b.low, b.high, b) for b in config.bins])
        self.rules, self.random = config.rules, rng.random
        self.criteria = [rule.criteria for rule in config.rules]

    def decide(self, merchant, currency, amount_minor, method, card_number=None, wallet_provider=None):
        if card_number is not None:
            entry = lookup_by_bisect(self.per_length, card_number)
            facts = (entry.scheme, entry.country, entry.card_type) if entry else ("unknown", None, None)
        else:
            facts = (wallet_provider, None, None)
        index = match_by_loop(self.criteria, merchant, currency, amount_minor, *facts, method)
        if index < 0:
            return None
        rule = self.rules[index]
        if rule.weights is None:
            return rule.name, rule.channels
        draw, running, total = self.random() * sum(rule.weights), 0, sum(rule.weights)
        for position, weight in enumerate(rule.weights):
            running += weight
            if draw < running or running == total:
                break
        rest = sorted((p for p in range(len(rule.channels)) if p != position), key=lambda p: -rule.weights[p])
        return rule.name, (rule.channels[position],) + tuple(rule.channels[p] for p in rest)


def _decisions(router, batch):
    return [None if d is None else (d if isinstance(d, tuple) else (d.rule, d.channels))
            for d in starmap(router.decide, batch)]


def _benchmark_decide(benchmark, make_router, routing_config, decide_batches):
    reference = RoutingTable(routing_config, random=random.Random(SEED), backend=hotpath.pure_module("routing_table"))
    router = make_router(random.Random(SEED))
    assert _decisions(router, decide_batches[0]) == _decisions(reference, decide_batches[0])
    batches = cycle(decide_batches)
    decide = router.decide
    benchmark(lambda: deque(starmap(decide, next(batches)), maxlen=0))


@pytest.mark.benchmark(group="routing: decide (per 1,000)")
@pytest.mark.parametrize("name", ["compiled", "pure"])
def test_decide(benchmark, name, routing_config, decide_batches):
    module = _backend_module(name)
    _benchmark_decide(benchmark, lambda rng: RoutingTable(routing_config, random=rng, backend=module),
                      routing_config, decide_batches)


@pytest.mark.benchmark(group="routing: decide (per 1,000)")
def test_decide_library_loop(benchmark, routing_config, decide_batches):
    _benchmark_decide(benchmark, lambda rng: LoopRouter(routing_config, rng), routing_config, decide_batches)


def test_decisions_are_spread_over_the_rules(routing_config, decide_batches):
    """Realistic only if payments stop at many rules, splits included, not mostly at the catch-all."""
    table = RoutingTable(routing_config, random=random.Random(SEED))
    rules = Counter(d.rule for d in starmap(table.decide, decide_batches[0]))
    assert len(rules) > 25 and rules["catch-all"] < 500
    assert sum(count for name, count in rules.items() if name != "catch-all" and int(name[5:]) % 3 == 0) > 50

"""Risk rules, compiled vs pure vs the obvious dict-of-lists approach, one table per operation.

Run: pytest benchmarks/micro/test_risk_bench.py --benchmark-group-by=group

Every timed call makes 1,000 decisions over the next batch of a rotating pool, so the figures are per
1,000 operations: read microseconds as nanoseconds per operation. The fake clock moves 60 ms per
decision (about 17 payments a second), so each of the 10,000 cards in play pays about every ten
minutes and the windows hold a steady, realistic load while the benchmark runs for simulated hours.

The configuration is realistic in shape: 8 limits (5 merchants' own, 3 for any merchant, with daily
sums), 3 velocity rules (two per card, one per merchant with a USD sum), 1,000 blocked BINs of 6 and
8 digits, 100 blocked card keys, 3 blocked countries and a 5-minute duplicate window. Payments come
from 200 merchants and 10,000 card keys; about 1% reuse an earlier payment (a duplicate), and some
hit each blocklist. Each test checks on a fresh start that its decisions equal the pure engine's.

- "risk: evaluate": RiskEngine.evaluate (clock read, table, decision), and the naive engine;
- "risk_rules.admit": the hot-path table alone, given the time, and the naive engine's equivalent.
"""

import random
from collections import Counter, deque
from functools import partial
from itertools import count, cycle, starmap

import pytest
from backends import backend_module

from payswitch import hotpath
from payswitch.risk.config import parse_risk
from payswitch.risk.engine import (REASON_AMOUNT_LIMIT, REASON_BLOCKED_BIN, REASON_BLOCKED_CARD, REASON_BLOCKED_COUNTRY,
                                   REASON_DAILY_LIMIT, REASON_DUPLICATE, REASON_VELOCITY, RiskDecision, RiskEngine,
                                   compile_table)

SEED = 20_261_124
BATCH = 1_000
POOL_BATCHES = 16
START = 1_764_547_200.0  # a UTC midnight
STEP_SECONDS = 0.06
MERCHANTS = tuple(f"m_{number:03d}" for number in range(200))
CURRENCIES = ("USD", "USD", "USD", "EUR", "EUR", "GBP")
COUNTRIES = ("US", "DE", "FR", "GB", "NL", "ES", "IT", "BR", "IN", "JP")
BLOCKED_COUNTRIES = ("KP", "IR", "SY")
CARD_KEYS = 10_000
BLOCKED_BINS = 1_000


def _risk_text(rng):
    bins = set()
    while len(bins) < BLOCKED_BINS:
        bins.add(str(rng.randint(400_000, 599_999)) if rng.random() < 0.6 else str(rng.randint(40_000_000, 59_999_999)))
    blocked_cards = [f"{number:064x}" for number in rng.sample(range(CARD_KEYS), 100)]
    lines = ['version = "bench:1"']
    for merchant in MERCHANTS[:5]:
        lines += ["[[limits]]", f'merchant = "{merchant}"', 'currency = "USD"', "max_amount_minor = 80000",
                  "max_daily_minor = 400000"]
    # The daily sums any merchant reaches at this rate stay below the "*" bounds, so the decline rate
    # stays steady however many simulated days a run lasts; the 5 merchants' own bounds are reached daily.
    for currency, daily in (("USD", 500_000_000), ("EUR", 300_000_000), ("GBP", 200_000_000)):
        lines += ["[[limits]]", 'merchant = "*"', f'currency = "{currency}"', "max_amount_minor = 150000",
                  f"max_daily_minor = {daily}"]
    lines += ["[[velocity]]", 'name = "card-burst"', 'per = "card"', "window_seconds = 60", "max_count = 2",
              "[[velocity]]", 'name = "card-hour"', 'per = "card"', "window_seconds = 3600", "max_count = 20",
              "[[velocity]]", 'name = "merchant-minute-usd"', 'per = "merchant"', "window_seconds = 60",
              "max_count = 1000", "max_amount_minor = 150000", 'currency = "USD"']
    lines += ["[blocklist]", f"bins = {sorted(bins)}".replace("'", '"'),
              f"cards = {blocked_cards}".replace("'", '"'), 'countries = ["KP", "IR", "SY"]',
              "[duplicates]", "window_seconds = 300"]
    return "\n".join(lines) + "\n"


@pytest.fixture(scope="module")
def risk_config():
    return parse_risk(_risk_text(random.Random(SEED)), "bench.toml")


@pytest.fixture(scope="module")
def payment_batches():
    """16 batches of (merchant, currency, amount, card key, BIN digits, country): each card has its own
    digits and issuer country (1% in a blocked country, 5% unknown)."""
    rng = random.Random(SEED + 1)
    cards = []
    for number in range(CARD_KEYS):
        draw = rng.random()
        country = None if draw < 0.05 else rng.choice(BLOCKED_COUNTRIES) if draw < 0.06 else rng.choice(COUNTRIES)
        cards.append((number.to_bytes(32, "big"), str(rng.randint(40_000_000_000, 59_999_999_999)), country))
    payments = []
    for _ in range(POOL_BATCHES * BATCH):
        if payments and rng.random() < 0.01:
            payments.append(rng.choice(payments[-200:]))
            continue
        card_key, digits, country = rng.choice(cards)
        payments.append((rng.choice(MERCHANTS), rng.choice(CURRENCIES), int(10 ** rng.uniform(2, 5.3)), card_key,
                         digits, country))
    return [payments[start:start + BATCH] for start in range(0, len(payments), BATCH)]


def stepping_clock():
    """Seconds since the epoch, moving STEP_SECONDS at every read; built of C iterators, so reading it
    costs about what time.time does and the engine's own overhead is not inflated."""
    return partial(next, map(START.__add__, map(STEP_SECONDS.__mul__, count(1))))


class NaiveRisk:
    """The obvious engine: each window a list of (time, amount) in a dict by (rule, key), filtered on every
    check; daily sums in a dict by (merchant, currency, day); recent payments per card in a list. No caps."""

    def __init__(self, config, clock):
        self.clock = clock
        self.version = config.version
        self.bins = set(config.blocklist.bins)
        self.cards = set(config.blocklist.cards)
        self.countries = set(config.blocklist.countries)
        self.limits = {(limit.merchant, limit.currency): limit for limit in config.limits}
        self.velocity = config.velocity
        self.duplicate_us = (config.duplicate_window_seconds or 0) * 1_000_000
        self.windows: dict[tuple[str, object], list[tuple[int, int]]] = {}
        self.daily: dict[tuple[str, str, int], int] = {}
        self.recent: dict[bytes, list[tuple[int, str, int, str]]] = {}
        self.allowed = RiskDecision(True, "", "", config.version)

    def evaluate(self, merchant, currency, amount, card_key, bin, country):
        rule, reason = self.admit(merchant, currency, amount, card_key, bin, country,
                                  round(self.clock() * 1_000_000))
        return self.allowed if rule is None else RiskDecision(False, rule, reason, self.version)

    def admit(self, merchant, currency, amount, card_key, bin, country, now):
        if bin is not None and any(bin[:length] in self.bins for length in range(6, 12)):
            return "blocklist.bins", REASON_BLOCKED_BIN
        if card_key in self.cards:
            return "blocklist.cards", REASON_BLOCKED_CARD
        if country in self.countries:
            return "blocklist.countries", REASON_BLOCKED_COUNTRY
        limit = self.limits.get((merchant, currency)) or self.limits.get(("*", currency))
        if limit is not None and limit.max_amount_minor is not None and amount > limit.max_amount_minor:
            return limit.name, REASON_AMOUNT_LIMIT
        recent = [entry for entry in self.recent.get(card_key, ()) if entry[0] > now - self.duplicate_us]
        self.recent[card_key] = recent
        if any(entry[1:] == (merchant, amount, currency) for entry in recent):
            return "duplicates", REASON_DUPLICATE
        counted = []
        for velocity in self.velocity:
            if velocity.currency is not None and velocity.currency != currency:
                continue
            key = (velocity.name, card_key if velocity.per == "card" else merchant)
            cutoff = now - velocity.window_seconds * 1_000_000
            entries = [entry for entry in self.windows.get(key, ()) if entry[0] > cutoff]
            self.windows[key] = entries
            if len(entries) >= velocity.max_count or (
                    velocity.max_amount_minor is not None
                    and amount + sum(entry[1] for entry in entries) > velocity.max_amount_minor):
                return velocity.name, REASON_VELOCITY
            counted.append(entries)
        day = (merchant, currency, now // 86_400_000_000)
        if limit is not None and limit.max_daily_minor is not None:
            if amount + self.daily.get(day, 0) > limit.max_daily_minor:
                return limit.name, REASON_DAILY_LIMIT
            self.daily[day] = self.daily.get(day, 0) + amount
        for entries in counted:
            entries.append((now, amount))
        recent.append((now, merchant, amount, currency))
        return None, None


def _engine(config, name):
    return RiskEngine(config, clock=stepping_clock(), backend=backend_module("risk_rules", name))


def _first_decisions(config, payment_batches):
    reference = RiskEngine(config, clock=stepping_clock(), backend=hotpath.pure_module("risk_rules"))
    return list(starmap(reference.evaluate, payment_batches[0]))


def _benchmark_evaluate(benchmark, evaluator, config, payment_batches):
    assert list(starmap(evaluator.evaluate, payment_batches[0])) == _first_decisions(config, payment_batches)
    batches = cycle(payment_batches[1:])
    evaluate = evaluator.evaluate
    benchmark(lambda: deque(starmap(evaluate, next(batches)), maxlen=0))


@pytest.mark.benchmark(group="risk: evaluate (per 1,000)")
@pytest.mark.parametrize("name", ["compiled", "pure"])
def test_evaluate(benchmark, name, risk_config, payment_batches):
    _benchmark_evaluate(benchmark, _engine(risk_config, name), risk_config, payment_batches)


@pytest.mark.benchmark(group="risk: evaluate (per 1,000)")
def test_evaluate_library_naive(benchmark, risk_config, payment_batches):
    _benchmark_evaluate(benchmark, NaiveRisk(risk_config, stepping_clock()), risk_config, payment_batches)


def _timed_batches(payment_batches):
    """The payments with their instants appended, as the table's admit takes them."""
    now = round(START * 1_000_000)
    step = round(STEP_SECONDS * 1_000_000)
    timed = []
    for batch in payment_batches:
        rows = []
        for payment in batch:
            now += step
            rows.append((*payment, now))
        timed.append(rows)
    return timed


def _benchmark_admit(benchmark, admit, payment_batches, reference):
    timed = _timed_batches(payment_batches)
    assert list(starmap(admit, timed[0])) == list(starmap(reference, timed[0]))
    # The pool's instants repeat each cycle; moving them on (untimed, in setup) keeps the clock going
    # forward, as it does live.
    span = timed[-1][-1][-1] - timed[0][0][-1] + 1

    def shifted_batches():
        shift = 0
        while True:
            shift += span
            for batch in timed[1:]:
                yield [(*row[:-1], row[-1] + shift) for row in batch]

    batches = shifted_batches()
    benchmark.pedantic(lambda batch: deque(starmap(admit, batch), maxlen=0),
                       setup=lambda: ((next(batches),), {}), rounds=300, warmup_rounds=15)


@pytest.mark.benchmark(group="risk_rules.admit (per 1,000)")
@pytest.mark.parametrize("name", ["compiled", "pure"])
def test_admit(benchmark, name, risk_config, payment_batches):
    table = compile_table(risk_config, backend_module("risk_rules", name))
    reference = compile_table(risk_config, hotpath.pure_module("risk_rules"))
    _benchmark_admit(benchmark, table.admit, payment_batches, reference.admit)


@pytest.mark.benchmark(group="risk_rules.admit (per 1,000)")
def test_admit_library_naive(benchmark, risk_config, payment_batches):
    naive = NaiveRisk(risk_config, None)
    reference = compile_table(risk_config, hotpath.pure_module("risk_rules"))
    decisions = RiskEngine(risk_config, backend=hotpath.pure_module("risk_rules"))

    def reference_answer(*payment):
        decision = decisions.decision(reference.admit(*payment))
        return (None, None) if decision.allowed else (decision.rule, decision.reason_code)

    _benchmark_admit(benchmark, naive.admit, payment_batches, reference_answer)


def test_decisions_are_spread_over_the_rules(risk_config, payment_batches):
    """Realistic only if most payments pass and every kind of rule declines some."""
    engine = RiskEngine(risk_config, clock=stepping_clock(), backend=hotpath.pure_module("risk_rules"))
    reasons = Counter()
    for batch in payment_batches:
        reasons.update(decision.reason_code for decision in starmap(engine.evaluate, batch))
    total = sum(reasons.values())
    assert reasons[""] > 0.75 * total, reasons
    for reason in (REASON_AMOUNT_LIMIT, REASON_DAILY_LIMIT, REASON_VELOCITY, REASON_BLOCKED_BIN, REASON_BLOCKED_CARD,
                   REASON_BLOCKED_COUNTRY, REASON_DUPLICATE):
        assert reasons[reason] > 0, (reason, reasons)

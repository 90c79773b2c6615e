"""The per-operation hot path, no I/O: verify the signature, decode, validate and route one Authorize.

Run: pytest benchmarks/micro/test_pipeline_bench.py --benchmark-group-by=group

This is what the switch does for every operation before it touches the store or a channel, so the
compiled figure is the floor of the switch's own per-operation cost and the ratio to the pure twin is
what the extensions buy end to end. Each call verifies a distinct, well-signed request (fresh nonce);
routing looks the card up in 100,000 BIN ranges and matches 2,000 rules over 1,000 merchants.
"""

import random
from dataclasses import dataclass

import pytest
from backends import NAMES, backend_module

from payswitch import hotpath
from payswitch.v1 import switch_pb2, types_pb2

SECRET = bytes(range(32))
METHOD = "/payswitch.v1.PaymentSwitch/Authorize"
MERCHANT = "m_0421"
KEY_ID = "k1"
NOW = 1_795_000_000
YEAR, MONTH = 2026, 11
ROUNDS, ITERATIONS = 50, 1000
REQUESTS = (ROUNDS + 1) * ITERATIONS + 1  # one warm-up round, and pytest-benchmark's extra call
BODY = switch_pb2.AuthorizeRequest(
    idempotency_key="idem_4c1b2f0d9e8a7b6c5d4e3f2a1b0c9d8e", merchant_reference="order-000123-web",
    amount=types_pb2.Money(amount_minor=12_999, currency="EUR"),
    card=types_pb2.Card(number="4242424242424242", exp_month=12, exp_year=2030, cvv="123",
                        holder_name="Ada Lovelace"),
    description="2 x tea, 1 x scone").SerializeToString()


@dataclass(frozen=True)
class BinInfo:
    scheme: str
    country: str
    card_type: str


def _bin_ranges(count: int) -> list:
    """Seeded BIN ranges of 6 to 11 digits with nesting, and the test card's BIN among them. Ranges of
    one length never overlap (that would be ambiguous), so each length keeps its own grid of slots."""
    chooser = random.Random(7)
    infos = [BinInfo(s, c, t) for s in ("visa", "mastercard", "amex") for c in ("GB", "DE", "US", "FR")
             for t in ("credit", "debit", "prepaid")]
    ranges, taken = [("424242", "424242", BinInfo("visa", "GB", "credit"))], {(6, 424242 // 10)}
    while len(ranges) < count:
        length = chooser.choice((6, 8, 8, 9, 11))
        slot = chooser.randrange(10 ** (length - 2), 10 ** (length - 1))  # ten numbers per slot
        if (length, slot) in taken:
            continue
        taken.add((length, slot))
        low = slot * 10 + chooser.randrange(0, 5)
        high = low + chooser.choice((0, 0, 3, 4))
        ranges.append((str(low), str(high), chooser.choice(infos)))
    return ranges


class Pipeline:
    """One backend's hot path, built once."""

    def __init__(self, backend_name: str, ranges: list):
        self.signing = backend_module("signing", backend_name)
        self.wire = backend_module("wire", backend_name)
        routing = backend_module("routing_table", backend_name)
        self.verifier = self.signing.Verifier({(MERCHANT, KEY_ID): SECRET}, nonce_capacity=REQUESTS * 2)
        self.bins = routing.BinTable(ranges)
        merchants = [f"m_{n:04d}" for n in range(1000)]
        chooser = random.Random(11)
        rules = [routing.RuleCriteria(merchants=frozenset(chooser.sample(merchants, 2)),
                                      currencies=frozenset({chooser.choice(("USD", "GBP"))}),
                                      min_amount_minor=chooser.randrange(0, 50_000)) for _ in range(1_990)]
        rules += [routing.RuleCriteria(currencies=frozenset({"EUR"}), card_types=frozenset({"credit"}),
                                       schemes=frozenset({"visa"})) for _ in range(10)]
        self.rules = routing.RuleTable(rules)

    def authorize(self, metadata, body: bytes):
        merchant = self.verifier.verify(METHOD, metadata, body, NOW)
        fields = self.wire.decode_authorize(body)
        violations = self.wire.validate_authorize(fields, YEAR, MONTH)
        if violations:
            raise ValueError(violations)
        info = self.bins.lookup(fields.card_number)
        return self.rules.match(merchant, fields.currency, fields.amount_minor, info.scheme, info.country,
                                info.card_type, fields.method)


@pytest.fixture(scope="module")
def ranges():
    return _bin_ranges(100_000)


@pytest.fixture(scope="module")
def signed_requests():
    signing = hotpath.signing
    return [((signing.MERCHANT_HEADER, MERCHANT), (signing.KEY_ID_HEADER, KEY_ID),
             (signing.TIMESTAMP_HEADER, str(NOW)), (signing.NONCE_HEADER, f"pipeline-{index:016d}"),
             (signing.SIGNATURE_HEADER, signing.sign(SECRET, METHOD, MERCHANT, KEY_ID, str(NOW),
                                                     f"pipeline-{index:016d}", BODY)))
            for index in range(REQUESTS)]


@pytest.mark.parametrize("backend_name", NAMES)
@pytest.mark.benchmark(group="pipeline.authorize")
def test_verify_decode_validate_route(benchmark, backend_name, ranges, signed_requests):
    pipeline = Pipeline(backend_name, ranges)
    pending = iter(signed_requests)
    authorize = pipeline.authorize
    rule = benchmark.pedantic(lambda: authorize(next(pending), BODY), rounds=ROUNDS, iterations=ITERATIONS,
                              warmup_rounds=1)
    assert rule == 1_990  # the first global EUR/visa/credit rule: no merchant-specific rule applies

"""RoutingTable: decisions per payment, weighted splits and their fallbacks, and explanations that agree
with the hot-path tables. The backend is whichever payswitch.hotpath chose, so running the suite with
PAYSWITCH_NO_EXTENSIONS=1 covers the pure twin."""

import math
import random
from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from payswitch import hotpath
from payswitch.routing.config import parse_routing
from payswitch.routing.table import CardFacts, RouteDecision, RoutingTable, mask_card_number

ROUTING = """\
version = "2026-11-24.1"

[[bins]]
low = "400000"
high = "499999"
scheme = "visa"
country = "US"
card_type = "credit"

[[bins]]
low = "41111111"
high = "41111199"
scheme = "visa"
country = "DE"
card_type = "debit"

[[bins]]
low = "510000"
high = "559999"
scheme = "mastercard"
country = "FR"
card_type = "prepaid"

[[rules]]
name = "acme-eur-high"
merchants = ["m_acme"]
currencies = ["EUR"]
min_amount_minor = 100000
max_amount_minor = 200000
channels = ["acquirer_c", "acquirer_a"]

[[rules]]
name = "german-debit"
countries = ["DE"]
card_types = ["debit"]
channels = ["acquirer_b"]

[[rules]]
name = "wallets"
methods = ["wallet"]
schemes = ["applepay", "googlepay"]
split = { acquirer_a = 1, acquirer_b = 3, acquirer_c = 3 }
min_success_rate_percent = 75

[[rules]]
name = "french-mastercard"
schemes = ["mastercard"]
countries = ["FR"]
currencies = ["EUR", "GBP"]
channels = ["acquirer_a", "acquirer_b"]

[[rules]]
name = "usd-cards"
currencies = ["USD"]
methods = ["card"]
split = { acquirer_a = 60, acquirer_b = 30, acquirer_c = 10 }
"""

VISA_US = "4242424242424242"
VISA_DE = "4111111111111111"
MASTERCARD_FR = "5555555555554444"
AMEX_UNCOVERED = "378282246310005"


@pytest.fixture(scope="module")
def config():
    return parse_routing(ROUTING, "routing.toml")


@pytest.fixture
def table(config):
    return RoutingTable(config, random=random.Random(7))


def test_first_matching_rule_decides_and_priority_decisions_are_prebuilt(table):
    decision = table.decide("m_acme", "EUR", 150000, "card", VISA_DE)
    assert decision == RouteDecision("2026-11-24.1", "acme-eur-high", ("acquirer_c", "acquirer_a"), None)
    assert table.decide("m_acme", "EUR", 150000, "card", VISA_DE) is decision
    assert table.decide("m_other", "EUR", 150000, "card", VISA_DE).rule == "german-debit"


def test_amount_bounds_are_inclusive(table):
    assert [table.decide("m_acme", "EUR", amount, "card", VISA_US) is not None
            for amount in (99999, 100000, 200000, 200001)] == [False, True, True, False]


def test_bin_ranges_give_scheme_country_and_card_type(table):
    assert table.card_facts(VISA_US) == CardFacts("visa", "US", "credit")
    assert table.card_facts(VISA_DE) == CardFacts("visa", "DE", "debit")  # the nested, longer range wins
    assert table.card_facts(MASTERCARD_FR) == CardFacts("mastercard", "FR", "prepaid")
    assert table.card_facts(AMEX_UNCOVERED) == CardFacts("amex", None, None)
    assert table.card_facts("not a number") == CardFacts("unknown", None, None)
    assert table.decide("m", "GBP", 100, "card", MASTERCARD_FR).rule == "french-mastercard"
    assert table.decide("m", "GBP", 100, "card", VISA_US) is None


def test_the_wallet_provider_is_the_scheme(table):
    assert table.decide("m", "GBP", 100, "wallet", wallet_provider="applepay").rule == "wallets"
    assert table.decide("m", "GBP", 100, "wallet", wallet_provider="paypal") is None


def test_no_matching_rule_gives_none(table):
    assert table.decide("m", "JPY", 100, "card", AMEX_UNCOVERED) is None
    assert RoutingTable(parse_routing('version = "empty"\n')).decide("m", "EUR", 1, "card", VISA_US) is None


def test_version_and_config_are_exposed(table, config):
    assert table.version == "2026-11-24.1" and table.config is config


def shares_within_binomial_tolerance(counts, weights, draws, sigmas=4.5):
    total = sum(weights.values())
    for channel, weight in weights.items():
        p = weight / total
        tolerance = sigmas * math.sqrt(draws * p * (1 - p))
        assert abs(counts[channel] - draws * p) <= tolerance, (channel, counts[channel], draws * p, tolerance)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_split_first_choices_follow_the_weights(config, seed):
    table = RoutingTable(config, random=random.Random(seed))
    draws = 10_000
    firsts = Counter(table.decide("m", "USD", 500, "card", VISA_US).channels[0] for _ in range(draws))
    shares_within_binomial_tolerance(firsts, {"acquirer_a": 60, "acquirer_b": 30, "acquirer_c": 10}, draws)
    wallet_firsts = Counter(table.decide("m", "EUR", 500, "wallet", wallet_provider="googlepay").channels[0]
                            for _ in range(draws))
    shares_within_binomial_tolerance(wallet_firsts, {"acquirer_a": 1, "acquirer_b": 3, "acquirer_c": 3}, draws)


def test_split_fallbacks_are_the_rest_heaviest_first_ties_in_file_order(table):
    orders = {decision.channels for decision in
              (table.decide("m", "EUR", 1, "wallet", wallet_provider="applepay") for _ in range(2_000))}
    assert orders == {("acquirer_a", "acquirer_b", "acquirer_c"), ("acquirer_b", "acquirer_c", "acquirer_a"),
                      ("acquirer_c", "acquirer_b", "acquirer_a")}
    decision = table.decide("m", "EUR", 1, "wallet", wallet_provider="applepay")
    assert decision.rule == "wallets" and decision.min_success_rate_percent == 75


class ScriptedRandom(random.Random):
    """Gives the draws a test chooses, to pin the boundaries of each channel's interval."""

    def __init__(self, draws):
        super().__init__(0)
        self.draws = iter(draws)

    def random(self):
        return next(self.draws)


def test_split_draw_boundaries(config):
    draws = [0.0, 0.5999999, 0.6, 0.8999999, 0.9, 0.9999999]
    table = RoutingTable(config, random=ScriptedRandom(draws))
    firsts = [table.decide("m", "USD", 1, "card", VISA_US).channels for _ in draws]
    assert firsts == [("acquirer_a", "acquirer_b", "acquirer_c")] * 2 + [
        ("acquirer_b", "acquirer_a", "acquirer_c")] * 2 + [("acquirer_c", "acquirer_a", "acquirer_b")] * 2


def test_decide_raises_like_the_rule_table_for_amounts_that_are_not_int64(table):
    with pytest.raises(TypeError):
        table.decide("m", "USD", 1.5, "card", VISA_US)
    with pytest.raises(OverflowError):
        table.decide("m", "USD", 1 << 63, "card", VISA_US)


# ---- explanations --------------------------------------------------------------------------------


def test_explain_names_the_bin_entry_each_rule_and_the_decision(table):
    explanation = table.explain("m_acme", "EUR", 99999, "card", VISA_DE)
    assert explanation.bin_range.line == 10 and explanation.facts == CardFacts("visa", "DE", "debit")
    assert [(v.name, v.line, v.matched, v.criterion) for v in explanation.verdicts] == [
        ("acme-eur-high", 24, False, "min_amount_minor"), ("german-debit", 32, True, None)]
    text = explanation.render()
    assert "[[bins]] entry at line 10: 41111111-41111199" in text
    assert "no: amount 99999 is below min_amount_minor 100000" in text
    assert "decision: rule german-debit: try acquirer_b" in text
    assert "999.99 EUR" in text


def test_explain_a_split_shows_weights_as_percentages(table):
    text = table.explain("m", "EUR", 1, "wallet", wallet_provider="applepay").render()
    assert "split acquirer_a 1 (14.3%), acquirer_b 3 (42.9%), acquirer_c 3 (42.9%)" in text
    assert "below 75% behind the others" in text and "wallet: the scheme is the wallet provider" in text


def test_explain_without_a_match_and_with_a_guessed_scheme(table):
    explanation = table.explain("m", "JPY", 100, "card", AMEX_UNCOVERED)
    assert explanation.rule is None and explanation.matched_index == -1
    assert len(explanation.verdicts) == 5
    text = explanation.render()
    assert "no [[bins]] range: scheme guessed from the number" in text and "scheme amex" in text
    assert "no rule matches" in text
    assert "no: merchants [m_acme] does not include m" in text and "no: currencies [EUR, GBP] does not include JPY" in text
    assert "no: countries [DE] does not include (none)" in text


def test_bin_prefixes_split_between_ranges_are_not_guessed_as_covered(table):
    assert table.explain("m", "USD", 1, "card", "411111").bin_range is None  # 41111111-41111199 is inside
    assert table.explain("m", "USD", 1, "card", "41111112").bin_range.country == "DE"


def test_masking_keeps_at_most_the_bin_and_last_four():
    assert mask_card_number("4242424242424242") == "424242******4242"
    assert mask_card_number("42424242") == "424242**"
    assert mask_card_number("424242") == "424242"


MERCHANTS = st.sampled_from(["m_acme", "m_other"])
CURRENCIES = st.sampled_from(["EUR", "USD", "GBP", "JPY"])
AMOUNTS = st.one_of(st.sampled_from([99999, 100000, 200000, 200001]), st.integers(0, 10**12))
PREFIXES = st.sampled_from(["4111111", "41111112", "42", "5", "51", "55", "37", "6011", "9"])


@st.composite
def payments(draw):
    merchant, currency, amount = draw(MERCHANTS), draw(CURRENCIES), draw(AMOUNTS)
    if draw(st.booleans()):
        prefix = draw(PREFIXES)
        card = prefix + draw(st.text("0123456789", min_size=16 - len(prefix), max_size=16 - len(prefix)))
        return merchant, currency, amount, draw(st.sampled_from(["card", "wallet"])), card, None
    provider = draw(st.sampled_from(["applepay", "googlepay", "paypal"]))
    return merchant, currency, amount, draw(st.sampled_from(["wallet", "card"])), None, provider


@settings(max_examples=400, deadline=None)
@given(payment=payments())
def test_explain_agrees_with_decide_and_the_rule_table(config, payment):
    merchant, currency, amount, method, card, provider = payment
    table = RoutingTable(config, random=random.Random(0))
    explanation = table.explain(*payment)
    decision = table.decide(*payment)
    facts = explanation.facts
    assert facts == (table.card_facts(card) if card is not None else CardFacts(provider, None, None))
    rules = hotpath.routing_table.RuleTable([rule.criteria for rule in config.rules])
    index = rules.match(merchant, currency, amount, facts.scheme, facts.country, facts.card_type, method)
    assert explanation.matched_index == index
    assert (decision is None) == (index == -1) == (explanation.rule is None)
    if decision is not None:
        assert decision.rule == explanation.rule.name == config.rules[index].name
        assert set(decision.channels) == set(explanation.rule.channels)
    for verdict, rule in zip(explanation.verdicts, config.rules):
        assert verdict.matched == rule.criteria.accepts(merchant, currency, amount, facts.scheme, facts.country,
                                                        facts.card_type, method)
    if card is not None:
        text = explanation.render()
        assert card not in text and card not in repr(explanation)


@settings(max_examples=200, deadline=None)
@given(payment=payments())
def test_the_pure_twin_routes_exactly_as_the_chosen_backend(config, payment):
    chosen = RoutingTable(config, random=random.Random(5))
    pure = RoutingTable(config, random=random.Random(5), backend=hotpath.pure_module("routing_table"))
    assert chosen.decide(*payment) == pure.decide(*payment)

"""A routing file compiled for the hot path: per payment, the rule that decides and the channels to try.

RoutingTable builds the hot-path BinTable and RuleTable once, and precomputes every answer it can:
a priority rule's RouteDecision is built at compile time and returned as is, and a split rule keeps
one prebuilt decision per first choice, so `decide` is a BIN lookup, a rule match and, for a split,
one random draw; it allocates nothing. `explain` answers the same question slowly and in words, for
people; the tests hold it to the tables' answers.
"""

import random as random_module
from bisect import bisect_right
from dataclasses import dataclass
from types import ModuleType

from .. import hotpath
from ..payments.cards import card_scheme
from ..payments.money import InvalidMoney, Money
from .config import BinRange, Rule, RoutingConfig

#: RuleCriteria's fields in the order explain checks them; the set criteria name the payment fact they test.
_SET_CRITERIA = (("merchants", "merchant"), ("currencies", "currency"), ("schemes", "scheme"),
                 ("countries", "country"), ("card_types", "card_type"), ("methods", "method"))


@dataclass(frozen=True, slots=True)
class CardFacts:
    """What routing knows of a card: from the BIN table, else the scheme guessed from its digits."""

    scheme: str | None
    country: str | None
    card_type: str | None


@dataclass(frozen=True, slots=True)
class RouteDecision:
    """The channels to try, in order, and what to record with the payment (version and rule)."""

    version: str
    rule: str
    channels: tuple[str, ...]
    min_success_rate_percent: int | None


def guess_scheme(card_number: str) -> str:
    """The scheme from the leading digits, for numbers no [[bins]] range covers; never raises."""
    if not (card_number.isascii() and card_number.isdigit()):
        return "unknown"
    return card_scheme(card_number)


def _split_decisions(version: str, rule: Rule) -> tuple[list[float], tuple[RouteDecision, ...]]:
    """A split's cumulative probabilities, and per first choice the decision that tries it first and
    then the rest by weight, heaviest first (ties in file order)."""
    total = sum(rule.weights)
    thresholds, running = [], 0
    for weight in rule.weights:
        running += weight
        thresholds.append(running / total)
    thresholds[-1] = 1.0  # random() < 1.0, so the draw always lands on a channel
    by_weight = sorted(range(len(rule.channels)), key=lambda position: -rule.weights[position])
    decisions = tuple(
        RouteDecision(version, rule.name,
                      (rule.channels[first],) + tuple(rule.channels[p] for p in by_weight if p != first),
                      rule.min_success_rate_percent)
        for first in range(len(rule.channels)))
    return thresholds, decisions


class RoutingTable:
    """A RoutingConfig compiled: `decide` per payment on the hot path, `explain` for people.

    backend is the hot-path routing_table module to build with; the default is the one
    payswitch.hotpath chose (benchmarks pass each twin). random is the source of split draws,
    injected so tests can seed it.
    """

    __slots__ = ("config", "version", "_lookup", "_match", "_fixed", "_splits", "_random")

    def __init__(self, config: RoutingConfig, *, random: random_module.Random | None = None,
                 backend: ModuleType | None = None):
        backend = hotpath.routing_table if backend is None else backend
        self.config = config
        self.version = config.version
        self._lookup = backend.BinTable([(entry.low, entry.high, entry) for entry in config.bins]).lookup
        self._match = backend.RuleTable([rule.criteria for rule in config.rules]).match
        self._random = (random_module.Random() if random is None else random).random
        # Per rule index: a priority rule's decision, or None and the split's draw in _splits.
        self._fixed: list[RouteDecision | None] = []
        self._splits: list[tuple[list[float], tuple[RouteDecision, ...]] | None] = []
        for rule in config.rules:
            if rule.weights is None:
                self._fixed.append(RouteDecision(config.version, rule.name, rule.channels,
                                                 rule.min_success_rate_percent))
                self._splits.append(None)
            else:
                self._fixed.append(None)
                self._splits.append(_split_decisions(config.version, rule))

    def bin_range(self, card_number: str) -> BinRange | None:
        """The [[bins]] entry covering the number (or every number with this prefix), else None."""
        return self._lookup(card_number)

    def card_facts(self, card_number: str) -> CardFacts:
        entry = self._lookup(card_number)
        if entry is None:
            return CardFacts(guess_scheme(card_number), None, None)
        return CardFacts(entry.scheme, entry.country, entry.card_type)

    def decide(self, merchant: str, currency: str, amount_minor: int, method: str,
               card_number: str | None = None, wallet_provider: str | None = None) -> RouteDecision | None:
        """The decision of the first rule the payment matches, or None when none does.

        A card is described by its BIN range (the scheme guessed from its digits when no range
        covers it); a wallet payment's scheme is its provider, with no country or card type.
        """
        if card_number is not None:
            entry = self._lookup(card_number)
            if entry is None:
                scheme, country, card_type = guess_scheme(card_number), None, None
            else:
                scheme, country, card_type = entry.scheme, entry.country, entry.card_type
        else:
            scheme, country, card_type = wallet_provider, None, None
        index = self._match(merchant, currency, amount_minor, scheme, country, card_type, method)
        if index < 0:
            return None
        decision = self._fixed[index]
        if decision is not None:
            return decision
        thresholds, decisions = self._splits[index]
        return decisions[bisect_right(thresholds, self._random())]

    def explain(self, merchant: str, currency: str, amount_minor: int, method: str,
                card_number: str | None = None, wallet_provider: str | None = None) -> "Explanation":
        """How decide reasons about this payment, rule by rule; the card number is kept only masked."""
        bin_range = None
        if card_number is not None:
            bin_range = self._lookup(card_number)
            facts = self.card_facts(card_number)
            if bin_range is not None:
                at = f" at line {bin_range.line}" if bin_range.line is not None else ""
                origin = f"[[bins]] entry{at}: {bin_range.low}-{bin_range.high}"
            elif len(card_number) < 11:
                origin = "no [[bins]] range covers every number starting with these digits: scheme guessed from them"
            else:
                origin = "no [[bins]] range: scheme guessed from the number"
        elif wallet_provider is not None:
            facts, origin = CardFacts(wallet_provider, None, None), "wallet: the scheme is the wallet provider"
        else:
            facts, origin = CardFacts(None, None, None), "neither card nor wallet given"
        payment = {"merchant": merchant, "currency": currency, "scheme": facts.scheme, "country": facts.country,
                   "card_type": facts.card_type, "method": method}
        verdicts, matched = [], None
        for rule in self.config.rules:
            verdict = _verdict(rule, payment, amount_minor)
            verdicts.append(verdict)
            if verdict.matched:
                matched = rule
                break
        return Explanation(self.version, self.config.source, merchant, currency, amount_minor, method,
                           None if card_number is None else mask_card_number(card_number), wallet_provider,
                           facts, bin_range, origin, tuple(verdicts), matched)


def mask_card_number(number: str) -> str:
    """At most the BIN and the last four digits; a number too short to be a card shows its BIN only."""
    if len(number) <= 6:
        return number
    if len(number) < 12:
        return number[:6] + "*" * (len(number) - 6)
    return number[:6] + "*" * (len(number) - 10) + number[-4:]


@dataclass(frozen=True, slots=True)
class RuleVerdict:
    """One rule's verdict on a payment: matched, or the first of its criteria the payment failed."""

    name: str
    line: int | None
    matched: bool
    criterion: str | None = None  # a RuleCriteria field name
    value: object = None          # the payment's value for it
    wanted: object = None         # the rule's requirement: the accepted values sorted, or the amount bound

    def render(self) -> str:
        if self.matched:
            return "matched"
        value = "(none)" if self.value is None else self.value
        if self.criterion == "min_amount_minor":
            return f"no: amount {value} is below min_amount_minor {self.wanted}"
        if self.criterion == "max_amount_minor":
            return f"no: amount {value} is above max_amount_minor {self.wanted}"
        return f"no: {self.criterion} [{', '.join(self.wanted)}] does not include {value}"


def _verdict(rule: Rule, payment: dict, amount_minor: int) -> RuleVerdict:
    """RuleCriteria.accepts, criterion by criterion, in field order, saying which one failed."""
    criteria = rule.criteria
    for field, fact in _SET_CRITERIA:
        accepted = getattr(criteria, field)
        if accepted is not None and payment[fact] not in accepted:
            return RuleVerdict(rule.name, rule.line, False, field, payment[fact], tuple(sorted(accepted)))
    low, high = criteria.min_amount_minor, criteria.max_amount_minor
    if low is not None and amount_minor < low:
        return RuleVerdict(rule.name, rule.line, False, "min_amount_minor", amount_minor, low)
    if high is not None and amount_minor > high:
        return RuleVerdict(rule.name, rule.line, False, "max_amount_minor", amount_minor, high)
    return RuleVerdict(rule.name, rule.line, True)


def _amount(amount_minor: int, currency: str) -> str:
    try:
        return f"{amount_minor} minor units ({Money(amount_minor, currency)})"
    except InvalidMoney:
        return f"{amount_minor} minor units of {currency!r}"


@dataclass(frozen=True, slots=True)
class Explanation:
    """Why a payment is routed as it is: the card facts and their origin, each rule tried, the decision."""

    version: str
    source: str
    merchant: str
    currency: str
    amount_minor: int
    method: str
    card: str | None  # masked by mask_card_number
    wallet_provider: str | None
    facts: CardFacts
    bin_range: BinRange | None
    facts_origin: str
    verdicts: tuple[RuleVerdict, ...]
    rule: Rule | None  # the rule that matched, or None

    @property
    def matched_index(self) -> int:
        """The matched rule's index, as RuleTable.match gives it; -1 when none matched."""
        return len(self.verdicts) - 1 if self.rule is not None else -1

    def render(self) -> str:
        unknown = "(none)"
        lines = [f"routing {self.source}, version {self.version}",
                 f"payment: merchant {self.merchant}, {_amount(self.amount_minor, self.currency)}, "
                 f"method {self.method}"
                 + (f", card {self.card}" if self.card is not None else "")
                 + (f", wallet {self.wallet_provider}" if self.wallet_provider is not None else ""),
                 f"facts: scheme {self.facts.scheme or unknown}, country {self.facts.country or unknown}, "
                 f"card type {self.facts.card_type or unknown} ({self.facts_origin})",
                 "rules, in order:"]
        for position, verdict in enumerate(self.verdicts, 1):
            at = f" (line {verdict.line})" if verdict.line is not None else ""
            lines.append(f"  {position}. {verdict.name}{at}: {verdict.render()}")
        if not self.verdicts:
            lines.append("  (the file has no rules)")
        lines.append(self._decision())
        return "\n".join(lines)

    def _decision(self) -> str:
        rule = self.rule
        if rule is None:
            return "decision: no rule matches; the switch falls back to the merchant's default channel, if any"
        if rule.weights is None:
            text = f"decision: rule {rule.name}: try {', then '.join(rule.channels)}"
        else:
            total = sum(rule.weights)
            shares = ", ".join(f"{channel} {weight} ({100 * weight / total:.1f}%)"
                               for channel, weight in zip(rule.channels, rule.weights))
            text = (f"decision: rule {rule.name}: split {shares}; the first channel is drawn by weight, "
                    "the others follow as fallbacks, heaviest first")
        if rule.min_success_rate_percent is not None:
            text += (f"; the switch moves a channel whose recent success rate is below "
                     f"{rule.min_success_rate_percent}% behind the others")
        return text

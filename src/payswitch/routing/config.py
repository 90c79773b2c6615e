"""The routing file: TOML read once into frozen dataclasses, every problem reported with its line.

    version = "2026-11-24.1"          # recorded with every payment routed by this file

    [[bins]]                          # 6-11 digit prefix ranges; the most specific covering range wins
    low = "400000"
    high = "499999"
    scheme = "visa"
    country = "US"                    # optional
    card_type = "credit"              # optional: credit | debit | prepaid

    [[rules]]                         # ordered: the first that matches decides
    name = "eu-high-value"
    currencies = ["EUR"]              # every criterion is optional: absent means any value
    min_amount_minor = 100000
    split = { acquirer_a = 70, acquirer_b = 30 }   # or channels = ["a", "b"], a priority list

docs/routing.md describes every key. Every mistake in the file is reported at once, each on its
line (payswitch.toml_lines finds the lines and collects the problems). The hot-path tables are
built here too, so what they refuse (overlapping BIN ranges, contradictory amount bounds) is
reported like any other mistake instead of failing later, at the switch's swap.
"""

import re
from collections.abc import Callable, Collection
from dataclasses import dataclass
from pathlib import Path

from ..hotpath import routing_table
from ..toml_lines import (MAX_PROBLEMS, ConfigError, Problem, SourceLines, TableChecker, array_of_tables, decode,
                          finish, read_text)
from ..vocabulary import (COUNTRY_WANTED, CURRENCY_WANTED, NAME_WANTED, VERSION_WANTED, is_bin, is_country, is_currency,
                          is_name, is_version)

__all__ = ["CARD_TYPES", "MAX_OVERLAP_REPORTS", "MAX_PROBLEMS", "METHODS", "RESERVED_RULE_NAME", "BinRange", "Problem",
           "RoutingConfig", "RoutingConfigError", "Rule", "load_routing", "parse_routing"]

#: Overlapping BIN ranges are found one per table build; a few are enough to show the pattern.
MAX_OVERLAP_REPORTS = 20
CARD_TYPES = ("credit", "debit", "prepaid")
METHODS = ("card", "wallet")
#: The rule name the switch records when a merchant's default channel was used; a rule may not take it.
RESERVED_RULE_NAME = "merchant-default"

_SCHEME = re.compile(r"[a-z0-9_]{1,32}\Z")

_BIN_KEYS = ("low", "high", "scheme", "country", "card_type")
_RULE_KEYS = ("name", "merchants", "currencies", "schemes", "countries", "card_types", "methods",
              "min_amount_minor", "max_amount_minor", "channels", "split", "min_success_rate_percent")


class RoutingConfigError(ConfigError):
    """The routing file is refused; `problems` lists every mistake found, str() one per line."""


@dataclass(frozen=True, slots=True)
class BinRange:
    """One [[bins]] entry: card numbers whose first len(low) digits lie in [low, high]."""

    low: str
    high: str
    scheme: str
    country: str | None
    card_type: str | None
    line: int | None


@dataclass(frozen=True, slots=True)
class Rule:
    """One [[rules]] entry. A priority list has weights None; a split has the weights of `channels`."""

    name: str
    criteria: routing_table.RuleCriteria
    channels: tuple[str, ...]
    weights: tuple[int, ...] | None
    min_success_rate_percent: int | None
    line: int | None


@dataclass(frozen=True, slots=True)
class RoutingConfig:
    version: str
    bins: tuple[BinRange, ...]
    rules: tuple[Rule, ...]
    source: str


_CRITERIA: tuple[tuple[str, Callable[[str], bool], str], ...] = (
    ("merchants", is_name, f"a merchant id ({NAME_WANTED})"),
    ("currencies", is_currency, CURRENCY_WANTED),
    ("schemes", _SCHEME.match, "a scheme or wallet provider (1 to 32 of a-z 0-9 _)"),
    ("countries", is_country, COUNTRY_WANTED),
    ("card_types", CARD_TYPES.__contains__, "one of " + ", ".join(CARD_TYPES)),
    ("methods", METHODS.__contains__, "one of " + ", ".join(METHODS)),
)


def _read_bin(check: TableChecker, table: dict) -> BinRange | None:
    check.unknown_keys(table, _BIN_KEYS)
    digits = "6 to 11 digits"
    low = check.string(table, "low", is_bin, digits, required=True)
    high = check.string(table, "high", is_bin, digits, required=True)
    scheme = check.string(table, "scheme", _SCHEME.match, "1 to 32 of a-z 0-9 _", required=True)
    country = check.string(table, "country", is_country, "two uppercase letters (ISO 3166-1 alpha-2)")
    card_type = check.string(table, "card_type", CARD_TYPES.__contains__, "one of " + ", ".join(CARD_TYPES))
    if low is not None and high is not None:
        if len(low) != len(high):
            check.fail("high", f"must have as many digits as low ({low!r} has {len(low)}, {high!r} {len(high)})")
        elif low > high:
            check.fail("high", f"{high!r} is below low {low!r}")
    if not check.ok:
        return None
    return BinRange(low, high, scheme, country, card_type, check.line)


def _read_channels(check: TableChecker, table: dict,
                   known: Collection[str] | None) -> tuple[tuple[str, ...], tuple[int, ...] | None] | None:
    """A rule's channels: a priority list, or a split's channels in file order with their weights."""
    if ("channels" in table) == ("split" in table):
        check.fail("channels", "a rule needs exactly one of channels (a priority list) or split (weights)")
        return None
    if "channels" in table:
        names = check.strings(table, "channels", is_name, "a channel name")
        weights = None
        if names is not None and len(set(names)) != len(names):
            duplicate = next(name for name in names if names.count(name) > 1)
            check.fail("channels", f"names {duplicate!r} twice")
            return None
        key = "channels"
    else:
        split = table["split"]
        if not isinstance(split, dict) or not split:
            check.fail("split", "must be a non-empty table of channel = weight")
            return None
        names, weights = tuple(split), tuple(split.values())
        for name, weight in split.items():
            if not is_name(name):
                check.fail("split", f"{name[:80]!r} is not a channel name")
            elif isinstance(weight, bool) or not isinstance(weight, int) or weight <= 0:
                check.fail("split", f"the weight of {name} must be a positive integer, not {weight!r}")
        key = "split"
    if names is None:
        return None
    if known is not None:
        unknown = [name for name in names if name not in known]
        if unknown:
            check.fail(key, f"names no configured channel: {', '.join(unknown)}")
    return names, weights


def _read_rule(check: TableChecker, table: dict, known: Collection[str] | None,
               known_merchants: Collection[str] | None) -> Rule | None:
    check.unknown_keys(table, _RULE_KEYS)
    name = check.string(table, "name", is_name, NAME_WANTED, required=True)
    if name == RESERVED_RULE_NAME:
        check.fail("name", f"{name!r} is reserved: the switch records it for a merchant's default channel")
    criteria = {key: check.strings(table, key, valid, wanted) for key, valid, wanted in _CRITERIA}
    if known_merchants is not None and criteria["merchants"] is not None:
        # A misspelt merchant would leave the rule matching nobody, silently.
        for merchant in criteria["merchants"]:
            if merchant not in known_merchants:
                check.fail_item("merchants", merchant, f"names no configured merchant ({merchant!r})")
    for key in ("min_amount_minor", "max_amount_minor"):
        criteria[key] = check.integer(table, key, 0, (1 << 63) - 1, unit=" number of minor units")
    channels = _read_channels(check, table, known)
    min_success = check.integer(table, "min_success_rate_percent", 0, 100)
    if not check.ok:
        return None
    try:
        built = routing_table.RuleCriteria(**criteria)
    except ValueError as error:
        # RuleCriteria's messages start with the field they are about.
        message = str(error)
        key = re.match(r"\w+", message).group()
        check.fail(key if key in table else "name", message.removeprefix(f"{key}: "))
        return None
    return Rule(name, built, channels[0], channels[1], min_success, check.line)


def _check_bin_table(entries: list[tuple[int, BinRange]], problems: list[Problem]) -> None:
    """Build the hot-path BinTable to find what it refuses, reporting each refused range on its line.

    The table stops at its first refusal, so the refused range is left out and the build repeated.
    """
    entries = list(entries)
    for _attempt in range(MAX_OVERLAP_REPORTS):
        try:
            routing_table.BinTable([(entry.low, entry.high, entry) for _index, entry in entries])
            return
        except ValueError as error:
            message = str(error)
            named = sorted({int(number) for number in re.findall(r"ranges\[(\d+)\]", message)},
                           key=lambda position: entries[position][0])
            if not named:
                problems.append(Problem(None, "bins", message))
                return
            later_index, later = entries[named[-1]]
            if len(named) > 1:
                earlier_index, earlier = entries[named[0]]
                at = f"line {earlier.line}, " if earlier.line is not None else ""
                text = (f"{later.low}-{later.high} overlaps bins[{earlier_index}] ({at}{earlier.low}-{earlier.high}) "
                        "with the same length and width, so neither is more specific")
            else:
                text = re.sub(r"^ranges\[\d+\]:\s*", "", message)
            problems.append(Problem(later.line, f"bins[{later_index}]", text))
            del entries[named[-1]]


def parse_routing(text: str, source: str = "<routing>", known_channels: Collection[str] | None = None,
                  known_merchants: Collection[str] | None = None) -> RoutingConfig:
    """Validate a routing file's text; RoutingConfigError lists every problem, each with its line. With
    `known_channels` and `known_merchants` (the switch configuration's), a rule naming another is one."""
    lines = SourceLines(text)
    data = decode(text, source, lines, RoutingConfigError)
    if known_channels is not None:
        known_channels = frozenset(known_channels)
    if known_merchants is not None:
        known_merchants = frozenset(known_merchants)

    problems: list[Problem] = []
    top = TableChecker(lines, problems, -1, "")
    top.unknown_keys(data, ("version", "bins", "rules"))
    version = top.string(data, "version", is_version, VERSION_WANTED, required=True)

    bins: list[tuple[int, BinRange]] = []
    for index, (table, header) in enumerate(array_of_tables(data, "bins", lines, problems)):
        entry = _read_bin(TableChecker(lines, problems, header, f"bins[{index}]"), table)
        if entry is not None:
            bins.append((index, entry))
    _check_bin_table(bins, problems)

    rules: list[Rule] = []
    lines_by_name: dict[str, int | None] = {}
    for index, (table, header) in enumerate(array_of_tables(data, "rules", lines, problems)):
        check = TableChecker(lines, problems, header, f"rules[{index}]")
        rule = _read_rule(check, table, known_channels, known_merchants)
        name = table.get("name")
        if isinstance(name, str) and name in lines_by_name:
            first = lines_by_name[name]
            check.fail("name", f"{name!r} is already the name of an earlier rule"
                       + (f" (line {first})" if first is not None else ""))
            rule = None
        elif isinstance(name, str):
            lines_by_name[name] = check.line
        if rule is not None:
            rules.append(rule)
    try:
        routing_table.RuleTable([rule.criteria for rule in rules])
    except ValueError as error:  # RuleCriteria already refused what RuleTable would; kept for safety
        problems.append(Problem(None, "rules", str(error)))

    finish(problems, source, RoutingConfigError)
    return RoutingConfig(version, tuple(entry for _index, entry in bins), tuple(rules), source)


def load_routing(path: str | Path, known_channels: Collection[str] | None = None,
                 known_merchants: Collection[str] | None = None) -> RoutingConfig:
    """Read and validate a routing file; an unreadable file is a RoutingConfigError like a wrong one."""
    return parse_routing(read_text(path, RoutingConfigError), str(path), known_channels, known_merchants)

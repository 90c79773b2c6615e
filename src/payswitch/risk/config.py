"""The risk file: TOML read once into frozen dataclasses, every problem reported with its line.

    version = "risk-2026-11-24"       # recorded with every risk decision

    [[limits]]                        # per merchant ("*": any merchant without its own) and currency
    merchant = "m_acme"
    currency = "USD"
    max_amount_minor = 500000         # per payment, inclusive
    max_daily_minor = 5000000         # per UTC day, sum of the payments that passed risk

    [[velocity]]
    name = "card-burst"
    per = "card"                      # or "merchant"
    window_seconds = 600
    max_count = 5

    [blocklist]
    bins = ["400000"]
    cards = ["<64 hex digits: the card key>"]
    countries = ["KP"]

    [duplicates]
    window_seconds = 300

docs/risk.md describes every key. Like the routing file, every mistake is reported at once, each on
its line (payswitch.toml_lines), and a file with any mistake is refused as a whole.
"""

import re
from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path

from ..hotpath.risk_rules import (ANY_MERCHANT, DEFAULT_MAX_TRACKED_CARDS, DEFAULT_MAX_TRACKED_MERCHANTS, MAX_COUNT,
                                  MAX_TRACKED_KEYS, MAX_WINDOW_SECONDS)
from ..toml_lines import (ConfigError, Problem, SourceLines, TableChecker, array_of_tables, decode, finish, kind,
                          read_text)
from ..vocabulary import (COUNTRY_WANTED, CURRENCY_WANTED, NAME_WANTED, VERSION_WANTED, is_bin, is_country, is_currency,
                          is_name, is_version)

__all__ = ["CARD_KEY_BYTES", "RESERVED_RULE_NAMES", "Blocklist", "Limit", "RiskConfig", "RiskConfigError",
           "VelocityRule", "load_risk", "parse_risk"]

#: The card keys the switch computes are HMAC-SHA256 digests: a blocked key of another length never matches.
CARD_KEY_BYTES = 32
#: What a decline names for the rules that have no name of their own in the file; no rule may take them.
RESERVED_RULE_NAMES = ("blocklist.bins", "blocklist.cards", "blocklist.countries", "duplicates")
_MONEY_MAX = (1 << 63) - 1

_CARD_KEY = re.compile(rf"[0-9a-fA-F]{{{2 * CARD_KEY_BYTES}}}\Z")

_TOP_KEYS = ("version", "limits", "velocity", "blocklist", "duplicates", "memory")
_LIMIT_KEYS = ("name", "merchant", "currency", "max_amount_minor", "max_daily_minor")
_VELOCITY_KEYS = ("name", "per", "window_seconds", "max_count", "max_amount_minor", "currency")
_BLOCKLIST_KEYS = ("bins", "cards", "countries")
_MINOR_UNITS = " number of minor units"


class RiskConfigError(ConfigError):
    """The risk file is refused; `problems` lists every mistake found, str() one per line."""


@dataclass(frozen=True, slots=True)
class Limit:
    """One [[limits]] entry; `name` is what a decline names: its `name` key, else "limits[i]"."""

    name: str
    merchant: str  # ANY_MERCHANT ("*"): every merchant without its own entry for this currency
    currency: str
    max_amount_minor: int | None
    max_daily_minor: int | None
    line: int | None


@dataclass(frozen=True, slots=True)
class VelocityRule:
    """One [[velocity]] entry: at most max_count payments (and max_amount_minor in sum) per key in any window."""

    name: str
    per: str  # "card" or "merchant"
    window_seconds: int
    max_count: int
    max_amount_minor: int | None
    currency: str | None  # only payments in this currency count and are checked; None: every payment
    line: int | None


@dataclass(frozen=True, slots=True)
class Blocklist:
    bins: tuple[str, ...] = field(default=(), repr=False)
    cards: tuple[bytes, ...] = field(default=(), repr=False)
    countries: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class RiskConfig:
    version: str
    limits: tuple[Limit, ...]
    velocity: tuple[VelocityRule, ...]
    blocklist: Blocklist
    duplicate_window_seconds: int | None  # None: duplicates are not checked
    max_tracked_cards: int
    max_tracked_merchants: int
    source: str


def _rule_name(check: TableChecker, table: dict, required: bool) -> str | None:
    name = check.string(table, "name", is_name, NAME_WANTED, required=required)
    if name in RESERVED_RULE_NAMES:
        check.fail("name", f"{name!r} is reserved: declines by the blocklist and duplicates carry it")
        return None
    return name


def _read_limit(check: TableChecker, table: dict, index: int, known_merchants: frozenset[str] | None) -> Limit | None:
    check.unknown_keys(table, _LIMIT_KEYS)
    name = _rule_name(check, table, required=False)
    merchant = check.string(table, "merchant", lambda text: text == ANY_MERCHANT or is_name(text),
                            f'a merchant id ({NAME_WANTED}) or "*"', required=True)
    if known_merchants is not None and merchant not in (None, ANY_MERCHANT) and merchant not in known_merchants:
        # A misspelt merchant would leave the limit bounding nobody, silently.
        check.fail("merchant", f"names no configured merchant ({merchant!r})")
    currency = check.string(table, "currency", is_currency, CURRENCY_WANTED, required=True)
    max_amount = check.integer(table, "max_amount_minor", 1, _MONEY_MAX, unit=_MINOR_UNITS)
    max_daily = check.integer(table, "max_daily_minor", 1, _MONEY_MAX, unit=_MINOR_UNITS)
    if "max_amount_minor" not in table and "max_daily_minor" not in table:
        check.fail("max_amount_minor", "a limit needs max_amount_minor, max_daily_minor or both")
    if not check.ok:
        return None
    return Limit(name or f"limits[{index}]", merchant, currency, max_amount, max_daily, check.line)


def _read_velocity(check: TableChecker, table: dict) -> VelocityRule | None:
    check.unknown_keys(table, _VELOCITY_KEYS)
    name = _rule_name(check, table, required=True)
    per = check.string(table, "per", ("card", "merchant").__contains__, '"card" or "merchant"', required=True)
    window = check.integer(table, "window_seconds", 1, MAX_WINDOW_SECONDS, required=True)
    max_count = check.integer(table, "max_count", 1, MAX_COUNT, required=True)
    max_amount = check.integer(table, "max_amount_minor", 1, _MONEY_MAX, unit=_MINOR_UNITS)
    currency = check.string(table, "currency", is_currency, CURRENCY_WANTED)
    if "max_amount_minor" in table and "currency" not in table:
        check.fail("max_amount_minor", "a sum of amounts needs a currency: add currency = \"...\"")
    if not check.ok:
        return None
    return VelocityRule(name, per, window, max_count, max_amount, currency, check.line)


def _string_items(check: TableChecker, table: dict, key: str, valid, wanted: str) -> list[str]:
    """The valid strings of an array (which may be long and span many lines); each bad one on its line."""
    value = table.get(key, [])
    if not isinstance(value, list):
        check.fail(key, f"must be an array of strings, not {kind(value)}")
        return []
    items = []
    for item in value:
        if not isinstance(item, str):
            check.fail(key, f"must hold only strings, not {kind(item)} ({item!r:.80})")
        elif not valid(item):
            check.fail_item(key, item, f"{item[:80]!r} is not {wanted}")
        else:
            items.append(item)
    return items


def _read_blocklist(check: TableChecker, table: dict) -> Blocklist:
    check.unknown_keys(table, _BLOCKLIST_KEYS)
    bins = _string_items(check, table, "bins", is_bin, "a BIN prefix of 6 to 11 digits")
    cards = _string_items(check, table, "cards", _CARD_KEY.match,
                          f"a card key: {2 * CARD_KEY_BYTES} hex digits (HMAC-SHA256 of a card number or wallet token, "
                          "never the number itself)")
    countries = _string_items(check, table, "countries", is_country, COUNTRY_WANTED)
    return Blocklist(tuple(dict.fromkeys(bins)), tuple(dict.fromkeys(bytes.fromhex(card) for card in cards)),
                     tuple(dict.fromkeys(countries)))


def _table(data: dict, key: str, lines: SourceLines, problems: list[Problem]) -> tuple[dict, int | None] | None:
    """A [key] table and its header line; None when absent or not a table."""
    if key not in data:
        return None
    value = data[key]
    if not isinstance(value, dict):
        problems.append(Problem(lines.top_level_line(key), key, f"must be a table ([{key}]), not {kind(value)}"))
        return None
    return value, lines.table_header(key)


def parse_risk(text: str, source: str = "<risk>", known_merchants: Collection[str] | None = None) -> RiskConfig:
    """Validate a risk file's text; RiskConfigError lists every problem, each with its line. With
    `known_merchants` (the switch configuration's), a limit naming another merchant is one."""
    known_merchants = None if known_merchants is None else frozenset(known_merchants)
    lines = SourceLines(text)
    data = decode(text, source, lines, RiskConfigError)
    problems: list[Problem] = []
    top = TableChecker(lines, problems, -1, "")
    top.unknown_keys(data, _TOP_KEYS)
    version = top.string(data, "version", is_version, VERSION_WANTED, required=True)

    names: dict[str, int | None] = {}  # rule name -> its line, across limits and velocity

    def claim(check: TableChecker, name: str) -> bool:
        if name in names:
            first = names[name]
            check.fail("name", f"{name!r} is already the name of an earlier rule"
                       + (f" (line {first})" if first is not None else ""))
            return False
        names[name] = check.line
        return True

    limits: list[Limit] = []
    bounded: dict[tuple[str, str], Limit] = {}
    for index, (table, header) in enumerate(array_of_tables(data, "limits", lines, problems)):
        check = TableChecker(lines, problems, header, f"limits[{index}]")
        limit = _read_limit(check, table, index, known_merchants)
        if limit is None or not claim(check, limit.name):
            continue
        earlier = bounded.get((limit.merchant, limit.currency))
        if earlier is not None:
            at = f" (line {earlier.line})" if earlier.line is not None else ""
            check.fail("currency", f"{earlier.name}{at} already bounds {limit.merchant} in {limit.currency}")
            continue
        bounded[(limit.merchant, limit.currency)] = limit
        limits.append(limit)

    velocity: list[VelocityRule] = []
    for index, (table, header) in enumerate(array_of_tables(data, "velocity", lines, problems)):
        check = TableChecker(lines, problems, header, f"velocity[{index}]")
        rule = _read_velocity(check, table)
        if rule is not None and claim(check, rule.name):
            velocity.append(rule)

    blocklist = Blocklist()
    found = _table(data, "blocklist", lines, problems)
    if found is not None:
        blocklist = _read_blocklist(TableChecker(lines, problems, found[1], "blocklist"), found[0])

    duplicate_window = None
    found = _table(data, "duplicates", lines, problems)
    if found is not None:
        check = TableChecker(lines, problems, found[1], "duplicates")
        check.unknown_keys(found[0], ("window_seconds",))
        duplicate_window = check.integer(found[0], "window_seconds", 1, MAX_WINDOW_SECONDS, required=True)

    max_cards, max_merchants = DEFAULT_MAX_TRACKED_CARDS, DEFAULT_MAX_TRACKED_MERCHANTS
    found = _table(data, "memory", lines, problems)
    if found is not None:
        check = TableChecker(lines, problems, found[1], "memory")
        check.unknown_keys(found[0], ("max_tracked_cards", "max_tracked_merchants"))
        max_cards = check.integer(found[0], "max_tracked_cards", 1, MAX_TRACKED_KEYS) or max_cards
        max_merchants = check.integer(found[0], "max_tracked_merchants", 1, MAX_TRACKED_KEYS) or max_merchants

    finish(problems, source, RiskConfigError)
    return RiskConfig(version, tuple(limits), tuple(velocity), blocklist, duplicate_window, max_cards, max_merchants,
                      source)


def load_risk(path: str | Path, known_merchants: Collection[str] | None = None) -> RiskConfig:
    """Read and validate a risk file; an unreadable file is a RiskConfigError like a wrong one."""
    return parse_risk(read_text(path, RiskConfigError), str(path), known_merchants)

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

docs/routing.md describes every key. An operator fixing a file wants all of its mistakes at once,
each with a line to jump to, so validation collects problems instead of stopping at the first, and
finds lines by scanning the text (tomllib gives values, not positions). The hot-path tables are
built here too, so what they refuse (overlapping BIN ranges, contradictory amount bounds) is
reported like any other mistake instead of failing later, at the switch's swap.
"""

import re
import tomllib
from bisect import bisect_right
from collections.abc import Callable, Collection
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..hotpath import routing_table
from ..payments.money import CURRENCY_EXPONENTS

#: More than this many problems are cut to a count: past it, the file is not nearly right.
MAX_PROBLEMS = 100
#: Overlapping BIN ranges are found one per table build; a few are enough to show the pattern.
MAX_OVERLAP_REPORTS = 20
CARD_TYPES = ("credit", "debit", "prepaid")
METHODS = ("card", "wallet")
#: The rule name the switch records when a merchant's default channel was used; a rule may not take it.
RESERVED_RULE_NAME = "merchant-default"

_VERSION = re.compile(r"[A-Za-z0-9_\-.:]{1,64}\Z")
_IDENTIFIER = re.compile(r"[A-Za-z0-9_.\-]{1,64}\Z")
_SCHEME = re.compile(r"[a-z0-9_]{1,32}\Z")
_COUNTRY = re.compile(r"[A-Z]{2}\Z")
_DIGITS = re.compile(r"[0-9]{6,11}\Z")
_HEADER = re.compile(r"\s*\[(\[)?\s*([A-Za-z0-9_\-.]+)\s*\]\]?\s*(?:#.*)?\Z")
_TOML_POSITION = re.compile(r"\s*\(at (?:line (\d+), column (\d+)|end of document)\)\s*\Z")

_BIN_KEYS = ("low", "high", "scheme", "country", "card_type")
_RULE_KEYS = ("name", "merchants", "currencies", "schemes", "countries", "card_types", "methods",
              "min_amount_minor", "max_amount_minor", "channels", "split", "min_success_rate_percent")


@dataclass(frozen=True, slots=True)
class Problem:
    """One mistake in a routing file: its line (None when it cannot be told), its path, what is wrong."""

    line: int | None
    path: str
    message: str

    def format(self, source: str) -> str:
        where = source if self.line is None else f"{source}:{self.line}"
        return f"{where}: {self.path}: {self.message}" if self.path else f"{where}: {self.message}"


class RoutingConfigError(ValueError):
    """The routing file is refused; `problems` lists every mistake found, str() one per line."""

    def __init__(self, source: str, problems: list[Problem]):
        self.source = source
        self.problems = problems
        super().__init__("\n".join(problem.format(source) for problem in problems))


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


class _SourceLines:
    """Finds the line of a table or key by scanning the text, for the usual one-key-per-line layout.

    Where the layout is unusual (arrays of inline tables, say), lines are None rather than a guess.
    """

    def __init__(self, text: str):
        self._lines = text.splitlines()
        self._headers: list[tuple[int, str, bool]] = []  # (0-based index, table name, is an array table)
        for index, line in enumerate(self._lines):
            header = _HEADER.match(line)
            if header:
                self._headers.append((index, header.group(2), header.group(1) is not None))
        self._header_indexes = [index for index, _name, _array in self._headers]

    @property
    def last(self) -> int:
        return max(len(self._lines), 1)

    def array_headers(self, name: str, count: int) -> list[int | None]:
        """The 0-based header line of each [[name]] entry, or Nones when they do not add up to count."""
        found = [index for index, header, array in self._headers if header == name and array]
        return found if len(found) == count else [None] * count

    def key_line(self, header: int | None, key: str) -> int | None:
        """The 1-based line where `key =` starts in the table under header (-1: the top level),
        else the header's own line."""
        if header is None:
            return None
        position = bisect_right(self._header_indexes, header)
        end = self._header_indexes[position] if position < len(self._header_indexes) else len(self._lines)
        pattern = re.compile(rf"""\s*(?:{re.escape(key)}|"{re.escape(key)}"|'{re.escape(key)}')\s*[.=]""")
        for index in range(header + 1, end):
            if pattern.match(self._lines[index]):
                return index + 1
        return header + 1 if header >= 0 else None


class _Checker:
    """Reads typed values out of one parsed table, adding a Problem for each mistake."""

    def __init__(self, lines: _SourceLines, problems: list[Problem], header: int | None, path: str):
        self.lines, self.problems, self.header, self.path = lines, problems, header, path
        self.start = len(problems)

    @property
    def ok(self) -> bool:
        """No problem was found in this table."""
        return len(self.problems) == self.start

    @property
    def line(self) -> int | None:
        return None if self.header is None or self.header < 0 else self.header + 1

    def fail(self, key: str, message: str) -> None:
        path = f"{self.path}.{key}" if self.path else key
        self.problems.append(Problem(self.lines.key_line(self.header, key), path, message))

    def unknown_keys(self, table: dict, allowed: Collection[str]) -> None:
        for key in table:
            if key not in allowed:
                self.fail(key, "is not a known setting")

    def string(self, table: dict, key: str, check: Callable[[str], bool], wanted: str,
               required: bool = False) -> str | None:
        if key not in table:
            if required:
                self.fail(key, "is required")
            return None
        value = table[key]
        if not isinstance(value, str):
            self.fail(key, f"must be a string, not {_kind(value)}")
        elif not check(value):
            self.fail(key, f"must be {wanted}, got {value[:80]!r}")
        else:
            return value
        return None

    def strings(self, table: dict, key: str, check: Callable[[str], bool], wanted: str) -> tuple[str, ...] | None:
        """A list criterion: absent is None (any value); present must be a non-empty list of valid strings."""
        if key not in table:
            return None
        value = table[key]
        if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
            self.fail(key, "must be a list of strings")
            return None
        if not value:
            self.fail(key, "must not be empty: leave the key out to accept any value")
            return None
        wrong = [item for item in value if not check(item)]
        if wrong:
            self.fail(key, f"{wrong[0][:80]!r} is not {wanted}")
            return None
        return tuple(value)

    def integer(self, table: dict, key: str, low: int, high: int, unit: str = "") -> int | None:
        if key not in table:
            return None
        value = table[key]
        if isinstance(value, float):
            self.fail(key, f"must be an integer{unit}, not a float ({value!r})"
                      + (": money is never a float" if unit else ""))
        elif not isinstance(value, int) or isinstance(value, bool):
            self.fail(key, f"must be an integer{unit}, not {_kind(value)}")
        elif not low <= value <= high:
            self.fail(key, f"must be {low} to {high}, got {value}")
        else:
            return value
        return None


def _kind(value: Any) -> str:
    return {bool: "a boolean", int: "an integer", float: "a float", str: "a string", list: "an array",
            dict: "a table"}.get(type(value), type(value).__name__)


def _currency(code: str) -> bool:
    return code in CURRENCY_EXPONENTS


_CRITERIA: tuple[tuple[str, Callable[[str], bool], str], ...] = (
    ("merchants", _IDENTIFIER.match, "a merchant id (1 to 64 of A-Z a-z 0-9 _ - .)"),
    ("currencies", _currency, "an ISO 4217 currency code the switch knows (uppercase)"),
    ("schemes", _SCHEME.match, "a scheme or wallet provider (1 to 32 of a-z 0-9 _)"),
    ("countries", _COUNTRY.match, "an ISO 3166-1 alpha-2 country code (two uppercase letters)"),
    ("card_types", CARD_TYPES.__contains__, "one of " + ", ".join(CARD_TYPES)),
    ("methods", METHODS.__contains__, "one of " + ", ".join(METHODS)),
)


def _read_bin(check: _Checker, table: dict) -> BinRange | None:
    check.unknown_keys(table, _BIN_KEYS)
    digits = "6 to 11 digits"
    low = check.string(table, "low", _DIGITS.match, digits, required=True)
    high = check.string(table, "high", _DIGITS.match, digits, required=True)
    scheme = check.string(table, "scheme", _SCHEME.match, "1 to 32 of a-z 0-9 _", required=True)
    country = check.string(table, "country", _COUNTRY.match, "two uppercase letters (ISO 3166-1 alpha-2)")
    card_type = check.string(table, "card_type", CARD_TYPES.__contains__, "one of " + ", ".join(CARD_TYPES))
    if low is not None and high is not None:
        if len(low) != len(high):
            check.fail("high", f"must have as many digits as low ({low!r} has {len(low)}, {high!r} {len(high)})")
        elif low > high:
            check.fail("high", f"{high!r} is below low {low!r}")
    if not check.ok:
        return None
    return BinRange(low, high, scheme, country, card_type, check.line)


def _read_channels(check: _Checker, table: dict,
                   known: Collection[str] | None) -> tuple[tuple[str, ...], tuple[int, ...] | None] | None:
    """A rule's channels: a priority list, or a split's channels in file order with their weights."""
    if ("channels" in table) == ("split" in table):
        check.fail("channels", "a rule needs exactly one of channels (a priority list) or split (weights)")
        return None
    if "channels" in table:
        names = check.strings(table, "channels", _IDENTIFIER.match, "a channel name")
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
            if not _IDENTIFIER.match(name):
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


def _read_rule(check: _Checker, table: dict, known: Collection[str] | None) -> Rule | None:
    check.unknown_keys(table, _RULE_KEYS)
    name = check.string(table, "name", _IDENTIFIER.match, "1 to 64 of A-Z a-z 0-9 _ - .", required=True)
    if name == RESERVED_RULE_NAME:
        check.fail("name", f"{name!r} is reserved: the switch records it for a merchant's default channel")
    criteria = {key: check.strings(table, key, valid, wanted) for key, valid, wanted in _CRITERIA}
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


def _tables(data: dict, key: str, lines: _SourceLines, problems: list[Problem]) -> list[tuple[dict, int | None]]:
    """The entries of an array of tables with their header lines; an empty list when absent or wrong."""
    value = data.get(key, [])
    if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
        problems.append(Problem(lines.key_line(-1, key), key, f"must be an array of tables ([[{key}]])"))
        return []
    return list(zip(value, lines.array_headers(key, len(value))))


def parse_routing(text: str, source: str = "<routing>", known_channels: Collection[str] | None = None) -> RoutingConfig:
    """Validate a routing file's text; RoutingConfigError lists every problem, each with its line."""
    lines = _SourceLines(text)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        position = _TOML_POSITION.search(str(error))
        message = str(error)[:position.start()] if position else str(error)
        line = (int(position.group(1)) if position.group(1) else lines.last) if position else None
        if position and position.group(2):
            message += f" (column {position.group(2)})"
        raise RoutingConfigError(source, [Problem(line, "", f"not valid TOML: {message}")]) from None
    if known_channels is not None:
        known_channels = frozenset(known_channels)

    problems: list[Problem] = []
    top = _Checker(lines, problems, -1, "")
    top.unknown_keys(data, ("version", "bins", "rules"))
    version = top.string(data, "version", _VERSION.match, "1 to 64 of A-Z a-z 0-9 _ - . :", required=True)

    bins: list[tuple[int, BinRange]] = []
    for index, (table, header) in enumerate(_tables(data, "bins", lines, problems)):
        entry = _read_bin(_Checker(lines, problems, header, f"bins[{index}]"), table)
        if entry is not None:
            bins.append((index, entry))
    _check_bin_table(bins, problems)

    rules: list[Rule] = []
    lines_by_name: dict[str, int | None] = {}
    for index, (table, header) in enumerate(_tables(data, "rules", lines, problems)):
        check = _Checker(lines, problems, header, f"rules[{index}]")
        rule = _read_rule(check, table, known_channels)
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

    if problems:
        problems.sort(key=lambda problem: (problem.line is None, problem.line or 0))
        if len(problems) > MAX_PROBLEMS:
            problems[MAX_PROBLEMS:] = [Problem(None, "", f"{len(problems) - MAX_PROBLEMS} more problems not shown")]
        raise RoutingConfigError(source, problems)
    return RoutingConfig(version, tuple(entry for _index, entry in bins), tuple(rules), source)


def load_routing(path: str | Path, known_channels: Collection[str] | None = None) -> RoutingConfig:
    """Read and validate a routing file; an unreadable file is a RoutingConfigError like a wrong one."""
    source = str(path)
    try:
        text = Path(path).read_bytes().decode("utf-8")
    except OSError as error:
        raise RoutingConfigError(source, [Problem(None, "", error.strerror or str(error))]) from None
    except UnicodeDecodeError as error:
        raise RoutingConfigError(source, [Problem(None, "", f"not UTF-8 text: {error.reason}")]) from None
    return parse_routing(text, source, known_channels)

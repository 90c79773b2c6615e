"""Routing tables compiled for the hot path, the pure-Python twin: BIN ranges and ordered rules.

The compiled twin in ext/payswitch/_speedups/routing_table.pyx has the same names and behaviour; pick
between them only through payswitch.hotpath. Both take plain data (building it from configuration is
the routing layer's job) and do the expensive work once, at build, so a lookup is one binary search
and a match is a few ANDs of precomputed bitsets.
"""

import heapq
import operator
from bisect import bisect_right
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

__all__ = ["BinTable", "RuleCriteria", "RuleTable"]

KEY_DIGITS = 11   # every range and card number is placed in the space of 11-digit prefixes
MIN_DIGITS = 6    # the shortest BIN, and the fewest digits a lookup accepts
_INT64_MIN = -(1 << 63)
_INT64_MAX = (1 << 63) - 1

#: _KEYS_PER_PREFIX[n]: how many 11-digit keys share one n-digit prefix.
_KEYS_PER_PREFIX = tuple(10 ** (KEY_DIGITS - digits) if digits <= KEY_DIGITS else 1
                         for digits in range(KEY_DIGITS + 1))


# ---- BIN ranges ----------------------------------------------------------------------------------


def _is_digits(text: Any) -> bool:
    """True for a str of ASCII digits only: str.isdigit alone also accepts '٣' and '²'."""
    return isinstance(text, str) and text.isascii() and text.isdigit()


def _range_keys(index: int, entry: Any) -> tuple[int, int, int, Any]:
    """One validated input range as (first key, last key, prefix length, value)."""
    try:
        low, high, value = entry
    except (TypeError, ValueError):
        raise ValueError(f"ranges[{index}]: expected (low, high, value), got {entry!r}") from None
    for name, digits in (("low", low), ("high", high)):
        if not _is_digits(digits):
            raise ValueError(f"ranges[{index}]: {name} {digits!r} is not a string of digits")
        if not MIN_DIGITS <= len(digits) <= KEY_DIGITS:
            raise ValueError(f"ranges[{index}]: {name} {digits!r} has {len(digits)} digits; "
                             f"{MIN_DIGITS} to {KEY_DIGITS} are allowed")
    if len(low) != len(high):
        raise ValueError(f"ranges[{index}]: low {low!r} and high {high!r} differ in length")
    if low > high:
        raise ValueError(f"ranges[{index}]: low {low!r} is above high {high!r}")
    keys_per_prefix = _KEYS_PER_PREFIX[len(low)]
    return int(low) * keys_per_prefix, (int(high) + 1) * keys_per_prefix - 1, len(low), value


def _prefix(first_key: int, length: int) -> str:
    """The digits a range was given with, for error messages."""
    return str(first_key // _KEYS_PER_PREFIX[length]).zfill(length)


class BinTable:
    """Card number -> the value of the most specific BIN range covering it.

    Each input range (low, high, value) of L digits covers the card numbers whose first L digits lie
    in [low, high]. Where ranges overlap, a longer prefix wins, and at equal length the narrower
    range; two overlapping ranges of equal length and width are rejected at build, since neither is
    more specific. Build flattens the ranges into sorted, disjoint intervals of 11-digit keys, each
    with the winning value, so a lookup is one binary search.

    Numbers of 6 to 10 digits: such a number stands for every card number that starts with it, and
    gets a value only if all of those would get the same one (the same object), else None. So a BIN
    that some ranges split gives None rather than a guess that the full number might contradict,
    and `lookup(prefix)` is never answered differently by `lookup(prefix + more digits)` unless it
    is None. Adjacent intervals with the same value object are merged at build for this reason:
    give ranges that mean the same thing one shared value object.

    Digits past the eleventh are ignored (length and checksum are the card validator's business);
    anything but a str of ASCII digits, or fewer than 6 digits, gives None and never raises.
    """

    __slots__ = ("_starts", "_ends", "_value_index", "_values", "_range_count")

    def __init__(self, ranges: Iterable[tuple[str, str, Any]]):
        entries = [_range_keys(index, entry) for index, entry in enumerate(ranges)]
        first = [entry[0] for entry in entries]
        last = [entry[1] for entry in entries]
        length = [entry[2] for entry in entries]
        count = len(entries)
        # Each distinct value object once: intervals name it by slot, and equal slots may merge.
        values: list[Any] = []
        slots: dict[int, int] = {}
        value_slot = [slots.setdefault(id(entry[3]), len(slots)) for entry in entries]
        for entry, slot in zip(entries, value_slot):
            if slot == len(values):
                values.append(entry[3])

        # Most specific first: longer prefix, then fewer keys; start and index only fix the order.
        by_priority = sorted(range(count), key=lambda i: (-length[i], last[i] - first[i], first[i], i))
        for earlier, later in zip(by_priority, by_priority[1:]):
            if (length[earlier] == length[later] and last[earlier] - first[earlier] == last[later] - first[later]
                    and first[later] <= last[earlier]):
                raise ValueError(
                    f"ranges[{earlier}] ({_prefix(first[earlier], length[earlier])}-"
                    f"{_prefix(last[earlier], length[earlier])}) and ranges[{later}] "
                    f"({_prefix(first[later], length[later])}-{_prefix(last[later], length[later])}) "
                    "overlap with the same length and width, so neither is more specific")
        rank = [0] * count
        for position, index in enumerate(by_priority):
            rank[index] = position

        # Sweep the key space: between two consecutive boundaries the set of covering ranges is
        # constant, and the heap's top (the lowest rank still covering) is the winner.
        by_start = sorted(range(count), key=lambda i: first[i])
        boundaries = sorted(set(first).union(end + 1 for end in last))
        starts: list[int] = []
        ends: list[int] = []
        value_index: list[int] = []
        covering: list[int] = []  # ranks
        next_start = 0
        for position, boundary in enumerate(boundaries):
            while next_start < count and first[by_start[next_start]] == boundary:
                heapq.heappush(covering, rank[by_start[next_start]])
                next_start += 1
            while covering and last[by_priority[covering[0]]] < boundary:
                heapq.heappop(covering)
            if not covering:
                continue
            winner = by_priority[covering[0]]
            segment_end = boundaries[position + 1] - 1  # the last boundary ends every range
            if ends and ends[-1] + 1 == boundary and value_index[-1] == value_slot[winner]:
                ends[-1] = segment_end
            else:
                starts.append(boundary)
                ends.append(segment_end)
                value_index.append(value_slot[winner])

        self._starts = starts
        self._ends = ends
        self._value_index = value_index
        self._values = tuple(values)
        self._range_count = count

    def __len__(self) -> int:
        return self._range_count

    def lookup(self, card_number: str) -> Any:
        """The value of the most specific range covering the number, or None (see the class)."""
        if not _is_digits(card_number):
            return None
        digits = len(card_number)
        if digits < MIN_DIGITS:
            return None
        if digits >= KEY_DIGITS:
            first_key = last_key = int(card_number[:KEY_DIGITS])
        else:
            first_key = int(card_number) * _KEYS_PER_PREFIX[digits]
            last_key = first_key + _KEYS_PER_PREFIX[digits] - 1
        position = bisect_right(self._starts, first_key) - 1
        if position >= 0 and self._ends[position] >= last_key:
            return self._values[self._value_index[position]]
        return None


# ---- ordered rules -------------------------------------------------------------------------------

_SET_CRITERIA = ("merchants", "currencies", "schemes", "countries", "card_types", "methods")


@dataclass(frozen=True, slots=True)
class RuleCriteria:
    """What a payment must be for a rule to apply; None means any value.

    Strings are compared exactly (normalize case in the configuration layer). Sets are stored as
    frozensets; an empty set is refused, since it would make a rule that can never match, and so is
    an amount bound outside a signed 64-bit integer (the contract's amount type).
    """

    merchants: frozenset[str] | None = None
    currencies: frozenset[str] | None = None
    schemes: frozenset[str] | None = None
    countries: frozenset[str] | None = None
    card_types: frozenset[str] | None = None
    methods: frozenset[str] | None = None
    min_amount_minor: int | None = None  # inclusive
    max_amount_minor: int | None = None  # inclusive

    def __post_init__(self):
        for name in _SET_CRITERIA:
            accepted = getattr(self, name)
            if accepted is None:
                continue
            if isinstance(accepted, (str, bytes)) or not isinstance(accepted, Iterable):
                raise ValueError(f"{name}: expected a set of strings or None, got {accepted!r}")
            accepted = frozenset(accepted)
            if not accepted:
                raise ValueError(f"{name}: an empty set never matches; use None for any value")
            for value in accepted:
                if not isinstance(value, str):
                    raise ValueError(f"{name}: expected strings, got {value!r}")
            object.__setattr__(self, name, accepted)
        for name in ("min_amount_minor", "max_amount_minor"):
            bound = getattr(self, name)
            if bound is None:
                continue
            if not isinstance(bound, int) or isinstance(bound, bool):
                raise ValueError(f"{name}: expected an int or None, got {bound!r}")
            if not _INT64_MIN <= bound <= _INT64_MAX:
                raise ValueError(f"{name}: {bound} does not fit a signed 64-bit integer")
        if (self.min_amount_minor is not None and self.max_amount_minor is not None
                and self.min_amount_minor > self.max_amount_minor):
            raise ValueError(f"min_amount_minor {self.min_amount_minor} is above max_amount_minor "
                             f"{self.max_amount_minor}")

    def accepts(self, merchant, currency, amount_minor: int, scheme, country, card_type, method) -> bool:
        """This rule's verdict from its fields alone: the reference RuleTable.match must agree with."""
        return ((self.merchants is None or merchant in self.merchants)
                and (self.currencies is None or currency in self.currencies)
                and (self.schemes is None or scheme in self.schemes)
                and (self.countries is None or country in self.countries)
                and (self.card_types is None or card_type in self.card_types)
                and (self.methods is None or method in self.methods)
                and (self.min_amount_minor is None or amount_minor >= self.min_amount_minor)
                and (self.max_amount_minor is None or amount_minor <= self.max_amount_minor))


class _Dimension:
    """One set criterion compiled: each known value's bitset of the rules that accept it.

    Bit r is set when rule r accepts the value: it names it or accepts any. A value no rule names
    gets `any_value`, the rules that accept any, so unknown strings fail every specific criterion.
    """

    __slots__ = ("accepting", "any_value")

    def __init__(self, name: str, rules: list[RuleCriteria]):
        named = sorted({value for rule in rules for value in (getattr(rule, name) or ())})
        any_value = 0
        accepting = dict.fromkeys(named, 0)
        for position, rule in enumerate(rules):
            accepted = getattr(rule, name)
            if accepted is None:
                any_value |= 1 << position
            else:
                for value in accepted:
                    accepting[value] |= 1 << position
        self.any_value = any_value
        self.accepting = {value: bits | any_value for value, bits in accepting.items()}


class RuleTable:
    """Ordered rules; `match` gives the index of the first rule a payment satisfies, or -1.

    Build interns every string a rule names, per criterion, and gives each a bitset (a Python int,
    bit r for rule r) of the rules accepting it. The merchant's bitset is its candidates: its own
    rules merged in order with the rules for any merchant. A match ANDs the six bitsets, then walks
    the set bits from the lowest (the first rule in order) and returns the first whose amount bounds
    hold. Unknown values, None included, fail every criterion that names specific values.
    """

    __slots__ = ("_merchants", "_currencies", "_schemes", "_countries", "_card_types", "_methods",
                 "_min_amount", "_max_amount", "_rule_count")

    def __init__(self, rules: Iterable[RuleCriteria]):
        rules = list(rules)
        for index, rule in enumerate(rules):
            if not isinstance(rule, RuleCriteria):
                raise ValueError(f"rules[{index}]: expected a RuleCriteria, got {type(rule).__name__}")
        self._merchants = _Dimension("merchants", rules)
        self._currencies = _Dimension("currencies", rules)
        self._schemes = _Dimension("schemes", rules)
        self._countries = _Dimension("countries", rules)
        self._card_types = _Dimension("card_types", rules)
        self._methods = _Dimension("methods", rules)
        self._min_amount = [_INT64_MIN if rule.min_amount_minor is None else rule.min_amount_minor
                            for rule in rules]
        self._max_amount = [_INT64_MAX if rule.max_amount_minor is None else rule.max_amount_minor
                            for rule in rules]
        self._rule_count = len(rules)

    def __len__(self) -> int:
        return self._rule_count

    def match(self, merchant: str, currency: str, amount_minor: int, scheme: str | None, country: str | None,
              card_type: str | None, method: str | None) -> int:
        """The index of the first rule all of whose criteria hold, or -1.

        amount_minor must be an integer (TypeError) of signed 64 bits (OverflowError), as the
        contract's amounts are; the string arguments may be anything hashable.
        """
        amount = operator.index(amount_minor)
        if not _INT64_MIN <= amount <= _INT64_MAX:
            raise OverflowError("amount_minor does not fit a signed 64-bit integer")
        candidates = (self._merchants.accepting.get(merchant, self._merchants.any_value)
                      & self._currencies.accepting.get(currency, self._currencies.any_value)
                      & self._schemes.accepting.get(scheme, self._schemes.any_value)
                      & self._countries.accepting.get(country, self._countries.any_value)
                      & self._card_types.accepting.get(card_type, self._card_types.any_value)
                      & self._methods.accepting.get(method, self._methods.any_value))
        while candidates:
            lowest = candidates & -candidates
            rule = lowest.bit_length() - 1
            if self._min_amount[rule] <= amount <= self._max_amount[rule]:
                return rule
            candidates ^= lowest
        return -1


"""Risk rules compiled for the hot path, the pure-Python twin: blocklists, limits, sliding windows, duplicates.

The compiled twin in ext/payswitch/_speedups/risk_rules.pyx has the same names and behaviour; pick
between them only through payswitch.hotpath. Both take plain data (LimitSpec, VelocitySpec, sets of
blocked values; building it from the risk file is payswitch.risk's job), answer per payment with the
number of the first rule that declines it, or -1, and keep the state the rules need: per card key and
per merchant, the payments that passed risk inside each window, and each merchant's daily sums.

Time is an argument (integer microseconds since the epoch, UTC), never read here, so tests step a
fake clock and the two twins can be compared on the same sequence of instants.
"""

import operator
from collections import OrderedDict, deque
from collections.abc import Iterable
from dataclasses import dataclass

__all__ = ["ANY_MERCHANT", "BLOCKED_BIN", "BLOCKED_CARD", "BLOCKED_COUNTRY", "DAY_US", "DEFAULT_MAX_TRACKED_CARDS",
           "DEFAULT_MAX_TRACKED_MERCHANTS", "DUPLICATE", "FIRST_LIMIT", "LimitSpec", "MAX_COUNT", "MAX_TRACKED_KEYS",
           "MAX_WINDOW_SECONDS",
           "RECENT_PER_CARD", "RiskTable", "SWEEP_PER_NEW_KEY", "VelocitySpec"]

# ---- what `check` and `admit` answer -------------------------------------------------------------
# -1: allowed. Otherwise the first rule that declines, numbered in the order the rules are checked:
BLOCKED_BIN = 0
BLOCKED_CARD = 1
BLOCKED_COUNTRY = 2
DUPLICATE = 3
#: limits[i]'s per-transaction bound is FIRST_LIMIT + 2*i, its daily bound FIRST_LIMIT + 2*i + 1;
#: velocity[j] is FIRST_LIMIT + 2*len(limits) + j.
FIRST_LIMIT = 4

ANY_MERCHANT = "*"
DAY_US = 86_400_000_000
SECOND_US = 1_000_000
MIN_BIN_DIGITS = 6
MAX_BIN_DIGITS = 11
MAX_WINDOW_SECONDS = 7 * 86_400
MAX_COUNT = 1_000_000
#: Duplicate fingerprints remembered per card key; past it the oldest is forgotten (see RiskTable).
RECENT_PER_CARD = 32
#: Keys whose windows have all expired are dropped this many at a time, oldest first, whenever a new key
#: is tracked: so expired keys go at least as fast as new ones come, and a payment by a known key pays nothing.
SWEEP_PER_NEW_KEY = 8
DEFAULT_MAX_TRACKED_CARDS = 100_000
DEFAULT_MAX_TRACKED_MERCHANTS = 10_000
MAX_TRACKED_KEYS = 100_000_000
_INT64_MAX = (1 << 63) - 1


def _positive(name: str, value, high: int, optional: bool = True):
    if value is None and optional:
        return
    if not isinstance(value, int) or isinstance(value, bool):
        raise ValueError(f"{name}: expected an int, got {value!r}")
    if not 1 <= value <= high:
        raise ValueError(f"{name}: {value} is outside 1 to {high}")


@dataclass(frozen=True, slots=True)
class LimitSpec:
    """Amount bounds of one merchant (ANY_MERCHANT: every merchant without its own) in one currency.

    max_amount_minor bounds each payment, max_daily_minor the sum of a merchant's payments that passed
    risk in the currency during one UTC day (each merchant has its own sum, ANY_MERCHANT included);
    both inclusive, None for no bound, at least one given.
    """

    merchant: str
    currency: str
    max_amount_minor: int | None = None
    max_daily_minor: int | None = None

    def __post_init__(self):
        for name in ("merchant", "currency"):
            if not isinstance(getattr(self, name), str):
                raise ValueError(f"{name}: expected a str, got {getattr(self, name)!r}")
        _positive("max_amount_minor", self.max_amount_minor, _INT64_MAX)
        _positive("max_daily_minor", self.max_daily_minor, _INT64_MAX)
        if self.max_amount_minor is None and self.max_daily_minor is None:
            raise ValueError("a limit needs max_amount_minor, max_daily_minor or both")


@dataclass(frozen=True, slots=True)
class VelocitySpec:
    """At most max_count payments (and, if given, max_amount_minor in sum) per card key or per merchant
    in any window of window_seconds; with a currency, only payments in that currency count and are
    checked. The name identifies the rule's history when state is carried to a new table."""

    name: str
    per: str  # "card" or "merchant"
    window_seconds: int
    max_count: int
    max_amount_minor: int | None = None
    currency: str | None = None

    def __post_init__(self):
        if not isinstance(self.name, str):
            raise ValueError(f"name: expected a str, got {self.name!r}")
        if self.per not in ("card", "merchant"):
            raise ValueError(f"per: expected 'card' or 'merchant', got {self.per!r}")
        _positive("window_seconds", self.window_seconds, MAX_WINDOW_SECONDS, optional=False)
        _positive("max_count", self.max_count, MAX_COUNT, optional=False)
        _positive("max_amount_minor", self.max_amount_minor, _INT64_MAX)
        if self.currency is not None and not isinstance(self.currency, str):
            raise ValueError(f"currency: expected a str or None, got {self.currency!r}")
        if self.max_amount_minor is not None and self.currency is None:
            raise ValueError("max_amount_minor: a sum of amounts needs a currency")


def _is_digits(text) -> bool:
    """True for a str of ASCII digits only: str.isdigit alone also accepts '٣' and '²'."""
    return isinstance(text, str) and text.isascii() and text.isdigit()


def _is_country(text) -> bool:
    return isinstance(text, str) and len(text) == 2 and text.isascii() and text.isupper() and text.isalpha()


def _int64(value, name: str) -> int:
    """operator.index, refused below zero or past a signed 64-bit integer, as the compiled twin does."""
    value = operator.index(value)
    if value > _INT64_MAX:
        raise OverflowError(f"{name} does not fit a signed 64-bit integer")
    if value < 0:
        raise ValueError(f"{name} must not be negative")
    return value


# ---- build: shared by both twins, so they accept and refuse the same input alike -----------------


@dataclass(frozen=True, slots=True)
class _Plan:
    """A table's validated input, in the shapes both twins build from."""

    limit_specs: tuple[LimitSpec, ...]
    velocity_specs: tuple[VelocitySpec, ...]
    own_limits: dict[str, dict[str, int]]  # merchant -> currency -> limit index
    any_limits: dict[str, int]             # currency -> index of ANY_MERCHANT's limit
    max_amount: tuple[int | None, ...]     # per limit
    max_daily: tuple[int | None, ...]
    # Per velocity rule: (is per card, its window's place in the key's state, window, max count,
    # max sum or None, currency or None).
    rules: tuple[tuple[bool, int, int, int, int | None, str | None], ...]
    first_velocity: int
    blocked_bins: frozenset[str]
    bin_lengths: tuple[int, ...]           # ascending
    blocked_cards: frozenset[bytes]
    blocked_countries: frozenset[str]
    duplicate_us: int                      # 0: duplicates are not checked
    cards: tuple | None                    # _Tracker arguments, None when nothing is kept per card
    merchants: tuple | None


def _plan(limits, velocity, blocked_bins, blocked_cards, blocked_countries, duplicate_window_seconds,
          max_tracked_cards, max_tracked_merchants) -> _Plan:
    limits = tuple(limits)
    velocity = tuple(velocity)
    own_limits: dict[str, dict[str, int]] = {}
    any_limits: dict[str, int] = {}
    for index, limit in enumerate(limits):
        if not isinstance(limit, LimitSpec):
            raise ValueError(f"limits[{index}]: expected a LimitSpec, got {type(limit).__name__}")
        by_currency = any_limits if limit.merchant == ANY_MERCHANT else own_limits.setdefault(limit.merchant, {})
        if limit.currency in by_currency:
            raise ValueError(f"limits[{index}]: limits[{by_currency[limit.currency]}] already bounds "
                             f"{limit.merchant} in {limit.currency}")
        by_currency[limit.currency] = index

    rules = []
    names: set[str] = set()
    slots = {"card": 0, "merchant": 0}
    for index, rule in enumerate(velocity):
        if not isinstance(rule, VelocitySpec):
            raise ValueError(f"velocity[{index}]: expected a VelocitySpec, got {type(rule).__name__}")
        if rule.name in names:
            raise ValueError(f"velocity[{index}]: the name {rule.name!r} is taken by an earlier rule")
        names.add(rule.name)
        rules.append((rule.per == "card", slots[rule.per], rule.window_seconds * SECOND_US, rule.max_count,
                      rule.max_amount_minor, rule.currency))
        slots[rule.per] += 1

    bins = frozenset(blocked_bins)
    for prefix in bins:
        if not _is_digits(prefix) or not MIN_BIN_DIGITS <= len(prefix) <= MAX_BIN_DIGITS:
            raise ValueError(f"blocked_bins: {prefix!r} is not 6 to 11 ASCII digits")
    cards = frozenset(blocked_cards)
    for key in cards:
        if not isinstance(key, bytes):
            raise ValueError(f"blocked_cards: expected bytes, got {type(key).__name__}")
    countries = frozenset(blocked_countries)
    for country in countries:
        if not _is_country(country):
            raise ValueError(f"blocked_countries: {country!r} is not two uppercase ASCII letters")
    _positive("duplicate_window_seconds", duplicate_window_seconds, MAX_WINDOW_SECONDS)
    _positive("max_tracked_cards", max_tracked_cards, MAX_TRACKED_KEYS, optional=False)
    _positive("max_tracked_merchants", max_tracked_merchants, MAX_TRACKED_KEYS, optional=False)
    duplicate_us = 0 if duplicate_window_seconds is None else duplicate_window_seconds * SECOND_US

    card_windows = [rule.window_seconds * SECOND_US for rule in velocity if rule.per == "card"]
    merchant_windows = [rule.window_seconds * SECOND_US for rule in velocity if rule.per == "merchant"]
    daily = any(limit.max_daily_minor is not None for limit in limits)
    return _Plan(
        limits, velocity, own_limits, any_limits, tuple(limit.max_amount_minor for limit in limits),
        tuple(limit.max_daily_minor for limit in limits), tuple(rules), FIRST_LIMIT + 2 * len(limits), bins,
        tuple(sorted({len(prefix) for prefix in bins})), cards, countries, duplicate_us,
        # (capacity, horizon_us, daily, window_count, recent), as _Tracker takes them
        (max_tracked_cards, max(card_windows + [duplicate_us]), False, len(card_windows), duplicate_us > 0)
        if card_windows or duplicate_us else None,
        (max_tracked_merchants, max(merchant_windows, default=0), daily, len(merchant_windows), False)
        if merchant_windows or daily else None)


def _carried_rules(old: tuple[VelocitySpec, ...], new: tuple[VelocitySpec, ...]) -> dict[int, int]:
    """New rule position -> old rule position, for each rule whose history carries over a reload: the
    same name, per and currency, and a window no longer than before. A longer window needs payments the
    old one let go, so its history is restored instead (RiskTable.restore)."""
    by_identity = {(rule.name, rule.per, rule.currency): (position, rule) for position, rule in enumerate(old)}
    carried = {}
    for position, rule in enumerate(new):
        found = by_identity.get((rule.name, rule.per, rule.currency))
        if found is not None and found[1].window_seconds >= rule.window_seconds:
            carried[position] = found[0]
    return carried


def _slots(rules: tuple[VelocitySpec, ...]) -> list[int]:
    """Each rule's window's place in its key's state: its position among the rules of the same `per`."""
    counts = {"card": 0, "merchant": 0}
    slots = []
    for rule in rules:
        slots.append(counts[rule.per])
        counts[rule.per] += 1
    return slots


def _carried_windows(old: tuple[VelocitySpec, ...], new: tuple[VelocitySpec, ...]) -> dict[str, list]:
    """Per "card" and "merchant": (new window slot, old window slot, new max_count) of each rule whose
    history carries over a reload (_carried_rules)."""
    old_slots, new_slots = _slots(old), _slots(new)
    carried: dict[str, list] = {"card": [], "merchant": []}
    for position, old_position in _carried_rules(old, new).items():
        rule = new[position]
        carried[rule.per].append((new_slots[position], old_slots[old_position], rule.max_count))
    return carried


def _bounds_daily(plan: _Plan, merchant: str, currency: str) -> bool:
    """Whether the plan's limit for this merchant and currency (its own, else ANY_MERCHANT's) has a daily bound."""
    own = plan.own_limits.get(merchant)
    index = None if own is None else own.get(currency)
    if index is None:
        index = plan.any_limits.get(currency)
    return index is not None and plan.max_daily[index] is not None


@dataclass(frozen=True, slots=True)
class _Restoring:
    """What `restore` writes into: the state a table did not adopt from the table it replaced (all of
    it for a table that adopted nothing), so restoring the payments of the store never counts one twice."""

    positions: tuple[int, ...]  # of the velocity rules whose windows were not carried
    rules: tuple[tuple, ...]    # those rules, as _Plan.rules has them
    recent: bool             # duplicate fingerprints were not carried
    daily: bool              # some merchant and currency may have a daily limit the previous table lacked
    previous: _Plan | None   # its daily sums carried for each merchant and currency it bounded daily
    cards: bool              # anything kept per card key is restored
    merchants: bool          # anything kept per merchant is restored

    def restores_daily(self, plan: _Plan, merchant: str, currency: str) -> bool:
        return (self.daily and _bounds_daily(plan, merchant, currency)
                and (self.previous is None or not _bounds_daily(self.previous, merchant, currency)))

    def since_us(self, plan: _Plan, now_us: int) -> int | None:
        """Payments after this instant are all `restore` can still use at now_us; None: it needs none."""
        spans = [window_us for _per_card, _slot, window_us, *_rest in self.rules]
        if self.recent:
            spans.append(plan.duplicate_us)
        since = [now_us - max(spans)] if spans else []
        if self.daily:
            since.append(now_us - now_us % DAY_US - 1)  # the UTC day so far
        return min(since, default=None)


def _daily_coverage(plan: _Plan) -> frozenset:
    return frozenset((limit.merchant, limit.currency, limit.max_daily_minor is not None)
                     for limit in plan.limit_specs)


def _restoring(plan: _Plan, previous: _Plan | None = None) -> _Restoring:
    """What a table of `plan` restores after adopting the state of a table of `previous` (None: nothing adopted)."""
    carried = {} if previous is None else _carried_rules(previous.velocity_specs, plan.velocity_specs)
    positions = tuple(position for position in range(len(plan.rules)) if position not in carried)
    rules = tuple(plan.rules[position] for position in positions)
    recent = plan.duplicate_us > (0 if previous is None else previous.duplicate_us)
    daily = (any(bound is not None for bound in plan.max_daily)
             and (previous is None or _daily_coverage(plan) != _daily_coverage(previous)))
    return _Restoring(positions, rules, recent, daily, previous,
                      cards=recent or any(per_card for per_card, *_rest in rules),
                      merchants=daily or any(not per_card for per_card, *_rest in rules))


# ---- state ---------------------------------------------------------------------------------------


class _Window:
    """One rule's payments for one key, oldest first: (time_us, amount); `total` is their sum.

    Times never decrease along the window (a payment recorded while the clock stands behind the last
    one takes the last one's time), so expiry is always at the front.
    """

    __slots__ = ("entries", "total")

    def __init__(self):
        self.entries: deque[tuple[int, int]] = deque()
        self.total = 0

    def expire(self, cutoff_us: int) -> None:
        """Forget the payments at or before the cutoff: they are outside the window."""
        entries = self.entries
        while entries and entries[0][0] <= cutoff_us:
            self.total -= entries.popleft()[1]

    def push(self, now_us: int, amount: int, max_count: int) -> None:
        entries = self.entries
        if entries and entries[-1][0] > now_us:
            now_us = entries[-1][0]
        if len(entries) == max_count:  # unreachable after a check; kept so the bound holds regardless
            self.total -= entries.popleft()[1]
        entries.append((now_us, amount))
        self.total += amount

    def copy(self, max_count: int) -> "_Window":
        """The newest max_count payments (a window never needs more to decline at its count)."""
        window = _Window()
        window.entries = deque(list(self.entries)[-max_count:])
        window.total = sum(amount for _time, amount in window.entries)
        return window


class _KeyState:
    """What the rules remember of one card key or one merchant."""

    __slots__ = ("last_us", "windows", "recent", "daily")

    def __init__(self, window_count: int, recent: bool):
        self.last_us = 0
        self.windows = [_Window() for _ in range(window_count)]
        # Cards, when duplicates are checked: (time_us, merchant, amount, currency), oldest first.
        self.recent: deque | None = deque(maxlen=RECENT_PER_CARD) if recent else None
        # Merchants, when a daily limit applies: currency -> [UTC day, sum that day].
        self.daily: dict[str, list[int]] = {}


class _Tracker:
    """Key -> _KeyState in order of last use, at most `capacity` keys.

    A key is expired when every window it has is behind it (its last payment is at least `horizon_us`
    old) and, for merchants with daily limits, its last payment was on an earlier UTC day: then it
    remembers nothing the rules could use. Each new key first drops up to SWEEP_PER_NEW_KEY expired
    keys, oldest first; if the tracker is still full it evicts the least recently used key even if
    unexpired. `forgotten` counts those, since the evicted key's payments no longer count against it
    (an under-count, never an over-count).
    """

    __slots__ = ("states", "capacity", "horizon_us", "daily", "window_count", "recent", "forgotten")

    def __init__(self, capacity: int, horizon_us: int, daily: bool, window_count: int, recent: bool):
        self.states: OrderedDict = OrderedDict()
        self.capacity, self.horizon_us, self.daily = capacity, horizon_us, daily
        self.window_count, self.recent = window_count, recent
        self.forgotten = 0

    def expired(self, state: _KeyState, now_us: int) -> bool:
        return (state.last_us <= now_us - self.horizon_us
                and (not self.daily or state.last_us // DAY_US < now_us // DAY_US))

    def sweep(self, now_us: int) -> None:
        states = self.states
        for _ in range(SWEEP_PER_NEW_KEY):
            if not states:
                return
            key = next(iter(states))
            if not self.expired(states[key], now_us):
                return
            del states[key]

    def touch(self, key, state: _KeyState | None, now_us: int) -> _KeyState:
        """The key's state, made the most recently used (created, evicting at capacity, if new)."""
        states = self.states
        if state is None:
            self.sweep(now_us)
            if len(states) >= self.capacity:
                _key, oldest = states.popitem(last=False)
                if not self.expired(oldest, now_us):
                    self.forgotten += 1
            state = states[key] = _KeyState(self.window_count, self.recent)
        else:
            states.move_to_end(key)
        if now_us > state.last_us:
            state.last_us = now_us
        return state


# ---- the table -----------------------------------------------------------------------------------


class RiskTable:
    """The risk rules of one file and the state they keep; `admit` per payment on the hot path.

    Checks, in order, each answering with its number (module constants; -1 when all pass):

    1. blocklists: the BIN (the card number's first 6 to 11 digits, or more: a str of ASCII digits;
       anything else, or None, is not checked) starts with a blocked prefix; the card key (bytes) is
       blocked; the issuer country (None: not checked) is blocked;
    2. the per-transaction limit of the merchant's own LimitSpec for the currency, else the
       ANY_MERCHANT one (a payment in a currency with neither has no limit);
    3. duplicates: the same card key paid the same merchant the same amount in the same currency
       within duplicate_window_seconds;
    4. velocity rules in order: the window's count reaching max_count, or its sum plus this amount
       passing max_amount_minor;
    5. that limit's daily bound: today's sum (UTC) plus this amount passing max_daily_minor.

    Windows are sliding: a payment recorded at t counts at `now` while t > now - window. Only
    payments `admit` lets through are recorded, so windows count authorizations that passed risk;
    `check` answers the same question without recording, and `restore` records without checking: it
    counts again the payments that passed before this table existed (the store's, at a start or a
    reload), so a new table starts where the live one was. Memory is bounded: a window holds at most
    max_count payments, a card key at most RECENT_PER_CARD duplicate fingerprints, and at most
    max_tracked_cards card keys and max_tracked_merchants merchants are tracked (see _Tracker for
    what happens at the cap).

    amount_minor and now_us must be ints from 0 to 2**63 - 1 (ValueError below, OverflowError
    above, TypeError for non-integers); card_key must be bytes (TypeError).
    """

    __slots__ = ("_plan", "_own_limits", "_any_limits", "_max_amount", "_max_daily", "_rules", "_first_velocity",
                 "_bin_lengths", "_blocked_bins", "_blocked_cards", "_blocked_countries", "_duplicate_us", "_cards",
                 "_merchants", "_restoring")

    def __init__(self, *, limits: Iterable[LimitSpec] = (), velocity: Iterable[VelocitySpec] = (),
                 blocked_bins: Iterable[str] = (), blocked_cards: Iterable[bytes] = (),
                 blocked_countries: Iterable[str] = (), duplicate_window_seconds: int | None = None,
                 max_tracked_cards: int = DEFAULT_MAX_TRACKED_CARDS,
                 max_tracked_merchants: int = DEFAULT_MAX_TRACKED_MERCHANTS):
        plan = _plan(limits, velocity, blocked_bins, blocked_cards, blocked_countries, duplicate_window_seconds,
                     max_tracked_cards, max_tracked_merchants)
        self._plan = plan
        self._own_limits, self._any_limits = plan.own_limits, plan.any_limits
        self._max_amount, self._max_daily = plan.max_amount, plan.max_daily
        self._rules, self._first_velocity = plan.rules, plan.first_velocity
        self._blocked_bins, self._bin_lengths = plan.blocked_bins, plan.bin_lengths
        self._blocked_cards, self._blocked_countries = plan.blocked_cards, plan.blocked_countries
        self._duplicate_us = plan.duplicate_us
        self._cards = None if plan.cards is None else _Tracker(*plan.cards)
        self._merchants = None if plan.merchants is None else _Tracker(*plan.merchants)
        self._restoring = _restoring(plan)

    def check(self, merchant: str, currency: str, amount_minor: int, card_key: bytes, bin: str | None,
              country: str | None, now_us: int) -> int:
        """The number of the first rule that would decline this payment, or -1; records nothing."""
        return self._evaluate(merchant, currency, amount_minor, card_key, bin, country, now_us, False)

    def admit(self, merchant: str, currency: str, amount_minor: int, card_key: bytes, bin: str | None,
              country: str | None, now_us: int) -> int:
        """`check`, and when it answers -1, the payment is recorded in every window and sum it counts in."""
        return self._evaluate(merchant, currency, amount_minor, card_key, bin, country, now_us, True)

    def _limit(self, merchant, currency) -> int:
        own = self._own_limits.get(merchant)
        if own is not None:
            index = own.get(currency)
            if index is not None:
                return index
        return self._any_limits.get(currency, -1)

    def _evaluate(self, merchant, currency, amount_minor, card_key, bin, country, now_us, record: bool) -> int:
        amount = _int64(amount_minor, "amount_minor")
        now_us = _int64(now_us, "now_us")
        if not isinstance(card_key, bytes):
            raise TypeError(f"card_key must be bytes, not {type(card_key).__name__}")

        if self._bin_lengths and _is_digits(bin):
            digits = len(bin)
            for length in self._bin_lengths:
                if length > digits:
                    break
                if bin[:length] in self._blocked_bins:
                    return BLOCKED_BIN
        if card_key in self._blocked_cards:
            return BLOCKED_CARD
        if _is_country(country) and country in self._blocked_countries:
            return BLOCKED_COUNTRY

        limit = self._limit(merchant, currency)
        if limit >= 0:
            bound = self._max_amount[limit]
            if bound is not None and amount > bound:
                return FIRST_LIMIT + 2 * limit

        card = None if self._cards is None else self._cards.states.get(card_key)
        if card is not None and self._duplicate_us:
            recent = card.recent
            cutoff = now_us - self._duplicate_us
            while recent and recent[0][0] <= cutoff:
                recent.popleft()
            for _time, earlier_merchant, earlier_amount, earlier_currency in recent:
                if earlier_amount == amount and earlier_merchant == merchant and earlier_currency == currency:
                    return DUPLICATE

        merchant_state = None if self._merchants is None else self._merchants.states.get(merchant)
        for position, (per_card, slot, window_us, max_count, max_sum, rule_currency) in enumerate(self._rules):
            if rule_currency is not None and rule_currency != currency:
                continue
            state = card if per_card else merchant_state
            count = total = 0
            if state is not None:
                window = state.windows[slot]
                window.expire(now_us - window_us)
                count, total = len(window.entries), window.total
            if count >= max_count or (max_sum is not None and amount > max_sum - total):
                return self._first_velocity + position

        daily_bound = None if limit < 0 else self._max_daily[limit]
        today = now_us // DAY_US
        if daily_bound is not None:
            spent = 0
            if merchant_state is not None:
                entry = merchant_state.daily.get(currency)
                if entry is not None and entry[0] >= today:
                    spent = entry[1]
            if amount > daily_bound - spent:
                return FIRST_LIMIT + 2 * limit + 1

        if record:
            self._record(merchant, currency, amount, card_key, now_us, card, merchant_state,
                         daily_bound is not None, today, self._rules)
        return -1

    def restore(self, merchant: str, currency: str, amount_minor: int, card_key: bytes, now_us: int) -> None:
        """Count, unchecked, a payment risk let through before this table existed (read back from the
        store) into the state this table did not adopt (all of it unless adopt_state took some). Call it
        for each such payment oldest first, before this table admits anything. card_key b"": a payment
        whose card key was not kept, counted per merchant only."""
        amount = _int64(amount_minor, "amount_minor")
        now_us = _int64(now_us, "now_us")
        if not isinstance(card_key, bytes):
            raise TypeError(f"card_key must be bytes, not {type(card_key).__name__}")
        restoring = self._restoring
        card = merchant_state = None
        if self._cards is not None:
            card = self._cards.states.get(card_key)
        if self._merchants is not None:
            merchant_state = self._merchants.states.get(merchant)
        self._record(merchant, currency, amount, card_key if card_key and restoring.cards else None, now_us, card,
                     merchant_state, restoring.restores_daily(self._plan, merchant, currency), now_us // DAY_US,
                     restoring.rules, restoring)

    def restore_since_us(self, now_us: int, previous: "RiskTable | None" = None) -> int | None:
        """At now_us, the instant after which `restore` wants every payment that passed risk, or None when
        it wants none; previous: the table this one is about to adopt state from."""
        plan = self._plan
        if previous is not None and type(previous) is not type(self):
            raise TypeError(f"restore_since_us needs a {type(self).__name__} of the same backend, "
                            f"not {type(previous).__name__}")
        restoring = self._restoring if previous is None else _restoring(plan, previous._plan)
        return restoring.since_us(plan, _int64(now_us, "now_us"))

    def _record(self, merchant, currency, amount, card_key, now_us, card, merchant_state, daily: bool, today, rules,
                restoring: _Restoring | None = None):
        """Count an admitted payment in the windows of `rules` and the sums; restoring: only what it names
        (card_key None: nothing per card)."""
        if self._cards is not None and card_key is not None:
            card = self._cards.touch(card_key, card, now_us)
            for per_card, slot, _window_us, max_count, _max_sum, rule_currency in rules:
                if per_card and (rule_currency is None or rule_currency == currency):
                    card.windows[slot].push(now_us, amount, max_count)
            if self._duplicate_us and (restoring is None or restoring.recent):
                recent = card.recent
                at = recent[-1][0] if recent and recent[-1][0] > now_us else now_us
                recent.append((at, merchant, amount, currency))
        if self._merchants is not None and (restoring is None or restoring.merchants):
            merchant_state = self._merchants.touch(merchant, merchant_state, now_us)
            for per_card, slot, _window_us, max_count, _max_sum, rule_currency in rules:
                if not per_card and (rule_currency is None or rule_currency == currency):
                    merchant_state.windows[slot].push(now_us, amount, max_count)
            if daily:
                entry = merchant_state.daily.get(currency)
                if entry is None:
                    merchant_state.daily[currency] = [today, amount]
                elif entry[0] < today:
                    entry[0], entry[1] = today, amount
                else:
                    entry[1] += amount

    # ---- hot reload ------------------------------------------------------------------------------

    def adopt_state(self, previous: "RiskTable") -> None:
        """Copy the state of the table this one replaces: windows of velocity rules whose name, per
        and currency are unchanged (each cut to its newest max_count payments), duplicate
        fingerprints, and daily sums where this table still has a daily limit. Keys past this
        table's caps are dropped oldest first and counted as forgotten. Call it before this table
        admits anything: state it already holds is replaced. `previous` is left as it was. What did not
        carry (a new or renamed rule, a longer window, new daily limits) is then `restore`d.
        """
        if type(previous) is not type(self):
            raise TypeError(f"adopt_state needs a {type(self).__name__} of the same backend, "
                            f"not {type(previous).__name__}")
        carried = _carried_windows(previous._plan.velocity_specs, self._plan.velocity_specs)
        self._restoring = _restoring(self._plan, previous._plan)
        self._adopt_tracker(self._cards, previous._cards, carried["card"], None)
        self._adopt_tracker(self._merchants, previous._merchants, carried["merchant"], self._has_daily_limit)

    def _has_daily_limit(self, merchant, currency) -> bool:
        limit = self._limit(merchant, currency)
        return limit >= 0 and self._max_daily[limit] is not None

    def _adopt_tracker(self, tracker: _Tracker | None, old: _Tracker | None, carried, daily_kept) -> None:
        if tracker is None or old is None:
            return
        items = list(old.states.items())
        excess = max(0, len(items) - tracker.capacity)
        tracker.states.clear()
        tracker.forgotten = old.forgotten + excess
        for key, old_state in items[excess:]:
            state = _KeyState(tracker.window_count, tracker.recent)
            state.last_us = old_state.last_us
            for new_slot, old_slot, max_count in carried:
                state.windows[new_slot] = old_state.windows[old_slot].copy(max_count)
            if tracker.recent and old_state.recent is not None and not self._restoring.recent:
                state.recent.extend(old_state.recent)
            if daily_kept is not None and tracker.daily:
                state.daily = {currency: list(entry) for currency, entry in old_state.daily.items()
                               if daily_kept(key, currency)}
            tracker.states[key] = state

    def stats(self) -> dict[str, int]:
        """Tracked keys now, and unexpired keys evicted at the caps so far (their history forgotten)."""
        cards, merchants = self._cards, self._merchants
        return {"cards": 0 if cards is None else len(cards.states),
                "merchants": 0 if merchants is None else len(merchants.states),
                "cards_forgotten": 0 if cards is None else cards.forgotten,
                "merchants_forgotten": 0 if merchants is None else merchants.forgotten}

"""The risk engine: a RiskConfig compiled into the hot-path RiskTable, answering each payment with a RiskDecision.

Every decision is built at compile time (one per rule that can decline, one for "allowed"), so
`evaluate` is a clock read, one call into the table and a tuple index: it allocates nothing the
caller has to keep. The table records a payment it lets through in the same call that checks it, and
nothing here awaits, so two payments can never both pass a bound that has room for one. Use an engine
from one thread (the event loop's).

A card is known to risk only by its card key: a keyed hash that is the same for every payment with
the card (the vault's fingerprint of the number), and is what the blocklist's `cards` lists, in hex.
"""

import itertools
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from types import ModuleType

from .. import hotpath
from .config import RiskConfig

__all__ = ["REASON_AMOUNT_LIMIT", "REASON_BLOCKED_BIN", "REASON_BLOCKED_CARD", "REASON_BLOCKED_COUNTRY",
           "REASON_DAILY_LIMIT", "REASON_DUPLICATE", "REASON_VELOCITY", "RiskDecision", "RiskEngine", "compile_table"]

REASON_AMOUNT_LIMIT = "risk_amount_limit"
REASON_DAILY_LIMIT = "risk_daily_limit"
REASON_VELOCITY = "risk_velocity"
REASON_BLOCKED_BIN = "risk_blocked_bin"
REASON_BLOCKED_CARD = "risk_blocked_card"
REASON_BLOCKED_COUNTRY = "risk_blocked_country"
REASON_DUPLICATE = "risk_duplicate"


@dataclass(frozen=True, slots=True)
class RiskDecision:
    """What risk says of one payment, to record with it: the file's version, and for a decline the rule
    that declined (a limit's or velocity rule's name, "blocklist.bins", ..., "duplicates") and why."""

    allowed: bool
    rule: str         # "" when allowed
    reason_code: str  # "" when allowed
    version: str


def compile_table(config: RiskConfig, backend: ModuleType | None = None):
    """The hot-path RiskTable of a RiskConfig, with no state yet (backend: as RiskEngine takes it)."""
    backend = hotpath.risk_rules if backend is None else backend
    blocklist = config.blocklist
    return backend.RiskTable(
        limits=[backend.LimitSpec(limit.merchant, limit.currency, limit.max_amount_minor, limit.max_daily_minor)
                for limit in config.limits],
        velocity=[backend.VelocitySpec(rule.name, rule.per, rule.window_seconds, rule.max_count,
                                       rule.max_amount_minor, rule.currency) for rule in config.velocity],
        blocked_bins=blocklist.bins, blocked_cards=blocklist.cards, blocked_countries=blocklist.countries,
        duplicate_window_seconds=config.duplicate_window_seconds,
        max_tracked_cards=config.max_tracked_cards, max_tracked_merchants=config.max_tracked_merchants)


class RiskEngine:
    """A RiskConfig compiled for the hot path, with the windows and daily sums it keeps.

    clock gives the time in seconds since the epoch (UTC days bound the daily sums), injected so
    tests step it instead of sleeping. backend is the hot-path risk_rules module to build with; the
    default is the one payswitch.hotpath chose (benchmarks and tests pass each twin).

    Arguments of evaluate: merchant and currency as the payment carries them; amount_minor an int
    of minor units (a negative one is a ValueError); card_key the keyed hash (bytes) of the card
    number or wallet token, the same for every payment with that card; bin the card number's
    leading digits (6 to 11 of them; more are fine, only 11 are used) or None for a wallet; country
    the card's issuer country from the BIN table, or None when unknown.
    """

    __slots__ = ("config", "version", "_table", "_admit", "_clock", "_allowed", "_declines")

    def __init__(self, config: RiskConfig, *, clock: Callable[[], float] = time.time,
                 backend: ModuleType | None = None):
        backend = hotpath.risk_rules if backend is None else backend
        self.config = config
        self.version = config.version
        self._table = compile_table(config, backend)
        self._admit = self._table.admit
        self._clock = clock
        version = config.version
        self._allowed = RiskDecision(True, "", "", version)
        # Indexed by the table's answer: the fixed checks, then two per limit, then one per velocity rule.
        declines = [None] * backend.FIRST_LIMIT
        declines[backend.BLOCKED_BIN] = RiskDecision(False, "blocklist.bins", REASON_BLOCKED_BIN, version)
        declines[backend.BLOCKED_CARD] = RiskDecision(False, "blocklist.cards", REASON_BLOCKED_CARD, version)
        declines[backend.BLOCKED_COUNTRY] = RiskDecision(False, "blocklist.countries", REASON_BLOCKED_COUNTRY, version)
        declines[backend.DUPLICATE] = RiskDecision(False, "duplicates", REASON_DUPLICATE, version)
        for limit in config.limits:
            declines.append(RiskDecision(False, limit.name, REASON_AMOUNT_LIMIT, version))
            declines.append(RiskDecision(False, limit.name, REASON_DAILY_LIMIT, version))
        declines += [RiskDecision(False, rule.name, REASON_VELOCITY, version) for rule in config.velocity]
        self._declines: tuple[RiskDecision, ...] = tuple(declines)

    def evaluate(self, merchant: str, currency: str, amount_minor: int, card_key: bytes, bin: str | None,
                 country: str | None) -> RiskDecision:
        """The decision on one payment; an allowed payment is counted in every window and sum at once."""
        # The clock's seconds as integer microseconds, inline: this line runs once per payment.
        index = self._admit(merchant, currency, amount_minor, card_key, bin, country, round(self._clock() * 1_000_000))
        return self._allowed if index < 0 else self._declines[index]

    def evaluate_many(self, items: Iterable[tuple[str, str, int, bytes, str | None, str | None]],
                      instants_us: Sequence[int] | None = None) -> list[RiskDecision]:
        """Decisions on a batch of (merchant, currency, amount_minor, card_key, bin, country), in order:
        each payment sees those before it (two equal ones in a batch are duplicates). instants_us: each
        item's instant in integer microseconds, never decreasing (the switch passes each payment's
        creation time, so what it restores from the store counts from the instant it was judged at);
        by default the clock's now for all. An item the table refuses (a negative amount, a card key
        that is not bytes) raises, with the items before it already decided and recorded: validate
        items first, as the edge does."""
        if instants_us is None:
            timed = zip(items, itertools.repeat(round(self._clock() * 1_000_000)))
        else:
            timed = zip(items, instants_us, strict=True)
        admit, allowed, declines = self._admit, self._allowed, self._declines
        decisions = []
        for (merchant, currency, amount_minor, card_key, bin, country), now_us in timed:
            index = admit(merchant, currency, amount_minor, card_key, bin, country, now_us)
            decisions.append(allowed if index < 0 else declines[index])
        return decisions

    def decision(self, answer: int) -> RiskDecision:
        """The decision a hot-path answer stands for (-1: allowed), for tools that call the table themselves."""
        return self._allowed if answer < 0 else self._declines[answer]

    def carry_state_from(self, previous: "RiskEngine") -> None:
        """Take over the windows, duplicate fingerprints and daily sums of the engine this one replaces.

        Call it just before swapping this engine in, with no evaluation in between (both on the event
        loop's thread), and before this engine evaluates anything. Velocity history carries for rules
        whose name, per and currency are unchanged; daily sums for (merchant, currency) pairs that
        still have a daily limit. Both engines must use the same backend (TypeError otherwise).
        """
        self._table.adopt_state(previous._table)

    def restore_since_us(self, now_us: int, replacing: "RiskEngine | None" = None) -> int | None:
        """The instant after which `restore` wants every payment that passed risk, at now_us (integer
        microseconds), or None when these rules keep nothing to restore; replacing: the engine this one
        will carry state from, whose state then need not be restored."""
        return self._table.restore_since_us(now_us, None if replacing is None else replacing._table)

    def restore(self, payments: Iterable[tuple[str, str, int, bytes, int]]) -> None:
        """Counts again, unchecked, the payments that passed risk before this engine existed: (merchant,
        currency, amount_minor, card_key or b"" when not kept, instant_us), oldest first, since
        restore_since_us. Call it before the engine evaluates anything, after carry_state_from if this
        engine replaces one: only what did not carry over is restored, so nothing counts twice."""
        restore = self._table.restore
        for merchant, currency, amount_minor, card_key, instant_us in payments:
            restore(merchant, currency, amount_minor, card_key, instant_us)

    def stats(self) -> dict[str, int]:
        """Tracked card keys and merchants, and how many unexpired ones the caps have evicted so far."""
        return self._table.stats()

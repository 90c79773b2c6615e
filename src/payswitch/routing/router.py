"""The switch's live routing: the current table, swapped whole, and channel health applied to its choice.

A reload builds and validates a new RoutingTable aside and then replaces one reference, so a payment
is routed wholly by the old table or wholly by the new one; a batch reads the reference once and is
routed by one version throughout. Health only reorders a rule's channels, it never adds one: a channel
whose circuit is open, or whose recent success rate is under the rule's `min_success_rate_percent`,
moves behind the others (and is still tried last, rather than refusing the payment outright).
"""

import time
from collections.abc import Callable
from dataclasses import dataclass

from ..payments.errors import NoRoute

#: The rule name recorded when the merchant's configured default channel was used.
MERCHANT_DEFAULT_RULE = "merchant-default"

#: How long a channel's success rate is reused: computing it walks the channel's recent window. The
#: breaker's state is read afresh for every payment.
HEALTH_REFRESH_SECONDS = 0.25


@dataclass(frozen=True, slots=True)
class Route:
    version: str
    rule: str
    channels: tuple[str, ...]  # in the order to try them


class Router:
    def __init__(self, table, default_channels: dict[str, str], channels=None, *,
                 monotonic: Callable[[], float] = time.monotonic):
        """`channels` (a ChannelDirectory) answers circuit_open(name) and health(name); None routes
        without regard to health."""
        self._table = table
        self._defaults = {merchant: Route("", MERCHANT_DEFAULT_RULE, (channel,))
                          for merchant, channel in default_channels.items()}
        self._channels = channels
        self._monotonic = monotonic
        self._success_rates: dict[str, tuple[float, int | None]] = {}

    @property
    def table(self):
        """The table in use (None when the switch has no routing file); read once per batch."""
        return self._table

    def swap(self, table) -> None:
        self._table = table

    def route(self, merchant: str, currency: str, amount_minor: int, method: str, card_number: str | None = None,
              wallet_provider: str | None = None, *, table=None) -> Route:
        """Where to send a payment; raises NoRoute when neither a rule nor the merchant's default applies."""
        table = self._table if table is None else table
        decision = None if table is None else table.decide(merchant, currency, amount_minor, method,
                                                           card_number, wallet_provider)
        if decision is None:
            default = self._defaults.get(merchant)
            if default is None:
                raise NoRoute("" if table is None else table.version)
            if table is None:
                return default
            return Route(table.version, MERCHANT_DEFAULT_RULE, default.channels)
        return Route(decision.version, decision.rule,
                     self._healthy_first(decision.channels, decision.min_success_rate_percent))

    def _healthy_first(self, channels: tuple[str, ...], min_success_rate: int | None) -> tuple[str, ...]:
        if self._channels is None or len(channels) < 2:
            return channels
        demoted = [name for name in channels if self._unfit(name, min_success_rate)]
        if not demoted or len(demoted) == len(channels):
            return channels
        return tuple(name for name in channels if name not in demoted) + tuple(demoted)

    def _unfit(self, name: str, min_success_rate: int | None) -> bool:
        if self._channels.circuit_open(name):
            return True
        if min_success_rate is None:
            return False
        rate = self._success_rate(name)
        return rate is not None and rate < min_success_rate

    def _success_rate(self, name: str) -> int | None:
        now = self._monotonic()
        cached = self._success_rates.get(name)
        if cached is None or now - cached[0] >= HEALTH_REFRESH_SECONDS:
            cached = (now, self._channels.health(name).success_rate_percent)
            self._success_rates[name] = cached
        return cached[1]

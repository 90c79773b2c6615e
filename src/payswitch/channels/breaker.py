"""The circuit breaker of one channel: stop calling a channel that keeps failing, then probe it.

A dead channel would cost every payment routed to it a full timeout and an unknown outcome; while
the breaker is open the guard refuses at once with FAILED "channel_circuit_open" (the channel surely
did not act), so the switch can send the payment to another channel instead.

    CLOSED     calls pass; `failure_threshold` consecutive technical failures open it. Only
               consecutive failures are counted (no failure ratio): the rule is easy to reason about,
               and the health window already reports ratios for routing.
    OPEN       calls are refused for `open_seconds`, then it is HALF_OPEN.
    HALF_OPEN  up to `half_open_probes` calls at a time pass as probes; the first probe to answer
               decides: success closes (counts reset), failure opens again for `open_seconds`.

The state is computed from the injected clock when read, so tests move time instead of sleeping.
No I/O here beyond a log line per transition: WARNING when it opens (naming the failed call that
opened it, when the caller says), INFO for half-open and closed.

Each admitted call holds a `Permit` naming the period (`generation`) it was admitted in, and only
results of the current period count: a slow call that started before the breaker opened cannot close
it, a late failure cannot extend it, and a probe that lost the race to another probe is ignored. A
call abandoned without an answer (its caller cancelled) is `release`d: that frees its probe slot and
counts neither way, since a caller going away says nothing about the channel.
"""

import enum
import logging
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

from .base import ChannelResponse, Outcome

logger = logging.getLogger(__name__)

#: FAILED codes that are the channel's own answer about the request (it is up and deciding), so they
#: never count against it. Every other FAILED code, and every UNKNOWN, is a technical failure:
#: channel_unavailable, channel_internal, channel_resource_exhausted, channel_unimplemented,
#: channel_unauthenticated, channel_permission_denied, and any code this table does not name.
BUSINESS_REFUSAL_CODES = frozenset({
    "channel_out_of_range",
    "channel_failed_precondition",
    "channel_invalid_argument",
    "channel_not_found",
    "channel_already_exists",
})


def is_technical_failure(response: ChannelResponse) -> bool:
    """Whether a response says the channel could not serve (a timeout, a broken or refused connection,
    an internal error), as opposed to the channel deciding: what the breaker and the error rate count."""
    if response.outcome is Outcome.UNKNOWN:
        return True
    if response.outcome is Outcome.FAILED:
        return response.decline_code not in BUSINESS_REFUSAL_CODES
    return False


class BreakerState(enum.StrEnum):
    """Compares equal to its value ("open"), so a reader of a health snapshot needs no import."""

    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


@dataclass(frozen=True, slots=True)
class Permit:
    """Leave to make one call: whether it is a half-open probe, and the period it was admitted in."""

    probe: bool
    generation: int


class CircuitBreaker:
    """The breaker of the channel `name`; see the module docstring. Settings are validated by
    `ResilienceSettings`; `clock` is monotonic seconds."""

    def __init__(self, name: str, *, failure_threshold: int = 5, open_seconds: float = 10.0,
                 half_open_probes: int = 1, clock: Callable[[], float] = time.monotonic):
        self.name = name
        self.failure_threshold = failure_threshold
        self.open_seconds = open_seconds
        self.half_open_probes = half_open_probes
        self._clock = clock
        self._state = BreakerState.CLOSED
        # Increases whenever the breaker opens or closes; a Permit from another period is stale.
        self._generation = 0
        self._consecutive_failures = 0
        self._opened_at = 0.0
        self._probes_in_flight = 0
        #: How many times each state was entered, for metrics.
        self.transitions: Counter[BreakerState] = Counter()

    def __repr__(self) -> str:
        return f"CircuitBreaker(name={self.name!r}, state={self.state.name})"

    @property
    def state(self) -> BreakerState:
        if self._state is BreakerState.OPEN and self._clock() >= self._opened_at + self.open_seconds:
            self._state = BreakerState.HALF_OPEN
            self._probes_in_flight = 0
            self.transitions[BreakerState.HALF_OPEN] += 1
            logger.info("channel %s circuit half-open after %gs: probing", self.name, self.open_seconds)
        return self._state

    @property
    def consecutive_failures(self) -> int:
        return self._consecutive_failures

    def allow(self) -> Permit | None:
        """A Permit for one call, or None when the call must not be made; in HALF_OPEN a permit
        reserves a probe slot, which `record` or `release` frees."""
        state = self.state
        if state is BreakerState.CLOSED:
            return Permit(probe=False, generation=self._generation)
        if state is BreakerState.HALF_OPEN and self._probes_in_flight < self.half_open_probes:
            self._probes_in_flight += 1
            return Permit(probe=True, generation=self._generation)
        return None

    def record(self, permit: Permit, success: bool, last_failure: str = "") -> None:
        """The answer of a call made under `permit`: `success` is False for a technical failure, which
        `last_failure` describes (the call and its answer) for the line logged if the breaker opens."""
        if permit.generation != self._generation:
            return
        state = self.state
        if permit.probe:
            if state is not BreakerState.HALF_OPEN:
                return
            self._probes_in_flight -= 1
            if success:
                self._close()
            else:
                self._open("a failed probe", last_failure)
        elif state is BreakerState.CLOSED:
            if success:
                self._consecutive_failures = 0
                return
            self._consecutive_failures += 1
            if self._consecutive_failures >= self.failure_threshold:
                self._open(f"{self._consecutive_failures} consecutive failures", last_failure)

    def release(self, permit: Permit) -> None:
        """A call made under `permit` ended without an answer: free its probe slot, count nothing."""
        if permit.probe and permit.generation == self._generation and self.state is BreakerState.HALF_OPEN:
            self._probes_in_flight -= 1

    def _open(self, reason: str, last_failure: str) -> None:
        self._state = BreakerState.OPEN
        self._generation += 1
        self._opened_at = self._clock()
        self._probes_in_flight = 0
        self.transitions[BreakerState.OPEN] += 1
        # WARNING: from now on this channel's payments fail over or fail until a probe succeeds.
        logger.warning("channel %s circuit open after %s%s; refusing calls for %gs", self.name, reason,
                       f" (last: {last_failure})" if last_failure else "", self.open_seconds,
                       extra={"channel": self.name, "breaker_state": BreakerState.OPEN})

    def _close(self) -> None:
        self._state = BreakerState.CLOSED
        self._generation += 1
        self._consecutive_failures = 0
        self._probes_in_flight = 0
        self.transitions[BreakerState.CLOSED] += 1
        logger.info("channel %s circuit closed after a successful probe", self.name)

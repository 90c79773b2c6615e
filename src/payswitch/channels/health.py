"""Rolling statistics of one channel: what routing reads to rank and eliminate channels.

The window holds the outcomes of the last `window_size` operations that ended less than
`window_seconds` ago, so a channel's rate follows what it does now, not last night. Each record is
O(1) amortized (samples leave the window as new ones arrive or as time passes); a read counts in O(1)
and sorts the window's latencies once (at most `window_size` integers) for exact percentiles.

Which operations are samples: each answered Authorize, Capture, Void or Refund (each item of a
batch, with the batch's latency, since that is how long the item waited). Not samples: Inquire (it
reports on an earlier operation, so its APPROVED is not this channel approving anything now), calls
the guard refused (the channel was not asked; they are counted apart), and calls whose caller went
away before the answer (no outcome to count).

    success_rate_percent = approved * 100 // (approved + declined + errors)
    error_rate_percent   = errors * 100 // (approved + declined + errors)

both None while that denominator is below `min_samples`, so a channel is never judged on a handful
of calls. Business refusals (FAILED channel_out_of_range and the like: the request was wrong, not the
channel) are in `calls` and `refused` but in neither rate.
"""

import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass

from .base import ChannelResponse, Outcome
from .breaker import BreakerState, is_technical_failure

APPROVED, DECLINED, REFUSED, ERROR = "approved", "declined", "refused", "error"


def sample_kind(response: ChannelResponse) -> str:
    """Which count an answered operation goes to."""
    if is_technical_failure(response):
        return ERROR
    if response.outcome is Outcome.APPROVED:
        return APPROVED
    if response.outcome is Outcome.DECLINED:
        return DECLINED
    return REFUSED


@dataclass(frozen=True, slots=True)
class ChannelHealth:
    """One channel's health at one moment; window counts cover the samples described in the module
    docstring, refusal counts are totals since the channel was configured."""

    name: str
    breaker_state: BreakerState
    in_flight: int
    max_in_flight: int
    calls: int
    approved: int
    declined: int
    refused: int
    errors: int
    success_rate_percent: int | None
    error_rate_percent: int | None
    latency_p50_us: int | None
    latency_p99_us: int | None
    circuit_open_refusals: int
    busy_refusals: int


def percentile(ordered: list[int], percent: int) -> int | None:
    """The nearest-rank percentile of ascending `ordered`: the smallest value with at least `percent`
    percent of the values at or below it (so p99 of 100 values is the 99th, never an average)."""
    if not ordered:
        return None
    rank = -(-percent * len(ordered) // 100)
    return ordered[max(rank, 1) - 1]


class ChannelStats:
    """The sliding window and the in-flight and refusal counts of one channel; `clock` is the same
    monotonic seconds the caller measured latencies with."""

    def __init__(self, *, window_size: int = 200, window_seconds: float = 300.0, min_samples: int = 20,
                 clock: Callable[[], float] = time.monotonic):
        self.window_size = window_size
        self.window_seconds = window_seconds
        self.min_samples = min_samples
        self._clock = clock
        # (ended at, kind, latency in microseconds), oldest first.
        self._samples: deque[tuple[float, str, int]] = deque()
        self._counts: Counter[str] = Counter()
        #: Calls the guard let through that have not answered yet (operations and inquiries).
        self.in_flight = 0
        self.circuit_open_refusals = 0
        self.busy_refusals = 0

    def record(self, response: ChannelResponse, latency_seconds: float) -> None:
        """An answered operation that took `latency_seconds`."""
        now = self._clock()
        self._expire(now)
        if len(self._samples) >= self.window_size:
            self._forget_oldest()
        kind = sample_kind(response)
        self._samples.append((now, kind, max(0, round(latency_seconds * 1_000_000))))
        self._counts[kind] += 1

    def snapshot(self, *, name: str, breaker_state: BreakerState, max_in_flight: int) -> ChannelHealth:
        self._expire(self._clock())
        counts = self._counts
        judged = counts[APPROVED] + counts[DECLINED] + counts[ERROR]
        enough = judged >= self.min_samples and judged > 0
        latencies = sorted(sample[2] for sample in self._samples)
        return ChannelHealth(
            name=name,
            breaker_state=breaker_state,
            in_flight=self.in_flight,
            max_in_flight=max_in_flight,
            calls=len(self._samples),
            approved=counts[APPROVED],
            declined=counts[DECLINED],
            refused=counts[REFUSED],
            errors=counts[ERROR],
            success_rate_percent=counts[APPROVED] * 100 // judged if enough else None,
            error_rate_percent=counts[ERROR] * 100 // judged if enough else None,
            latency_p50_us=percentile(latencies, 50),
            latency_p99_us=percentile(latencies, 99),
            circuit_open_refusals=self.circuit_open_refusals,
            busy_refusals=self.busy_refusals,
        )

    def _expire(self, now: float) -> None:
        oldest_kept = now - self.window_seconds
        while self._samples and self._samples[0][0] <= oldest_kept:
            self._forget_oldest()

    def _forget_oldest(self) -> None:
        _, kind, _ = self._samples.popleft()
        self._counts[kind] -= 1

"""A ChannelClient that protects the switch from one misbehaving channel, and measures it.

`GuardedChannel` wraps any ChannelClient with a circuit breaker (`breaker`), a limit on calls in
flight, and rolling statistics (`health`). Money safety decides every refusal's outcome:

- An operation the guard refuses was never sent, so it is FAILED with decline_code
  "channel_circuit_open" (breaker open, or its half-open probes taken) or "channel_busy"
  (`max_in_flight` calls already waiting). With "channel_unavailable" (no connection could be made)
  these are `FAILOVER_CODES`: the only FAILED answers after which the switch may send the payment to
  the next channel. Never after UNKNOWN (the channel may have acted), nor after the channel's own
  refusal (the next channel would refuse the same request for the same reason, or worse, accept it).
- Inquire is never refused by the breaker: it is how PENDING payments get resolved, it moves no
  money, and an open breaker must not leave them pending. It does respect the in-flight limit, and
  over it the answer is UNKNOWN, never FAILED (a FAILED inquiry means "the operation never reached
  the channel" and would wrongly settle a possibly approved payment). Its answers feed neither the
  breaker nor the statistics: only an operation's probe closes the breaker.
- `batch` is one call holding one slot and one breaker permit: refused, every item gets the refusal;
  answered, every item is a statistics sample, and the breaker sees one result, a failure only when
  every item is a technical failure (one item the channel decided shows it is up).
- The limit counts calls in flight. A call over it waits for a slot, first come first served, for
  `slot_wait_seconds` at most and never more than half its own timeout (the rest is the call's), so
  a burst of callers queues for a moment instead of being refused; one still without a slot is refused
  "channel_busy". Inquire does not wait: a full channel answers it UNKNOWN at once.
- A caller cancelled while the inner call runs frees its slot and its probe slot and records nothing:
  a caller going away says nothing about the channel (its own timeouts come back as UNKNOWN and
  count). The same holds if the inner client breaks its contract and raises. Timeouts are passed to
  the inner client unchanged.
- Every answer of unknown outcome (a timeout, a call cut after the request left), Inquire's too, is
  logged at WARNING naming the channel, the operation and its reference (the operation id): the
  payment stays PENDING until the channel says, and an operator may have to ask it.
"""

import asyncio
import logging
import math
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, fields

from ..v1 import channel_pb2
from .base import BatchableRequest, ChannelClient, ChannelResponse, Outcome, batch_operation_names
from .breaker import CircuitBreaker, is_technical_failure
from .health import ChannelHealth, ChannelStats

logger = logging.getLogger(__name__)

CIRCUIT_OPEN_CODE = "channel_circuit_open"
BUSY_CODE = "channel_busy"
UNAVAILABLE_CODE = "channel_unavailable"
#: FAILED decline codes after which the switch may try the next channel: the request surely never
#: reached this channel.
FAILOVER_CODES = frozenset({UNAVAILABLE_CODE, CIRCUIT_OPEN_CODE, BUSY_CODE})
#: A WARNING about a batch names this many of its references; the resolver's lines name each one.
_MAX_REFERENCES_LOGGED = 20


def may_fail_over(response: ChannelResponse) -> bool:
    """Whether the switch may send the same payment to another channel after this answer."""
    return response.outcome is Outcome.FAILED and response.decline_code in FAILOVER_CODES


@dataclass(frozen=True, slots=True)
class ResilienceSettings:
    """How one channel is guarded: breaker, in-flight limit, statistics window."""

    failure_threshold: int = 5
    open_seconds: float = 10.0
    half_open_probes: int = 1
    max_in_flight: int = 64
    slot_wait_seconds: float = 0.25
    window_size: int = 200
    window_seconds: float = 300.0
    min_samples: int = 20

    def __post_init__(self):
        for field in fields(self):
            value = getattr(self, field.name)
            if field.type is int:
                if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                    raise ValueError(f"{field.name} must be a whole number >= 1, not {value!r}")
            elif (isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value)
                  or value <= 0):
                raise ValueError(f"{field.name} must be a finite number of seconds > 0, not {value!r}")
        if self.min_samples > self.window_size:
            raise ValueError(f"min_samples ({self.min_samples}) must be at most window_size ({self.window_size}),"
                             " or the success rate could never be known")


class GuardedChannel(ChannelClient):
    """`inner` behind a breaker and an in-flight limit, with rolling statistics; see the module
    docstring. `clock` (monotonic seconds) drives the breaker, the window and latencies."""

    def __init__(self, inner: ChannelClient, *, settings: ResilienceSettings = ResilienceSettings(),
                 clock: Callable[[], float] = time.monotonic):
        self.inner = inner
        self.name = inner.name
        self.settings = settings
        self._clock = clock
        self.breaker = CircuitBreaker(inner.name, failure_threshold=settings.failure_threshold,
                                      open_seconds=settings.open_seconds,
                                      half_open_probes=settings.half_open_probes, clock=clock)
        self.stats = ChannelStats(window_size=settings.window_size, window_seconds=settings.window_seconds,
                                  min_samples=settings.min_samples, clock=clock)
        self._slots = asyncio.Semaphore(settings.max_in_flight)

    def __repr__(self) -> str:
        return f"GuardedChannel({self.inner!r})"

    @property
    def batch_supported(self) -> bool:
        return self.inner.batch_supported

    def health(self) -> ChannelHealth:
        return self.stats.snapshot(name=self.name, breaker_state=self.breaker.state,
                                   max_in_flight=self.settings.max_in_flight)

    async def authorize(self, request: channel_pb2.ChannelAuthorizeRequest,
                        timeout: float | None = None) -> ChannelResponse:
        return (await self._guarded("authorize", [request], timeout,
                                    lambda left: self._one(self.inner.authorize(request, left))))[0]

    async def capture(self, request: channel_pb2.ChannelCaptureRequest,
                      timeout: float | None = None) -> ChannelResponse:
        return (await self._guarded("capture", [request], timeout,
                                    lambda left: self._one(self.inner.capture(request, left))))[0]

    async def void(self, request: channel_pb2.ChannelVoidRequest, timeout: float | None = None) -> ChannelResponse:
        return (await self._guarded("void", [request], timeout,
                                    lambda left: self._one(self.inner.void(request, left))))[0]

    async def refund(self, request: channel_pb2.ChannelRefundRequest,
                     timeout: float | None = None) -> ChannelResponse:
        return (await self._guarded("refund", [request], timeout,
                                    lambda left: self._one(self.inner.refund(request, left))))[0]

    async def batch(self, requests: Sequence[BatchableRequest], timeout: float | None = None) -> list[ChannelResponse]:
        batch_operation_names(requests)  # a wrong type is the caller's bug: raise before taking a slot
        if not requests:
            return []
        return await self._guarded("batch", requests, timeout, lambda left: self.inner.batch(requests, left))

    async def inquire(self, request: channel_pb2.ChannelInquireRequest,
                      timeout: float | None = None) -> ChannelResponse:
        if self._slots.locked():
            self.stats.busy_refusals += 1
            return ChannelResponse(Outcome.UNKNOWN, message=(
                f"channel {self.name} has {self.settings.max_in_flight} calls in flight; inquiry not sent,"
                " outcome still unknown"))
        async with self._slots:
            started = self._clock()
            self.stats.in_flight += 1
            try:
                response = await self.inner.inquire(request, timeout)
            finally:
                self.stats.in_flight -= 1
        self._warn_unknown("inquire", [request], [response], self._clock() - started, timeout)
        return response

    async def close(self) -> None:
        await self.inner.close()

    @staticmethod
    async def _one(call: Awaitable[ChannelResponse]) -> list[ChannelResponse]:
        return [await call]

    async def _guarded(self, operation: str, requests: Sequence, timeout: float | None,
                       call: Callable[[float | None], Awaitable[list[ChannelResponse]]]) -> list[ChannelResponse]:
        """`call(timeout left)` under a permit and a slot, its answers recorded; or one refusal per
        request, uncalled."""
        count = len(requests)
        permit = self.breaker.allow()
        if permit is None:
            self.stats.circuit_open_refusals += 1
            return [ChannelResponse(Outcome.FAILED, decline_code=CIRCUIT_OPEN_CODE, message=(
                f"channel {self.name} circuit is {self.breaker.state} after repeated failures; not sent"))] * count
        waited_from = self._clock()
        if not await self._take_slot(timeout):
            self.breaker.release(permit)
            self.stats.busy_refusals += 1
            return [ChannelResponse(Outcome.FAILED, decline_code=BUSY_CODE, message=(
                f"channel {self.name} has {self.settings.max_in_flight} calls in flight; not sent"))] * count
        started = self._clock()
        if timeout is not None:
            timeout = max(timeout - (started - waited_from), 0.0)
        self.stats.in_flight += 1
        try:
            responses = await call(timeout)
        except BaseException:
            self.breaker.release(permit)
            raise
        finally:
            self.stats.in_flight -= 1
            self._slots.release()
        latency = self._clock() - started
        for response in responses:
            self.stats.record(response, latency)
        self._warn_unknown(operation, requests, responses, latency, timeout)
        failed = all(map(is_technical_failure, responses))
        self.breaker.record(permit, success=not failed,
                            last_failure=_last_failure(operation, requests, responses[0]) if failed else "")
        return responses

    def _warn_unknown(self, operation: str, requests: Sequence, responses: Sequence[ChannelResponse], latency: float,
                      timeout: float | None) -> None:
        """A WARNING for a call whose outcome is unknown (it timed out, or was cut after the request
        left): its payments stay PENDING until Inquire answers, and an operator may have to ask."""
        unknown = [(request.reference, response) for request, response in zip(requests, responses)
                   if response.outcome is Outcome.UNKNOWN]
        if not unknown:
            return
        latency_ms = int(latency * 1000)
        first = unknown[0][1].message
        if operation == "batch":
            logger.warning("channel %s: batch of %d: %d outcomes unknown after %d ms: %s", self.name, len(requests),
                           len(unknown), latency_ms, first, extra={
                               "channel": self.name, "operation": operation, "unknown": len(unknown),
                               "references": [reference for reference, _ in unknown[:_MAX_REFERENCES_LOGGED]],
                               "latency_ms": latency_ms, "timeout_ms": _milliseconds(timeout)})
        else:
            logger.warning("channel %s: %s %s outcome unknown after %d ms: %s", self.name, operation, unknown[0][0],
                           latency_ms, first, extra={
                               "channel": self.name, "operation": operation, "reference": unknown[0][0],
                               "latency_ms": latency_ms, "timeout_ms": _milliseconds(timeout)})

    async def _take_slot(self, timeout: float | None) -> bool:
        """One of the `max_in_flight` slots, waited for as the module docstring says; False if none came."""
        if not self._slots.locked():
            await self._slots.acquire()  # free: taken without yielding to the loop
            return True
        wait_s = self.settings.slot_wait_seconds if timeout is None else min(self.settings.slot_wait_seconds,
                                                                             timeout / 2)
        try:
            await asyncio.wait_for(self._slots.acquire(), wait_s)
        except TimeoutError:
            return False
        return True


def _milliseconds(seconds: float | None) -> int | None:
    return None if seconds is None else int(seconds * 1000)


def _last_failure(operation: str, requests: Sequence, response: ChannelResponse) -> str:
    """The failed call that the breaker may open on, for its log line: `authorize op_...: <answer>`."""
    call = f"batch of {len(requests)} from {requests[0].reference}" if operation == "batch" else (
        f"{operation} {requests[0].reference}")
    return f"{call}: {response.decline_code or response.message or response.outcome.value}"

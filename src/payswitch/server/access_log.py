"""The access line: one INFO line on the `payswitch.access` logger for each call the switch answers
(each unary call, each Batch call, each Stream message, and each Stream when it ends), so an operator
can follow any call by its trace id, merchant, key or payment, and count refusals by reason.

Its fields, beside the ones every line of the call carries from its log context (trace_id, method,
merchant_id, key_id, payment_id; docs/operations.md "Logs"): `status`, the gRPC status name (a
Stream message's is its ItemError's, OK otherwise); `reason`, the ErrorInfo reason of a refusal
(null when OK); `latency_us`, whole microseconds spent in the switch's handler. A refused signature
names what the call claimed as `claimed_merchant_id` and `claimed_key_id`, never as merchant_id:
nothing was verified, so the line must not be counted among that merchant's calls.
"""

import asyncio
import logging
import time

import grpc

from ..hotpath import signing
from ..vocabulary import is_name

log = logging.getLogger("payswitch.access")


def claimed_identifier(value: str | bytes | None) -> str | None:
    """A merchant or key id as an unverified caller sent it, fit for a log line: only a well-formed
    identifier, so that no caller-chosen text (a secret pasted in the wrong header) reaches the logs;
    None when absent or malformed (the reason already says which)."""
    if isinstance(value, bytes):
        value = value.decode("ascii", "replace")
    return value if value and is_name(value) else None


def metadata_value(metadata, header: str) -> str | bytes | None:
    """The first value of `header` in gRPC metadata."""
    for key, value in metadata:
        if key == header:
            return value
    return None


class AccessLine:
    """One call's access line: started when made, given its outcome as the call ends, written once."""

    __slots__ = ("_started_ns", "status", "reason", "_fields")

    def __init__(self):
        self._started_ns = time.perf_counter_ns()
        self.status: str | None = None  # None until the call's outcome is known: written as UNKNOWN
        self.reason: str | None = None
        self._fields: dict[str, object] = {}

    def answered(self) -> None:
        self.status = "OK"

    def refused(self, code: grpc.StatusCode | str, reason: str | None) -> None:
        self.status = code if isinstance(code, str) else code.name
        self.reason = reason

    def refused_signature(self, reason: str, merchant: str | bytes | None, key_id: str | bytes | None) -> None:
        self.refused(grpc.StatusCode.UNAUTHENTICATED, reason)
        self._fields["claimed_merchant_id"] = claimed_identifier(merchant)
        self._fields["claimed_key_id"] = claimed_identifier(key_id)

    def refused_metadata(self, reason: str, metadata) -> None:
        """A refused signature, its claims read from the call's metadata."""
        self.refused_signature(reason, metadata_value(metadata, signing.MERCHANT_HEADER),
                               metadata_value(metadata, signing.KEY_ID_HEADER))

    def cancelled(self, context: grpc.aio.ServicerContext | None = None) -> None:
        """The call was cancelled: by its deadline when none is left, else by the caller going away."""
        remaining = None if context is None else context.time_remaining()
        self.refused("DEADLINE_EXCEEDED" if remaining is not None and remaining <= 0 else "CANCELLED", None)

    def add(self, **fields) -> None:
        self._fields.update(fields)

    def write(self, method: str) -> None:
        if not log.isEnabledFor(logging.INFO):
            return
        status = self.status or "UNKNOWN"
        fields = {"status": status, "reason": self.reason,
                  "latency_us": (time.perf_counter_ns() - self._started_ns) // 1000, **self._fields}
        message = f"{method} {status} {self.reason}" if self.reason else f"{method} {status}"
        log.info(message, extra=fields)


async def observed(line: AccessLine, method: str, call, context: grpc.aio.ServicerContext | None = None):
    """Awaits `call` (a coroutine answering the RPC) and writes `line` however it ends: a status the
    handler set stays, a return is OK, a cancellation says so, anything else is UNKNOWN."""
    try:
        response = await call
        if line.status is None:
            line.answered()
        return response
    except asyncio.CancelledError:
        line.cancelled(context)
        raise
    finally:
        line.write(method)

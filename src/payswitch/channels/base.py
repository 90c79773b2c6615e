"""What the switch needs of a channel: one method per operation, outcomes classified for money safety.

A ChannelClient never raises for a channel's failure; it says what the switch may conclude:
APPROVED or DECLINED (the channel decided), FAILED (the channel surely did not act), or UNKNOWN
(it may have acted: the payment becomes PENDING and is never re-sent elsewhere).

`batch` sends many operations at once and answers each as its single call would; every client has it,
since the default sends the single calls concurrently.
"""

import abc
import asyncio
import enum
from collections.abc import Sequence
from dataclasses import dataclass

from ..v1 import channel_pb2


class Outcome(enum.Enum):
    APPROVED = "approved"
    DECLINED = "declined"
    FAILED = "failed"
    UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True)
class ChannelResponse:
    outcome: Outcome
    channel_reference: str = ""
    # For DECLINED and FAILED: a machine-readable reason ("insufficient_funds", "channel_error", ...).
    decline_code: str = ""
    message: str = ""
    # The amount the channel says it acted on (ChannelResult.amount); None when it said none.
    amount_minor: int | None = None
    currency: str = ""


#: The operations a Batch may carry, by request type; each name is both the ChannelClient method and
#: the ChannelBatchItem field (Inquire is never batched: it is the switch's follow-up, one at a time).
BATCH_OPERATIONS: dict[type, str] = {
    channel_pb2.ChannelAuthorizeRequest: "authorize",
    channel_pb2.ChannelCaptureRequest: "capture",
    channel_pb2.ChannelVoidRequest: "void",
    channel_pb2.ChannelRefundRequest: "refund",
}

BatchableRequest = (channel_pb2.ChannelAuthorizeRequest | channel_pb2.ChannelCaptureRequest
                    | channel_pb2.ChannelVoidRequest | channel_pb2.ChannelRefundRequest)


def batch_operation_names(requests: Sequence[BatchableRequest]) -> list[str]:
    """The operation of each request, checked for all before anything is sent, so a wrong type can
    never leave a batch half sent."""
    names = []
    for index, request in enumerate(requests):
        name = BATCH_OPERATIONS.get(type(request))
        if name is None:
            raise TypeError(f"requests[{index}] is a {type(request).__name__}, not an operation a batch carries")
        names.append(name)
    return names


class ChannelClient(abc.ABC):
    """One configured channel. `timeout` is seconds for that call."""

    name: str

    @abc.abstractmethod
    async def authorize(self, request: channel_pb2.ChannelAuthorizeRequest, timeout: float) -> ChannelResponse: ...

    @abc.abstractmethod
    async def capture(self, request: channel_pb2.ChannelCaptureRequest, timeout: float) -> ChannelResponse: ...

    @abc.abstractmethod
    async def void(self, request: channel_pb2.ChannelVoidRequest, timeout: float) -> ChannelResponse: ...

    @abc.abstractmethod
    async def refund(self, request: channel_pb2.ChannelRefundRequest, timeout: float) -> ChannelResponse: ...

    @abc.abstractmethod
    async def inquire(self, request: channel_pb2.ChannelInquireRequest, timeout: float) -> ChannelResponse:
        """The outcome of an earlier operation; UNKNOWN while the channel cannot say."""

    #: Whether to try the channel's own Batch call; a client clears it once the channel answers
    #: UNIMPLEMENTED, and sends single calls from then on.
    batch_supported = False

    async def batch(self, requests: Sequence[BatchableRequest], timeout: float | None = None) -> list[ChannelResponse]:
        """One ChannelResponse per request, in order, each classified as its single call would be:
        one Batch call where the channel has it, else the single calls concurrently."""
        if self.batch_supported and requests:
            answered = await self._batch_call(requests, timeout)
            if answered is not None:
                return answered
        names = batch_operation_names(requests)
        calls = (getattr(self, name)(request, timeout) for name, request in zip(names, requests, strict=True))
        return list(await asyncio.gather(*calls))

    async def _batch_call(self, requests: Sequence[BatchableRequest],
                          timeout: float | None) -> list[ChannelResponse] | None:
        """The channel's Batch call, classified; None when it turned out to have none."""
        return None

    async def close(self) -> None:
        """Releases connections."""

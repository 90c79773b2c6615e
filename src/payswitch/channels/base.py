"""What the switch needs of a channel: one method per operation, outcomes classified for money safety.

A ChannelClient never raises for a channel's failure; it says what the switch may conclude:
APPROVED or DECLINED (the channel decided), FAILED (the channel surely did not act), or UNKNOWN
(it may have acted: the payment becomes PENDING and is never re-sent elsewhere).
"""

import abc
import enum
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

    async def close(self) -> None:
        """Releases connections."""

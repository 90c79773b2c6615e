"""What the switch may conclude from a channel's answer: the one table both channel clients share.

The PaymentChannel contract (protos/payswitch/v1/channel.proto) says a channel answers OK with an
outcome for every decided operation and a non-OK status only when it did not act and will not act on
that reference. Transports break that promise in one direction only: a deadline, a cancelled call or a
broken connection may hide an operation the channel did perform. So a status means "the channel did
not act" (FAILED) only when the channel itself could have sent it or the call surely never left this
process; everything else is UNKNOWN, the payment becomes PENDING and the switch asks Inquire later.

Status codes are handled by NAME (the `grpc.StatusCode` member name, e.g. "OUT_OF_RANGE") so this
module, the simulator and the in-process client need no grpc import.

Operations (Authorize, Capture, Void, Refund):

    OK, outcome APPROVED / DECLINED      APPROVED / DECLINED (decline_code from the channel; for
                                         APPROVED the `amount` acted on, which the payment service
                                         judges against what it asked, processing/settlement.py)
    OK, any other outcome or a reply     UNKNOWN (the channel answered but did not say what it did)
      for another reference
    INVALID_ARGUMENT, FAILED_PRECONDITION, OUT_OF_RANGE, NOT_FOUND, ALREADY_EXISTS,
    PERMISSION_DENIED, UNAUTHENTICATED, UNIMPLEMENTED, INTERNAL, RESOURCE_EXHAUSTED
                                         FAILED, decline_code "channel_" + lowercased name
    UNAVAILABLE, connection never made   FAILED, decline_code "channel_unavailable"
    UNAVAILABLE, anything else           UNKNOWN
    DEADLINE_EXCEEDED, CANCELLED, UNKNOWN, DATA_LOSS, ABORTED, any other name
                                         UNKNOWN
    any code whose details show the transport cut the call after it left (RST_STREAM, "Stream
    removed", a reply larger than the client accepts)
                                         UNKNOWN: these are made by the client's own gRPC library,
                                         not by the channel, and the channel may have acted.

Inquire reports on an EARLIER operation, so only two answers are conclusive about it:

    OK, outcome APPROVED / DECLINED      APPROVED / DECLINED
    OK, outcome IN_PROGRESS              UNKNOWN (still processing)
    NOT_FOUND                            FAILED, decline_code "channel_not_found": the operation never
                                         reached the channel, and by the contract never will
    any other status                     UNKNOWN: the inquiry failed, which says nothing about the
                                         operation (an INTERNAL on Inquire must not turn a possibly
                                         approved authorization into FAILED).

Batch answers each item as its single call would, so an item's result and an item's ChannelError
(its status number, see `status_name`) go through the same two functions; how a whole Batch call's
status or a malformed Batch reply spreads to the items is in `payswitch.channels.batching`.
"""

import re

from ..v1 import channel_pb2
from .base import ChannelResponse, Outcome

#: The channel refused before acting (the contract's non-OK answers, plus codes a channel or its
#: gateway only sends when it turned the request away: auth, unknown method, overload shedding).
DID_NOT_ACT_CODES = frozenset({
    "INVALID_ARGUMENT",
    "FAILED_PRECONDITION",
    "OUT_OF_RANGE",
    "NOT_FOUND",
    "ALREADY_EXISTS",
    "PERMISSION_DENIED",
    "UNAUTHENTICATED",
    "UNIMPLEMENTED",
    "INTERNAL",
    "RESOURCE_EXHAUSTED",
})

#: The call may have reached the channel and been acted on.
OUTCOME_UNKNOWN_CODES = frozenset({
    "DEADLINE_EXCEEDED",
    "CANCELLED",
    "UNKNOWN",
    "DATA_LOSS",
    "ABORTED",
})

#: Status names the simulator (and a ChannelRejected) may carry.
REJECTION_CODES = DID_NOT_ACT_CODES | {"UNAVAILABLE"}

#: gRPC status names by their wire number (fixed by the gRPC protocol): a Batch item's ChannelError
#: carries the number, and this module classifies by name.
STATUS_NAMES = (
    "OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED", "NOT_FOUND", "ALREADY_EXISTS",
    "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION", "ABORTED", "OUT_OF_RANGE",
    "UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE", "DATA_LOSS", "UNAUTHENTICATED",
)
_STATUS_NUMBERS = {name: number for number, name in enumerate(STATUS_NAMES)}

# Texts grpc-core puts in an UNAVAILABLE it made itself when no connection could be established, so
# the request was never sent. grpc 1.85 reports a refused loopback port as
#   "failed to connect to all addresses; last error: UNKNOWN: ipv4:127.0.0.1:PORT:
#    Failed to connect to remote host: Connection refused"
# and an unresolvable name as "errors resolving HOST:PORT: [...] Domain name not found".
# Those are produced at pick time, before a stream exists (calls use wait_for_ready=False).
_CONNECTION_NOT_ESTABLISHED = re.compile(
    r"failed to connect to all addresses|connection refused|errors resolving|dns resolution failed",
    re.IGNORECASE,
)

# Texts grpc-core uses when it cut a call that had already left: a stream reset by the peer or a
# proxy ("Received RST_STREAM with error code 2" arrives as INTERNAL), a stream removed by the
# transport, or a reply over the client's size limit (RESOURCE_EXHAUSTED "Stream removed (CLIENT:
# Received message larger than max ...)"), which means the channel answered and so may have acted.
_CUT_IN_FLIGHT = re.compile(
    r"received rst_stream|stream removed|received message larger than max",
    re.IGNORECASE,
)

# Any run of 12 or more digits could be a card number; a channel's text never needs one.
_DIGIT_RUN = re.compile(r"\d{12,}")
_MAX_MESSAGE_CHARS = 256


def safe_message(text: str) -> str:
    """Channel-supplied text made fit for logs and the payment record: no digit runs, bounded."""
    text = _DIGIT_RUN.sub("[redacted]", text or "")
    return text if len(text) <= _MAX_MESSAGE_CHARS else text[: _MAX_MESSAGE_CHARS - 3] + "..."


def connection_not_established(details: str) -> bool:
    """Whether an UNAVAILABLE's text says the call never left because no connection could be made."""
    return bool(_CONNECTION_NOT_ESTABLISHED.search(details or ""))


def classify_result(result: object, reference: str) -> ChannelResponse:
    """The meaning of an OK answer to any method. `result` is whatever the transport produced (grpc.aio
    yields None when it could not parse the reply); `reference` is the one the switch sent."""
    if not isinstance(result, channel_pb2.ChannelResult):
        return ChannelResponse(Outcome.UNKNOWN, message="channel reply could not be read; outcome unknown")
    if result.reference != reference:
        return ChannelResponse(
            Outcome.UNKNOWN,
            channel_reference=result.channel_reference,
            message="channel answered for another reference; outcome unknown",
        )
    if result.outcome == channel_pb2.CHANNEL_OUTCOME_APPROVED:
        acted_on = {}
        if result.HasField("amount"):
            acted_on = {"amount_minor": result.amount.amount_minor, "currency": result.amount.currency}
        return ChannelResponse(Outcome.APPROVED, result.channel_reference, message=safe_message(result.message),
                               **acted_on)
    if result.outcome == channel_pb2.CHANNEL_OUTCOME_DECLINED:
        return ChannelResponse(
            Outcome.DECLINED,
            result.channel_reference,
            decline_code=safe_message(result.decline_code) or "declined",
            message=safe_message(result.message),
        )
    if result.outcome == channel_pb2.CHANNEL_OUTCOME_IN_PROGRESS:
        return ChannelResponse(
            Outcome.UNKNOWN, result.channel_reference, message="channel is still processing the operation"
        )
    return ChannelResponse(
        Outcome.UNKNOWN, result.channel_reference, message="channel answered without an outcome; outcome unknown"
    )


def classify_status(code: str, details: str, *, inquire: bool = False, debug_text: str = "") -> ChannelResponse:
    """The meaning of a non-OK status named `code` (e.g. "OUT_OF_RANGE") with its `details` text.

    `debug_text` (grpc's debug_error_string) is only searched for the transport's own wording, never
    copied into the response's message."""
    message = f"channel returned {code}: {safe_message(details)}" if details else f"channel returned {code}"
    evidence = f"{details or ''}\n{debug_text or ''}"
    if _CUT_IN_FLIGHT.search(evidence):
        return ChannelResponse(Outcome.UNKNOWN, message=message)
    if inquire:
        if code == "NOT_FOUND":
            return ChannelResponse(Outcome.FAILED, decline_code="channel_not_found", message=message)
        return ChannelResponse(Outcome.UNKNOWN, message=message)
    if code in DID_NOT_ACT_CODES:
        return ChannelResponse(Outcome.FAILED, decline_code=decline_code_for(code), message=message)
    if code == "UNAVAILABLE" and connection_not_established(evidence):
        return ChannelResponse(Outcome.FAILED, decline_code=decline_code_for(code), message=message)
    return ChannelResponse(Outcome.UNKNOWN, message=message)


def status_name(number: int) -> str:
    """The name of a status number; a number gRPC does not define gets a name no rule knows (UNKNOWN)."""
    return STATUS_NAMES[number] if 0 <= number < len(STATUS_NAMES) else f"CODE_{number}"


def status_number(name: str) -> int:
    """The wire number of a status name, for a ChannelError."""
    return _STATUS_NUMBERS[name]


def decline_code_for(code: str) -> str:
    """The machine-readable reason recorded for a status that means the channel did not act."""
    return "channel_" + code.lower()

"""A PaymentChannel Batch call in the switch's terms: the request it sends, what the reply means per item.

Both channel clients use these, so a batch is classified the same over gRPC and in process, and each
item by the single-call table in `status_mapping`:

    reply with one result per item     item i is results[i]: a ChannelResult goes through
                                       classify_result (another reference -> UNKNOWN), a ChannelError
                                       through classify_status with its status name, an empty answer
                                       -> UNKNOWN
    reply with a wrong number of results, or no readable reply
                                       every item UNKNOWN: an item's error carries no reference, so
                                       only the position ties it to its item, and a miscounted reply
                                       has broken that tie (a FAILED read from the wrong position could
                                       hide an approval)
    whole call non-OK                  classify_status once, applied to every item: a status meaning
                                       "did not act" (or a connection never made) -> FAILED for all,
                                       a deadline, reset or dropped connection -> UNKNOWN for all

UNIMPLEMENTED for the whole call is not classified here: it means the channel has no Batch, and the
clients send the single calls instead (safe even if a proxy lied, since the channel is idempotent by
reference).
"""

import logging
from collections.abc import Sequence

from ..v1 import channel_pb2
from .base import BatchableRequest, ChannelResponse, Outcome, batch_operation_names
from .status_mapping import classify_result, classify_status, status_name

logger = logging.getLogger(__name__)


def batch_request(requests: Sequence[BatchableRequest]) -> channel_pb2.ChannelBatchRequest:
    """The ChannelBatchRequest carrying `requests` in order; TypeError before anything is sent if one
    is not an operation a batch carries."""
    names = batch_operation_names(requests)
    batch = channel_pb2.ChannelBatchRequest()
    for name, request in zip(names, requests, strict=True):
        getattr(batch.items.add(), name).CopyFrom(request)
    return batch


def classify_batch_response(response: object, requests: Sequence[BatchableRequest]) -> list[ChannelResponse]:
    """The meaning of an OK Batch reply, one ChannelResponse per request. `response` is whatever the
    transport produced (grpc.aio yields None when it could not parse the reply)."""
    if not isinstance(response, channel_pb2.ChannelBatchResponse):
        return same_for_all(len(requests), ChannelResponse(
            Outcome.UNKNOWN, message="channel batch reply could not be read; outcome unknown"))
    if len(response.results) != len(requests):
        return same_for_all(len(requests), ChannelResponse(
            Outcome.UNKNOWN,
            message=f"channel answered {len(response.results)} results for {len(requests)} items; outcome unknown",
        ))
    return [_classify_item(result, request.reference) for result, request in zip(response.results, requests)]


def classify_batch_status(count: int, code: str, details: str, *, debug_text: str = "") -> list[ChannelResponse]:
    """The meaning of a non-OK status for a whole Batch call of `count` items: each item gets what a
    single call with that status would."""
    return same_for_all(count, classify_status(code, details, debug_text=debug_text))


def same_for_all(count: int, response: ChannelResponse) -> list[ChannelResponse]:
    """`response` for each of `count` items (ChannelResponse is immutable, so one object serves all)."""
    return [response] * count


def unknown_after_exception(channel_name: str, count: int, error: Exception) -> list[ChannelResponse]:
    """Every item UNKNOWN: an exception after the call started may hide an act."""
    logger.warning("channel %s: Batch of %d raised %s; outcome unknown", channel_name, count, type(error).__name__)
    return same_for_all(count, ChannelResponse(
        Outcome.UNKNOWN, message=f"channel call raised {type(error).__name__}; outcome unknown"))


def _classify_item(item: channel_pb2.ChannelBatchItemResult, reference: str) -> ChannelResponse:
    answer = item.WhichOneof("answer")
    if answer == "result":
        return classify_result(item.result, reference)
    if answer == "error":
        return classify_status(status_name(item.error.code), item.error.message)
    return ChannelResponse(Outcome.UNKNOWN, message="channel gave this batch item no answer; outcome unknown")

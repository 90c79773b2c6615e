"""The ChannelClient for a channel that speaks the PaymentChannel gRPC contract.

Classification is money safety: FAILED lets the switch send the payment elsewhere or give up, so it
is only returned when the channel surely did not act; whenever it might have, the answer is UNKNOWN
and the payment waits for Inquire. The table (kept once, in `status_mapping`, shared with the
in-process client):

    OK                    the result's outcome: APPROVED, DECLINED (its decline_code); IN_PROGRESS,
                          no outcome, an unreadable reply or a reply for another reference -> UNKNOWN
    INVALID_ARGUMENT, FAILED_PRECONDITION, OUT_OF_RANGE, NOT_FOUND, ALREADY_EXISTS, PERMISSION_DENIED,
    UNAUTHENTICATED, UNIMPLEMENTED, INTERNAL, RESOURCE_EXHAUSTED
                          FAILED, decline_code "channel_<code>" (the contract: the channel did not act)
    UNAVAILABLE           FAILED ("channel_unavailable") only when no connection could be made, so the
                          request never left: grpc 1.85 reports a closed loopback port as "failed to
                          connect to all addresses; last error: UNKNOWN: ipv4:127.0.0.1:PORT: Failed to
                          connect to remote host: Connection refused", an unresolvable host as "errors
                          resolving ...". Any other UNAVAILABLE (e.g. "Cancelling all calls" when the
                          server goes away mid-call, a proxy's 502/503) -> UNKNOWN
    DEADLINE_EXCEEDED, CANCELLED, UNKNOWN, DATA_LOSS, ABORTED, anything else
                          UNKNOWN
    any code whose text has "Received RST_STREAM", "Stream removed" or "Received message larger than max"
                          UNKNOWN: grpc made that status itself after the request left (an INTERNAL from
                          a reset stream, a RESOURCE_EXHAUSTED for an oversized reply)
    Inquire               only OK and NOT_FOUND speak about the earlier operation: NOT_FOUND -> FAILED
                          "channel_not_found" (never reached the channel, and never will); every other
                          status, including a refused connection, -> UNKNOWN.

Batch carries many operations in one call; each item is classified by the same table (see
`batching`), a whole-call status once for all items. A channel answering Batch with UNIMPLEMENTED has
no Batch: the client remembers that for its lifetime and sends concurrent single calls instead, each
with the batch's timeout.

Calls use wait_for_ready=False so a channel that cannot be reached fails at once instead of queueing
until the deadline (which would turn a sure "not sent" into an unknown). An unexpected exception from
the gRPC library is also UNKNOWN; the caller's own cancellation propagates. No response message ever
quotes the request, so card data cannot leak through it.
"""

import asyncio
import logging
from collections.abc import Sequence

import grpc

from ..tls import ClientTls, aio_channel
from ..v1 import channel_pb2, channel_pb2_grpc
from .base import BatchableRequest, ChannelClient, ChannelResponse, Outcome
from .batching import batch_request, classify_batch_response, classify_batch_status, unknown_after_exception
from .status_mapping import classify_result, classify_status

logger = logging.getLogger(__name__)


class GrpcChannelClient(ChannelClient):
    """One PaymentChannel at `target` ("host:port"), over one insecure grpc.aio channel created on the
    first call inside the running event loop. `default_timeout` (seconds) applies when a call passes
    timeout=None."""

    def __init__(self, name: str, target: str, *, default_timeout: float = 5.0,
                 options: tuple[tuple[str, object], ...] = (), tls: ClientTls | None = None):
        self.name = name
        self.target = target
        self._tls = tls
        self.default_timeout = default_timeout
        self._options = tuple(options)
        self._channel: grpc.aio.Channel | None = None
        self._stub: channel_pb2_grpc.PaymentChannelStub | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        # False once the channel answered Batch with UNIMPLEMENTED.
        self.batch_supported = True

    def __repr__(self) -> str:
        return f"GrpcChannelClient(name={self.name!r}, target={self.target!r})"

    async def authorize(self, request: channel_pb2.ChannelAuthorizeRequest,
                        timeout: float | None = None) -> ChannelResponse:
        return await self._call("Authorize", request, timeout)

    async def capture(self, request: channel_pb2.ChannelCaptureRequest,
                      timeout: float | None = None) -> ChannelResponse:
        return await self._call("Capture", request, timeout)

    async def void(self, request: channel_pb2.ChannelVoidRequest, timeout: float | None = None) -> ChannelResponse:
        return await self._call("Void", request, timeout)

    async def refund(self, request: channel_pb2.ChannelRefundRequest,
                     timeout: float | None = None) -> ChannelResponse:
        return await self._call("Refund", request, timeout)

    async def inquire(self, request: channel_pb2.ChannelInquireRequest,
                      timeout: float | None = None) -> ChannelResponse:
        return await self._call("Inquire", request, timeout, inquire=True)

    async def _batch_call(self, requests: Sequence[BatchableRequest],
                          timeout: float | None) -> list[ChannelResponse] | None:
        sent = batch_request(requests)
        try:
            response = await self._current_stub().Batch(
                sent,
                timeout=self.default_timeout if timeout is None else timeout,
                wait_for_ready=False,
            )
        except grpc.aio.AioRpcError as error:
            if error.code() is grpc.StatusCode.UNIMPLEMENTED:
                # The channel did not act; it answers single calls, idempotent by reference.
                self.batch_supported = False
                logger.info("channel %s has no Batch; sending single calls", self.name)
                return None
            return classify_batch_status(len(requests), error.code().name, error.details() or "",
                                         debug_text=error.debug_error_string() or "")
        except Exception as error:  # noqa: BLE001 - any surprise after the call started may hide an act
            return unknown_after_exception(self.name, len(requests), error)
        return classify_batch_response(response, requests)

    async def close(self) -> None:
        channel, self._channel, self._stub, self._loop = self._channel, None, None, None
        if channel is not None:
            await channel.close()

    def _current_stub(self) -> channel_pb2_grpc.PaymentChannelStub:
        loop = asyncio.get_running_loop()
        if self._stub is None:
            self._channel = aio_channel(self.target, self._tls, self._options)
            self._stub = channel_pb2_grpc.PaymentChannelStub(self._channel)
            self._loop = loop
        elif loop is not self._loop:
            # A grpc.aio channel belongs to the loop that made it; using it elsewhere hangs or fails.
            raise RuntimeError(f"{self!r} was first used in another event loop; close() it first")
        return self._stub

    async def _call(self, method: str, request, timeout: float | None, *, inquire: bool = False) -> ChannelResponse:
        rpc = getattr(self._current_stub(), method)
        try:
            result = await rpc(
                request,
                timeout=self.default_timeout if timeout is None else timeout,
                wait_for_ready=False,
            )
        except grpc.aio.AioRpcError as error:
            return classify_status(
                error.code().name, error.details() or "", inquire=inquire, debug_text=error.debug_error_string() or ""
            )
        except Exception as error:  # noqa: BLE001 - any surprise after the call started may hide an act
            # Only the type is logged: an exception's text could quote the request.
            logger.warning("channel %s: %s %s raised %s; outcome unknown", self.name, method,
                           request.reference, type(error).__name__)
            return ChannelResponse(Outcome.UNKNOWN,
                                   message=f"channel call raised {type(error).__name__}; outcome unknown")
        return classify_result(result, request.reference)

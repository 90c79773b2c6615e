"""Many operations per message: batch items, a stream of batches, and a batcher that gathers single
calls into batches, because a gRPC call costs the server far more than one payment's own work."""

import asyncio
import itertools

import grpc

from ..v1 import switch_pb2

MAX_BATCH_ITEMS = 1000
STREAM_METHOD = "/payswitch.v1.PaymentSwitch/Stream"


_ITEM_FIELD = {
    switch_pb2.AuthorizeRequest: "authorize",
    switch_pb2.CaptureRequest: "capture",
    switch_pb2.VoidRequest: "void",
    switch_pb2.RefundRequest: "refund",
}


def batch_item(request) -> switch_pb2.BatchItem:
    """Wraps an Authorize/Capture/Void/RefundRequest as a batch item."""
    item = switch_pb2.BatchItem()
    getattr(item, _ITEM_FIELD[type(request)]).CopyFrom(request)
    return item


def batch_request(requests) -> switch_pb2.BatchRequest:
    return switch_pb2.BatchRequest(items=[r if isinstance(r, switch_pb2.BatchItem) else batch_item(r)
                                          for r in requests])


class BatchRefused(Exception):
    """The switch refused a whole stream message (signature, bytes or size); `error` is its ItemError."""

    def __init__(self, error: switch_pb2.ItemError):
        super().__init__(f"{error.reason}: {error.message}")
        self.error = error


class BatchStream:
    """One open Stream call carrying many signed batches; replies are matched to requests by sequence.

    A broken stream fails every batch still waiting, and every later submit, with the stream's own error
    (the AioRpcError that ended it); resubmitting them on a new stream is safe because each item keeps its
    idempotency key.
    """

    def __init__(self, channel: grpc.aio.Channel, signer):
        self._signer = signer
        self._call = channel.stream_stream(STREAM_METHOD, request_serializer=switch_pb2.StreamRequest.SerializeToString,
                                           response_deserializer=switch_pb2.StreamResponse.FromString)()
        self._sequence = itertools.count(1)
        self._waiting: dict[int, asyncio.Future] = {}
        self._ended: BaseException | None = None  # why the stream ended, once it has
        self._write_lock = asyncio.Lock()
        self._reader = asyncio.get_running_loop().create_task(self._read_replies())

    async def submit(self, request: switch_pb2.BatchRequest) -> switch_pb2.BatchResponse:
        if self._ended is not None:
            raise self._ended
        body = request.SerializeToString()
        sequence = next(self._sequence)
        merchant, key_id, timestamp, nonce, signature = self._signer.values(STREAM_METHOD, body)
        reply = asyncio.get_running_loop().create_future()
        self._waiting[sequence] = reply
        try:
            async with self._write_lock:
                await self._call.write(switch_pb2.StreamRequest(
                    sequence=sequence, batch=body, merchant=merchant, key_id=key_id, timestamp=timestamp,
                    nonce=nonce, signature=signature))
        except asyncio.InvalidStateError:
            # The call finished while this batch waited to be written: answer with why, once the
            # reader has it, rather than with grpc's bookkeeping error.
            self._waiting.pop(sequence, None)
            await asyncio.shield(self._reader)
            raise self._ended from None
        except BaseException:
            self._waiting.pop(sequence, None)
            raise
        return await reply

    async def _read_replies(self) -> None:
        failure: BaseException = ConnectionError("the stream ended before answering")
        try:
            async for response in self._call:
                reply = self._waiting.pop(response.sequence, None)
                if reply is None or reply.done():
                    continue
                if response.HasField("error"):
                    reply.set_exception(BatchRefused(response.error))
                else:
                    reply.set_result(response.response)
        except grpc.aio.AioRpcError as error:
            failure = error
        finally:
            self._ended = failure
            for reply in self._waiting.values():
                if not reply.done():
                    reply.set_exception(failure)
            self._waiting.clear()

    async def close(self) -> None:
        """Waits for the replies still due, then ends the call."""
        if not self._reader.done():
            pending = [reply for reply in self._waiting.values()]
            if pending:
                await asyncio.gather(*pending, return_exceptions=True)
            await self._call.done_writing()
            await self._reader


class Batcher:
    """Gathers concurrent single operations into Batch calls: up to `max_items` per call, or whatever
    arrived within `max_delay_s` of the first. Each caller gets its own item's response, or the
    AioRpcError-like BatchItemError its item earned."""

    def __init__(self, client, max_items: int = 100, max_delay_s: float = 0.002):
        if not 1 <= max_items <= MAX_BATCH_ITEMS:
            raise ValueError(f"max_items must be 1 to {MAX_BATCH_ITEMS}")
        self._client = client
        self._max_items = max_items
        self._max_delay_s = max_delay_s
        self._pending: list[tuple[switch_pb2.BatchItem, asyncio.Future]] = []
        self._flush_timer: asyncio.TimerHandle | None = None
        self._in_flight: set[asyncio.Task] = set()

    async def submit(self, request):
        """Sends one Authorize/Capture/Void/RefundRequest within a batch and returns its response."""
        loop = asyncio.get_running_loop()
        result = loop.create_future()
        self._pending.append((batch_item(request), result))
        if len(self._pending) >= self._max_items:
            self._flush()
        elif self._flush_timer is None:
            self._flush_timer = loop.call_later(self._max_delay_s, self._flush)
        return await result

    def _flush(self) -> None:
        if self._flush_timer is not None:
            self._flush_timer.cancel()
            self._flush_timer = None
        taken, self._pending = self._pending, []
        if taken:
            task = asyncio.get_running_loop().create_task(self._send(taken))
            self._in_flight.add(task)
            task.add_done_callback(self._in_flight.discard)

    async def _send(self, taken) -> None:
        try:
            response = await self._client.batch(switch_pb2.BatchRequest(items=[item for item, _ in taken]))
        except Exception as error:  # noqa: BLE001 - every caller of the batch learns why it failed
            for _, result in taken:
                if not result.done():
                    result.set_exception(error)
            return
        for (_, result), item_result in zip(taken, response.results, strict=True):
            if result.done():
                continue
            which = item_result.WhichOneof("result")
            if which == "error":
                result.set_exception(BatchItemError(item_result.error))
            else:
                result.set_result(getattr(item_result, which))

    async def close(self) -> None:
        """Sends what is gathered and waits for every batch in flight."""
        self._flush()
        if self._in_flight:
            await asyncio.gather(*self._in_flight, return_exceptions=True)


class BatchItemError(Exception):
    """One batch item's refusal: `code` is the grpc.StatusCode a unary call would have got."""

    def __init__(self, error: switch_pb2.ItemError):
        self.error = error
        self.code = next((c for c in grpc.StatusCode if c.value[0] == error.code), grpc.StatusCode.UNKNOWN)
        self.reason = error.reason
        self.field_violations = {v.field: v.description for v in error.field_violations}
        super().__init__(f"{self.code.name} {error.reason}: {error.message}")

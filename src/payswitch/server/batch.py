"""Batch and Stream at the edge: decode a signed BatchRequest, validate each item on its own, run them
through the service together, and encode one result per item.

Per-item responses arrive from the service already serialized (they are the stored idempotent
answers), so the BatchResponse is assembled from those bytes rather than parsed and re-serialized.
"""

import asyncio
import logging
import time

import grpc
from google.protobuf.message import DecodeError

from ..channels.status_mapping import status_name
from ..hotpath import signing, wire
from ..logs import bind_log_context, log_context, new_trace_id
from ..payments.errors import InvalidRequest, PaymentError
from ..processing.budget import UNBOUNDED, Budget
from ..processing.service import PaymentService
from ..tls import MERCHANT_NOT_PERMITTED, IdentityBinding, peer_identities
from ..v1 import switch_pb2
from ..wire_format import length_delimited
from . import validation
from .access_log import AccessLine, observed
from .errors import STATUS_BY_ERROR

log = logging.getLogger(__name__)

MAX_BATCH_ITEMS = 1000
STREAM_METHOD = "/payswitch.v1.PaymentSwitch/Stream"
# BatchItemResult's field number for each kind of item's response; 5 is the ItemError.
_RESULT_FIELD = {"authorize": 1, "capture": 2, "void": 3, "refund": 4}
_ERROR_FIELD = 5
_INTERNAL = switch_pb2.ItemError(code=grpc.StatusCode.INTERNAL.value[0], reason="internal", message="internal error")


class BatchRunner:
    def __init__(self, service: PaymentService, clock=time.time):
        self._service = service
        self._clock = clock

    async def run(self, merchant_id: str, body: bytes, budget: Budget = UNBOUNDED) -> bytes:
        """The serialized BatchResponse; raises InvalidRequest when the whole message is unusable, and
        DeadlineTooShort when the call's deadline leaves no time to reach a channel."""
        budget.require_room()
        try:
            items = wire.decode_batch(body)
        except wire.WireError:
            raise InvalidRequest({"request": "is not a valid payswitch.v1.BatchRequest"}) from None
        if not 1 <= len(items) <= MAX_BATCH_ITEMS:
            raise InvalidRequest({"items": f"must hold 1 to {MAX_BATCH_ITEMS} items, not {len(items)}"})
        now = time.gmtime(self._clock())
        year_month = (now.tm_year, now.tm_mon)
        commands = [self._command(merchant_id, fields, year_month) for fields in items]
        outcomes = await self._service.execute_batch(merchant_id, commands, budget)
        bind_log_context(items=len(items), refused_items=sum(not isinstance(outcome, bytes) for outcome in outcomes))
        return b"".join(length_delimited(1, self._result(fields.kind, outcome, merchant_id))
                        for fields, outcome in zip(items, outcomes, strict=True))

    @staticmethod
    def _command(merchant_id: str, fields, year_month):
        try:
            return validation.command_from_fields(merchant_id, fields, year_month)
        except InvalidRequest as error:
            return error

    @staticmethod
    def _result(kind: str | None, outcome, merchant_id: str) -> bytes:
        if isinstance(outcome, bytes):
            return length_delimited(_RESULT_FIELD[kind], outcome)
        if isinstance(outcome, PaymentError):
            error = item_error(outcome)
        else:
            log.error("batch item of merchant %s failed", merchant_id, exc_info=outcome)
            error = _INTERNAL
        return length_delimited(_ERROR_FIELD, error.SerializeToString())


class StreamHandler:
    """Each stream message is a signed batch; replies go back in request order while up to
    `max_in_flight` batches of one stream are processed concurrently."""

    def __init__(self, verifier, runner: BatchRunner, max_in_flight: int = 8, *, binding: IdentityBinding | None = None):
        self._verifier = verifier
        self._runner = runner
        self._max_in_flight = max_in_flight
        self._binding = binding

    async def handle(self, requests, context: grpc.aio.ServicerContext):
        started: asyncio.Queue = asyncio.Queue(maxsize=self._max_in_flight)
        identities = peer_identities(context) if self._binding is not None else frozenset()

        async def read() -> None:
            try:
                async for raw in requests:
                    await started.put(asyncio.ensure_future(self._answer(raw, identities)))
            finally:
                await started.put(None)

        reader = asyncio.ensure_future(read())
        try:
            while (reply := await started.get()) is not None:
                yield await reply
        finally:
            reader.cancel()

    async def _answer(self, raw: bytes, identities: frozenset[str]) -> bytes:
        line = AccessLine()
        with log_context(trace_id=new_trace_id(), method="Stream"):
            return await observed(line, "Stream message", self._answer_in_context(raw, identities, line))

    async def _answer_in_context(self, raw: bytes, identities: frozenset[str], line: AccessLine) -> bytes:
        try:
            message = switch_pb2.StreamRequest.FromString(raw)
        except DecodeError:
            return _stream_error(0, item_error(InvalidRequest({"request": "is not a valid payswitch.v1.StreamRequest"})),
                                 line)
        bind_log_context(sequence=message.sequence)
        metadata = [(header, value) for header, value in zip(signing.SIGNING_HEADERS, (
            message.merchant, message.key_id, message.timestamp, message.nonce, message.signature)) if value]
        try:
            merchant_id = self._verifier.verify(STREAM_METHOD, metadata, message.batch)
        except signing.SigningError as failure:
            line.refused_signature(failure.reason, message.merchant, message.key_id)
            return _stream_error(message.sequence, switch_pb2.ItemError(
                code=grpc.StatusCode.UNAUTHENTICATED.value[0], reason=failure.reason,
                message=f"request signature rejected: {failure.reason}"), line)
        bind_log_context(merchant_id=merchant_id, key_id=message.key_id)
        if self._binding is not None:
            refusal = self._binding.merchant_refusal(identities, merchant_id)
            if refusal is not None:
                return _stream_error(message.sequence, switch_pb2.ItemError(
                    code=refusal.code.value[0], reason=MERCHANT_NOT_PERMITTED, message=refusal.details), line)
        try:
            body = await self._runner.run(merchant_id, message.batch)
        except PaymentError as error:
            return _stream_error(message.sequence, item_error(error), line)
        except Exception:  # noqa: BLE001 - this batch gets INTERNAL, the stream goes on
            log.exception("stream batch of merchant %s failed", merchant_id)
            return _stream_error(message.sequence, _INTERNAL, line)
        return switch_pb2.StreamResponse(sequence=message.sequence).SerializeToString() + length_delimited(2, body)


def item_error(error: PaymentError) -> switch_pb2.ItemError:
    return switch_pb2.ItemError(
        code=STATUS_BY_ERROR[type(error)].value[0], reason=error.reason, message=str(error), metadata=error.metadata,
        field_violations=[switch_pb2.FieldViolation(field=field, description=description)
                          for field, description in getattr(error, "violations", {}).items()])


def _stream_error(sequence: int, error: switch_pb2.ItemError, line: AccessLine) -> bytes:
    line.refused(status_name(error.code), error.reason)
    return switch_pb2.StreamResponse(sequence=sequence, error=error).SerializeToString()

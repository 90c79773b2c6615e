"""The PaymentSwitch gRPC handlers: every call arrives as raw bytes so the signature covers exactly
what was sent, then is parsed, validated and handed to the service; errors become statuses here."""

import asyncio
import contextlib
import logging
import time

import grpc

from ..hotpath import signing
from ..logs import bind_log_context, log_context, new_trace_id, trace_id_from_traceparent
from ..payments.errors import PaymentError
from ..processing.budget import Budget
from ..processing.service import PaymentService
from ..tls import MERCHANT_NOT_PERMITTED, IdentityBinding, peer_identities
from ..v1 import switch_pb2
from . import errors, validation
from .access_log import AccessLine, metadata_value, observed
from .access_log import log as access_log
from .batch import BatchRunner, StreamHandler

log = logging.getLogger(__name__)

SERVICE_NAME = "payswitch.v1.PaymentSwitch"


def call_trace_id(metadata) -> str:
    """The caller's W3C trace id (traceparent metadata) when it sent one, so the switch's lines join
    its trace; a new one otherwise."""
    for key, value in metadata:
        if key == "traceparent":
            return trace_id_from_traceparent(value) or new_trace_id()
    return new_trace_id()


def _year_month(clock) -> tuple[int, int]:
    now = time.gmtime(clock())
    return now.tm_year, now.tm_mon


class SwitchEdge:
    """`binding` (mutual TLS): which merchants each client certificate may act for; None when the
    listener does not bind certificates to merchants."""

    def __init__(self, verifier, service: PaymentService, clock=time.time, *, binding: IdentityBinding | None = None):
        self._verifier = verifier
        self._service = service
        self._clock = clock
        self._binding = binding
        batches = BatchRunner(service, clock)
        self._stream = StreamHandler(verifier, batches, binding=binding)
        self._operations = {
            "Authorize": lambda merchant, body, budget: _with_payment_id_of_answer(service.authorize(
                validation.authorize_command(merchant, body, _year_month(clock)), budget)),
            "Capture": lambda merchant, body, budget: service.capture(
                _naming_payment(validation.capture_command(merchant, body)), budget),
            "Void": lambda merchant, body, budget: service.void(
                _naming_payment(validation.void_command(merchant, body)), budget),
            "Refund": lambda merchant, body, budget: service.refund(
                _naming_payment(validation.refund_command(merchant, body)), budget),
            "Tokenize": lambda merchant, body, _: service.tokenize(
                validation.tokenize_command(merchant, body, _year_month(clock))),
            "GetPayment": lambda merchant, body, _: service.get_payment(
                merchant, _bound_payment_id(validation.payment_id(body))),
            "ListPayments": lambda merchant, body, _: service.list_payments(merchant, *validation.list_query(body)),
            "Batch": batches.run,
        }

    def handler(self) -> grpc.GenericRpcHandler:
        handlers = {name: grpc.unary_unary_rpc_method_handler(self._unary(name)) for name in self._operations}
        handlers["Stream"] = grpc.stream_stream_rpc_method_handler(self._streamed)
        return grpc.method_handlers_generic_handler(SERVICE_NAME, handlers)

    def _unary(self, name: str):
        method = f"/{SERVICE_NAME}/{name}"
        operation = self._operations[name]

        async def handle(body: bytes, context: grpc.aio.ServicerContext) -> bytes:
            line = AccessLine()
            metadata = context.invocation_metadata() or ()
            with log_context(trace_id=call_trace_id(metadata), method=name):
                return await observed(line, name, self._answer(method, operation, body, metadata, context, line),
                                      context)

        return handle

    async def _answer(self, method: str, operation, body: bytes, metadata, context: grpc.aio.ServicerContext,
                      line: AccessLine) -> bytes:
        try:
            merchant = self._verifier.verify(method, metadata, body)
        except signing.SigningError as failure:
            line.refused_metadata(failure.reason, metadata)
            await context.abort_with_status(errors.status_for_signing_failure(failure.reason))
        bind_log_context(merchant_id=merchant, key_id=metadata_value(metadata, signing.KEY_ID_HEADER))
        if self._binding is not None:
            refusal = self._binding.merchant_refusal(peer_identities(context), merchant)
            if refusal is not None:
                line.refused(refusal.code, MERCHANT_NOT_PERMITTED)
                await context.abort_with_status(refusal)
        try:
            return await operation(merchant, body, Budget.from_remaining(context.time_remaining()))
        except PaymentError as error:
            line.refused(errors.STATUS_BY_ERROR[type(error)], error.reason)
            await context.abort_with_status(errors.status_for_payment_error(error))
        except Exception:  # noqa: BLE001 - the caller gets INTERNAL, the server keeps serving
            log.exception("%s failed for merchant %s", method, merchant)
            line.refused(grpc.StatusCode.INTERNAL, "internal")
            await context.abort_with_status(errors.INTERNAL)

    async def _streamed(self, requests, context: grpc.aio.ServicerContext):
        """The Stream call, with an access line of its own when it ends (each message has one too)."""
        line = AccessLine()
        trace_id = call_trace_id(context.invocation_metadata() or ())
        messages = 0
        try:
            async with contextlib.aclosing(self._stream.handle(requests, context)) as replies:
                async for reply in replies:
                    messages += 1
                    yield reply
            line.answered()
        except (asyncio.CancelledError, GeneratorExit):
            line.cancelled(context)
            raise
        finally:
            line.add(messages=messages)
            with log_context(trace_id=trace_id, method="Stream"):
                line.write("Stream")


def _bound_payment_id(payment_id: str) -> str:
    """`payment_id`, now on every later line of the call (the access line included)."""
    bind_log_context(payment_id=payment_id)
    return payment_id


def _naming_payment(command):
    _bound_payment_id(command.payment_id)
    return command


async def _with_payment_id_of_answer(answer) -> bytes:
    """An Authorize's response, its new payment's id bound for the access line (the service learns it
    in a task of its own, whose context does not flow back here)."""
    response = await answer
    if access_log.isEnabledFor(logging.INFO):
        bind_log_context(payment_id=switch_pb2.AuthorizeResponse.FromString(response).payment.payment_id or None)
    return response

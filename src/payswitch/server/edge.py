"""The PaymentSwitch gRPC handlers: every call arrives as raw bytes so the signature covers exactly
what was sent, then is parsed, validated and handed to the service; errors become statuses here."""

import logging
import time

import grpc

from ..hotpath import signing
from ..logs import bind_log_context, log_context, new_trace_id, trace_id_from_traceparent
from ..payments.errors import PaymentError
from ..processing.budget import Budget
from ..processing.service import PaymentService
from ..tls import IdentityBinding, peer_identities
from . import errors, validation
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
            "Authorize": lambda merchant, body, budget: service.authorize(
                validation.authorize_command(merchant, body, _year_month(clock)), budget),
            "Capture": lambda merchant, body, budget: service.capture(validation.capture_command(merchant, body),
                                                                      budget),
            "Void": lambda merchant, body, budget: service.void(validation.void_command(merchant, body), budget),
            "Refund": lambda merchant, body, budget: service.refund(validation.refund_command(merchant, body),
                                                                    budget),
            "Tokenize": lambda merchant, body, _: service.tokenize(
                validation.tokenize_command(merchant, body, _year_month(clock))),
            "GetPayment": lambda merchant, body, _: service.get_payment(merchant, validation.payment_id(body)),
            "ListPayments": lambda merchant, body, _: service.list_payments(merchant, *validation.list_query(body)),
            "Batch": batches.run,
        }

    def handler(self) -> grpc.GenericRpcHandler:
        handlers = {name: grpc.unary_unary_rpc_method_handler(self._unary(name)) for name in self._operations}
        handlers["Stream"] = grpc.stream_stream_rpc_method_handler(self._stream.handle)
        return grpc.method_handlers_generic_handler(SERVICE_NAME, handlers)

    def _unary(self, name: str):
        method = f"/{SERVICE_NAME}/{name}"
        operation = self._operations[name]

        async def handle(body: bytes, context: grpc.aio.ServicerContext) -> bytes:
            metadata = context.invocation_metadata() or ()
            with log_context(trace_id=call_trace_id(metadata), method=name):
                try:
                    merchant = self._verifier.verify(method, metadata, body)
                except signing.SigningError as failure:
                    log.info("rejected %s: %s", name, failure.reason)
                    await context.abort_with_status(errors.status_for_signing_failure(failure.reason))
                bind_log_context(merchant_id=merchant)
                if self._binding is not None:
                    refusal = self._binding.merchant_refusal(peer_identities(context), merchant)
                    if refusal is not None:
                        await context.abort_with_status(refusal)
                try:
                    return await operation(merchant, body, Budget.from_remaining(context.time_remaining()))
                except PaymentError as error:
                    await context.abort_with_status(errors.status_for_payment_error(error))
                except Exception:  # noqa: BLE001 - the caller gets INTERNAL, the server keeps serving
                    log.exception("%s failed for merchant %s", name, merchant)
                    await context.abort_with_status(errors.INTERNAL)

        return handle

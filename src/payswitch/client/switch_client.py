"""An asyncio client for PaymentSwitch that signs every call and retries transient failures safely
(UNAVAILABLE, ABORTED, RESOURCE_EXHAUSTED, and FAILED_PRECONDITION operation_pending).

Each attempt is signed afresh (new timestamp and nonce) over the same request bytes, so a retry
carries the same idempotency key and can never be mistaken for a new payment nor for a replay.
"""

import asyncio
import random
import time

import grpc

from .. import tls as transport
from ..tls import ClientTls
from ..v1 import switch_pb2, types_pb2
from . import requests
from .batch import BatchStream, batch_request
from .errors import error_details
from .signer import RequestSigner

SERVICE = "/payswitch.v1.PaymentSwitch/"
RETRYABLE = frozenset({grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.ABORTED, grpc.StatusCode.RESOURCE_EXHAUSTED})
#: FAILED_PRECONDITION reasons that pass: another operation of the payment is still being resolved.
RETRYABLE_PRECONDITIONS = frozenset({"operation_pending"})
_RESPONSES = {
    "Authorize": switch_pb2.AuthorizeResponse,
    "Tokenize": switch_pb2.TokenizeResponse,
    "Capture": switch_pb2.CaptureResponse,
    "Void": switch_pb2.VoidResponse,
    "Refund": switch_pb2.RefundResponse,
    "GetPayment": switch_pb2.GetPaymentResponse,
    "ListPayments": switch_pb2.ListPaymentsResponse,
    "Batch": switch_pb2.BatchResponse,
}


def retryable(error: grpc.RpcError) -> bool:
    """Whether the same request (same idempotency key, fresh signature) may succeed if sent again."""
    if error.code() in RETRYABLE:
        return True
    return (error.code() is grpc.StatusCode.FAILED_PRECONDITION
            and error_details(error).reason in RETRYABLE_PRECONDITIONS)


class SwitchClient:
    """`timeout` bounds a whole call, retries included; `max_attempts` bounds the retries."""

    def __init__(self, target: str, merchant_id: str, key_id: str, secret: bytes | str, *, timeout: float = 10.0,
                 max_attempts: int = 4, backoff_s: float = 0.05, clock=time.time, channel_options=(),
                 tls: ClientTls | None = None):
        """`secret`: the key's secret as bytes, or as the hex string the switch's configuration holds (a
        wrong one raises ValueError here). `tls`: the switch's CA (and this caller's certificate for
        mutual TLS); None is plaintext."""
        self.merchant_id = merchant_id
        self.signer = RequestSigner(merchant_id, key_id, secret, clock)
        self._timeout = timeout
        self._max_attempts = max_attempts
        self._backoff_s = backoff_s
        self._channel = transport.aio_channel(target, tls, channel_options)
        self._calls = {name: self._channel.unary_unary(SERVICE + name, response_deserializer=response.FromString)
                       for name, response in _RESPONSES.items()}

    async def __aenter__(self):
        return self

    async def __aexit__(self, *exc_info):
        await self.close()

    async def close(self) -> None:
        await self._channel.close()

    async def call(self, name: str, request, timeout: float | None = None):
        """Sends one request message (any PaymentSwitch method) and returns the response message."""
        body = request.SerializeToString()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + (self._timeout if timeout is None else timeout)
        for attempt in range(1, self._max_attempts + 1):
            remaining = deadline - loop.time()
            try:
                return await self._calls[name](body, metadata=self.signer.metadata(SERVICE + name, body),
                                               timeout=max(remaining, 0.001))
            except grpc.aio.AioRpcError as error:
                pause = self._backoff_s * (2 ** (attempt - 1)) * random.uniform(0.5, 1.5)
                if not retryable(error) or attempt == self._max_attempts or loop.time() + pause >= deadline:
                    raise
                await asyncio.sleep(pause)

    async def authorize(self, amount_minor: int, currency: str, *, card: types_pb2.Card | None = None,
                        wallet: types_pb2.Wallet | None = None, card_token: switch_pb2.CardToken | None = None,
                        merchant_reference: str, description: str = "", idempotency_key: str | None = None,
                        allow_partial_authorization: bool = False) -> switch_pb2.AuthorizeResponse:
        return await self.call("Authorize", requests.authorize_request(
            amount_minor, currency, card=card, wallet=wallet, card_token=card_token,
            merchant_reference=merchant_reference, description=description, idempotency_key=idempotency_key,
            allow_partial_authorization=allow_partial_authorization))

    async def tokenize(self, card: types_pb2.Card) -> switch_pb2.TokenizeResponse:
        """The switch's token for the card (the same one each time for the same number); no CVV."""
        return await self.call("Tokenize", switch_pb2.TokenizeRequest(card=card))

    async def capture(self, payment_id: str, amount_minor: int | None = None, currency: str | None = None, *,
                      idempotency_key: str | None = None) -> switch_pb2.CaptureResponse:
        return await self.call("Capture", requests.capture_request(payment_id, amount_minor, currency,
                                                                   idempotency_key=idempotency_key))

    async def void(self, payment_id: str, *, idempotency_key: str | None = None) -> switch_pb2.VoidResponse:
        return await self.call("Void", requests.void_request(payment_id, idempotency_key=idempotency_key))

    async def refund(self, payment_id: str, amount_minor: int | None = None, currency: str | None = None, *,
                     reason: str = "", idempotency_key: str | None = None) -> switch_pb2.RefundResponse:
        return await self.call("Refund", requests.refund_request(payment_id, amount_minor, currency, reason=reason,
                                                                 idempotency_key=idempotency_key))

    async def get_payment(self, payment_id: str) -> switch_pb2.GetPaymentResponse:
        return await self.call("GetPayment", switch_pb2.GetPaymentRequest(payment_id=payment_id))

    async def list_payments(self, *, created_from=None, created_to=None, page_size: int = 0,
                            page_token: str = "") -> switch_pb2.ListPaymentsResponse:
        return await self.call("ListPayments", switch_pb2.ListPaymentsRequest(
            created_from=created_from, created_to=created_to, page_size=page_size, page_token=page_token))

    async def batch(self, items, timeout: float | None = None) -> switch_pb2.BatchResponse:
        """One Batch call: `items` is a BatchRequest or an iterable of requests/BatchItems. A retry
        after a transient failure is safe: every item keeps its idempotency key."""
        request = items if isinstance(items, switch_pb2.BatchRequest) else batch_request(items)
        return await self.call("Batch", request, timeout)

    def open_stream(self) -> BatchStream:
        """A Stream call for many batches; `await stream.submit(batch)`, then `await stream.close()`."""
        return BatchStream(self._channel, self.signer)

"""An asyncio client for PaymentSwitch that signs every call and retries transient failures safely.

Each attempt is signed afresh (new timestamp and nonce) over the same request bytes, so a retry
carries the same idempotency key and can never be mistaken for a new payment nor for a replay.
"""

import asyncio
import random
import secrets
import time

import grpc

from ..v1 import switch_pb2, types_pb2
from .signer import RequestSigner

SERVICE = "/payswitch.v1.PaymentSwitch/"
RETRYABLE = frozenset({grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.ABORTED, grpc.StatusCode.RESOURCE_EXHAUSTED})
_RESPONSES = {
    "Authorize": switch_pb2.AuthorizeResponse,
    "Capture": switch_pb2.CaptureResponse,
    "Void": switch_pb2.VoidResponse,
    "Refund": switch_pb2.RefundResponse,
    "GetPayment": switch_pb2.GetPaymentResponse,
    "ListPayments": switch_pb2.ListPaymentsResponse,
}


def new_idempotency_key() -> str:
    return "idem_" + secrets.token_hex(16)


def _money(amount_minor: int | None, currency: str | None) -> types_pb2.Money | None:
    if amount_minor is None:
        return None
    return types_pb2.Money(amount_minor=amount_minor, currency=currency)


class SwitchClient:
    """`timeout` bounds a whole call, retries included; `max_attempts` bounds the retries."""

    def __init__(self, target: str, merchant_id: str, key_id: str, secret: bytes, *, timeout: float = 10.0,
                 max_attempts: int = 4, backoff_s: float = 0.05, clock=time.time, channel_options=()):
        self.merchant_id = merchant_id
        self.signer = RequestSigner(merchant_id, key_id, secret, clock)
        self._timeout = timeout
        self._max_attempts = max_attempts
        self._backoff_s = backoff_s
        self._channel = grpc.aio.insecure_channel(target, options=channel_options)
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
                if error.code() not in RETRYABLE or attempt == self._max_attempts or loop.time() + pause >= deadline:
                    raise
                await asyncio.sleep(pause)

    async def authorize(self, amount_minor: int, currency: str, *, card: types_pb2.Card | None = None,
                        wallet: types_pb2.Wallet | None = None, merchant_reference: str, description: str = "",
                        idempotency_key: str | None = None) -> switch_pb2.AuthorizeResponse:
        request = switch_pb2.AuthorizeRequest(
            idempotency_key=idempotency_key or new_idempotency_key(), merchant_reference=merchant_reference,
            amount=_money(amount_minor, currency), card=card, wallet=wallet, description=description)
        return await self.call("Authorize", request)

    async def capture(self, payment_id: str, amount_minor: int | None = None, currency: str | None = None, *,
                      idempotency_key: str | None = None) -> switch_pb2.CaptureResponse:
        request = switch_pb2.CaptureRequest(idempotency_key=idempotency_key or new_idempotency_key(),
                                            payment_id=payment_id, amount=_money(amount_minor, currency))
        return await self.call("Capture", request)

    async def void(self, payment_id: str, *, idempotency_key: str | None = None) -> switch_pb2.VoidResponse:
        request = switch_pb2.VoidRequest(idempotency_key=idempotency_key or new_idempotency_key(),
                                         payment_id=payment_id)
        return await self.call("Void", request)

    async def refund(self, payment_id: str, amount_minor: int | None = None, currency: str | None = None, *,
                     reason: str = "", idempotency_key: str | None = None) -> switch_pb2.RefundResponse:
        request = switch_pb2.RefundRequest(idempotency_key=idempotency_key or new_idempotency_key(),
                                           payment_id=payment_id, amount=_money(amount_minor, currency),
                                           reason=reason)
        return await self.call("Refund", request)

    async def get_payment(self, payment_id: str) -> switch_pb2.GetPaymentResponse:
        return await self.call("GetPayment", switch_pb2.GetPaymentRequest(payment_id=payment_id))

    async def list_payments(self, *, created_from=None, created_to=None, page_size: int = 0,
                            page_token: str = "") -> switch_pb2.ListPaymentsResponse:
        return await self.call("ListPayments", switch_pb2.ListPaymentsRequest(
            created_from=created_from, created_to=created_to, page_size=page_size, page_token=page_token))

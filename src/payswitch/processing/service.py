"""The payment service: each operation is two durable commits around one channel call.

1. The intent is committed first (payment and operation PENDING, idempotency key IN_PROGRESS), so a
   crash after the channel acted leaves a record that names the channel reference to inquire about.
2. The channel is called with the operation id as its idempotency reference.
3. The outcome, the new payment state, the ledger postings and the response bytes are committed
   together; only then is the caller answered.
Operations on one payment are serialized (KeyedLocks in-process, the version guard across processes),
and a payment with an operation of unknown outcome refuses further operations until it is resolved.
"""

import base64
import dataclasses
import json
import logging
import time

from ..channels.base import ChannelResponse, Outcome
from ..ledger import postings
from ..payments import lifecycle
from ..payments.commands import AuthorizeCommand, CaptureCommand, RefundCommand, VoidCommand
from ..payments.errors import InvalidRequest, PaymentNotFound, RequestInProgress, ShuttingDown, StoreUnavailable
from ..payments.ids import IdSource
from ..payments.lifecycle import OperationKind, OperationStatus, PaymentStatus
from ..store.base import (Change, IdempotencyConflict, IdempotencyRecord, IdempotencyState, MethodSummary,
                          OperationRecord, PaymentRecord, PaymentStore, StaleWrite, StoreClosed, StoreError)
from ..v1 import channel_pb2, switch_pb2, types_pb2
from . import render
from .channel_directory import ChannelDirectory
from .idempotency import IdempotencyGate
from .locks import KeyedLocks

log = logging.getLogger(__name__)


_OPERATION_STATUS = {
    Outcome.APPROVED: OperationStatus.SUCCEEDED,
    Outcome.DECLINED: OperationStatus.DECLINED,
    Outcome.FAILED: OperationStatus.FAILED,
    Outcome.UNKNOWN: OperationStatus.PENDING,
}
_RESPONSE_TYPES = {
    OperationKind.AUTHORIZATION: switch_pb2.AuthorizeResponse,
    OperationKind.CAPTURE: switch_pb2.CaptureResponse,
    OperationKind.VOID: switch_pb2.VoidResponse,
    OperationKind.REFUND: switch_pb2.RefundResponse,
}


def _wall_clock_us() -> int:
    return time.time_ns() // 1000


class PaymentService:
    def __init__(self, store: PaymentStore, channels: ChannelDirectory, *, ids: IdSource | None = None,
                 clock_us=_wall_clock_us):
        self._store = store
        self._channels = channels
        self._ids = ids or IdSource()
        self._clock_us = clock_us
        self._gate = IdempotencyGate(store)
        self._locks = KeyedLocks()

    async def drain(self) -> None:
        """Lets every started operation finish and commit (graceful shutdown)."""
        await self._gate.drain()

    # -- mutating operations: idempotent, answered with the serialized response ------------------

    async def authorize(self, command: AuthorizeCommand) -> bytes:
        fingerprint = command.fingerprint()
        return await self._gate.run(command.merchant_id, command.idempotency_key, fingerprint,
                                    lambda: self._authorize(command, fingerprint))

    async def capture(self, command: CaptureCommand) -> bytes:
        fingerprint = command.fingerprint()
        return await self._gate.run(command.merchant_id, command.idempotency_key, fingerprint,
                                    lambda: self._operate(command, fingerprint, OperationKind.CAPTURE))

    async def void(self, command: VoidCommand) -> bytes:
        fingerprint = command.fingerprint()
        return await self._gate.run(command.merchant_id, command.idempotency_key, fingerprint,
                                    lambda: self._operate(command, fingerprint, OperationKind.VOID))

    async def refund(self, command: RefundCommand) -> bytes:
        fingerprint = command.fingerprint()
        return await self._gate.run(command.merchant_id, command.idempotency_key, fingerprint,
                                    lambda: self._operate(command, fingerprint, OperationKind.REFUND))

    # -- reads --------------------------------------------------------------------------------------

    async def get_payment(self, merchant_id: str, payment_id: str) -> bytes:
        payment, operations = await self._load(merchant_id, payment_id)
        return switch_pb2.GetPaymentResponse(payment=render.payment(payment, operations)).SerializeToString()

    async def list_payments(self, merchant_id: str, created_from_us: int | None, created_to_us: int | None,
                            limit: int, page_token: str) -> bytes:
        before = _decode_page_token(page_token, created_from_us, created_to_us) if page_token else None
        records = await self._read(self._store.list_payments(merchant_id, created_from_us, created_to_us,
                                                             limit + 1, before))
        response = switch_pb2.ListPaymentsResponse()
        for record in records[:limit]:
            operations = await self._read(self._store.get_operations(record.payment_id))
            response.payments.append(render.payment(record, operations))
        if len(records) > limit:
            last = records[limit - 1]
            response.next_page_token = _encode_page_token((last.created_at_us, last.payment_id),
                                                          created_from_us, created_to_us)
        return response.SerializeToString()

    # -- the two-commit flow ------------------------------------------------------------------------

    async def _authorize(self, command: AuthorizeCommand, fingerprint: bytes) -> bytes:
        channel_name, binding = self._channels.for_merchant(command.merchant_id)
        now = self._clock_us()
        payment_id, operation_id = self._ids.payment_id(), self._ids.operation_id()
        amount = command.amount
        if command.card is not None:
            card = command.card
            method = MethodSummary("card", card.bin, card.last4, card.exp_month, card.exp_year, card.scheme)
            channel_method = {"card": types_pb2.Card(number=card.number.reveal(), exp_month=card.exp_month,
                                                     exp_year=card.exp_year, cvv=card.cvv.reveal(),
                                                     holder_name=card.holder_name)}
        else:
            method = MethodSummary("wallet", wallet_provider=command.wallet.provider)
            channel_method = {"wallet": types_pb2.Wallet(provider=command.wallet.provider,
                                                         token=command.wallet.token.reveal())}
        payment = PaymentRecord(
            payment_id=payment_id, merchant_id=command.merchant_id, merchant_reference=command.merchant_reference,
            status=PaymentStatus.PENDING, currency=amount.currency, amount_minor=amount.amount_minor,
            captured_minor=0, refunded_minor=0, channel=channel_name, method=method,
            authorization_id=operation_id, decline_code="", decline_message="", pending_operation_id=operation_id,
            version=1, created_at_us=now, updated_at_us=now)
        operation = self._new_operation(operation_id, payment_id, OperationKind.AUTHORIZATION, amount.amount_minor,
                                        amount.currency, command.idempotency_key, now)
        idempotency = IdempotencyRecord(command.merchant_id, command.idempotency_key, "Authorize", fingerprint,
                                        IdempotencyState.IN_PROGRESS, None, payment_id, now)
        await self._commit(Change(payment=payment, operation=operation, idempotency=idempotency))
        request = channel_pb2.ChannelAuthorizeRequest(
            reference=operation_id, merchant_id=command.merchant_id,
            amount=render.money(amount.amount_minor, amount.currency), description=command.description,
            **channel_method)
        response = await self._call_channel(binding.client.authorize, request, binding.timeout_s)
        return await self._settle(payment, [], operation, response, idempotency)

    async def _operate(self, command, fingerprint: bytes, kind: OperationKind) -> bytes:
        async with self._locks.hold(command.payment_id):
            payment, operations = await self._load(command.merchant_id, command.payment_id)
            if kind is OperationKind.CAPTURE:
                amount_minor = lifecycle.check_capture(payment.status, payment.currency, payment.amount_minor,
                                                       payment.pending_operation_id, command.amount)
            elif kind is OperationKind.VOID:
                lifecycle.check_void(payment.status, payment.pending_operation_id)
                amount_minor = payment.amount_minor
            else:
                amount_minor = lifecycle.check_refund(payment.status, payment.currency, payment.captured_minor,
                                                      payment.refunded_minor, payment.pending_operation_id,
                                                      command.amount)
            now = self._clock_us()
            operation_id = self._ids.operation_id()
            pending = dataclasses.replace(payment, pending_operation_id=operation_id, version=payment.version + 1,
                                          updated_at_us=now)
            operation = self._new_operation(operation_id, payment.payment_id, kind, amount_minor, payment.currency,
                                            command.idempotency_key, now)
            idempotency = IdempotencyRecord(command.merchant_id, command.idempotency_key, kind.value.title(),
                                            fingerprint, IdempotencyState.IN_PROGRESS, None, payment.payment_id, now)
            await self._commit(Change(payment=pending, expected_version=payment.version, operation=operation,
                                      idempotency=idempotency))
            binding = self._channels.named(payment.channel)
            money = render.money(amount_minor, payment.currency)
            if kind is OperationKind.CAPTURE:
                call = binding.client.capture
                request = channel_pb2.ChannelCaptureRequest(
                    reference=operation_id, authorization_reference=payment.authorization_id, amount=money)
            elif kind is OperationKind.VOID:
                call = binding.client.void
                request = channel_pb2.ChannelVoidRequest(
                    reference=operation_id, authorization_reference=payment.authorization_id)
            else:
                call = binding.client.refund
                request = channel_pb2.ChannelRefundRequest(
                    reference=operation_id, authorization_reference=payment.authorization_id, amount=money)
            response = await self._call_channel(call, request, binding.timeout_s)
            return await self._settle(pending, operations, operation, response, idempotency)

    async def _settle(self, payment: PaymentRecord, earlier: list[OperationRecord], operation: OperationRecord,
                      response: ChannelResponse, idempotency: IdempotencyRecord) -> bytes:
        """Commits the channel's answer with its postings and the response; returns the response."""
        now = self._clock_us()
        operation = dataclasses.replace(
            operation, status=_OPERATION_STATUS[response.outcome], channel_reference=response.channel_reference,
            decline_code=response.decline_code, decline_message=response.message, updated_at_us=now)
        settled, entries = self._apply_outcome(payment, operation, response, now)
        settled = dataclasses.replace(settled, version=payment.version + 1, updated_at_us=now)
        body = _RESPONSE_TYPES[operation.kind](
            payment=render.payment(settled, [*earlier, operation]), operation=render.operation(operation),
        ).SerializeToString()
        done = dataclasses.replace(idempotency, state=IdempotencyState.DONE, response=body)
        await self._commit(Change(payment=settled, expected_version=payment.version, operation=operation,
                                  postings=entries, idempotency=done))
        return body

    @staticmethod
    def _apply_outcome(payment: PaymentRecord, operation: OperationRecord, response: ChannelResponse, now: int):
        """The payment after the channel's answer, and the ledger postings that go with it."""
        kind, outcome = operation.kind, response.outcome
        if outcome is Outcome.UNKNOWN:
            return payment, ()
        if kind is OperationKind.AUTHORIZATION:
            if outcome is Outcome.APPROVED:
                return (dataclasses.replace(payment, status=PaymentStatus.AUTHORIZED, pending_operation_id=None),
                        postings.authorization(operation.operation_id, payment.payment_id, payment.merchant_id,
                                               payment.channel, payment.currency, payment.amount_minor, now))
            status = PaymentStatus.DECLINED if outcome is Outcome.DECLINED else PaymentStatus.FAILED
            return (dataclasses.replace(payment, status=status, pending_operation_id=None,
                                        decline_code=response.decline_code, decline_message=response.message), ())
        if outcome is not Outcome.APPROVED:
            return dataclasses.replace(payment, pending_operation_id=None), ()
        ids = (operation.operation_id, payment.payment_id, payment.merchant_id, payment.channel, payment.currency)
        if kind is OperationKind.CAPTURE:
            return (dataclasses.replace(payment, status=PaymentStatus.CAPTURED, captured_minor=operation.amount_minor,
                                        pending_operation_id=None),
                    postings.capture(*ids, payment.amount_minor, operation.amount_minor, now))
        if kind is OperationKind.VOID:
            return (dataclasses.replace(payment, status=PaymentStatus.VOIDED, pending_operation_id=None),
                    postings.hold_release(*ids, payment.amount_minor, now))
        refunded = payment.refunded_minor + operation.amount_minor
        return (dataclasses.replace(payment, refunded_minor=refunded, pending_operation_id=None,
                                    status=lifecycle.status_after_refund(payment.captured_minor, refunded)),
                postings.refund(*ids, operation.amount_minor, now))

    # -- plumbing -----------------------------------------------------------------------------------

    @staticmethod
    def _new_operation(operation_id, payment_id, kind, amount_minor, currency, idempotency_key, now):
        return OperationRecord(operation_id, payment_id, kind, OperationStatus.PENDING, amount_minor, currency,
                               "", "", "", idempotency_key, now, now)

    async def _load(self, merchant_id: str, payment_id: str) -> tuple[PaymentRecord, list[OperationRecord]]:
        payment = await self._read(self._store.get_payment(merchant_id, payment_id))
        if payment is None:
            raise PaymentNotFound(payment_id)
        return payment, await self._read(self._store.get_operations(payment_id))

    @staticmethod
    async def _call_channel(call, request, timeout_s: float) -> ChannelResponse:
        try:
            return await call(request, timeout_s)
        except Exception:  # noqa: BLE001 - a client bug must not pass for a decline: the outcome is unknown
            log.exception("channel client raised; treating the outcome as unknown")
            return ChannelResponse(Outcome.UNKNOWN, message="channel client error")

    async def _commit(self, change: Change) -> None:
        try:
            await self._store.apply(change)
        except IdempotencyConflict:
            raise
        except StaleWrite:
            raise RequestInProgress() from None
        except StoreClosed:
            raise ShuttingDown() from None
        except StoreError as error:
            log.error("store write failed: %s", error)
            raise StoreUnavailable() from None

    @staticmethod
    async def _read(awaitable):
        try:
            return await awaitable
        except StoreClosed:
            raise ShuttingDown() from None
        except StoreError as error:
            log.error("store read failed: %s", error)
            raise StoreUnavailable() from None


def _filters(created_from_us, created_to_us) -> list:
    return [created_from_us, created_to_us]


def _encode_page_token(cursor: tuple[int, str], created_from_us, created_to_us) -> str:
    payload = json.dumps([cursor[0], cursor[1], _filters(created_from_us, created_to_us)], separators=(",", ":"))
    return base64.urlsafe_b64encode(payload.encode()).decode().rstrip("=")


def _decode_page_token(token: str, created_from_us, created_to_us) -> tuple[int, str]:
    try:
        created_at_us, payment_id, filters = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        valid = type(created_at_us) is int and type(payment_id) is str
    except (ValueError, TypeError):
        valid = False
    if not valid:
        raise InvalidRequest({"page_token": "is not a token this service issued"})
    if filters != _filters(created_from_us, created_to_us):
        raise InvalidRequest({"page_token": "was issued for different filters"})
    return created_at_us, payment_id

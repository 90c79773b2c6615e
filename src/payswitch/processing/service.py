"""The payment service: each operation is two durable commits around one channel call.

1. The intent is committed first (payment and operation PENDING, idempotency key IN_PROGRESS), so a
   crash after the channel acted leaves a record that names the channel reference to inquire about.
2. The channel is called with the operation id as its idempotency reference.
3. The outcome, the new payment state, the ledger postings and the response bytes are committed
   together; only then is the caller answered.
Operations on one payment are serialized (KeyedLocks in-process, the version guard across processes),
and a payment with an operation of unknown outcome refuses further operations until it is resolved.
"""

import asyncio
import base64
import dataclasses
import json
import logging
import time

from ..channels.base import ChannelResponse, Outcome
from ..ledger import postings
from ..payments import lifecycle
from ..payments.commands import AuthorizeCommand, CaptureCommand, RefundCommand, VoidCommand
from ..payments.errors import InvalidRequest, PaymentNotFound
from ..payments.ids import IdSource
from ..payments.lifecycle import OperationKind, OperationStatus, PaymentStatus
from ..store.base import (Change, IdempotencyRecord, IdempotencyState, MethodSummary, OperationRecord, PaymentRecord,
                          PaymentStore, StoreError)
from ..v1 import channel_pb2, switch_pb2, types_pb2
from . import render
from .channel_directory import ChannelDirectory
from .idempotency import IdempotencyGate
from .locks import KeyedLocks
from .store_errors import as_payment_error, checked

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


_CLIENT_ERROR = ChannelResponse(Outcome.UNKNOWN, message="channel client error")


@dataclasses.dataclass(frozen=True, slots=True)
class _AuthorizationIntent:
    payment: PaymentRecord
    operation: OperationRecord
    idempotency: IdempotencyRecord
    channel_name: str
    binding: object
    request: channel_pb2.ChannelAuthorizeRequest

    @property
    def change(self) -> Change:
        return Change(payment=self.payment, operation=self.operation, idempotency=self.idempotency)


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

    async def execute_batch(self, merchant_id: str, commands: list) -> list:
        """Runs a batch's items, each a command or the PaymentError its validation raised, and returns
        one outcome per item: the serialized response or an exception.

        Authorizations (the bulk of traffic) share one idempotency read, two commits and one channel
        call per channel; other operations run concurrently through the single-operation path, where
        the store's group commit still merges their writes.
        """
        outcomes: list = list(commands)
        authorizations = [(index, command) for index, command in enumerate(commands)
                          if isinstance(command, AuthorizeCommand)]
        waiting = []
        if authorizations:
            fingerprints = [command.fingerprint() for _, command in authorizations]
            first_by_key = {}
            for (_, command), fingerprint in zip(authorizations, fingerprints):
                first_by_key.setdefault(command.idempotency_key, (command, fingerprint))
            futures = self._gate.run_many(
                merchant_id, [(command.idempotency_key, fingerprint)
                              for (_, command), fingerprint in zip(authorizations, fingerprints)],
                lambda claimed: self._authorize_many([first_by_key[key] for key, _ in claimed]))
            waiting += [(index, asyncio.shield(future)) for (index, _), future in zip(authorizations, futures)]
        single = {CaptureCommand: self.capture, VoidCommand: self.void, RefundCommand: self.refund}
        waiting += [(index, single[type(command)](command)) for index, command in enumerate(commands)
                    if type(command) in single]
        results = await asyncio.gather(*(awaitable for _, awaitable in waiting), return_exceptions=True)
        for (index, _), result in zip(waiting, results):
            outcomes[index] = result
        return outcomes

    # -- reads --------------------------------------------------------------------------------------

    async def get_payment(self, merchant_id: str, payment_id: str) -> bytes:
        payment, operations = await self._load(merchant_id, payment_id)
        return switch_pb2.GetPaymentResponse(payment=render.payment(payment, operations)).SerializeToString()

    async def list_payments(self, merchant_id: str, created_from_us: int | None, created_to_us: int | None,
                            limit: int, page_token: str) -> bytes:
        before = _decode_page_token(page_token, created_from_us, created_to_us) if page_token else None
        records = await checked(self._store.list_payments(merchant_id, created_from_us, created_to_us,
                                                             limit + 1, before))
        response = switch_pb2.ListPaymentsResponse()
        for record in records[:limit]:
            operations = await checked(self._store.get_operations(record.payment_id))
            response.payments.append(render.payment(record, operations))
        if len(records) > limit:
            last = records[limit - 1]
            response.next_page_token = _encode_page_token((last.created_at_us, last.payment_id),
                                                          created_from_us, created_to_us)
        return response.SerializeToString()

    # -- the two-commit flow ------------------------------------------------------------------------

    async def _authorize(self, command: AuthorizeCommand, fingerprint: bytes) -> bytes:
        intent = self._authorization_intent(command, fingerprint)
        await self._commit(intent.change)
        response = await self._call_channel(intent.binding.client.authorize, intent.request, intent.binding.timeout_s)
        change, body = self._settlement(intent.payment, [], intent.operation, response, intent.idempotency)
        await self._commit(change)
        return body

    async def _authorize_many(self, items: list[tuple[AuthorizeCommand, bytes]]) -> list:
        """The batch form of _authorize: the same two commits, each one transaction for the whole batch,
        and one channel call per channel; every item ends with its own response or error."""
        intents = [self._authorization_intent(command, fingerprint) for command, fingerprint in items]
        outcomes: list = await self._commit_many([intent.change for intent in intents])
        accepted = [index for index, outcome in enumerate(outcomes) if outcome is None]
        by_channel: dict[str, list[int]] = {}
        for index in accepted:
            by_channel.setdefault(intents[index].channel_name, []).append(index)
        answers = await asyncio.gather(*(self._call_channel_batch(intents, indices) for indices in by_channel.values()))
        settlements = {}
        for indices, responses in zip(by_channel.values(), answers):
            for index, response in zip(indices, responses, strict=True):
                intent = intents[index]
                settlements[index] = self._settlement(intent.payment, [], intent.operation, response, intent.idempotency)
        committed = await self._commit_many([change for change, _ in settlements.values()])
        for (index, (_, body)), error in zip(settlements.items(), committed):
            outcomes[index] = body if error is None else error
        return outcomes

    def _authorization_intent(self, command: AuthorizeCommand, fingerprint: bytes) -> "_AuthorizationIntent":
        """The first commit of an authorization (payment, operation and key, all PENDING) and the
        channel request that follows it."""
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
        request = channel_pb2.ChannelAuthorizeRequest(
            reference=operation_id, merchant_id=command.merchant_id,
            amount=render.money(amount.amount_minor, amount.currency), description=command.description,
            **channel_method)
        return _AuthorizationIntent(payment, operation, idempotency, channel_name, binding, request)

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
            change, body = self._settlement(pending, operations, operation, response, idempotency)
            await self._commit(change)
            return body

    def _settlement(self, payment: PaymentRecord, earlier: list[OperationRecord], operation: OperationRecord,
                    response: ChannelResponse, idempotency: IdempotencyRecord) -> tuple[Change, bytes]:
        """The second commit: the channel's answer with its postings and the response it produces."""
        now = self._clock_us()
        operation = dataclasses.replace(
            operation, status=_OPERATION_STATUS[response.outcome], channel_reference=response.channel_reference,
            decline_code=response.decline_code, decline_message=response.message, updated_at_us=now)
        changes, entries = self._apply_outcome(payment, operation, response, now)
        settled = dataclasses.replace(payment, version=payment.version + 1, updated_at_us=now, **changes)
        body = _RESPONSE_TYPES[operation.kind](
            payment=render.payment(settled, [*earlier, operation]), operation=render.operation(operation),
        ).SerializeToString()
        done = IdempotencyRecord(idempotency.merchant_id, idempotency.key, idempotency.method, idempotency.fingerprint,
                                 IdempotencyState.DONE, body, idempotency.payment_id, idempotency.created_at_us)
        return Change(payment=settled, expected_version=payment.version, operation=operation, postings=entries,
                      idempotency=done), body

    @staticmethod
    def _apply_outcome(payment: PaymentRecord, operation: OperationRecord, response: ChannelResponse, now: int):
        """How the channel's answer changes the payment (as field values), and the ledger postings that
        go with it."""
        kind, outcome = operation.kind, response.outcome
        if outcome is Outcome.UNKNOWN:
            return {}, ()
        if kind is OperationKind.AUTHORIZATION:
            if outcome is Outcome.APPROVED:
                return ({"status": PaymentStatus.AUTHORIZED, "pending_operation_id": None},
                        postings.authorization(operation.operation_id, payment.payment_id, payment.merchant_id,
                                               payment.channel, payment.currency, payment.amount_minor, now))
            status = PaymentStatus.DECLINED if outcome is Outcome.DECLINED else PaymentStatus.FAILED
            return ({"status": status, "pending_operation_id": None, "decline_code": response.decline_code,
                     "decline_message": response.message}, ())
        if outcome is not Outcome.APPROVED:
            return {"pending_operation_id": None}, ()
        ids = (operation.operation_id, payment.payment_id, payment.merchant_id, payment.channel, payment.currency)
        if kind is OperationKind.CAPTURE:
            return ({"status": PaymentStatus.CAPTURED, "captured_minor": operation.amount_minor,
                     "pending_operation_id": None},
                    postings.capture(*ids, payment.amount_minor, operation.amount_minor, now))
        if kind is OperationKind.VOID:
            return ({"status": PaymentStatus.VOIDED, "pending_operation_id": None},
                    postings.hold_release(*ids, payment.amount_minor, now))
        refunded = payment.refunded_minor + operation.amount_minor
        return ({"refunded_minor": refunded, "pending_operation_id": None,
                 "status": lifecycle.status_after_refund(payment.captured_minor, refunded)},
                postings.refund(*ids, operation.amount_minor, now))

    # -- plumbing -----------------------------------------------------------------------------------

    @staticmethod
    def _new_operation(operation_id, payment_id, kind, amount_minor, currency, idempotency_key, now):
        return OperationRecord(operation_id, payment_id, kind, OperationStatus.PENDING, amount_minor, currency,
                               "", "", "", idempotency_key, now, now)

    async def _load(self, merchant_id: str, payment_id: str) -> tuple[PaymentRecord, list[OperationRecord]]:
        payment = await checked(self._store.get_payment(merchant_id, payment_id))
        if payment is None:
            raise PaymentNotFound(payment_id)
        return payment, await checked(self._store.get_operations(payment_id))

    @staticmethod
    async def _call_channel(call, request, timeout_s: float) -> ChannelResponse:
        try:
            return await call(request, timeout_s)
        except Exception:  # noqa: BLE001 - a client bug must not pass for a decline: the outcome is unknown
            log.exception("channel client raised; treating the outcome as unknown")
            return _CLIENT_ERROR

    @staticmethod
    async def _call_channel_batch(intents: list["_AuthorizationIntent"], indices: list[int]) -> list[ChannelResponse]:
        binding = intents[indices[0]].binding
        try:
            responses = await binding.client.batch([intents[index].request for index in indices], binding.timeout_s)
        except Exception:  # noqa: BLE001 - as in _call_channel, for every item of the batch
            log.exception("channel client raised on a batch; treating every outcome as unknown")
            return [_CLIENT_ERROR] * len(indices)
        if len(responses) != len(indices):
            log.error("channel client answered %d of %d batch items; treating all as unknown",
                      len(responses), len(indices))
            return [_CLIENT_ERROR] * len(indices)
        return responses

    async def _commit(self, change: Change) -> None:
        await checked(self._store.apply(change))

    async def _commit_many(self, changes: list[Change]) -> list[Exception | None]:
        """One transaction for many changes; each gets None or the error its caller should see."""
        try:
            results = await self._store.apply_many(changes)
        except StoreError as error:
            return [as_payment_error(error)] * len(changes)
        return [None if result is None else as_payment_error(result) for result in results]


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

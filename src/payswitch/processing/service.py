"""The payment service: each operation is two durable commits around one channel call.

1. The intent is committed first (payment and operation PENDING, idempotency key IN_PROGRESS), so a
   crash after the channel acted leaves a record that names the channel reference to inquire about.
2. The channel is called with the operation id as its idempotency reference.
3. The outcome, the new payment state, the ledger postings and the response bytes are committed
   together; only then is the caller answered.
Operations on one payment are serialized (KeyedLocks in-process, the version guard across processes),
and a payment with an operation of unknown outcome refuses further operations until it is resolved
(by the resolver, which asks the channel through Inquire and records the answer through `settle`).

Risk rules judge an authorization before its first commit: one they decline is recorded DECLINED
with the rule's reason code and never reaches a channel. An authorization goes to the first channel of
its route; when that channel surely did not act
(connection refused, circuit open, concurrency limit full) the payment is moved to the next channel,
durably before the next call, so a crash can never leave the switch asking the wrong channel what it
did. Every channel call gets its own timeout cut to what the caller's deadline leaves.

What the channel answered is recorded by `settlement`, which records no amount the channel did not
confirm and may start a REVERSAL of a partial approval the caller did not accept (sent here, as a
Void). A retry that finds its key's operation cut off between the two commits sends it again under
the same reference (`_resume`); a channel too busy to be called frees the key (ChannelBusy).
"""

import asyncio
import base64
import dataclasses
import json
import logging
import time

from ..channels.base import BATCH_OPERATIONS, BatchableRequest, ChannelResponse, Outcome
from ..channels.guarded import BUSY_CODE, may_fail_over
from ..logs import bind_log_context
from ..payments import lifecycle
from ..payments.commands import AuthorizeCommand, CaptureCommand, RefundCommand, TokenizeCommand, VoidCommand
from ..payments.errors import (ChannelBusy, InvalidRequest, PaymentError, PaymentNotFound, RequestInProgress,
                               VaultNotConfigured)
from ..payments.ids import IdSource
from ..payments.lifecycle import OperationKind, OperationStatus, PaymentStatus
from ..routing.router import Route, Router
from ..store.base import (Change, IdempotencyRecord, IdempotencyState, MethodSummary, OperationRecord, PaymentRecord,
                          PaymentStore, StaleWrite, StoreError, VaultEntry)
from ..v1 import channel_pb2, switch_pb2, types_pb2
from ..vault.card_vault import CardVault
from . import render
from .budget import UNBOUNDED, Budget
from .risk_gate import RiskGate
from .channel_directory import ChannelDirectory
from .idempotency import IdempotencyGate
from .locks import KeyedLocks
from .settlement import Settlement, confirmed, settle
from .store_errors import as_payment_error, checked
from .vaulted_cards import open_tokens

log = logging.getLogger(__name__)


_CLIENT_ERROR = ChannelResponse(Outcome.UNKNOWN, message="channel client error")


@dataclasses.dataclass(frozen=True, slots=True)
class _AuthorizationIntent:
    payment: PaymentRecord
    operation: OperationRecord
    idempotency: IdempotencyRecord
    request: channel_pb2.ChannelAuthorizeRequest
    fallbacks: tuple[str, ...]  # the route's channels after payment.channel, in order
    vault_entry: VaultEntry | None  # the card number the payment brought, sealed, committed with it

    @property
    def change(self) -> Change:
        return Change(payment=self.payment, operation=self.operation, idempotency=self.idempotency,
                      vault_entry=self.vault_entry)

    @property
    def change_of_channel(self) -> Change:
        """Moves the pending payment to its next channel before that channel is called."""
        return Change(payment=self.payment, expected_version=self.payment.version - 1)


def _wall_clock_us() -> int:
    return time.time_ns() // 1000


class PaymentService:
    def __init__(self, store: PaymentStore, channels: ChannelDirectory, router: Router, *,
                 vault: CardVault | None = None, risk: RiskGate | None = None, ids: IdSource | None = None,
                 clock_us=_wall_clock_us):
        """Without a `vault` (no master key) the switch keeps no card numbers and refuses tokens; without
        `risk` rules every authorization goes to its channel."""
        self._store = store
        self._channels = channels
        self._router = router
        self._vault = vault
        self._risk = risk
        self._ids = ids or IdSource()
        self._clock_us = clock_us
        self._gate = IdempotencyGate(store)
        self._locks = KeyedLocks()
        # Operations whose channel call is under way in this process; the resolver leaves them alone.
        self._sending: set[str] = set()

    async def drain(self) -> None:
        """Lets every started operation finish and commit (graceful shutdown)."""
        await self._gate.drain()

    # -- mutating operations: idempotent, answered with the serialized response ------------------

    async def authorize(self, command: AuthorizeCommand, budget: Budget = UNBOUNDED) -> bytes:
        fingerprint = command.fingerprint()
        return await self._gate.run(command.merchant_id, command.idempotency_key, fingerprint,
                                    lambda: self._authorize(command, fingerprint, budget),
                                    lambda record: self._resume(record, command, budget))

    async def capture(self, command: CaptureCommand, budget: Budget = UNBOUNDED) -> bytes:
        return await self._operation(command, OperationKind.CAPTURE, budget)

    async def void(self, command: VoidCommand, budget: Budget = UNBOUNDED) -> bytes:
        return await self._operation(command, OperationKind.VOID, budget)

    async def refund(self, command: RefundCommand, budget: Budget = UNBOUNDED) -> bytes:
        return await self._operation(command, OperationKind.REFUND, budget)

    async def _operation(self, command, kind: OperationKind, budget: Budget) -> bytes:
        fingerprint = command.fingerprint()
        return await self._gate.run(command.merchant_id, command.idempotency_key, fingerprint,
                                    lambda: self._operate(command, fingerprint, kind, budget),
                                    lambda record: self._resume(record, command, budget))

    async def execute_batch(self, merchant_id: str, commands: list, budget: Budget = UNBOUNDED) -> list:
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
                lambda claimed: self._authorize_many([first_by_key[key] for key, _ in claimed], budget),
                lambda key, record: self._resume(record, first_by_key[key][0], budget))
            waiting += [(index, asyncio.shield(future)) for (index, _), future in zip(authorizations, futures)]
        single = {CaptureCommand: self.capture, VoidCommand: self.void, RefundCommand: self.refund}
        waiting += [(index, single[type(command)](command, budget)) for index, command in enumerate(commands)
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

    async def tokenize(self, command: TokenizeCommand) -> bytes:
        if self._vault is None:
            raise VaultNotConfigured()
        entry = await checked(self._vault.tokenize(command.merchant_id, command.card))
        return switch_pb2.TokenizeResponse(token=entry.entry_id, card=types_pb2.CardSummary(
            bin=entry.card_bin, last4=entry.card_last4, exp_month=entry.exp_month, exp_year=entry.exp_year,
            scheme=entry.scheme)).SerializeToString()

    async def _authorize(self, command: AuthorizeCommand, fingerprint: bytes, budget: Budget) -> bytes:
        [command] = await open_tokens(self._vault, command.merchant_id, [command])
        if isinstance(command, PaymentError):
            raise command
        intent = self._authorization_intent(command, fingerprint, self._route(command))
        bind_log_context(payment_id=intent.payment.payment_id)
        budget.require_room()
        judged = self._judged({0: intent}, [command])
        if isinstance(judged[0], Settlement):  # declined by risk: one commit, no channel call
            await self._commit(judged[0].change)
            return judged[0].body
        intent = judged[0]
        operation_id = intent.operation.operation_id
        self._sending.add(operation_id)
        try:
            await self._commit(intent.change)
            while True:
                binding = self._channels.named(intent.payment.channel)
                response = await self._call_channel(binding.client.authorize, intent.request,
                                                    budget.channel_timeout(binding.timeout_s))
                if not self._may_fail_over(intent, response, budget):
                    break
                intent = self._rerouted(intent)
                await self._commit(intent.change_of_channel)
            settlement = self._settle(intent.payment, [], intent.operation, response, intent.idempotency)
            if _busy(response):
                await self._commit(_released(settlement, intent.idempotency))
                raise ChannelBusy(intent.payment.channel)
            await self._commit(settlement.change)
        finally:
            self._sending.discard(operation_id)
        if settlement.reversal is not None:
            return await self._reverse(settlement, intent.idempotency, budget)
        return settlement.body

    async def _authorize_many(self, items: list[tuple[AuthorizeCommand, bytes]], budget: Budget) -> list:
        """The batch form of _authorize: the same commits, each one transaction for the whole batch, and
        one channel call per channel (per failover round); every item ends with its own response or
        error. The batch is routed by one routing table, read once."""
        table = self._router.table
        outcomes: list = [None] * len(items)
        intents: dict[int, _AuthorizationIntent] = {}
        opened = await open_tokens(self._vault, items[0][0].merchant_id if items else "",
                                   [command for command, _ in items])
        for index, ((_, fingerprint), command) in enumerate(zip(items, opened)):
            if isinstance(command, PaymentError):
                outcomes[index] = command
                continue
            try:
                intents[index] = self._authorization_intent(command, fingerprint, self._route(command, table))
            except PaymentError as error:
                outcomes[index] = error
        if intents:
            budget.require_room()
        judged = self._judged(intents, [opened[index] for index in intents])
        declined = {index: answer for index, answer in judged.items() if isinstance(answer, Settlement)}
        intents = {index: answer for index, answer in judged.items() if not isinstance(answer, Settlement)}
        sending = [intent.operation.operation_id for intent in intents.values()]
        self._sending.update(sending)
        try:
            first = {index: intent.change for index, intent in intents.items()}
            first.update((index, settlement.change) for index, settlement in declined.items())
            accepted = await self._commit_changes(first, outcomes)
            for index in accepted:
                if index in declined:
                    outcomes[index] = declined[index].body
            active = [index for index in accepted if index in intents]
            responses: dict[int, ChannelResponse] = {}
            while active:
                by_channel: dict[str, list[int]] = {}
                for index in active:
                    by_channel.setdefault(intents[index].payment.channel, []).append(index)
                answers = await asyncio.gather(*(self._call_channel_batch(channel, [intents[i] for i in indices],
                                                                          budget)
                                                 for channel, indices in by_channel.items()))
                moving = {}
                for indices, answered in zip(by_channel.values(), answers):
                    for index, response in zip(indices, answered, strict=True):
                        if self._may_fail_over(intents[index], response, budget):
                            moving[index] = intents[index] = self._rerouted(intents[index])
                        else:
                            responses[index] = response
                active = await self._commit_changes({index: intent.change_of_channel
                                                     for index, intent in moving.items()}, outcomes)
            settlements = {index: self._settle(intents[index].payment, [], intents[index].operation, response,
                                               intents[index].idempotency)
                           for index, response in responses.items()}
            committed = await self._commit_many([
                _released(settlement, intents[index].idempotency) if _busy(responses[index]) else settlement.change
                for index, settlement in settlements.items()])
            reversing = {}
            for (index, settlement), error in zip(settlements.items(), committed):
                if error is not None:
                    outcomes[index] = error
                elif _busy(responses[index]):
                    outcomes[index] = ChannelBusy(intents[index].payment.channel)
                elif settlement.reversal is not None:
                    reversing[index] = self._reverse(settlement, intents[index].idempotency, budget)
                else:
                    outcomes[index] = settlement.body
        finally:
            self._sending.difference_update(sending)
        reversed_ = await asyncio.gather(*reversing.values(), return_exceptions=True)
        for index, outcome in zip(reversing, reversed_):
            outcomes[index] = outcome
        return outcomes

    def _judged(self, intents: dict[int, "_AuthorizationIntent"], commands: list[AuthorizeCommand]) -> dict:
        """Each intent with the risk decision recorded on its payment, or for one risk declined, the
        Settlement that records it DECLINED without a channel call. `commands` are the opened
        commands of the intents, in the same order."""
        decisions = None if self._risk is None else self._risk.judge_many(
            commands, [intent.payment for intent in intents.values()])
        if decisions is None:
            return dict(intents)
        judged = {}
        for (index, intent), (decision, payment) in zip(intents.items(), decisions, strict=True):
            intent = dataclasses.replace(intent, payment=payment)
            if decision.allowed:
                judged[index] = intent
                continue
            response = ChannelResponse(Outcome.DECLINED, decline_code=decision.reason_code,
                                       message=f"declined by risk rule {decision.rule}")
            settlement = self._settle(intent.payment, [], intent.operation, response, intent.idempotency)
            judged[index] = dataclasses.replace(settlement, change=dataclasses.replace(settlement.change,
                                                                                       expected_version=None))
        return judged

    async def _commit_changes(self, changes: dict[int, Change], outcomes: list) -> list[int]:
        """Commits the changes in one transaction; returns the indices that were accepted and records the
        others' errors as their outcomes."""
        errors = await self._commit_many(list(changes.values()))
        accepted = []
        for index, error in zip(changes, errors):
            if error is None:
                accepted.append(index)
            else:
                outcomes[index] = error
        return accepted

    def _route(self, command: AuthorizeCommand, table=None) -> Route:
        amount = command.amount
        if command.card is not None:
            return self._router.route(command.merchant_id, amount.currency, amount.amount_minor, "card",
                                      card_number=command.card.number.reveal(), table=table)
        return self._router.route(command.merchant_id, amount.currency, amount.amount_minor, "wallet",
                                  wallet_provider=command.wallet.provider, table=table)

    @staticmethod
    def _may_fail_over(intent: "_AuthorizationIntent", response: ChannelResponse, budget: Budget) -> bool:
        """Only a channel that surely did not act is left for the next one: never after a timeout, a
        broken connection or the channel's own refusal."""
        return may_fail_over(response) and bool(intent.fallbacks) and budget.has_room()

    def _rerouted(self, intent: "_AuthorizationIntent") -> "_AuthorizationIntent":
        now = self._clock_us()
        payment = dataclasses.replace(intent.payment, channel=intent.fallbacks[0], version=intent.payment.version + 1,
                                      updated_at_us=now)
        log.info("payment %s: channel %s did not act; trying %s", payment.payment_id, intent.payment.channel,
                 payment.channel)
        return dataclasses.replace(intent, payment=payment, fallbacks=intent.fallbacks[1:])

    def _authorization_intent(self, command: AuthorizeCommand, fingerprint: bytes,
                              route: Route) -> "_AuthorizationIntent":
        """The first commit of an authorization (payment, operation and key, all PENDING) and the
        channel request that follows it."""
        now = self._clock_us()
        payment_id, operation_id = self._ids.payment_id(), self._ids.operation_id()
        amount = command.amount
        vault_entry = None
        if command.card is not None:
            card = command.card
            token = "" if command.card_token is None else command.card_token.token
            method = MethodSummary("card", card.bin, card.last4, card.exp_month, card.exp_year, card.scheme,
                                   card_token=token)
            if not token and self._vault is not None:
                vault_entry = self._vault.seal(payment_id, command.merchant_id, card)
        else:
            method = MethodSummary("wallet", wallet_provider=command.wallet.provider)
        payment = PaymentRecord(
            payment_id=payment_id, merchant_id=command.merchant_id, merchant_reference=command.merchant_reference,
            status=PaymentStatus.PENDING, currency=amount.currency, amount_minor=amount.amount_minor,
            captured_minor=0, refunded_minor=0, channel=route.channels[0], method=method,
            authorization_id=operation_id, decline_code="", decline_message="", pending_operation_id=operation_id,
            version=1, created_at_us=now, updated_at_us=now, requested_minor=amount.amount_minor,
            routing_version=route.version, routing_rule=route.rule,
            partial_authorization=command.allow_partial_authorization)
        operation = self._new_operation(operation_id, payment_id, OperationKind.AUTHORIZATION, amount.amount_minor,
                                        amount.currency, command.idempotency_key, now)
        idempotency = IdempotencyRecord(command.merchant_id, command.idempotency_key, "Authorize", fingerprint,
                                        IdempotencyState.IN_PROGRESS, None, payment_id, now)
        request = self._channel_authorize_request(command, operation_id)
        return _AuthorizationIntent(payment, operation, idempotency, request, route.channels[1:], vault_entry)

    @staticmethod
    def _channel_authorize_request(command: AuthorizeCommand, operation_id: str) -> channel_pb2.ChannelAuthorizeRequest:
        amount = command.amount
        if command.card is not None:
            card = command.card
            method = {"card": types_pb2.Card(number=card.number.reveal(), exp_month=card.exp_month,
                                             exp_year=card.exp_year, cvv=card.cvv.reveal(),
                                             holder_name=card.holder_name)}
        else:
            method = {"wallet": types_pb2.Wallet(provider=command.wallet.provider, token=command.wallet.token.reveal())}
        return channel_pb2.ChannelAuthorizeRequest(
            reference=operation_id, merchant_id=command.merchant_id,
            amount=render.money(amount.amount_minor, amount.currency), description=command.description, **method)

    async def _operate(self, command, fingerprint: bytes, kind: OperationKind, budget: Budget) -> bytes:
        bind_log_context(payment_id=command.payment_id)
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
            budget.require_room()
            await self._commit(Change(payment=pending, expected_version=payment.version, operation=operation,
                                      idempotency=idempotency))
            settlement = await self._send(pending, operations, operation, _operation_request(pending, operation),
                                          idempotency, budget, fresh=True)
            return settlement.body

    # -- late outcomes ------------------------------------------------------------------------------

    def is_sending(self, operation_id: str) -> bool:
        """Whether this process is still waiting for the channel's answer to that operation."""
        return operation_id in self._sending

    async def settle_late(self, payment: PaymentRecord, operation_id: str, response: ChannelResponse) -> bool:
        """Records an outcome learnt after the call (through Inquire) for the payment's pending operation,
        with its postings and the response a retry of the operation's idempotency key now replays.
        False when there was nothing to do: still unknown, being sent, or settled meanwhile."""
        if response.outcome is Outcome.UNKNOWN or operation_id in self._sending:
            return False
        async with self._locks.hold(payment.payment_id):
            current, operations = await self._load(payment.merchant_id, payment.payment_id)
            pending = next((op for op in operations if op.operation_id == operation_id), None)
            if (current.pending_operation_id != operation_id or pending is None
                    or pending.status is not OperationStatus.PENDING
                    or confirmed(pending, response).outcome is Outcome.UNKNOWN):
                return False
            idempotency = await checked(self._store.get_idempotency(current.merchant_id, pending.idempotency_key))
            if idempotency is not None and idempotency.payment_id != current.payment_id:
                idempotency = None  # the key was purged and reused: leave the newer request's record alone
            earlier = [op for op in operations if op.operation_id != operation_id]
            settlement = self._settle(current, earlier, pending, response, idempotency)
            try:
                await self._store.apply(settlement.change)
            except StaleWrite:
                return False  # another process recorded it first
            except StoreError as error:
                raise as_payment_error(error) from None
        if settlement.reversal is not None:
            await self._reverse(settlement, idempotency, UNBOUNDED)
        return True

    # -- partial approvals the caller did not accept ---------------------------------------------------

    def _settle(self, payment, earlier, operation, response, idempotency) -> Settlement:
        return settle(payment, earlier, operation, response, idempotency, self._clock_us(), self._ids.operation_id)

    async def _reverse(self, settlement: Settlement, idempotency: IdempotencyRecord | None, budget: Budget) -> bytes:
        """Sends the settlement's REVERSAL (a Void of the partial approval) and records its answer, whose
        response the authorization's caller gets; an unknown answer leaves the payment PENDING for the
        resolver, like any other operation."""
        payment, reversal = settlement.payment, settlement.reversal
        reversed_ = await self._send(payment, settlement.operations, reversal, _operation_request(payment, reversal),
                                     idempotency, budget)
        if reversed_.payment.status is PaymentStatus.AUTHORIZED:
            log.error("payment %s: channel %s refused to reverse a partial approval (%s); the payment is "
                      "authorized for the approved amount", payment.payment_id, payment.channel,
                      reversed_.change.operation.decline_code)
        return reversed_.body

    # -- operations the switch stopped in the middle of -------------------------------------------------

    async def _resume(self, record: IdempotencyRecord, command, budget: Budget) -> bytes:
        """A repeat found its key's operation committed as an intent with no outcome: the switch stopped
        between the two commits (or another process is still sending it). The operation is sent again to
        its channel under the same reference, which the channel answers as it answered the first time,
        or acts on now if the first never reached it; the payment's version is taken first, so a process
        still on the operation can no longer move it to another channel. An authorization is sent with
        the card data of the repeat, since the switch keeps no CVV."""
        bind_log_context(payment_id=record.payment_id)
        async with self._locks.hold(record.payment_id):
            payment, operations = await self._load(record.merchant_id, record.payment_id)
            pending = next((op for op in operations if op.operation_id == payment.pending_operation_id), None)
            if (pending is None or pending.status is not OperationStatus.PENDING
                    or pending.idempotency_key != record.key or pending.operation_id in self._sending):
                raise RequestInProgress()
            budget.require_room()
            if pending.kind is OperationKind.AUTHORIZATION:
                [command] = await open_tokens(self._vault, command.merchant_id, [command])
                if isinstance(command, PaymentError):
                    raise command
                request = self._channel_authorize_request(command, pending.operation_id)
            else:
                request = _operation_request(payment, pending)
            claimed = dataclasses.replace(payment, version=payment.version + 1, updated_at_us=self._clock_us())
            await self._commit(Change(payment=claimed, expected_version=payment.version))
            log.info("payment %s: %s %s was interrupted before its outcome was recorded; sending it again to %s",
                     payment.payment_id, pending.kind.value.lower(), pending.operation_id, payment.channel)
            earlier = [op for op in operations if op.operation_id != pending.operation_id]
            settlement = await self._send(claimed, earlier, pending, request, record, budget)
        if settlement.reversal is not None:
            return await self._reverse(settlement, record, budget)
        return settlement.body

    async def interrupted(self, payment: PaymentRecord, operation: OperationRecord) -> IdempotencyRecord | None:
        """The key's record of a pending operation whose caller was never answered (its record is still
        in progress), as opposed to one answered PENDING after a timeout; None otherwise."""
        record = await checked(self._store.get_idempotency(payment.merchant_id, operation.idempotency_key))
        if record is None or record.payment_id != payment.payment_id or record.state is not IdempotencyState.IN_PROGRESS:
            return None
        return record

    async def resume(self, record: IdempotencyRecord) -> None:
        """The resolver's way to finish an interrupted capture, void, refund or reversal, whose requests
        the store holds whole (an authorization needs its caller's card data: see _resume). Through the
        key's gate, so a repeat arriving meanwhile shares this work."""
        await self._gate.run(record.merchant_id, record.key, record.fingerprint, _record_purged,
                             lambda found: self._resume(found, None, UNBOUNDED))

    async def _send(self, payment: PaymentRecord, earlier: list[OperationRecord], operation: OperationRecord,
                    request, idempotency: IdempotencyRecord | None, budget: Budget, *, fresh: bool = False) -> Settlement:
        """Calls the payment's channel with an operation already committed as pending, and commits what
        it answered. Should the channel have no free slot, a `fresh` operation (its caller's first send)
        is recorded FAILED with its key freed, and any other (a reversal, a resumed operation) stays
        pending as it was, for the next retry or the resolver; both raise ChannelBusy."""
        binding = self._channels.named(payment.channel)
        call = getattr(binding.client, BATCH_OPERATIONS[type(request)])
        self._sending.add(operation.operation_id)
        try:
            response = await self._call_channel(call, request, budget.channel_timeout(binding.timeout_s))
            if _busy(response) and not fresh:
                raise ChannelBusy(payment.channel)
            settlement = self._settle(payment, earlier, operation, response, idempotency)
            if _busy(response):
                await self._commit(_released(settlement, idempotency))
                raise ChannelBusy(payment.channel)
            await self._commit(settlement.change)
        finally:
            self._sending.discard(operation.operation_id)
        return settlement

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

    async def _call_channel_batch(self, channel: str, intents: list["_AuthorizationIntent"],
                                  budget: Budget) -> list[ChannelResponse]:
        binding = self._channels.named(channel)
        try:
            responses = await binding.client.batch([intent.request for intent in intents],
                                                   budget.channel_timeout(binding.timeout_s))
        except Exception:  # noqa: BLE001 - as in _call_channel, for every item of the batch
            log.exception("channel client raised on a batch; treating every outcome as unknown")
            return [_CLIENT_ERROR] * len(intents)
        if len(responses) != len(intents):
            log.error("channel client answered %d of %d batch items; treating all as unknown",
                      len(responses), len(intents))
            return [_CLIENT_ERROR] * len(intents)
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


def _busy(response: ChannelResponse) -> bool:
    """The guard found no free slot on the channel: the request was never sent."""
    return response.outcome is Outcome.FAILED and response.decline_code == BUSY_CODE


def _released(settlement: Settlement, idempotency: IdempotencyRecord) -> Change:
    """The settlement of an operation the channel was too busy to take (FAILED channel_busy on the
    payment's record), with its key freed instead of finished: a channel never called must not cost the
    caller the key, so a retry with it is a new attempt."""
    return dataclasses.replace(settlement.change, idempotency=None,
                               released_key=(idempotency.merchant_id, idempotency.key))


def _operation_request(payment: PaymentRecord, operation: OperationRecord) -> BatchableRequest:
    """The channel request of a capture, void, refund or reversal, from what the store holds."""
    reference, authorization = operation.operation_id, payment.authorization_id
    if operation.kind in (OperationKind.VOID, OperationKind.REVERSAL):
        return channel_pb2.ChannelVoidRequest(reference=reference, authorization_reference=authorization)
    money = render.money(operation.amount_minor, operation.currency)
    if operation.kind is OperationKind.CAPTURE:
        return channel_pb2.ChannelCaptureRequest(reference=reference, authorization_reference=authorization,
                                                 amount=money)
    return channel_pb2.ChannelRefundRequest(reference=reference, authorization_reference=authorization, amount=money)


async def _record_purged() -> bytes:
    """The resolver resumes only a key whose record it found; finding none now, there is nothing to do."""
    raise RequestInProgress()


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

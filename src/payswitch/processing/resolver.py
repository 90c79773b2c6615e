"""The resolver: asks channels what became of operations whose outcome is unknown, and records it.

An operation is PENDING when its call timed out or broke after the request left, or when the switch
stopped between sending it and recording the answer. It is never sent elsewhere: only the channel that
may have acted can say, through Inquire. An operation the switch stopped in the middle of (its caller
never answered) is sent again to its channel under the same reference instead, which the channel
answers as it answered the first time or acts on now: a capture, void, refund or reversal by the
resolver itself, an authorization by its caller's retry (the switch keeps no CVV to send it with),
which the resolver waits `resend_window_seconds` for before it asks Inquire. The resolver asks with exponential
backoff (with jitter, so a recovering channel is not hit by every question at once) until the channel
gives a final answer, then records it exactly as a live answer would have been recorded; a retry of
the operation's idempotency key then replays the resolved response.

Nothing stays PENDING silently: an operation pending longer than `report_after_seconds` is logged as
an error once and marked overdue in `pending_report` (SwitchAdmin.ListPendingOperations).

Policy `late_authorization = "void"`: an authorization the channel approved after the caller was told
PENDING is voided at once, for merchants that treat an unanswered authorization as failed.
"""

import asyncio
import logging
import random as random_module
import time
from collections.abc import Callable
from dataclasses import dataclass

from ..channels.base import ChannelResponse, Outcome
from ..config import ResolverConfig
from ..payments.commands import VoidCommand
from ..payments.errors import IllegalTransition, PaymentError
from ..payments.lifecycle import OperationKind
from ..store.base import OperationRecord, PaymentRecord, PaymentStore
from ..v1 import channel_pb2
from .channel_directory import ChannelDirectory
from .service import PaymentService
from .settlement import confirmed

log = logging.getLogger(__name__)

#: Pending operations read per round, oldest first (the overdue ones are always among them).
ROUND_LIMIT = 1000
#: Inquire calls in flight at once, across channels.
MAX_CONCURRENT_INQUIRIES = 16


@dataclass
class _Progress:
    inquiries: int = 0
    next_at: float = 0.0  # monotonic
    last_answer: str = "not asked yet"
    reported: bool = False


@dataclass(frozen=True, slots=True)
class PendingView:
    payment: PaymentRecord
    operation: OperationRecord
    inquiries: int
    last_answer: str
    overdue: bool


class PendingResolver:
    def __init__(self, store: PaymentStore, service: PaymentService, channels: ChannelDirectory,
                 settings: ResolverConfig, *, clock_us: Callable[[], int],
                 monotonic: Callable[[], float] = time.monotonic, random: random_module.Random | None = None):
        self._store = store
        self._service = service
        self._channels = channels
        self._settings = settings
        self._clock_us = clock_us
        self._monotonic = monotonic
        self._random = random or random_module.Random()
        self._progress: dict[str, _Progress] = {}
        self._inquiries = asyncio.Semaphore(MAX_CONCURRENT_INQUIRIES)

    async def run(self) -> None:
        """Resolves in rounds until cancelled; a failed round is logged and the next one tries again."""
        while True:
            try:
                await self.resolve_once()
            except Exception:  # noqa: BLE001 - the resolver must outlive a store or channel hiccup
                log.exception("resolver round failed")
            await asyncio.sleep(self._settings.interval_seconds)

    async def resolve_once(self) -> int:
        """One round: asks about every due pending operation; returns how many were resolved."""
        now_us = self._clock_us()
        settings = self._settings
        old_enough_us = now_us - int(settings.min_age_seconds * 1e6)
        pending = await self._store.pending_operations(
            max(old_enough_us, now_us - int(settings.report_after_seconds * 1e6)), ROUND_LIMIT)
        self._report_overdue(pending, now_us)
        now = self._monotonic()
        due = [(payment, operation) for payment, operation in pending
               if operation.updated_at_us < old_enough_us and not self._service.is_sending(operation.operation_id)
               and self._progress.setdefault(operation.operation_id, _Progress()).next_at <= now]
        if len(pending) < ROUND_LIMIT:  # the whole list was read: forget operations resolved elsewhere
            listed = {operation.operation_id for _, operation in pending}
            self._progress = {key: value for key, value in self._progress.items() if key in listed}
        results = await asyncio.gather(*(self._resolve(payment, operation) for payment, operation in due),
                                       return_exceptions=True)
        for (payment, _), result in zip(due, results):
            if isinstance(result, Exception):
                log.error("resolving an operation failed", exc_info=result, extra={"payment_id": payment.payment_id})
        return sum(result is True for result in results)

    async def pending_report(self, older_than_s: float, limit: int) -> list[PendingView]:
        now_us = self._clock_us()
        rows = await self._store.pending_operations(now_us - int(older_than_s * 1e6), limit)
        views = []
        for payment, operation in rows:
            progress = self._progress.get(operation.operation_id, _Progress())
            views.append(PendingView(payment, operation, progress.inquiries, progress.last_answer,
                                     self._is_overdue(operation, now_us)))
        return views

    async def _resolve(self, payment: PaymentRecord, operation: OperationRecord) -> bool:
        progress = self._progress[operation.operation_id]
        try:
            binding = self._channels.named(payment.channel)
        except KeyError:
            progress.last_answer = f"channel {payment.channel!r} is not configured"
            self._back_off(progress)
            return False
        record = await self._service.interrupted(payment, operation)
        if record is not None:
            if operation.kind is not OperationKind.AUTHORIZATION:
                return await self._resume(payment, operation, record, progress)
            waited_s = (self._clock_us() - operation.created_at_us) / 1e6
            if waited_s < self._settings.resend_window_seconds:
                # Inquire now would bind the channel never to act on the reference, so the caller's
                # retry (the only one with the card data to send it again) could not finish it.
                progress.last_answer = "interrupted before its outcome was recorded; waiting for the caller's retry"
                progress.next_at = self._monotonic() + self._settings.resend_window_seconds - waited_s
                return False
        async with self._inquiries:
            response = confirmed(operation, await binding.client.inquire(
                channel_pb2.ChannelInquireRequest(reference=operation.operation_id), binding.timeout_s))
        progress.inquiries += 1
        progress.last_answer = _describe(response)
        if response.outcome is Outcome.UNKNOWN:
            self._back_off(progress)
            return False
        try:
            settled = await self._service.settle_late(payment, operation.operation_id, response)
        except PaymentError as error:
            progress.last_answer = f"{progress.last_answer}; not recorded: {error.reason}"
            self._back_off(progress)
            return False
        self._progress.pop(operation.operation_id, None)
        if settled:
            log.info("payment %s: %s %s resolved through Inquire on %s: %s", payment.payment_id,
                     operation.kind.value.lower(), operation.operation_id, payment.channel, progress.last_answer,
                     extra={"payment_id": payment.payment_id})
            if (operation.kind is OperationKind.AUTHORIZATION and response.outcome is Outcome.APPROVED
                    and self._settings.late_authorization == "void"):
                await self._void_late_authorization(payment)
        return settled

    async def _resume(self, payment: PaymentRecord, operation: OperationRecord, record, progress: _Progress) -> bool:
        try:
            await self._service.resume(record)
        except PaymentError as error:
            progress.last_answer = f"sent again after an interruption; not recorded: {error.reason}"
            self._back_off(progress)
            return False
        self._progress.pop(operation.operation_id, None)
        log.info("payment %s: %s %s interrupted before its outcome was recorded; sent again to %s",
                 payment.payment_id, operation.kind.value.lower(), operation.operation_id, payment.channel,
                 extra={"payment_id": payment.payment_id})
        return True

    async def _void_late_authorization(self, payment: PaymentRecord) -> None:
        command = VoidCommand(payment.merchant_id, f"late-authorization-void:{payment.payment_id}", payment.payment_id)
        try:
            await self._service.void(command)
            log.info("payment %s: authorization approved after the caller heard PENDING; voided by policy",
                     payment.payment_id, extra={"payment_id": payment.payment_id})
        except IllegalTransition:
            pass  # nothing is held: a partial approval the caller did not accept was reversed instead
        except PaymentError as error:
            log.error("payment %s: voiding the late authorization failed: %s", payment.payment_id, error.reason,
                      extra={"payment_id": payment.payment_id})

    def _back_off(self, progress: _Progress) -> None:
        delay = min(self._settings.max_backoff_seconds,
                    self._settings.interval_seconds * 2 ** min(progress.inquiries, 30))
        progress.next_at = self._monotonic() + delay * self._random.uniform(0.8, 1.2)

    def _is_overdue(self, operation: OperationRecord, now_us: int) -> bool:
        return now_us - operation.updated_at_us > self._settings.report_after_seconds * 1e6

    def _report_overdue(self, pending: list[tuple[PaymentRecord, OperationRecord]], now_us: int) -> None:
        for payment, operation in pending:
            if not self._is_overdue(operation, now_us):
                break  # oldest first: the rest are younger
            progress = self._progress.setdefault(operation.operation_id, _Progress())
            if not progress.reported:
                progress.reported = True
                log.error("payment %s: %s %s on channel %s pending for %d s after %d inquiries (last: %s)",
                          payment.payment_id, operation.kind.value.lower(), operation.operation_id,
                          payment.channel, (now_us - operation.updated_at_us) // 1_000_000, progress.inquiries,
                          progress.last_answer, extra={"payment_id": payment.payment_id})


def _describe(response: ChannelResponse) -> str:
    if response.outcome is Outcome.UNKNOWN:
        reason = f"{response.decline_code}: " if response.decline_code else ""
        return f"unknown ({reason}{response.message or 'no answer'})"
    if response.decline_code:
        return f"{response.outcome.value} {response.decline_code}"
    return response.outcome.value
